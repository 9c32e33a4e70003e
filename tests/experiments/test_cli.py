"""User errors reach the terminal as one line and exit status 2; other errors and debug mode keep tracebacks."""

import subprocess
import sys

import pytest

from tokenmerge.experiments.cli import DataError, SettingError, UserError, one_line, user_errors

SCRIPT = """
import sys
from tokenmerge.experiments.cli import SettingError, user_errors

@user_errors
def main(kind):
    if kind == "user":
        raise SettingError("tome.r=-5 is not valid:\\n give a whole number >= 0.")
    if kind == "bug":
        raise KeyError("not a user error")
    print("ok")

main(sys.argv[1])
"""


def run(kind, env=None):
    return subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, env=env, timeout=60)


def test_user_error_is_one_line_and_exit_status_2():
    result = run("user")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: tome.r=-5 is not valid: give a whole number >= 0.\n"


def test_debug_variables_show_the_traceback(monkeypatch):
    import os

    for name in ("TOKENMERGE_DEBUG", "HYDRA_FULL_ERROR"):
        result = run("user", env={**os.environ, name: "1"})
        assert result.returncode == 1 and "Traceback" in result.stderr and "SettingError" in result.stderr


def test_other_errors_keep_their_traceback():
    result = run("bug")
    assert result.returncode == 1 and "Traceback" in result.stderr and "KeyError" in result.stderr
    assert run("fine").stdout == "ok\n"


def test_user_errors_keep_the_builtin_types_api_callers_catch():
    assert issubclass(SettingError, ValueError) and issubclass(SettingError, UserError)
    assert issubclass(DataError, FileNotFoundError) and issubclass(DataError, UserError)
    assert str(DataError("data.root=/x does not exist.")) == "data.root=/x does not exist."
    assert one_line(ValueError("a\n  b")) == "error: a b"


def test_wrapper_exits_in_process(capsys):
    @user_errors
    def main():
        raise UserError("model.name is required")

    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2 and capsys.readouterr().err == "error: model.name is required\n"
