"""tokenmerge.core depends on torch only."""

import subprocess
import sys


def test_core_does_not_import_modality_libraries():
    code = (
        "import sys, tokenmerge.core; "
        "bad = [m for m in ('timm', 'torchvision', 'torchaudio', 'hydra', 'av') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"tokenmerge.core imported {result.stdout.strip()}"


def test_no_top_level_core_or_image_package_is_installed(tmp_path):
    # Run outside the repository so only installed packages are importable.
    code = (
        "import importlib.util, sys; "
        "found = [n for n in ('core', 'image', 'video', 'audio') if importlib.util.find_spec(n)]; "
        "import tokenmerge.core, tokenmerge.image; print(found); sys.exit(1 if found else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, f"installed top-level packages: {result.stdout.strip()} {result.stderr[-500:]}"
