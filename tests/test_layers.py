"""The layers and the one direction of their imports (docs/ARCHITECTURE.md).

core (the merging mechanism) <- adapters (model families) <- experiments (the harness) <- image / video / audio
(modalities) <- app and api (the ``tokenmerge`` package itself: ``tokenmerge.apply_patch``). A layer imports only
layers to its left (experiments may not import adapters: the harness works with any adapter it is given); a
modality never imports another modality. Checked on the source: every ``import`` and ``from ... import`` of every
module, function bodies included.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package folder -> the tokenmerge packages its modules may import (besides itself)
ALLOWED = {
    "core": set(),
    "adapters": {"core"},
    "experiments": {"core"},
    "image": {"core", "adapters", "experiments"},
    "video": {"core", "adapters", "experiments"},
    "audio": {"core", "adapters", "experiments"},
    "app": {"core", "adapters", "experiments", "image", "video", "audio"},
    "api": {"core", "adapters", "experiments", "image", "video", "audio"},
}
#: package folder -> its import name (``api/`` is the ``tokenmerge`` package itself)
NAMES = {package: "tokenmerge" if package == "api" else f"tokenmerge.{package}" for package in ALLOWED}


def _imported_packages(path: Path) -> set[str]:
    """The tokenmerge subpackages a module imports (relative imports stay inside its own package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("tokenmerge.") and name.count(".") >= 1}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package):
    wrong = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := _imported_packages(path) - ALLOWED[package] - {package})
    }
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}; found {wrong}"


def test_every_package_folder_is_installed():
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, folders = set(setuptools["packages"]), setuptools["package-dir"]
    assert folders == {NAMES[package]: package for package in ALLOWED}
    for package in ALLOWED:
        for init in (ROOT / package).rglob("__init__.py"):
            name = ".".join([NAMES[package], *init.parent.relative_to(ROOT / package).parts])
            assert name in listed, f"{name} is not in pyproject.toml's packages: it would not be installed"
