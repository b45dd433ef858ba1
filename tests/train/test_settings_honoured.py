"""What a user sets is what runs: a resumed run keeps its checkpoint's settings, a run folder resumes from its
last.ckpt, thresholds outside (0, 1), malformed pixel spacings and prompt options the mode does not read are
refused in one line, and a pixel spacing gives HD95 in mm at the original resolution."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from salt.cli import run_job
from salt.errors import ConfigError
from salt.experiments import compose_run, hydra_configs
from salt.export.job import export
from salt.inference.evaluate import evaluate
from salt.inference.predict import predict
from salt.train.checks import check_train_config
from salt.train.module import SegmentationModule
from salt.train.resume import check_resume
from salt.train.run import train
from tests.train.conftest import run_script, tiny_overrides


def _train_cfg(tmp_path: Path, overrides: list[str], run_dir: Path) -> DictConfig:
    """``train.py experiment=reduced overrides`` as the job receives it (inside :func:`hydra_configs`)."""
    cfg = compose_run("reduced", [f"paths.data_dir={tmp_path / 'data'}", *overrides], str(run_dir))
    del cfg["hydra"]
    return cfg


def _job_cfg(config: str, overrides: list[str], run_dir: Path) -> DictConfig:
    """``<config>.py overrides`` (eval, predict, export) as the job receives it (inside :func:`hydra_configs`)."""
    cfg = compose(config, overrides=overrides, return_hydra_config=True)
    OmegaConf.set_readonly(cfg, False)
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    del cfg["hydra"]
    return cfg


def _refused(job, cfg: DictConfig, run_dir: Path, caplog: pytest.LogCaptureFixture) -> str:
    """Run ``job(cfg)`` as the scripts do; the one error line it logs (the run folder must be gone)."""
    run_dir.mkdir()
    (run_dir / "job.log").write_text("")  # what Hydra writes before the job starts
    with caplog.at_level(logging.ERROR, logger="salt"), pytest.raises(SystemExit) as stop:
        run_job(job, cfg)
    assert stop.value.code == 1
    assert not run_dir.exists()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    return line


def _refused_train(tmp_path: Path, overrides: list[str], caplog: pytest.LogCaptureFixture) -> str:
    with hydra_configs():
        cfg = _train_cfg(tmp_path, overrides, tmp_path / "run")
        return _refused(train, cfg, tmp_path / "run", caplog)


def _untrained_run(tmp_path: Path, *overrides: str) -> Path:
    """A run folder whose checkpoints/last.ckpt holds the reduced SALT run as built (nothing trained)."""
    run = tmp_path / "first"
    with hydra_configs():
        recorded = OmegaConf.to_container(_train_cfg(tmp_path, list(overrides), run), resolve=True)
    module = SegmentationModule(recorded)
    keep = module.trainable_names()
    state = {
        "hyper_parameters": {"cfg": recorded},
        "state_dict": {k: v for k, v in module.state_dict().items() if k in keep},
        "salt": {"base_fingerprint": module.base_fingerprint},
    }
    (run / "checkpoints").mkdir(parents=True)
    torch.save(state, run / "checkpoints" / "last.ckpt")
    return run


# ------------------------------------------------------------------------------------------------ resuming
def test_resume_with_changed_optimiser_or_schedule_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    last = _untrained_run(tmp_path) / "checkpoints" / "last.ckpt"
    line = _refused_train(tmp_path, [f"ckpt_path={last}", "optim.lr=1e-5", "trainer.max_epochs=2"], caplog)
    assert line == (
        f"error: ckpt_path={last}: a resumed run continues with the settings it was trained with; changed: "
        "optim.lr: 0.003 -> 1e-05; trainer.max_epochs: 1 -> 2. Resume with the run's values or start a new run"
    )


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        (["schedule=constant"], "schedule: {'_target_': 'salt.train.optim.warmup_cosine', "),
        (["optim.weight_decay=0.1"], "optim.weight_decay: 0.01 -> 0.1"),
        (["data.batch_size=4"], "data.batch_size: 2 -> 4"),
        (["seed=7"], "seed: 42 -> 7"),
        (["loss.gamma=2.0"], "loss.gamma: 3.0 -> 2.0"),
        (["dataset.augment=null"], "dataset.augment: {"),
    ],
)
def test_resume_names_each_changed_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overrides: list[str], changed: str
) -> None:
    last = _untrained_run(tmp_path) / "checkpoints" / "last.ckpt"
    line = _refused_train(tmp_path, [f"ckpt_path={last}", *overrides], caplog)
    assert f"changed: {changed}" in line


def test_resume_may_change_where_files_go_and_what_is_printed(tmp_path: Path) -> None:
    run = _untrained_run(tmp_path, "+callbacks.killer._target_=tests.train.killer.Kill")
    last = run / "checkpoints" / "last.ckpt"
    harmless = [
        f"ckpt_path={last}",
        "data.num_workers=1",
        "callbacks.progress_bar.refresh_rate=0",
        "eval.overlays=0",
        f"logger.csv.save_dir={tmp_path / 'logs'}",
        "zero_shot_test=false",
    ]
    with hydra_configs():
        plain = OmegaConf.to_container(_train_cfg(tmp_path, harmless, tmp_path / "second"), resolve=True)
    assert check_resume(plain) == last


def test_a_run_folder_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    run = _untrained_run(tmp_path)
    with hydra_configs():
        plain = OmegaConf.to_container(
            _train_cfg(tmp_path, [f"ckpt_path={run}"], tmp_path / "r"), resolve=True
        )
    assert check_resume(plain) == run / "checkpoints" / "last.ckpt"
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(
        ConfigError, match=re.escape(f"ckpt_path={run}: the folder holds no checkpoints/last.ckpt")
    ):
        check_resume(plain)


@pytest.mark.slow
def test_resume_from_a_run_folder_records_the_checkpoint_it_resumed(smoke_run: Path, tmp_path: Path) -> None:
    data = Path(json.loads((smoke_run / "metrics.json").read_text())["config"]["dataset"]["root"])
    resumed = tmp_path / "resumed"
    proc = run_script(
        "train.py", *tiny_overrides(data, resumed, f"ckpt_path={smoke_run}", "zero_shot_test=false")
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = str(smoke_run / "checkpoints" / "last.ckpt")
    assert OmegaConf.load(resumed / "config.yaml").ckpt_path == last
    assert json.loads((resumed / "metrics.json").read_text())["config"]["ckpt_path"] == last
    changed = tmp_path / "changed"
    proc = run_script(
        "train.py",
        *tiny_overrides(data, changed, f"ckpt_path={smoke_run}", "optim.lr=1e-5", "trainer.max_epochs=3"),
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert "changed: optim.lr: 0.01 -> 1e-05; trainer.max_epochs: 2 -> 3." in line
    assert not changed.exists()


# ---------------------------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("value", ["1.5", "-1", "0", "1"])
def test_a_training_threshold_outside_0_1_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    line = _refused_train(tmp_path, [f"eval.threshold={value}"], caplog)
    assert line == f"error: eval.threshold={value}: a probability threshold lies strictly between 0 and 1"


@pytest.mark.parametrize(
    ("job", "config", "overrides", "key"),
    [
        (evaluate, "eval", ["ckpt=nowhere", "eval.threshold=1.5"], "eval.threshold=1.5"),
        (evaluate, "eval", ["ckpt=nowhere", "eval.threshold=-1"], "eval.threshold=-1"),
        (
            predict,
            "predict",
            ["ckpt=nowhere", "input=nowhere", "output=out", "threshold=1.5"],
            "threshold=1.5",
        ),
        (export, "export", ["ckpt=nowhere", "output=out/model.onnx", "threshold=0"], "threshold=0"),
    ],
)
def test_eval_predict_export_refuse_a_threshold_outside_0_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, job, config: str, overrides: list[str], key: str
) -> None:
    overrides = [o.replace("=out", f"={tmp_path / 'out'}") for o in overrides]
    with hydra_configs():
        cfg = _job_cfg(config, overrides, tmp_path / "run")
        line = _refused(job, cfg, tmp_path / "run", caplog)
    assert line == f"error: {key}: a probability threshold lies strictly between 0 and 1"
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------- spacing
@pytest.mark.parametrize("value", ["[-1]", "[0.5,0]", "[0.5,-0.5]", "[0.5,0.5,1]", "abc", "0.5"])
def test_a_malformed_pixel_spacing_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    line = _refused_train(tmp_path, [f"dataset.spacing={value}"], caplog)
    assert line.startswith("error: dataset.spacing=")
    assert line.endswith(
        ": expected the pixel size [row, col] in mm, two numbers > 0, or null (distances in pixels)"
    )


def _evaluated(run: Path, root: str, out: Path, spacing: str, caplog: pytest.LogCaptureFixture) -> dict:
    """``eval.py ckpt=run`` on the run's data set with ``dataset.spacing=spacing``; metrics.json's content."""
    overrides = [
        f"ckpt={run}",
        "dataset=synthetic",
        f"dataset.root={root}",
        "dataset.img_size=64",
        f"dataset.spacing={spacing}",
        "eval.overlays=0",
    ]
    with hydra_configs():
        cfg = _job_cfg("eval", overrides, out)
        with caplog.at_level(logging.INFO, logger="salt"):
            return run_job(evaluate, cfg)


def test_spacing_gives_hd95_in_mm_at_the_original_resolution(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _untrained_run(tmp_path)
    root = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["hyper_parameters"]["cfg"][
        "dataset"
    ]["root"]
    pixels = _evaluated(run, root, tmp_path / "px", "null", caplog)
    caplog.clear()
    mm = _evaluated(run, root, tmp_path / "mm", "[0.5,0.5]", caplog)
    assert (
        pixels["mean_original"]["hd95_unit"] == pixels["mean"]["hd95_unit"] == mm["mean"]["hd95_unit"] == "px"
    )
    assert mm["mean_original"]["hd95_unit"] == "mm"
    # A distance scales with an isotropic pixel size; the model's resolution (the paper's pixels) is untouched.
    assert mm["mean_original"]["hd95"] == pytest.approx(0.5 * pixels["mean_original"]["hd95"], rel=1e-9)
    assert mm["mean"]["hd95"] == pixels["mean"]["hd95"]
    written = json.loads((tmp_path / "mm" / "metrics.json").read_text())
    assert written["mean_original"]["hd95_unit"] == "mm" and written["mean"]["hd95_unit"] == "px"
    assert {r["hd95_unit"] for r in written["per_case"] if r["resolution"] == "original"} == {"mm"}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("test:")]
    assert len(lines) == 2
    assert re.search(r"HD95 [\d.]+ px over \d+ cases \(model resolution\)$", lines[0])
    assert re.search(r"HD95 [\d.]+ mm over \d+ cases \(original resolution\)$", lines[1])


# ------------------------------------------------------------------------------------------ prompt options
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["prompt.box_jitter=5"],
            "prompt.box_jitter=5 does nothing with prompt.mode=class: only box, class+box",
        ),
        (["prompt.eval_box_jitter=2"], "prompt.eval_box_jitter=2 does nothing with prompt.mode=class"),
        (["prompt.seed=3"], "prompt.seed=3 does nothing with prompt.mode=class"),
        (
            ["prompt=box", "prompt.points=3"],
            "prompt.points=3 does nothing with prompt.mode=box: only point, class+point",
        ),
        (["prompt=point", "prompt.box_jitter=5"], "prompt.box_jitter=5 does nothing with prompt.mode=point"),
    ],
)
def test_an_option_the_prompt_mode_does_not_read_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overrides: list[str], expected: str
) -> None:
    line = _refused_train(tmp_path, overrides, caplog)
    assert line.startswith(f"error: {expected}") and line.endswith(
        "drop the setting or choose one of those modes"
    )


@pytest.mark.parametrize(
    "overrides",
    [["prompt=box", "prompt.box_jitter=3", "prompt.seed=2"], ["prompt=class+point", "prompt.points=2"], []],
)
def test_the_options_a_prompt_mode_reads_are_accepted(tmp_path: Path, overrides: list[str]) -> None:
    with hydra_configs():
        check_train_config(
            OmegaConf.to_container(_train_cfg(tmp_path, overrides, tmp_path / "r"), resolve=True)
        )


def test_eval_refuses_a_prompt_option_the_runs_mode_does_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _untrained_run(tmp_path)  # prompt=class
    with hydra_configs():
        cfg = _job_cfg("eval", [f"ckpt={run}", "prompt.eval_box_jitter=5"], tmp_path / "eval")
        line = _refused(evaluate, cfg, tmp_path / "eval", caplog)
    assert line.startswith("error: prompt.eval_box_jitter=5 does nothing with prompt.mode=class")
