"""A run stopped by a signal and resumed from last.ckpt ends exactly like an uninterrupted one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests.train.conftest import ROOT, run_script, tiny_overrides

pytestmark = pytest.mark.slow

# 8 training images at batch 2 give 4 steps an epoch; three epochs end at (epoch 2, step 12).
COMMON = (
    "trainer.max_epochs=3",
    "test=false",
    "trainer.deterministic=true",
    "callbacks.progress_bar.refresh_rate=0",
)
KILLER = "+callbacks.killer._target_=tests.train.killer.Kill"
# (where the signal lands, the killer's settings, the (epoch, step) of last.ckpt it leaves)
CASES = {
    "mid_epoch": (["+callbacks.killer.at=step", "+callbacks.killer.step=6"], (0, 4)),
    "mid_validation": (["+callbacks.killer.at=validation", "+callbacks.killer.epoch=1"], (0, 4)),
    "after_checkpoint": (["+callbacks.killer.at=epoch_end", "+callbacks.killer.epoch=1"], (1, 8)),
}


def _last(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def _history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _assert_same_history(got: list[dict], want: list[dict]) -> None:
    assert [sorted(r) for r in got] == [sorted(r) for r in want]
    for row, expected in zip(got, want):
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, abs=1e-6), (row["epoch"], key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The uninterrupted run the resumed ones are compared with, and its data set."""
    base = tmp_path_factory.mktemp("resume")
    data, run = base / "synthetic", base / "full"
    proc = run_script("train.py", *tiny_overrides(data, run, *COMMON))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data, run


def _killed(data: Path, run: Path, killer: list[str], sig: str) -> None:
    overrides = tiny_overrides(data, run, *COMMON, KILLER, *killer, f"+callbacks.killer.sig={sig}")
    proc = run_script("train.py", *overrides, env={"PYTHONPATH": str(ROOT)})
    if sig == "SIGKILL":
        assert proc.returncode == -9, proc.stderr[-3000:]
    else:  # Lightning shuts down after Ctrl-C and exits with status 1
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "that epoch is not recorded; resume with ckpt_path=" in proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES)
def test_sigkill_and_resume_from_last_matches_uninterrupted(
    reference: tuple[Path, Path], tmp_path: Path, case: str
) -> None:
    data, full = reference
    killer, left = CASES[case]
    killed = tmp_path / "killed"
    _killed(data, killed, killer, "SIGKILL")
    state = _last(killed)
    assert (state["epoch"], state["global_step"]) == left
    # last.ckpt holds every finished epoch's history row, and nothing of the unfinished one.
    assert [row["epoch"] for row in state["salt"]["history"]] == list(range(left[0] + 1))
    _assert_same_history(_history(killed), _history(full)[: left[0] + 1])

    resumed = tmp_path / "resumed"
    last = killed / "checkpoints" / "last.ckpt"
    proc = run_script("train.py", *tiny_overrides(data, resumed, *COMMON, f"ckpt_path={last}"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = _last(resumed), _last(full)
    assert (got["epoch"], got["global_step"]) == (want["epoch"], want["global_step"]) == (2, 12)
    _assert_same_history(_history(resumed), _history(full))
    _assert_same_history(got["salt"]["history"], want["salt"]["history"])
    assert set(got["state_dict"]) == set(want["state_dict"])
    for key, tensor in want["state_dict"].items():
        assert (got["state_dict"][key] - tensor).abs().max() <= 1e-6, key


def test_ctrl_c_during_validation_records_no_epoch(reference: tuple[Path, Path], tmp_path: Path) -> None:
    data, full = reference
    killed = tmp_path / "interrupted"
    _killed(data, killed, CASES["mid_validation"][0], "SIGINT")
    state = _last(killed)
    assert (state["epoch"], state["global_step"]) == (0, 4)
    assert [row["epoch"] for row in state["salt"]["history"]] == [0]
    _assert_same_history(_history(killed), _history(full)[:1])
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
