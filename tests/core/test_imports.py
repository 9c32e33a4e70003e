"""tokenmerge.core depends on torch and the standard library only; no top-level package is installed."""

import subprocess
import sys


def test_core_imports_only_torch_and_the_standard_library():
    # An allow-list: whatever importing tokenmerge.core loads beyond torch itself must be the standard library.
    code = (
        "import sys; import torch; before = set(sys.modules); import tokenmerge.core; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'tokenmerge'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"import tokenmerge.core loaded {result.stdout.strip()} beyond torch"


def test_no_top_level_core_or_image_package_is_installed(tmp_path):
    # Run outside the repository so only installed packages are importable.
    code = (
        "import importlib.util, sys; "
        "names = ('core', 'adapters', 'experiments', 'image', 'video', 'audio', 'app'); "
        "found = [n for n in names if importlib.util.find_spec(n)]; "
        "import tokenmerge.core, tokenmerge.adapters, tokenmerge.experiments, tokenmerge.image; "
        "print(found); sys.exit(1 if found else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, f"installed top-level packages: {result.stdout.strip()} {result.stderr[-500:]}"
