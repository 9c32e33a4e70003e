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


def test_core_imports_with_every_other_third_party_library_missing():
    # torch itself imports tqdm when it is installed (torch.hub), which the allow-list above cannot see: block tqdm
    # and the libraries the rest of tokenmerge uses, and the core must still import and never reach for them.
    blocked = ["tqdm", "timm", "hydra", "omegaconf", "PIL", "matplotlib", "safetensors", "torchvision", "av", "sklearn"]
    code = (
        "import sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tokenmerge.core\n"
        "print(sorted(m for m in BLOCKED if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]


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
