"""Run modes that train.py refuses with a one-line reason before any work is done."""

from __future__ import annotations

from pathlib import Path

import pytest

from salt.errors import ConfigError
from salt.train.run import train
from tests.experiments.sweeps import compose_run, hydra_configs


def test_ddp_is_refused_inside_a_multirun(tmp_path: Path) -> None:
    # Lightning would start the other process with the same command line, i.e. the whole sweep again.
    overrides = [
        f"paths.data_dir={tmp_path / 'data'}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
    ]
    with hydra_configs():
        cfg = compose_run("table1_reduced", overrides, output_dir=str(tmp_path / "run"))
        with pytest.raises(ConfigError, match="multirun"):
            train(cfg)
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["fit=false", "test=false"], "nothing to do"), (["fit=false", "ckpt_path=x.ckpt"], "eval.py")],
)
def test_no_fit_needs_a_test_and_no_checkpoint(tmp_path: Path, overrides: list[str], message: str) -> None:
    with hydra_configs():
        cfg = compose_run("reduced", overrides, output_dir=str(tmp_path / "run"))
        with pytest.raises(ConfigError, match=message):
            train(cfg)
    assert not (tmp_path / "run").exists()
