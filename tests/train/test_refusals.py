"""Runs refused in one line naming the key and value, with exit status 1 and no run folder left behind."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hydra import compose
from omegaconf import OmegaConf

from salt.cli import RunFolderCheck, run_job
from salt.errors import ConfigError
from salt.experiments import compose_run, hydra_configs
from salt.inference.loading import check_same_network
from salt.train.run import train
from tests.train.conftest import run_script, tiny_overrides


def _refused(tmp_path: Path, overrides: list[str], caplog: pytest.LogCaptureFixture) -> str:
    """Run ``train.py experiment=reduced overrides`` in this process; the one logged error line."""
    run_dir = tmp_path / "run"
    with hydra_configs():
        cfg = compose_run("reduced", [f"paths.data_dir={tmp_path / 'data'}", *overrides], str(run_dir))
        del cfg["hydra"]  # the job gets its config without it, as from Hydra
        run_dir.mkdir()
        (run_dir / "train.log").write_text("")  # what Hydra writes before the job starts
        with caplog.at_level(logging.ERROR, logger="salt"), pytest.raises(SystemExit) as stop:
            run_job(train, cfg)
    assert stop.value.code == 1
    assert not run_dir.exists()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    return line


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 with fit=true trains nothing"),
        (["data.batch_size=0"], "data.batch_size=0 must be an int >= 1"),
        (["data.num_workers=-1"], "data.num_workers=-1 must be an int >= 0"),
    ],
)
def test_values_that_train_nothing_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overrides: list[str], expected: str
) -> None:
    assert expected in _refused(tmp_path, overrides, caplog)


def test_an_output_folder_that_cannot_be_made_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = _refused(tmp_path, [f"logger.csv.save_dir={blocker / 'logs'}"], caplog)
    assert (
        line
        == f"error: logger.csv.save_dir: the folder {blocker / 'logs'} cannot be created ({blocker} is not a folder)"
    )


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_run_folder_that_cannot_be_made_is_refused_before_hydra_makes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with hydra_configs():
        cfg = compose_run("reduced", [f"paths.log_dir={blocker / 'outputs'}"])
        hook = RunFolderCheck().on_run_start if mode == "run" else RunFolderCheck().on_multirun_start
        with caplog.at_level(logging.ERROR, logger="salt"), pytest.raises(SystemExit) as stop:
            hook(config=cfg, config_name="train")
    assert stop.value.code == 1
    assert f"paths.log_dir: the folder {blocker / 'outputs'}" in caplog.text
    assert f"({blocker} is not a folder)" in caplog.text


def test_only_user_errors_become_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / "run"

    def bug(cfg: object) -> None:
        run_dir.mkdir()
        (run_dir / "train.log").write_text("")
        raise ValueError("a bug deep in the code")

    def mistake(cfg: object) -> None:
        raise ConfigError("optim.name='sgd' is not supported")

    with hydra_configs():
        cfg = compose_run("reduced", [], str(run_dir))
        with pytest.raises(ValueError, match="a bug deep in the code"):
            run_job(bug, cfg)
        assert (run_dir / "train.log").is_file()  # kept beside the traceback
        with caplog.at_level(logging.ERROR, logger="salt"), pytest.raises(SystemExit):
            run_job(mistake, cfg)
    assert "error: optim.name='sgd' is not supported" in caplog.text
    assert not run_dir.exists()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["below_a_file", "under_proc"])
def test_unwritable_log_dir_from_the_command_line(tmp_path: Path, where: str) -> None:
    if where == "below_a_file":
        (tmp_path / "a_file").write_text("")
        log_dir = tmp_path / "a_file" / "outputs"
    else:
        log_dir = Path("/proc/salt-test/outputs")
    proc = run_script("train.py", "experiment=reduced", f"paths.log_dir={log_dir}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-2000:]
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert "paths.log_dir: the folder" in line and str(log_dir) in line


@pytest.mark.slow
def test_batch_size_zero_from_the_command_line_leaves_no_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_script("train.py", *tiny_overrides(tmp_path / "synthetic", run_dir, "data.batch_size=0"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    assert "error: data.batch_size=0 must be an int >= 1" in output
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model=sam_vit_b"],
            "model.variant='vit_b' contradicts ckpt=run, trained with model.variant='tiny'",
        ),
        (
            ["peft=lora"],
            "peft._target_='salt.peft.lora.Lora' contradicts ckpt=run, trained with peft._target_='salt.peft.salt.Salt'",
        ),
        (
            ["peft=salt", "peft.lora_rank=8"],
            "peft.lora_rank=8 contradicts ckpt=run, trained with peft.lora_rank=4",
        ),
        (
            ["dataset=drive", "dataset.num_classes=2"],
            "dataset.num_classes=2 contradicts ckpt=run, trained with",
        ),
        (
            ["model=medsam_lite"],
            "model.variant='medsam_lite' contradicts ckpt=run, trained with model.variant='tiny'",
        ),
        (
            ["model=sam_tiny", "peft=salt", "dataset=drive"],
            None,
        ),  # the run's own settings: no contradiction
    ],
)
def test_eval_settings_that_contradict_the_run(overrides: list[str], expected: str | None) -> None:
    with hydra_configs():
        run_cfg = compose_run("reduced", ["peft.lora_rank=4"])
        del run_cfg["hydra"]
        recorded = OmegaConf.to_container(run_cfg, resolve=True)
        given = compose("eval", ["ckpt=run", *overrides])
        chosen = "name" in (given.get("dataset") or {})  # as evaluate() reads it
        dataset = OmegaConf.to_container(given.dataset, resolve=True) if chosen else None
        groups = {"model": given.get("model"), "peft": given.get("peft"), "dataset": dataset}
        if expected is None:
            check_same_network(groups, recorded, "ckpt=run")
        else:
            with pytest.raises(ConfigError, match=re.escape(expected)):
                check_same_network(groups, recorded, "ckpt=run")
