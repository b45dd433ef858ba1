"""scripts/benchmark.py on the tiny SAM (--smoke): every level runs and the JSON has the documented schema;
the pieces it relies on (naive SALT, multiply-add counts, memory measurement) checked on small cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from salt.bench.counts import layer_multiply_adds
from salt.bench.layers import LAYERS
from salt.bench.naive import NaiveSaltLayer
from salt.bench.timing import interleaved_times, peak_bytes
from salt.bench.variants import FORM_VARIANTS, LAYER_VARIANTS, MODEL_VARIANTS
from salt.peft.lora import LoraLayer
from salt.peft.salt import SaltLayer

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"layer", "model", "inference", "data"}


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_smoke_run_writes_every_level(tmp_path: Path) -> None:
    result = _run("--smoke", "--forms", "--json", str(tmp_path / "bench.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    entries = report["entries"]
    for entry in entries:
        assert {"name", "level", "seconds_median", "peak_bytes", "config"} <= set(entry)
        assert (
            isinstance(entry["name"], str) and entry["level"] in LEVELS and isinstance(entry["config"], dict)
        )
        assert entry["seconds_median"] > 0
        assert entry["peak_bytes"] is None or (
            isinstance(entry["peak_bytes"], int) and entry["peak_bytes"] >= 0
        )
    assert {e["level"] for e in entries} == LEVELS
    model = {e["name"] for e in entries if e["level"] == "model"}
    assert model == {v.name for v in (*MODEL_VARIANTS, *FORM_VARIANTS)}
    forms = {e["name"]: e["config"]["peft"].get("execution") for e in entries if e["level"] == "model"}
    assert [forms[v.name] for v in FORM_VARIANTS] == ["weight", "basis", "delta"]
    layer = {(e["config"]["layer"], e["name"]) for e in entries if e["level"] == "layer"}
    assert {(short, v.name) for short in LAYERS for v in LAYER_VARIANTS} <= layer
    assert all(e["peak_bytes"] is not None for e in entries if e["level"] in ("model", "inference"))
    labels = " ".join(t["label"] for t in report["targets"])
    for ratio in ("SALT l=4 / naive SALT l=4", "SALT l=4 / LoRA r=4", "SALT diag r=0.1k / LoRA equal count"):
        assert ratio in labels
    assert "| variant | trainable | step s |" in result.stdout and "Targets" in result.stdout


def test_unknown_level_is_a_one_line_error() -> None:
    result = _run("--smoke", "--only", "model,nonsense")
    assert result.returncode == 2
    assert "unknown level 'nonsense'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--amp",), "--amp needs --device cuda"),
        (("--model-px", "100"), "multiple of 16"),
        (("--repeats", "0"), "--repeats must be >= 1"),
        (("--json", "/proc/bench.json"), "--json /proc/bench.json: cannot write a file there"),
        (("--json", "/"), "cannot write a file there"),
    ],
)
def test_bad_options_are_one_line_errors(args: tuple[str, ...], message: str) -> None:
    result = _run("--smoke", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("base", [nn.Linear(12, 20), nn.Conv2d(3, 8, 3, padding=1)], ids=["linear", "conv"])
def test_naive_salt_computes_salt(base: nn.Module) -> None:
    torch.manual_seed(0)
    layer = SaltLayer(base.double(), rank=3, lora_rank=2, init="paper")
    with torch.no_grad():
        for param in layer.parameters(recurse=False):
            param.add_(torch.randn_like(param) * 0.5)  # some core entries negative: the ReLU acts
    naive = NaiveSaltLayer(layer)
    x = (
        torch.randn(2, 3, 6, 6, dtype=torch.float64)
        if base.__class__ is nn.Conv2d
        else torch.randn(5, 12).double()
    )
    ours, theirs = layer(x), naive(x)
    torch.testing.assert_close(theirs, ours, atol=1e-10, rtol=1e-10)
    grads = torch.autograd.grad(ours.sum(), list(layer.parameters(recurse=False)))
    naive_grads = torch.autograd.grad(theirs.sum(), list(naive.parameters(recurse=False)))
    for got, want in zip(naive_grads, grads):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_counts_of_vit_b_qkv_at_2048_tokens() -> None:
    # The hand counts for 768 -> 2304 at 2048 tokens, forward + backward with the input gradient.
    base = nn.Linear(768, 2304, device="meta")
    salt = SaltLayer(base, rank=760, lora_rank=4)
    giga = {
        "frozen": layer_multiply_adds(base, 2048, True),
        "LoRA r=4": layer_multiply_adds(LoraLayer(base, 4, 4.0, 0.0), 2048, True),
        "naive": layer_multiply_adds(NaiveSaltLayer(salt), 2048, True),
        "weight": layer_multiply_adds(salt, 2048, True, "weight"),
        "basis": layer_multiply_adds(salt, 2048, True),
    }
    expected = {"frozen": 7.25, "LoRA r=4": 7.32, "naive": 16.3, "weight": 13.6, "basis": 9.66}
    assert {k: round(v / 1e9, 2) for k, v in giga.items()} == pytest.approx(expected, abs=0.05)
    base.weight.requires_grad_(True)  # full tuning adds the weight gradient
    assert layer_multiply_adds(base, 2048, True) / 1e9 == pytest.approx(10.9, abs=0.05)


def test_round_robin_timing_and_cpu_peak_memory() -> None:
    order = []
    times = interleaved_times(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 1, 2, torch.device("cpu")
    )
    rounds = [sorted(order[i : i + 2]) for i in range(0, 6, 2)]
    assert (
        order[:2] == ["a", "b"] and rounds == [["a", "b"]] * 3
    )  # warm-up in order, then every case per round
    assert [len(t) for t in times.values()] == [2, 2]
    size = 4 * 2**20

    def allocate() -> None:
        block = torch.ones(size, dtype=torch.uint8)
        del block

    assert size <= peak_bytes(allocate, torch.device("cpu")) < 2 * size
