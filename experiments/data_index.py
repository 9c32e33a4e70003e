"""Data indexes of the file-based modalities: which files to read and the label or labels of each.

One :class:`IndexReader` per modality says what differs (file extensions, the word for its files, whether
multi-label and MAE-ST's headerless CSVs are accepted, which class lists it reads); everything else is shared.
An index is one of (relative file paths are relative to the index's folder):

- a **CSV** with the header ``file,label`` (single-label) or ``file,labels`` (multi-label: a quoted,
  comma-separated list); ``path`` may name the file column. A reader with ``headerless_csv`` also takes
  MAE-ST's lines, ``path,label`` or ``path label`` (whitespace-separated), the ``path,label`` header optional.
- a **JSON data list** in AudioMAE's format (facebookresearch/AudioMAE, commit bd60e29, ``dataset.py``:
  ``AudiosetDataset.__init__`` keeps ``json.load(fp)['data']``, lines 136-141; an entry's ``'wav'`` is the file
  it decodes, line 280; its ``'labels'`` a comma-separated string of mids, each mapped to a class index through
  ``class_labels_indices.csv``, lines 283-284 with ``make_index_dict``, lines 101-107;
  ``dataset/audioset/gen_weight.py`` lines 23-28 reads the same lists)::

      {"data": [{"wav": "clips/a.wav", "labels": "/m/09x0r,/m/05zppz"}, ...]}

  An entry names its file by one of the reader's ``json_keys``. ``labels`` makes a multi-label index, as for
  AudioSet; a single-label list writes ``label`` instead (AudioMAE reads its ESC-50 lists single-label by a
  per-dataset setting, ``main_finetune_esc.py`` line 194, which a data list here does not have). AudioMAE opens
  relative paths from its working directory; here they are relative to the JSON's folder.
- a **class folder**: ``root/<class>/<file>``, one sub-folder per class, single-label.

Labels are class names, ids (AudioSet's mids) or class indices. The class list is given, or found beside the
index: ``classes.txt`` (one name per line, in the model's output order), and for readers with
``class_index_csv`` first AudioSet's ``class_labels_indices.csv`` (header ``index,mid,display_name``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

#: The header of AudioSet's class index, ``class_labels_indices.csv``.
CLASS_INDEX_COLUMNS = ("index", "mid", "display_name")
#: The names a CSV header may give the file column and the label column (``labels``: multi-label).
FILE_COLUMNS, LABEL_COLUMNS = ("file", "path"), ("label", "labels")

#: Class names, a class-list file, or None (look beside the index).
Classes = Sequence[str] | str | Path | None


@dataclass(frozen=True)
class DataIndex:
    """samples: (file path, target) pairs, target a class index or, multi-label, a sorted tuple of them;
    classes: class names by index, or None when unknown (single-label indices only); multi_label: whether
    targets are tuples (multi-hot)."""

    samples: list[tuple[str, int | tuple[int, ...]]]
    classes: list[str] | None
    multi_label: bool = False


@dataclass(frozen=True)
class ClassList:
    """Class names by index, with the label ids (AudioSet mids) each may be written as."""

    names: list[str]
    ids: list[str]

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {**{name: i for i, name in enumerate(self.names)}, **{id_: i for i, id_ in enumerate(self.ids)}}

    def find(self, label: str) -> int | None:
        """The index of ``label`` (an id, a name or an in-range integer index), or None if it is none of them."""
        if label in self._positions:
            return self._positions[label]
        index = _integer(label)
        return index if index is not None and 0 <= index < len(self.names) else None

    def lookup(self, label: str, where: str) -> int:
        """The index of ``label``, as :meth:`find`; an error that says what is wrong otherwise."""
        index = self.find(label)
        if index is not None:
            return index
        if (number := _integer(label)) is not None:
            raise ValueError(
                f"{where}: label {number} is out of range; it must be an index below {len(self.names)} "
                "(or a class name)."
            )
        kinds = "name or index" if self.ids == self.names else "mid, name or index"
        raise ValueError(
            f"{where}: label {label!r} is not one of the {len(self.names)} classes (by {kinds}); fix the label or "
            "pass the class list the index was written for."
        )


def read_class_names(path: str | Path) -> ClassList:
    """Read class names, one per line in the model's output order (blank lines ignored); each is its own id."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Class list {path} does not exist. Write one class name per line, in model order.")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"Class list {path} is empty. Write one class name per line, in model order.")
    if len(set(names)) != len(names):
        raise ValueError(f"Class list {path} names a class twice; every line must be a distinct class.")
    return ClassList(names=names, ids=names)


def read_class_index(path: str | Path) -> ClassList:
    """Read AudioSet's ``class_labels_indices.csv`` format: header ``index,mid,display_name``, indices 0..K-1."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Class index {path} does not exist. Pass AudioSet's class_labels_indices.csv (index,mid,display_name)."
        )
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(CLASS_INDEX_COLUMNS) <= set(reader.fieldnames):
            raise ValueError(f"Class index {path} must have the header {','.join(CLASS_INDEX_COLUMNS)}.")
        rows = sorted((int(row["index"]), row["mid"].strip(), row["display_name"].strip()) for row in reader)
    if [index for index, _, _ in rows] != list(range(len(rows))) or not rows:
        raise ValueError(f"Class index {path} must list the indices 0..K-1 exactly once each.")
    return ClassList(names=[name for _, _, name in rows], ids=[mid for _, mid, _ in rows])


def label_index(label: str, known: ClassList | None, where: str) -> int:
    """The class index of a single-label ``label``: looked up in ``known``, or a plain index when it is None."""
    if known is not None:
        return known.lookup(label, where)
    index = _integer(label)
    if index is None:
        raise ValueError(
            f"{where}: label {label!r} is a class name but there is no class list. Write classes.txt next to the "
            "index (one name per line, in the model's order) or pass classes=[...]."
        )
    if index < 0:
        raise ValueError(f"{where}: label {index} is out of range; it must be a non-negative index (or a class name).")
    return index


def label_indices(labels: str, known: ClassList, where: str) -> tuple[int, ...]:
    """The sorted class indices of a comma-separated list of labels (at least one)."""
    names = [label.strip() for label in labels.split(",") if label.strip()]
    if not names:
        raise ValueError(f"{where}: no labels; every clip needs at least one.")
    return tuple(sorted({known.lookup(label, where) for label in names}))


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class IndexReader:
    """Reads one modality's indexes (module doc); the fields are what differs between modalities.

    Attributes:
        kind: the modality, capitalised, for messages ("Video index ... does not exist").
        noun: its files in messages ("videos", "audio files").
        extensions: the lower-case suffixes of the files a class folder may hold.
        json_keys: the keys an entry of a JSON data list may name its file by (AudioMAE's is ``wav``).
        multi_label: whether multi-label indexes (``labels``) are accepted.
        headerless_csv: whether a CSV may be MAE-ST's ``path label`` lines without a header; else it needs one.
        class_index_csv: whether a ``.csv`` class list is AudioSet's class index (and ``class_labels_indices.csv``
            is looked for beside an index before ``classes.txt``); else every class list is a names file.
        hint: ends the message for a missing index (where to get one).
    """

    kind: str
    noun: str
    extensions: tuple[str, ...]
    json_keys: tuple[str, ...]
    multi_label: bool
    headerless_csv: bool
    class_index_csv: bool
    hint: str = ""

    def load(self, source: str | Path, classes: Classes = None) -> DataIndex:
        """A class-folder index for a directory, a JSON data list for a ``.json`` file, else a CSV index."""
        source = Path(source)
        if source.is_dir():
            return self.read_folders(source, classes)
        return self.read_json(source, classes) if source.suffix.lower() == ".json" else self.read_csv(source, classes)

    def class_list(self, classes: Classes, folder: Path) -> ClassList | None:
        """Classes from names or a class-list file; None looks beside the index, in ``folder`` (module doc), and
        returns None if there is no class list there."""
        if classes is None:
            names = ("class_labels_indices.csv", "classes.txt") if self.class_index_csv else ("classes.txt",)
            return next((self._read_classes(folder / name) for name in names if (folder / name).is_file()), None)
        if isinstance(classes, (str, Path)):
            return self._read_classes(Path(classes))
        return ClassList(names=list(classes), ids=list(classes))

    def read_csv(self, csv_path: str | Path, classes: Classes = None) -> DataIndex:
        """Read a CSV index (module doc); ``classes`` as :meth:`class_list`, None looking beside the CSV."""
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise self._missing(csv_path)
        known = self.class_list(classes, csv_path.parent)
        with csv_path.open(newline="") as f:
            rows = [self._fields(row) for row in csv.reader(f)]
        header = rows[0] if rows else []
        has_header = len(header) == 2 and header[0] in FILE_COLUMNS and header[1] in LABEL_COLUMNS
        if not has_header and not self.headerless_csv:
            raise ValueError(f"{csv_path} must start with the header {self._csv_headers}, got {header}.")
        multi = has_header and header[1] == "labels"
        self._check_multi_label(multi, known, csv_path)
        expected = f"'{','.join(header)}'" if has_header else "'path,label'"
        expected += " (2 fields, the labels quoted)" if multi else ""
        entries = []
        for line, row in enumerate(rows, start=1):
            if not any(row) or (line == 1 and has_header):
                continue
            if len(row) != 2:
                raise ValueError(f"{csv_path}:{line}: expected {expected}, got {row}.")
            entries.append((row[0], row[1], f"{csv_path}:{line}"))
        return self._index(csv_path, entries, known, multi)

    def read_json(self, json_path: str | Path, classes: Classes = None) -> DataIndex:
        """Read a JSON data list (module doc); ``classes`` as :meth:`class_list`, None looking beside the JSON."""
        json_path = Path(json_path)
        if not json_path.is_file():
            raise self._missing(json_path)
        try:
            data = json.loads(json_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{json_path} is not valid JSON ({error}); write {self._json_format}.") from None
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise ValueError(f"{json_path} must hold {self._json_format}.")
        label_key = "labels" if entries and "labels" in entries[0] else "label"
        known = self.class_list(classes, json_path.parent)
        self._check_multi_label(label_key == "labels", known, json_path)
        keys = " or ".join(repr(key) for key in self.json_keys)
        rows = []
        for i, entry in enumerate(entries):
            file_key = next((key for key in self.json_keys if key in entry), None)
            if file_key is None or label_key not in entry:
                raise ValueError(
                    f"{json_path}: data[{i}] needs the keys {keys} and {label_key!r} (as data[0]), got {sorted(entry)}."
                )
            rows.append((str(entry[file_key]).strip(), str(entry[label_key]).strip(), f"{json_path}: data[{i}]"))
        return self._index(json_path, rows, known, label_key == "labels")

    def read_folders(self, root: str | Path, classes: Classes = None) -> DataIndex:
        """Index ``root/<class>/<file>`` (files with the reader's ``extensions``).

        Args:
            root: one sub-folder per class.
            classes: as :meth:`class_list`; None looks in ``root``, else uses the sorted folder names (torchvision
                ``ImageFolder``'s order). A folder's name is a class name, id or index.
        """
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"{self.kind} folder {root} does not exist. Pass a folder with one sub-folder of {self.noun} per "
                f"class, or {self._formats}."
            )
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        known = self.class_list(classes, root)
        if known is None:
            known = ClassList(names=[p.name for p in folders], ids=[p.name for p in folders])
        samples = []
        for folder in folders:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in self.extensions)
            label = known.find(folder.name)
            if files and label is None:
                raise ValueError(
                    f"{folder} holds {self.noun} but {folder.name!r} is not in the class list; add it or move it."
                )
            samples += [(str(file), label) for file in files]
        where = f"{root} (one sub-folder of {self.noun} per class, extensions {', '.join(self.extensions)})"
        index_files = any(root.glob("*.csv")) or any(root.glob("*.json"))
        hint = " If it holds a CSV or JSON index, pass that file's path instead." if index_files else ""
        return self._checked(DataIndex(samples, known.names), where, hint)

    @property
    def _csv_headers(self) -> str:
        return "'file,labels' (multi-label) or 'file,label'" if self.multi_label else "'file,label'"

    @property
    def _json_format(self) -> str:
        label = "labels" if self.multi_label else "label"
        return f'{{"data": [{{"{self.json_keys[0]}": <file>, "{label}": <{label}>}}, ...]}}'

    @property
    def _formats(self) -> str:
        csv_format = "a CSV of 'path,label' lines" if self.headerless_csv else f"a CSV with header {self._csv_headers}"
        return f"{csv_format} or a JSON list {self._json_format}"

    def _missing(self, path: Path) -> FileNotFoundError:
        return FileNotFoundError(
            f"{self.kind} index {path} does not exist. Pass {self._formats}, or a folder with one sub-folder of "
            f"{self.noun} per class{self.hint}."
        )

    def _read_classes(self, path: Path) -> ClassList:
        index_csv = self.class_index_csv and path.suffix.lower() == ".csv"
        return read_class_index(path) if index_csv else read_class_names(path)

    def _fields(self, row: list[str]) -> list[str]:
        row = [field.strip() for field in row]
        return row[0].rsplit(maxsplit=1) if self.headerless_csv and len(row) == 1 else row

    def _check_multi_label(self, multi: bool, known: ClassList | None, path: Path) -> None:
        if multi and not self.multi_label:
            raise ValueError(
                f"{path} is a multi-label index ('labels'), but {self.kind.lower()} indexes are single-label; give "
                "each file one label, under 'label'."
            )
        if multi and known is None:
            raise FileNotFoundError(
                f"{path} is a multi-label index but no class index was given or found beside it; pass "
                "classes='class_labels_indices.csv' (header index,mid,display_name)."
            )

    def _index(self, path: Path, rows: list[tuple[str, str, str]], known: ClassList | None, multi: bool) -> DataIndex:
        """The index of (file, labels, where) rows read from the index file at ``path``."""
        samples = []
        for file, labels, where in rows:
            file_path = Path(file) if Path(file).is_absolute() else path.parent / file
            target = label_indices(labels, known, where) if multi else label_index(labels, known, where)
            samples.append((str(file_path), target))
        names = known.names if known is not None else None
        return self._checked(DataIndex(samples, names, multi), str(path))

    def _checked(self, index: DataIndex, where: str, hint: str = "") -> DataIndex:
        if not index.samples:
            raise ValueError(f"No {self.noun} found in {where}.{hint}")
        if not any(Path(path).is_file() for path, _ in index.samples):
            raise FileNotFoundError(
                f"None of the {len(index.samples)} {self.noun} listed in {where} exist (first: {index.samples[0][0]}). "
                "Relative paths are relative to the index's folder."
            )
        return index
