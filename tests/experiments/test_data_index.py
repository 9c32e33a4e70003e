"""The shared index reader: CSV dialects, AudioMAE's JSON data lists, class folders, class lists, clear errors."""

import json
from pathlib import Path

import pytest

from tokenmerge.experiments.data_index import IndexReader, read_class_index, read_class_names

#: Like video's reader: MAE-ST's headerless lines, single-label, names files only.
LINES = IndexReader(
    kind="Clip",
    noun="clips",
    extensions=(".mp4",),
    json_keys=("video", "path"),
    multi_label=False,
    headerless_csv=True,
    class_index_csv=False,
)
#: Like audio's reader: a header is required, multi-label with AudioSet's class index.
HEADED = IndexReader(
    kind="Sound",
    noun="sounds",
    extensions=(".wav", ".flac"),
    json_keys=("wav",),
    multi_label=True,
    headerless_csv=False,
    class_index_csv=True,
)
CLASS_INDEX = "index,mid,display_name\n0,/m/dog,Dog\n1,/m/cat,Cat\n2,/m/car,Car\n"


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_headerless_lines_comma_or_whitespace_with_an_optional_header(tmp_path):
    touch(tmp_path, "a.mp4")
    write(tmp_path / "classes.txt", "cat\ndog\n")
    lines = write(tmp_path / "val.csv", f"a.mp4,dog\n\n{tmp_path}/b.mp4 0\nsub dir/c.mp4   1\n")
    index = LINES.read_csv(lines)
    assert index.classes == ["cat", "dog"] and not index.multi_label
    assert index.samples == [
        (str(tmp_path / "a.mp4"), 1),
        (f"{tmp_path}/b.mp4", 0),
        (str(tmp_path / "sub dir/c.mp4"), 1),
    ]
    for header in ("path,label", "path label", "file,label"):
        assert LINES.read_csv(write(tmp_path / "h.csv", f"{header}\na.mp4,dog\n")).samples == [index.samples[0]]
    (tmp_path / "classes.txt").unlink()
    index = LINES.read_csv(write(tmp_path / "n.csv", "a.mp4 7\n"))
    assert index.classes is None and index.samples[0][1] == 7  # plain indices, no class list


def test_headed_csv_single_and_multi_label(tmp_path):
    touch(tmp_path, "a.wav", "b.wav")
    write(tmp_path / "class_labels_indices.csv", CLASS_INDEX)
    write(tmp_path / "classes.txt", "low\nhigh\n")  # the class index beside the CSV comes first
    multi = write(tmp_path / "eval.csv", 'file,labels\na.wav,"/m/car, Dog,/m/car"\nb.wav,1\n')
    index = HEADED.read_csv(multi)
    assert index.multi_label and index.classes == ["Dog", "Cat", "Car"]
    assert index.samples == [(str(tmp_path / "a.wav"), (0, 2)), (str(tmp_path / "b.wav"), (1,))]
    single = write(tmp_path / "val.csv", "path,label\na.wav,high\nb.wav,0\n")
    index = HEADED.read_csv(single, classes=tmp_path / "classes.txt")
    assert not index.multi_label and [label for _, label in index.samples] == [1, 0]
    assert HEADED.read_csv(single, classes=["high", "low"]).samples[0][1] == 0
    with pytest.raises(ValueError, match="must start with the header 'file,labels' .* or 'file,label'"):
        HEADED.read_csv(write(tmp_path / "bare.csv", "a.wav,0\n"))
    with pytest.raises(ValueError, match=r"val.csv:2: expected 'file,labels' \(2 fields, the labels quoted\)"):
        HEADED.read_csv(write(tmp_path / "val.csv", "file,labels\na.wav,/m/dog,/m/cat\n"))
    with pytest.raises(ValueError, match=r"val.csv:2: expected 'file,label', got \['a.wav', '0', 'x'\]"):
        HEADED.read_csv(write(tmp_path / "val.csv", "file,label\na.wav,0,x\n"))
    with pytest.raises(ValueError, match="no labels; every clip needs at least one"):
        HEADED.read_csv(write(tmp_path / "val.csv", 'file,labels\na.wav," , "\n'))


def test_multi_label_needs_a_reader_that_takes_it_and_a_class_index(tmp_path):
    touch(tmp_path, "a.wav")
    multi = write(tmp_path / "eval.csv", "file,labels\na.wav,/m/dog\n")
    with pytest.raises(FileNotFoundError, match="no class index was given or found beside it"):
        HEADED.read_csv(multi)
    with pytest.raises(ValueError, match="clip indexes are single-label"):
        LINES.read_csv(multi, classes=["/m/dog"])


def test_audiomae_json_data_list(tmp_path):
    # AudioMAE's dataset JSON (facebookresearch/AudioMAE dataset.py): {"data": [{"wav": ..., "labels": "mid,mid"}]}.
    touch(tmp_path, "clips/a.wav")
    write(tmp_path / "class_labels_indices.csv", CLASS_INDEX)
    data = {"data": [{"wav": "clips/a.wav", "labels": "/m/dog,/m/car"}, {"wav": "/abs/b.wav", "labels": "/m/cat"}]}
    index = HEADED.load(write(tmp_path / "eval.json", json.dumps(data)))
    assert index.multi_label and index.classes == ["Dog", "Cat", "Car"]
    assert index.samples == [(str(tmp_path / "clips/a.wav"), (0, 2)), ("/abs/b.wav", (1,))]
    single = {"data": [{"wav": "clips/a.wav", "label": "Cat"}, {"wav": "clips/a.wav", "label": 2}]}
    index = HEADED.load(write(tmp_path / "val.json", json.dumps(single)))
    assert not index.multi_label and [label for _, label in index.samples] == [1, 2]
    videos = {"data": [{"video": "clips/a.wav", "label": "1"}, {"path": "clips/a.wav", "label": "0"}]}
    assert [label for _, label in LINES.load(write(tmp_path / "v.json", json.dumps(videos))).samples] == [1, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "is not valid JSON"),
        ('[{"wav": "a.wav", "labels": "/m/dog"}]', r'must hold \{"data": \[\{"wav": <file>, "labels": <labels>\}'),
        ('{"data": ["a.wav"]}', "must hold"),
        ('{"data": [{"file": "a.wav", "labels": "/m/dog"}]}', r"data\[0\] needs the keys 'wav' and 'labels'"),
        ('{"data": [{"wav": "a.wav", "labels": "/m/dog"}, {"wav": "a.wav", "label": "0"}]}', r"data\[1\] needs"),
        ('{"data": [{"wav": "a.wav", "labels": "/m/unicorn"}]}', r"data\[0\]: label '/m/unicorn' is not one of"),
        ('{"data": []}', "No sounds found in"),
    ],
)
def test_json_errors_say_what_to_fix(tmp_path, text, message):
    touch(tmp_path, "a.wav")
    write(tmp_path / "class_labels_indices.csv", CLASS_INDEX)
    with pytest.raises(ValueError, match=message):
        HEADED.read_json(write(tmp_path / "eval.json", text))


def test_class_folders(tmp_path):
    touch(tmp_path, "b/2.wav", "a/1.flac", "a/notes.txt", "empty/.keep", "0/3.wav")
    index = HEADED.read_folders(tmp_path)
    assert index.classes == ["0", "a", "b", "empty"] and not index.multi_label
    assert index.samples == [
        (str(tmp_path / "0/3.wav"), 0),
        (str(tmp_path / "a/1.flac"), 1),
        (str(tmp_path / "b/2.wav"), 2),
    ]
    assert [label for _, label in HEADED.load(tmp_path, ["x", "a", "b"]).samples] == [0, 1, 2]  # "0": an index
    with pytest.raises(ValueError, match="No clips found"):
        LINES.read_folders(tmp_path, classes=["b"])  # only the reader's extensions count
    touch(tmp_path, "a/4.mp4", "b/val.csv")
    with pytest.raises(ValueError, match="a holds clips but 'a' is not in the class list; add it or move it"):
        LINES.read_folders(tmp_path, classes=["b"])
    with pytest.raises(ValueError, match=r"No clips found in .*extensions \.mp4\)\. If it holds a CSV or JSON index"):
        LINES.read_folders(tmp_path / "b")


@pytest.mark.parametrize(
    "rows, classes, error, message",
    [
        ("a.mp4,bird\n", ["cat", "dog"], ValueError, r"val.csv:1: label 'bird' is not one of the 2 classes \(by name"),
        ("a.mp4,2\n", ["cat", "dog"], ValueError, "label 2 is out of range; it must be an index below 2"),
        ("a.mp4,-1\n", None, ValueError, "label -1 is out of range; it must be a non-negative index"),
        ("a.mp4,dog\n", None, ValueError, "is a class name but there is no class list. Write classes.txt"),
        ("a.mp4,0,x\n", None, ValueError, r"val.csv:1: expected 'path,label', got \['a.mp4', '0', 'x'\]"),
        ("\n", None, ValueError, r"No clips found in .*val.csv\.$"),
        (
            "missing.mp4,0\ngone.mp4,1\n",
            None,
            FileNotFoundError,
            r"None of the 2 clips listed in .* \(first: .*missing",
        ),
    ],
)
def test_csv_errors_say_what_to_fix(tmp_path, rows, classes, error, message):
    touch(tmp_path, "a.mp4")
    csv_path = write(tmp_path / "val.csv", rows)
    with pytest.raises(error, match=message):
        LINES.read_csv(csv_path, classes)


def test_unknown_mids_and_missing_indexes(tmp_path):
    write(tmp_path / "class_labels_indices.csv", CLASS_INDEX)
    touch(tmp_path, "a.wav")
    with pytest.raises(ValueError, match=r"'/m/cow' is not one of the 3 classes \(by mid, name or index\)"):
        HEADED.read_csv(write(tmp_path / "eval.csv", "file,labels\na.wav,/m/cow\n"))
    with pytest.raises(FileNotFoundError, match=r"Clip index .*nowhere.csv does not exist. Pass a CSV of 'path,label'"):
        LINES.load(tmp_path / "nowhere.csv")
    with pytest.raises(FileNotFoundError, match=r"Sound index .*nowhere.json does not exist. .* a JSON list"):
        HEADED.load(tmp_path / "nowhere.json")
    with pytest.raises(FileNotFoundError, match="Sound folder .*nowhere does not exist. Pass a folder"):
        HEADED.read_folders(tmp_path / "nowhere")


def test_class_lists(tmp_path):
    assert read_class_names(write(tmp_path / "classes.txt", "b\n\n a \n")).names == ["b", "a"]
    assert read_class_index(write(tmp_path / "labels.csv", CLASS_INDEX)).ids == ["/m/dog", "/m/cat", "/m/car"]
    names_csv = write(tmp_path / "names.csv", "x\ny\n")
    assert LINES.class_list(names_csv, tmp_path).names == ["x", "y"]  # without class_index_csv: a names file
    with pytest.raises(ValueError, match="must have the header index,mid,display_name"):
        HEADED.class_list(names_csv, tmp_path)
    assert HEADED.class_list(None, tmp_path).names == LINES.class_list(None, tmp_path).names == ["b", "a"]
    write(tmp_path / "class_labels_indices.csv", CLASS_INDEX)  # looked for first, by readers that read class indexes
    assert HEADED.class_list(None, tmp_path).names == ["Dog", "Cat", "Car"]
    assert LINES.class_list(None, tmp_path).names == ["b", "a"] and LINES.class_list(None, tmp_path / "x") is None
    with pytest.raises(ValueError, match="indices 0..K-1 exactly once"):
        read_class_index(write(tmp_path / "gap.csv", "index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n"))
    for text, message in (("", "is empty"), ("a\na\n", "names a class twice")):
        with pytest.raises(ValueError, match=message):
            read_class_names(write(tmp_path / "bad.txt", text))
    with pytest.raises(FileNotFoundError, match="Write one class name per line"):
        read_class_names(tmp_path / "none.txt")
