"""One place checks every setting of a run, with messages that name the setting as the user wrote it."""

import pytest
import torch

from tokenmerge.experiments.cli import DataError, SettingError
from tokenmerge.experiments.evaluation import Setting
from tokenmerge.experiments.validation import check_device, check_num_classes, check_path, check_run, check_tome

RUN = {"device": "cpu", "dtype": "float32", "seed": 0, "throughput": {"batch_size": 4, "rounds": 2}}


def tome(**fields):
    return {
        "r": 0,
        "inflection": None,
        "ratio": None,
        "prop_attn": True,
        "method": "tome",
        "merge_scope": None,
        **fields,
    }


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"r": -5}, "tome.r=-5 is not valid"),
        ({"r": "abc"}, "tome.r=abc is not a number of tokens"),
        ({"r": 8.5}, "tome.r=8.5 is not a number of tokens"),
        ({"r": True}, "tome.r=True is not a number"),
        ({"r": [8, -1]}, "per-block list needs whole numbers >= 0"),
        ({"method": "bogus"}, "tome.method=bogus is not known: choose one of random_drop, random_merge, tome"),
        ({"ratio": 0.6}, r"tome.ratio=0.6 is not valid: .*\[0, 0.5\]"),
        ({"ratio": 0.25, "r": 8}, "either tome.ratio or tome.r"),
        ({"r": 8, "inflection": 2}, r"tome.inflection=2 is not valid: give a number in \[-1, 1\]"),
        ({"r": [8, 8], "inflection": -1}, "inflection applies to a single r"),
        ({"merge_scope": "frame"}, "does not apply here: these models have one scope"),
        ({"prop_attn": "yes"}, "tome.prop_attn=yes"),
    ],
)
def test_bad_tome_settings_name_the_setting(fields, message):
    with pytest.raises(SettingError, match=message):
        check_tome(tome(**fields))


def test_good_tome_settings_become_a_setting():
    assert check_tome(tome(r=8)) == Setting("tome", 8)
    assert check_tome(tome(r=8, inflection=-1)) == Setting("tome", (8, -1.0))
    assert check_tome(tome(ratio=0.25, method="random_drop")) == Setting("random_drop", 0.25)
    assert check_tome(tome(r=[4, 4, 2]), ("spacetime", "frame")) == Setting("tome", [4, 4, 2])
    assert check_tome(tome(merge_scope="frame"), ("spacetime", "frame")).merge_scope == "frame"
    with pytest.raises(SettingError, match="tome.merge_scope=time is not known: choose one of spacetime, frame"):
        check_tome(tome(merge_scope="time"), ("spacetime", "frame"))


def test_run_settings():
    assert check_run({**RUN, "tome": tome(r=4)}) == Setting("tome", 4)
    with pytest.raises(SettingError, match="dtype=float8 is not known"):
        check_run({**RUN, "dtype": "float8", "tome": tome()})
    with pytest.raises(SettingError, match="throughput.rounds=0 is not valid"):
        check_run({**RUN, "throughput": {"batch_size": 4, "rounds": 0}, "tome": tome()})
    with pytest.raises(SettingError, match="device=gpu is not a device"):
        check_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(SettingError, match="no CUDA device"):
            check_device("cuda")


def test_paths_and_class_counts(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match=r"data.root=.*missing does not exist\. Use a folder"):
        check_path(tmp_path / "missing", "data.root", hint="Use a folder.")
    with pytest.raises(DataError, match="is a file, not a folder"):
        check_path(tmp_path / "f.txt", "data.root")
    with pytest.raises(DataError, match="is a folder, not a file"):
        check_path(tmp_path, "model.checkpoint", kind="file")
    assert check_path(tmp_path / "f.txt", "model.checkpoint", kind="file") == tmp_path / "f.txt"
    with pytest.raises(SettingError, match="has 2 classes but the model predicts 21"):
        check_num_classes(2, 21, "data.root=/x")
    check_num_classes(21, 21, "data.root=/x")
