"""End-to-end: the reduced PEFT field trains every method, peft's included, and make_tables.py tabulates it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.train.conftest import run_script

pytestmark = pytest.mark.slow

METHODS = ("salt_l4", "salt_l256", "lora_r4", "ssam", "dora", "pissa", "adalora", "vera", "osf")
ROWS = {
    "SALT (rank 4) [tiny]",
    "SALT (rank 256) [tiny]",
    "LoRA (rank 4) [tiny]",
    "S-SAM [tiny]",
    "DoRA (rank 4) [tiny]",
    "PiSSA (rank 4) [tiny]",
    "AdaLoRA (rank 4) [tiny]",
    "VeRA (rank 256) [tiny]",
    "OSF [tiny]",
}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("peft_field")
    proc = run_script(
        "train.py",
        "experiment=peft_field_reduced",
        f"paths.data_dir={base / 'data'}",
        f"hydra.sweep.dir={base / 'runs'}",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return base / "runs" / "synthetic_fundus"


def test_every_method_trained_and_saved_its_adapter(runs_dir: Path) -> None:
    for method in METHODS:
        run = runs_dir / method / "seed_0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["epochs"] == 1 and metrics["global_step"] == 2, method
        adapter = json.loads((run / "adapter.json").read_text())
        counted = sum(sum(per_type.values()) for per_type in metrics["params"]["adapters"].values())
        assert counted == metrics["params"]["groups"]["adapter"]["trainable"] > 0, method
        assert adapter["method"] == (
            "hf" if method in ("dora", "pissa", "adalora", "vera", "osf") else metrics["method"]
        )
        assert (run / "checkpoints" / "best.ckpt").is_file(), method


def test_make_tables_has_a_row_per_method(runs_dir: Path) -> None:
    proc = run_script("scripts/make_tables.py", str(runs_dir.parent), "--csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(proc.stdout))}
    assert set(rows) == ROWS
    for label, row in rows.items():
        assert 0.0 <= float(row["synthetic_fundus_dice_mean"]) <= 1.0, label
