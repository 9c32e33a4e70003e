"""Deliberate breakages of the merging path, for the mutation test (tests/test_mutations.py).

Each :class:`Mutant` replaces one piece of source text inside one function of ``tokenmerge.core`` and swaps the
function's code for the mutated one in place, so every caller (however it imported the function) runs the broken
version. ``TOKENMERGE_MUTANT=<name> pytest ...`` runs tests against a mutant (``tests/conftest.py`` applies it);
``python -m tests.mutants`` prints which tests each mutant fails (the mutation table).
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from dataclasses import dataclass

#: The environment variable that names the mutant a pytest run applies.
MUTANT_VARIABLE = "TOKENMERGE_MUTANT"


@dataclass(frozen=True)
class Mutant:
    """One breakage: in ``module``'s function ``qualname``, the text ``old`` (found exactly once) becomes ``new``.

    Attributes:
        catchers: the test files that must fail under this mutant (the mutation test runs only these).
    """

    name: str
    module: str
    qualname: str
    old: str
    new: str
    catchers: tuple[str, ...]

    def mutated_source(self) -> str:
        """The module's source with the breakage; raises if ``old`` is not in ``qualname`` exactly once."""
        module = importlib.import_module(self.module)
        function_source = inspect.getsource(_function(module, self.qualname))
        if function_source.count(self.old) != 1:
            raise LookupError(f"mutant {self.name}: {self.old!r} is not in {self.module}.{self.qualname} exactly once")
        source = inspect.getsource(module)
        return source.replace(function_source, function_source.replace(self.old, self.new))

    def apply(self) -> None:
        """Swap the code of ``qualname`` for the mutated one (in this process, until it ends)."""
        module = importlib.import_module(self.module)
        namespace = {"__name__": self.module, "__package__": module.__package__, "__file__": module.__file__}
        exec(compile(self.mutated_source(), module.__file__, "exec"), namespace)
        _function(module, self.qualname).__code__ = _function(namespace, self.qualname).__code__


def _function(holder, qualname: str):
    """The plain function at ``qualname`` in a module or namespace dict (unwrapping classmethods)."""
    obj = holder
    for part in qualname.split("."):
        obj = obj[part] if isinstance(obj, dict) else inspect.getattr_static(obj, part)
    return obj.__func__ if isinstance(obj, classmethod | staticmethod) else obj


REFERENCE = "tests/core/test_paper_reference.py"
MUTANTS = (
    Mutant(
        "metric from the block input",
        "tokenmerge.core.block",
        "attention_with_metric",
        "metric = mean_over_heads(k)",
        "metric = x",
        (REFERENCE,),
    ),
    Mutant(
        "metric from the queries",
        "tokenmerge.core.block",
        "attention_with_metric",
        "metric = mean_over_heads(k)",
        "metric = mean_over_heads(q)",
        (REFERENCE,),
    ),
    Mutant(
        "unweighted mean",
        "tokenmerge.core.merge",
        "merge_wavg",
        'summed = reduction.merge(x.to(exact) * size.to(exact), mode="sum")',
        'summed = reduction.merge(x.to(exact), mode="mean") * reduction.merge(size, mode="sum").to(exact)',
        (REFERENCE, "tests/core/test_merge.py"),
    ),
    Mutant(
        "sizes ignored in a matching's weighted merge",
        "tokenmerge.core.matching",
        "Matching.merge_weighted",
        "weigh = size is not None",
        "weigh = False",
        (REFERENCE, "tests/core/test_merge.py"),
    ),
    Mutant(
        "sizes not summed in a matching's weighted merge",
        "tokenmerge.core.matching",
        "Matching.merge_weighted",
        "dst_size = b_size.scatter_add(1, self.dst_idx, src_size)",
        'dst_size = b_size.scatter_reduce(1, self.dst_idx, src_size, reduce="amax")',
        (REFERENCE, "tests/core/test_merge.py"),
    ),
    Mutant(
        "proportional attention negated",
        "tokenmerge.core.attention",
        "size_bias",
        "weight = size if proportional",
        "weight = torch.where(size > 0, 1 / size, 0) if proportional",
        (REFERENCE,),
    ),
    Mutant(
        "a protected token may merge",
        "tokenmerge.core.matching",
        "Matching._layout",
        "p = self.protected",
        "p = max(self.protected - 1, 0)",
        (REFERENCE, "tests/core/test_matching.py"),
    ),
    Mutant(
        "sizes not summed",
        "tokenmerge.core.merge",
        "merge_wavg",
        'size = reduction.merge(size, mode="sum")',
        'size = reduction.merge(size, mode="amax")',
        (REFERENCE, "tests/core/test_merge.py"),
    ),
    Mutant(
        "padding given size 1",
        "tokenmerge.core.state",
        "TokenState.start",
        "size = attention_mask.to(x.device).bool()[..., None]",
        "size = torch.ones_like(attention_mask, device=x.device).bool()[..., None]",
        (REFERENCE, "tests/core/test_layout.py"),
    ),
    Mutant(
        "merged positions averaged without sizes",
        "tokenmerge.core.positions",
        "merge_positions",
        "None if size is None else size.to(positions.dtype)",
        "None",
        ("tests/adapters/test_timm_eva.py",),
    ),
    Mutant(
        "metric from the rotated keys",
        "tokenmerge.core.block",
        "attention_with_metric",
        "metric = mean_over_heads(k) if with_metric else None\n    if rotary is not None:\n"
        "        q, k = rotary(q, k, positions)",
        "if rotary is not None:\n        q, k = rotary(q, k, positions)\n"
        "    metric = mean_over_heads(k) if with_metric else None",
        ("tests/adapters/test_timm_eva.py",),
    ),
)
BY_NAME = {mutant.name: mutant for mutant in MUTANTS}


def run_tests(mutant: Mutant, tests: tuple[str, ...], *pytest_args: str) -> subprocess.CompletedProcess:
    """pytest on ``tests`` with ``mutant`` applied, in a fresh process; output captured."""
    env = {**os.environ, MUTANT_VARIABLE: mutant.name}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *pytest_args, *tests]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def main() -> None:
    """Print the mutation table: each mutant and the tests of ``tests/core`` and ``tests/image`` it fails."""
    for mutant in MUTANTS:
        done = run_tests(mutant, ("tests/core", "tests/image/test_patch.py"), "-rf", "-m", "not slow")
        failed = sorted(
            {line.split()[1].split("[")[0] for line in done.stdout.splitlines() if line.startswith("FAILED")}
        )
        print(f"| {mutant.name} | {len(failed)} | {', '.join(failed)} |", flush=True)


if __name__ == "__main__":
    main()
