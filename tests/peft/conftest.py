"""Fixtures of the PEFT tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def images() -> torch.Tensor:
    """Two synthetic RGB images ``(2, 3, 64, 64)`` in [0, 255]."""
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(7)) * 255


@pytest.fixture(autouse=True)
def one_thread():
    """Run each PEFT test on one intra-op thread: tiny layers gain nothing from more, and threaded
    kernels stall for whole scheduler slices when the CPUs are shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
