"""The suite catches deliberate breakages of the merging path (tests/mutants.py), one at a time.

For each mutant the tests that should catch it run in a fresh process with the mutant applied, and must fail
(pytest's exit code 1: tests failed, not an error while collecting or applying the mutant). Without the mutant the
same tests pass: they run in the suite itself.
"""

import pytest

from tests.mutants import MUTANTS, run_tests


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name.replace(" ", "_") for m in MUTANTS])
def test_the_suite_fails_on_each_breakage(mutant):
    mutant.mutated_source()  # the breakage still applies to today's code
    done = run_tests(mutant, mutant.catchers, "-x")
    assert done.returncode == 1, f"{mutant.name}: not caught by {mutant.catchers}\n{done.stdout[-3000:]}"
