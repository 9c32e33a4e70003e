"""Fixtures the experiment-harness tests share."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Two threads on two busy cores make tiny matmuls ~100x slower; one thread is steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
