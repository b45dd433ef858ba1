"""scripts/count_params.py: one row per network, counts equal to a model built and injected on the CPU, each
backbone built once, progress on stderr."""

from __future__ import annotations

import contextlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from salt.model import build_sam, parameter_summary, set_trainable
from salt.peft import inject_from_config

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "count_params.py"
TINY_SIZE = 64


@pytest.fixture(scope="module")
def count_params() -> ModuleType:
    spec = importlib.util.spec_from_file_location("count_params", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_rows(count_params: ModuleType) -> dict[str, dict]:
    return {
        choice: count_params.composed("sam_tiny", choice, TINY_SIZE) for choice in count_params.variants()
    }


def _counted_on_the_cpu(cfg: dict) -> dict:
    """The plain way: a real model on the CPU, the method injected as train.py does."""
    net = build_sam(cfg["model"]["variant"], img_size=TINY_SIZE)
    set_trainable(net, cfg["model"]["trainable"])
    inject_from_config(net, cfg["peft"])
    return parameter_summary(net)


@pytest.mark.parametrize("choice", ["+method=adalora", "+method=pissa", "+method=salt_l4", "+method=full"])
def test_counts_equal_a_model_built_on_the_cpu(
    count_params: ModuleType, tiny_rows: dict[str, dict], choice: str
) -> None:
    cfg = tiny_rows[choice]
    _, summary = count_params.count_row(cfg, TINY_SIZE)
    expected = _counted_on_the_cpu(cfg)
    assert (summary["trainable"], summary["total_base"]) == (expected["trainable"], expected["total_base"])


def test_each_backbone_is_built_once(
    count_params: ModuleType, tiny_rows: dict[str, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = []

    def counted_build(*args: object, **kwargs: object) -> object:
        builds.append(args)
        return build_sam(*args, **kwargs)

    monkeypatch.setattr(count_params, "build_sam", counted_build)
    if hasattr(count_params, "Backbones"):  # a fresh cache, as a new process has
        monkeypatch.setattr(count_params, "BACKBONES", count_params.Backbones())
    counted = 0
    for cfg in tiny_rows.values():
        with contextlib.suppress(ValueError):  # a rank the tiny SAM cannot take
            count_params.count_row(cfg, TINY_SIZE)
        counted += 1
    assert counted > 10
    assert len(builds) <= 2  # on the meta device, and once on the CPU for the methods that read weights


@pytest.mark.slow
def test_every_network_is_one_row_with_progress_on_stderr() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "sam_tiny"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = [re.match(r"^(.+?)\s+([\d,]+|-)\s", line).group(1) for line in proc.stdout.splitlines()[2:-1]]
    assert len(labels) == len(set(labels)), sorted(labels)
    assert "Full fine-tuning" in labels and "Decoder-only" in labels
    # The bar counts the rows as they are done.
    done = [int(n) for n in re.findall(rf"counting: .*?\| (\d+)/{len(labels)} \[", proc.stderr)]
    assert done and max(done) > 0 and done == sorted(done)
