"""Shared test settings: small hypothesis budgets so the suite stays within minutes on 2 CPU cores."""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip on machines without CUDA."""
    import pytest

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


if os.environ.get("TOKENMERGE_MUTANT"):  # the mutation test runs the suite against one deliberate breakage
    from tests.mutants import BY_NAME, MUTANT_VARIABLE

    BY_NAME[os.environ[MUTANT_VARIABLE]].apply()
