"""Data-parallel training: 2 CPU processes (gloo) count every test image once, as one process evaluating does."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.train.conftest import run_script, tiny_overrides

pytestmark = pytest.mark.slow


def _rows(metrics: dict) -> list[tuple]:
    keys = ("name", "class", "resolution", "dice", "hd95", "case")
    return sorted(tuple(row[k] for k in keys) for row in metrics["per_case"])


def test_two_processes_match_a_single_process_evaluation(tmp_path: Path) -> None:
    data, run_dir = tmp_path / "synthetic", tmp_path / "ddp"
    overrides = tiny_overrides(
        data,
        run_dir,
        # 15 images: 3 test cases, an odd count, so the distributed sampler repeats one on the second process.
        "dataset.synthetic.n=15",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=2",
        # One image per batch in both runs, so each image's logits come from the same computation.
        "data.batch_size=1",
    )
    proc = run_script("train.py", *overrides, env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (run_dir / "train_ddp_process_1.log").is_file()  # the second process ran in the same run folder

    with open(data / "data_split.csv", newline="") as f:
        test_names = {Path(r["imgs"]).stem for r in csv.DictReader(f) if r["split"] == "test"}
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert len(test_names) % 2 == 1
    assert trained["mean"]["n_cases"] == trained["mean_original"]["n_cases"] == len(test_names)
    assert {row["name"] for row in trained["per_case"]} == test_names
    assert len(trained["per_case"]) == 2 * len(test_names)  # one row per image at each resolution
    assert trained["config"]["trainer"]["devices"] == 2

    eval_dir = tmp_path / "eval"
    proc = run_script(
        "eval.py",
        f"ckpt={run_dir}",
        "split=test",
        "batch_size=1",
        f"hydra.run.dir={eval_dir}",
        env={"OMP_NUM_THREADS": "1"},  # as each training process, so the arithmetic is the same
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((eval_dir / "metrics.json").read_text())
    assert _rows(evaluated) == _rows(trained)
    assert evaluated["mean"] == trained["mean"]
