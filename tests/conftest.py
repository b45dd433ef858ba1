"""Shared test settings: thread counts, a gpu marker that skips without CUDA, and the rule that fast tests train nothing.

The suite runs in parallel processes (pytest-xdist, ``-n auto`` in pyproject.toml). Each process then uses one
intra-op thread, and so do the scripts it starts: two processes of two threads on two cores thrash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch
from filelock import FileLock

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HYDRA_FULL_ERROR", "0")

PARALLEL = "PYTEST_XDIST_WORKER" in os.environ
THREADS = 1 if PARALLEL else max(1, min(2, os.cpu_count() or 1))
torch.set_num_threads(THREADS)

T = TypeVar("T")

# Session fixtures that train a model: every test using one is slow, wherever it is.
TRAINED_FIXTURES = frozenset({"smoke_run"})

# Whether the test being set up or run is marked slow: only slow tests may train a segmentation model.
_SLOW_NOW = {"value": True}


class TrainingInFastTestError(AssertionError):
    """A test not marked ``slow`` started training; ``-m "not slow"`` promises that nothing trains."""


def training_allowed(what: str) -> None:
    """Raise :class:`TrainingInFastTestError` naming ``what`` unless the current test is marked ``slow``."""
    if not _SLOW_NOW["value"]:
        raise TrainingInFastTestError(f"{what}: a test that trains must be marked @pytest.mark.slow")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _SLOW_NOW["value"] = item.get_closest_marker("slow") is not None
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = None if torch.cuda.is_available() else pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if skip_gpu is not None and "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def _no_training_in_fast_tests() -> Iterator[None]:
    """Make Lightning refuse to fit a segmentation model inside a test that is not marked slow."""
    from lightning.pytorch import Trainer

    from salt.train.module import SegmentationModule

    fit = Trainer.fit

    def guarded(self: Trainer, model: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(model, SegmentationModule):
            training_allowed("Trainer.fit of a SegmentationModule")
        return fit(self, model, *args, **kwargs)

    Trainer.fit = guarded
    yield
    Trainer.fit = fit


def shared_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """``make(folder)`` computed once for the whole test session, also across parallel worker processes.

    The first process to get here runs ``make`` in a folder every worker sees, while the others wait on a file
    lock; ``make`` must be safe to call again when it failed (a later caller retries it) and its result must
    be derivable from the folder alone (it is called again in the waiting processes, finding its work done).
    """
    root = tmp_path_factory.getbasetemp()
    if PARALLEL:  # every worker's base folder sits in the session's one
        root = root.parent
    folder = root / f"shared-{name}"
    folder.mkdir(exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        return make(folder)
