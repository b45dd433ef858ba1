"""metrics.json: what write_results records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from salt.inference.evaluation import ROW_KEY
from salt.inference.outputs import code_version, write_results
from salt.metrics import MetricAccumulator


def _rows() -> list[dict]:
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    accumulator = MetricAccumulator(key=ROW_KEY)
    accumulator.add("a", mask, mask, resolution="model")
    return accumulator.rows


def _info(**extra: object) -> dict:
    return {"task": "eval", "config": {"dataset": {"name": "synthetic"}}, **extra}


def test_write_results_keeps_the_code_version_read_when_the_job_started(tmp_path: Path) -> None:
    started = {"salt": "0.0.1", "commit": "f" * 40, "dirty": False}
    result = write_results(tmp_path, _rows(), _info(code_version=started))
    assert result["code_version"] == started
    assert json.loads((tmp_path / "metrics.json").read_text())["code_version"] == started


def test_write_results_reads_the_code_version_when_none_is_given(tmp_path: Path) -> None:
    result = write_results(tmp_path, _rows(), _info())
    assert result["code_version"] == code_version()
    assert "salt" in result["code_version"]
