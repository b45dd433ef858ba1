"""A run killed with SIGKILL mid-epoch and resumed ends like an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.conftest import ROOT, run_script, tiny_overrides

pytestmark = pytest.mark.slow


def _state(run_dir: Path) -> tuple[int, int]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return state["epoch"], state["global_step"]


def test_kill_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    data = tmp_path / "synthetic"
    common = ("trainer.max_epochs=3", "test=false")
    full = tmp_path / "full"
    proc = run_script("train.py", *tiny_overrides(data, full, *common))
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = tmp_path / "killed"
    env = {"PYTHONPATH": str(ROOT)}
    # 8 training images at batch 2 give 4 steps an epoch: step 6 is the middle of the second epoch.
    proc = run_script(
        "train.py",
        *tiny_overrides(
            data,
            killed,
            *common,
            "+callbacks.killer._target_=tests.train.killer.KillAtStep",
            "+callbacks.killer.step=6",
        ),
        env=env,
    )
    assert proc.returncode == -9
    assert _state(killed) == (0, 4)  # the last checkpoint on disk is the end of the first epoch

    resumed = tmp_path / "resumed"
    proc = run_script(
        "train.py",
        *tiny_overrides(data, resumed, *common, f"ckpt_path={killed / 'checkpoints' / 'last.ckpt'}"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _state(resumed) == _state(full) == (2, 12)
