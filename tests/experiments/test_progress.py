"""Progress: bars on a terminal, plain lines in a log file or notebook (no carriage returns), or nothing."""

from tokenmerge.experiments.progress import progress, progress_mode


def test_lines_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("TOKENMERGE_PROGRESS", raising=False)
    assert progress_mode() == "lines"  # pytest captures stderr: not a terminal
    steps = ["tome r=0", "tome r=8"]
    assert list(progress(steps, "settings", every_step=True, describe=str)) == steps
    assert list(progress(range(3), "eval", unit="batches")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[:2] == ["settings 1/2: tome r=0", "settings 2/2: tome r=8"]
    assert len(lines) == 3 and lines[2].startswith("eval: 3/3 batches done in")


def test_the_environment_chooses(capsys, monkeypatch):
    monkeypatch.setenv("TOKENMERGE_PROGRESS", "off")
    assert list(progress(range(2), "quiet", every_step=True)) == [0, 1] and capsys.readouterr().err == ""
    monkeypatch.setenv("TOKENMERGE_PROGRESS", "bars")
    assert list(progress(range(2), "bar")) == [0, 1] and "2/2" in capsys.readouterr().err


def test_a_jupyter_kernel_gets_widget_bars(monkeypatch):
    import sys
    import types

    monkeypatch.delenv("TOKENMERGE_PROGRESS", raising=False)
    shell = types.SimpleNamespace(kernel=object())  # what IPython.get_ipython() returns inside a kernel
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress_mode() == "widgets"
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))  # a plain shell
    assert progress_mode() == "lines"
