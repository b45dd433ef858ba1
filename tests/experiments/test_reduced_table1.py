"""End-to-end: the reduced Table 1 sweeps run, and make_tables.py turns their runs into the table and figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.experiments.sweeps import REDUCED_TABLE1_ROWS
from tests.train.conftest import run_script

pytestmark = pytest.mark.slow

DATASETS = ("synthetic_fundus", "synthetic_angio")
SWEEPS = ("table1_reduced", "table1_zero_shot_reduced")


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SAM and zero-shot rows of the reduced Table 1, swept into one folder."""
    base = tmp_path_factory.mktemp("reduced")
    for experiment in SWEEPS:
        proc = run_script(
            "train.py",
            f"experiment={experiment}",
            f"paths.data_dir={base / 'data'}",
            f"hydra.sweep.dir={base / 'runs'}",
            env={"OMP_NUM_THREADS": "1"},
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return base / "runs"


def test_every_run_wrote_its_metrics(runs_dir: Path) -> None:
    found = sorted(runs_dir.rglob("metrics.json"))
    methods = ("salt_l4", "salt_l256", "lora_r4", "lora_r32", "ssam", "zero_shot")
    assert found == sorted(runs_dir / d / m / "seed_0" / "metrics.json" for d in DATASETS for m in methods)


def test_zero_shot_runs_evaluate_without_training(runs_dir: Path) -> None:
    for dataset in DATASETS:
        run = runs_dir / dataset / "zero_shot" / "seed_0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert (metrics["task"], metrics["method"], metrics["epochs"]) == ("eval", "none", 0)
        assert metrics["params"]["trainable"] == 0
        assert metrics["mean"]["n_cases"] > 0
        assert not (run / "checkpoints").exists()


def test_make_tables_builds_the_reduced_table(runs_dir: Path) -> None:
    proc = run_script("scripts/make_tables.py", str(runs_dir), "--csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(proc.stdout))}
    assert (
        set(rows) == REDUCED_TABLE1_ROWS["table1_reduced"] | REDUCED_TABLE1_ROWS["table1_zero_shot_reduced"]
    )
    for label, row in rows.items():
        assert row["seeds"] == "1", label
        for column in (*DATASETS, "avg"):
            dice, hd95 = float(row[f"{column}_dice_mean"]), float(row[f"{column}_hd95_mean"])
            assert 0.0 <= dice <= 1.0 and hd95 >= 0.0, (label, column)


def test_make_tables_writes_the_figures(runs_dir: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    proc = run_script("scripts/make_tables.py", str(runs_dir), "--plots", str(plots))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| SALT (rank 256) [tiny] |" in proc.stdout
    expected = {"dice_vs_params.png", "training_curves.png", *(f"qualitative_{d}.png" for d in DATASETS)}
    assert {p.name for p in plots.glob("*.png")} == expected
    assert all(p.stat().st_size > 0 for p in plots.iterdir())
