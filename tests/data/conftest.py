"""Fixtures: a small synthetic data set in the canonical layout, shared read-only or copied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from salt.data.synthetic import generate, make_style


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-image synthetic data set of 64 px with FOV masks (read-only: copy it before changing it)."""
    root = tmp_path_factory.mktemp("synthetic") / "synthetic"
    generate(root, n=10, size=64, seed=3, style=make_style())
    return root


@pytest.fixture
def synthetic_copy(synthetic_root: Path, tmp_path: Path) -> Path:
    """A private, writable copy of ``synthetic_root``."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "copy"))
