"""Every Python and shell block of README.md runs as written.

A block that cannot run offline (it needs real data or weights, or takes minutes) is marked by an HTML comment on
the line before its fence, with the reason::

    <!-- readme-test: skip needs ImageNet's validation folder and pretrained timm weights -->

Blocks run in order, in one scratch folder (so a block may use a file an earlier one wrote), with the repository's
``.venv`` linked in, so commands run exactly as a user types them in the repository.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\b\s*(.*?)\s*-->$")
LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}


def readme_blocks(text: str) -> list[dict]:
    """Code blocks of a Markdown text: language, first line number, code, and the skip reason (or None)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, language = i, match.group(1).lower()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.match(previous)
        blocks.append(
            dict(
                language=LANGUAGES.get(language, language),
                line=start + 1,
                code="\n".join(lines[start + 1 : end]) + "\n",
                skip=None if skip is None else skip.group(1),
            )
        )
        i = end + 1
    return blocks


BLOCKS = [b for b in readme_blocks(README.read_text()) if b["language"] in ("python", "shell")]


def test_marking_is_understood():
    blocks = readme_blocks(
        "<!-- readme-test: skip needs data -->\n```bash\nfalse\n```\ntext\n\n```python\nx = 1\n```\n"
    )
    assert [(b["language"], b["skip"], b["code"]) for b in blocks] == [
        ("shell", "needs data", "false\n"),
        ("python", None, "x = 1\n"),
    ]
    runnable = [b for b in BLOCKS if b["skip"] is None]
    assert {b["language"] for b in runnable} == {"python", "shell"}  # the README's parse found real blocks
    assert all(b["skip"] for b in BLOCKS if b["skip"] is not None), "a skipped block must say why"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    (folder / ".venv").symlink_to(ROOT / ".venv")
    return folder


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b['language']}-line{b['line']}" for b in BLOCKS])
def test_readme_block_runs(block, workdir):
    if block["skip"] is not None:
        pytest.skip(f"README line {block['line']}: {block['skip']}")
    env = {**os.environ, "TOKENMERGE_CACHE": str(workdir / "cache"), "TOKENMERGE_PROGRESS": "off"}
    if block["language"] == "python":
        cmd = [sys.executable, "-c", block["code"]]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", block["code"]]
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"README line {block['line']} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
