"""``data.train_splits``: a final fit on the train and val splits together, with validation off and the last
epoch tested; anything but [train] or [train, val] is refused in one line."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from salt.data.layout import SPLIT_CSV
from salt.errors import ConfigError
from salt.inference.evaluate import evaluate
from salt.train.run import train
from tests.experiments.sweeps import compose_run, hydra_configs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _names(root: Path, *splits: str) -> list[str]:
    """Image stems of ``splits`` in data_split.csv's order, read with the csv module."""
    with open(root / SPLIT_CSV, newline="") as handle:
        return [
            Path(row["imgs"]).name.split(".")[0] for row in csv.DictReader(handle) if row["split"] in splits
        ]


@pytest.mark.parametrize("splits", ["[train,test]", "[val]", "[]"])
def test_train_splits_other_than_train_or_train_val_are_refused(tmp_path: Path, splits: str) -> None:
    with hydra_configs():
        cfg = compose_run("reduced", [f"data.train_splits={splits}"], output_dir=str(tmp_path / "run"))
        del cfg["hydra"]
        with pytest.raises(ConfigError, match=r"^data\.train_splits=.* must be \[train\] or \[train, val\]"):
            train(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_final_fit_trains_on_val_validates_nothing_and_tests_the_last_epoch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    overrides = [
        f"paths.data_dir={tmp_path / 'data'}",
        "data.train_splits=[train,val]",
        "trainer.max_epochs=2",
    ]
    with (
        hydra_configs(),
        caplog.at_level("INFO", logger="salt"),
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        cfg = compose_run("reduced", overrides, output_dir=str(run))
        del cfg["hydra"]
        result = train(cfg)
    assert not [w for w in seen if "monitor" in str(w.message)]  # no checkpoint waits for a validation metric
    root = Path(cfg.dataset.root)
    n_fit = len(_names(root, "train", "val"))
    assert f"split train+val: {n_fit} items" in caplog.text
    assert "split val:" not in caplog.text  # the val split alone is never built
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["trainer"]["limit_val_batches"] == 0  # the reduced experiment's 1 is overridden, and said
    assert recorded["data"]["train_splits"] == ["train", "val"]
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "step", "train/loss"]
    assert not (run / "checkpoints" / "best.ckpt").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == result
    assert Path(metrics["checkpoint"]) == run / "checkpoints" / "last.ckpt"
    assert metrics["best_val"] is None
    assert metrics["epochs"] == 2
    # eval.py on images the run trained on says so; on the test split it does not
    for split in ("val", "test"):
        caplog.clear()
        with (
            initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"),
            caplog.at_level("INFO", logger="salt"),
        ):
            eval_cfg = compose("eval", overrides=[f"ckpt={run}", f"split={split}", "device=cpu"])
            eval_cfg.paths.output_dir = str(tmp_path / f"eval_{split}")
            evaluate(eval_cfg)
        warned = [
            r.getMessage()
            for r in caplog.records
            if r.levelname == "WARNING" and "trained on" in r.getMessage()
        ]
        assert len(warned) == (split == "val"), warned
