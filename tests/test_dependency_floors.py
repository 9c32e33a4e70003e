"""Every version floor pyproject.toml states is a version this project has run: the one constraints.txt pins, which
``make test`` installs and CI runs. (Older timm releases, 1.0.15 to 1.0.30, fail our checkpoint loading.)"""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in listed if not r.startswith("tokenmerge")]


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if "==" in line)
    return {name.strip().lower().replace("_", "-"): version.strip() for name, version in pairs}


def test_every_stated_floor_is_the_pinned_version_we_run():
    pins = _pins()
    for requirement in _requirements():
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        name = requirement.name.lower().replace("_", "-")
        assert floors, f"{requirement}: state the floor we run ({pins.get(name)})"
        assert floors == [pins[name]], (
            f"{requirement}: its floor is not the version constraints.txt pins ({pins[name]})"
        )
