"""eval.py's precision and test-time-flip options: bf16 autocast is what runs and is recorded; values that cannot
run are refused in one line without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from salt.inference import evaluate as evaluate_module
from tests.train.conftest import run_script, spy_autocast

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _evaluate(run: Path, out: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt={run}", "split=test", "device=cpu", *overrides])
    cfg.paths.output_dir = str(out)
    return evaluate_module.evaluate(cfg)


def test_bf16_evaluation_runs_under_autocast_and_is_recorded(
    smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = spy_autocast(evaluate_module, monkeypatch)
    fp32 = _evaluate(smoke_run, tmp_path / "fp32")
    assert used and all(not enabled for _, _, enabled in used)
    used.clear()
    bf16 = _evaluate(smoke_run, tmp_path / "bf16", "precision=bf16-mixed")
    assert used and all(u == ("cpu", torch.bfloat16, True) for u in used)
    recorded = json.loads((tmp_path / "bf16" / "metrics.json").read_text())["config"]["eval"]["precision"]
    assert recorded == "bf16-mixed"
    assert bf16["mean"]["dice"] == pytest.approx(fp32["mean"]["dice"], abs=0.02)


@pytest.mark.parametrize(
    ("override", "wanted"),
    [
        ("precision=fp8", "precision='fp8': expected one of 32-true, bf16-mixed, 16-mixed"),
        (
            "eval.tta=mirror",
            "eval.tta='mirror': expected null (the run's patch.tta) or one of none, hflip, flips",
        ),
        (
            "eval.tta=flips",
            "eval.tta=flips: test-time flips belong to the sliding window of a patch-mode run",
        ),
    ],
)
def test_eval_options_that_cannot_run_are_one_line_and_write_nothing(
    smoke_run: Path, tmp_path: Path, override: str, wanted: str
) -> None:
    out = tmp_path / "out"
    proc = run_script("eval.py", f"ckpt={smoke_run}", "device=cpu", override, f"hydra.run.dir={out}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert wanted in line
    assert not (out / "metrics.json").exists()
