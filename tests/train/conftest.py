"""Fixtures for end-to-end runs of the root scripts on the tiny model and a small synthetic data set."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import THREADS, shared_once, training_allowed

ROOT = Path(__file__).resolve().parents[2]


def run_script(
    script: str, *overrides: str, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run ``python <script> overrides...`` from the project root; returns the finished process.

    ``train.py`` may only run inside a test marked slow (a refusal that trains nothing is tested in-process).
    """
    if script == "train.py":
        training_allowed(f"train.py {' '.join(overrides)}")
    full_env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "WANDB_MODE": "offline", **(env or {})}
    full_env.pop("SALT_DEBUG", None)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_default_ctrl_c,
    )


def _default_ctrl_c() -> None:
    # A shell that starts a command in the background (`nohup ... &`) makes it ignore SIGINT, and its children
    # inherit that, so a test of Ctrl-C would see no interrupt. The script gets Ctrl-C as from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tiny_overrides(data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    """A two-epoch SALT run of the tiny SAM on a 12-image synthetic set of 64 px."""
    return [
        "model=sam_tiny",
        "dataset=synthetic",
        f"dataset.root={data_root}",
        "dataset.img_size=64",
        "dataset.synthetic.n=12",
        "dataset.synthetic.size=96",
        "trainer=cpu",
        "trainer.max_epochs=2",
        "data.batch_size=2",
        "eval.overlays=2",
        "optim.lr=0.01",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny training run shared by the tests that read its outputs (trained once per session,
    whatever the number of parallel workers; tests only read it)."""

    def make(base: Path) -> Path:
        run_dir = base / "run"
        if not (run_dir / "metrics.json").is_file():
            shutil.rmtree(run_dir, ignore_errors=True)  # what a failed attempt left
            proc = run_script("train.py", *tiny_overrides(base / "synthetic", run_dir))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            (base / "console.txt").write_text(
                proc.stdout + proc.stderr
            )  # what the user saw, for the log tests
        return run_dir

    return shared_once(tmp_path_factory, "smoke", make)


def spy_autocast(module: object, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record ``(device_type, dtype, enabled)`` of every ``torch.autocast`` that ``module`` opens (it still opens
    the real one); returns the list the calls are appended to."""
    used: list[tuple] = []
    real = torch.autocast

    def spy(device_type: str, dtype: torch.dtype | None = None, enabled: bool = True) -> torch.autocast:
        used.append((device_type, dtype, enabled))
        return real(device_type, dtype=dtype, enabled=enabled)

    monkeypatch.setattr(module.torch, "autocast", spy)
    return used
