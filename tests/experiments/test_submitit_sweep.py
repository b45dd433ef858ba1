"""A sweep through hydra/launcher=submitit_local: every job runs as its own process into its run folder, the
runs tabulate, a re-launch runs nothing finished, and a failed job is reported while the others complete."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.train.conftest import run_script

pytestmark = pytest.mark.slow

# 2 methods x 2 seeds of the tiny SAM on 64 px synthetic vessels, one epoch of two batches (reduced.yaml).
SWEEP = ("experiment=reduced", "+method=salt_l4,lora_r4", "seed=0,1")
ROWS = {"SALT (rank 4) [tiny]", "LoRA (rank 4) [tiny]"}


def launch(base: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python train.py -m ... hydra/launcher=submitit_local`` into ``base/runs``, data in ``base/data``."""
    return run_script(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        f"paths.data_dir={base / 'data'}",
        f"hydra.sweep.dir={base / 'runs'}",
        *overrides,
        env={"OMP_NUM_THREADS": "1"},
        timeout=900,
    )


def _jobs_started(runs: Path) -> int:
    return len(list(runs.glob(".submitit/*/*_submitted.pkl")))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("submitit")
    proc = launch(base, *SWEEP)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return base


def test_every_job_wrote_its_run_folder(sweep: Path) -> None:
    runs = sweep / "runs"
    found = {}
    for num in range(4):
        metrics = json.loads((runs / str(num) / "metrics.json").read_text())
        found[num] = (metrics["method"], metrics["seed"])
        assert metrics["epochs"] == 1 and metrics["model"] == "tiny"
        assert (runs / str(num) / "checkpoints" / "best.ckpt").is_file()
    # Hydra's order: the last axis varies fastest.
    assert found == {0: ("salt", 0), 1: ("salt", 1), 2: ("lora", 0), 3: ("lora", 1)}
    assert _jobs_started(runs) == 4  # each job was a submitit job of its own


def test_the_runs_tabulate(sweep: Path) -> None:
    proc = run_script("scripts/make_tables.py", str(sweep / "runs"), "--csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(proc.stdout))}
    assert set(rows) == ROWS
    assert all(row["seeds"] == "2" for row in rows.values())


def test_relaunch_runs_nothing_new(sweep: Path) -> None:
    runs = sweep / "runs"
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")}
    proc = launch(sweep, *SWEEP)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    for num in range(4):
        assert f"skipped #{num}: {runs / str(num)} holds metrics.json" in output
    assert "0 job(s) to run, 4 already done" in output
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("metrics.json")} == before
    assert _jobs_started(runs) == 4


def test_another_sweep_into_the_folder_is_refused(sweep: Path) -> None:
    proc = launch(sweep, "experiment=reduced", "+method=ssam", "seed=0")
    assert proc.returncode == 1
    assert "holds a finished run of other overrides" in proc.stdout + proc.stderr
    assert _jobs_started(sweep / "runs") == 4


def test_a_failed_job_is_reported_and_the_others_complete(tmp_path: Path) -> None:
    # fit=false tests the model as built: the cheapest complete run. seed=x fails inside its job.
    proc = launch(tmp_path, "experiment=reduced", "fit=false", "seed=0,x")
    output = proc.stdout + proc.stderr
    runs = tmp_path / "runs"
    assert proc.returncode == 1, output[-3000:]
    assert (runs / "0" / "metrics.json").is_file()
    assert not (runs / "1" / "metrics.json").exists()
    failed = re.findall(r"job #(\d+) failed: run folder (\S+), logs (\S+) and (\S+): (.*)", output)
    assert [(num, folder) for num, folder, *_ in failed] == [("1", str(runs / "1"))]
    _, _, stdout_log, stderr_log, reason = failed[0]
    assert Path(stdout_log).is_file()
    assert "ValueError: invalid literal for int() with base 10: 'x'" in Path(stderr_log).read_text()
    assert reason == "invalid literal for int() with base 10: 'x'"
    assert "error: 1 of 2 job(s) failed (#1)" in output and "Traceback" not in output

    # A re-launch runs the missing job only, as #1 into its own folder again.
    proc = launch(tmp_path, "experiment=reduced", "fit=false", "seed=0,x")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"skipped #0: {runs / '0'} holds metrics.json" in output
    assert f"job #1 failed: run folder {runs / '1'}," in output
    assert "1 job(s) to run, 1 already done" in output

    # skip_done=false runs the finished job again.
    first = (runs / "0" / "metrics.json").stat().st_mtime_ns
    proc = launch(tmp_path, "experiment=reduced", "fit=false", "seed=0", "hydra.launcher.skip_done=false")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (runs / "0" / "metrics.json").stat().st_mtime_ns != first
