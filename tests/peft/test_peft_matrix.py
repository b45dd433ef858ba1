"""The same checks for every registered PEFT method, on the tiny SAM (real module names)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft_helpers import METHOD_NAMES, TARGETS, adapted_sam, perturb_, tiny_sam
from torch import nn

from salt.model import parameter_summary
from salt.peft import (
    adapter_layers,
    adapter_modules,
    count_adapter_parameters,
    is_adapter_module,
    merge,
    regularization,
    save_adapter,
)
from salt.peft.checkpoint import adapter_parameter_names
from salt.peft.registry import match_targets

ADAPTING = [m for m in METHOD_NAMES if m != "none"]


def _adapter_params(model: nn.Module) -> dict[str, nn.Parameter]:
    params = dict(model.named_parameters())
    return {name: params[name] for name in adapter_parameter_names(model)}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_identity_at_init(method: str, images: torch.Tensor) -> None:
    reference = tiny_sam().eval()
    model = adapted_sam(method).eval()
    with torch.no_grad():
        expected = reference(images)
        torch.testing.assert_close(model(images), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model(images), expected, atol=1e-4, rtol=1e-4)  # the autograd path


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_only_trainable_tensors_change_and_all_adapters_get_gradients(
    method: str, images: torch.Tensor
) -> None:
    policy = {n for n, p in tiny_sam().named_parameters() if p.requires_grad}
    model = adapted_sam(method)
    adapters = _adapter_params(model)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    base_names = {n.replace(".base_layer.", ".") for n in trainable}
    assert base_names - set(adapters) == policy - set(adapters), (
        "inject changed requires_grad outside targets"
    )
    assert set(adapters) <= set(trainable)
    before = {n: t.detach().clone() for n, t in [*model.named_parameters(), *model.named_buffers()]}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    for step in range(3):
        optimizer.zero_grad()
        loss = model(images).sigmoid().mean() + 0.1 * regularization(model)
        loss.backward()
        if step == 2:  # zero-initialised factors (LoRA B, SALT Y) make their partners' first gradient 0
            for name, param in adapters.items():
                assert param.grad is not None and param.grad.abs().sum() > 0, f"{name} got no gradient"
        optimizer.step()
    now = dict([*model.named_parameters(), *model.named_buffers()])
    changed = {n for n, t in now.items() if not torch.equal(t, before[n])}
    assert changed <= set(trainable), f"frozen tensors changed: {sorted(changed - set(trainable))[:3]}"
    assert set(adapters) <= changed


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_merged_equals_unmerged(method: str, images: torch.Tensor) -> None:
    model = adapted_sam(method).eval()
    perturb_(_adapter_params(model))
    with torch.no_grad():
        cached = model(images)
    unmerged = model(images).detach()
    merged = merge(copy.deepcopy(model))
    assert not list(adapter_modules(merged))
    for name in match_targets(merged, TARGETS):
        assert type(merged.get_submodule(name)) in (nn.Linear, nn.Conv2d)
    with torch.no_grad():
        out = merged(images)
    torch.testing.assert_close(out, unmerged, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached, unmerged, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", ADAPTING)
def test_conv_shapes_kept(method: str, images: torch.Tensor) -> None:
    model = adapted_sam(method)
    reference = tiny_sam().image_encoder.neck
    features = torch.randn(2, 32, 4, 4)  # (B, C, H/16, W/16) for the tiny encoder
    for index in (0, 2):
        layer = model.image_encoder.neck[index]
        assert is_adapter_module(layer) or isinstance(layer, nn.Conv2d)
        assert layer(features).shape == reference[index](features).shape
        with torch.no_grad():
            assert layer(features).shape == reference[index](features).shape
    assert model(images).shape == (2, 1, 64, 64)


@pytest.mark.parametrize("method", ADAPTING)
def test_counts_match_the_summary(method: str) -> None:
    model = adapted_sam(method)
    counts = count_adapter_parameters(model)
    assert set(counts) == {method}
    assert set(counts[method]) == {"Linear", "Conv2d"}
    # Counted from the model's trainable tensors, independently of how adapter parameters are defined: what
    # is trainable now and was not before injection.
    policy = {n for n, p in tiny_sam().named_parameters() if p.requires_grad}
    trained = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n not in policy)
    assert sum(counts[method].values()) == trained
    summary = parameter_summary(model)
    assert summary["groups"]["adapter"]["trainable"] == trained  # full tuning too: one definition
    # the base model's size, whether the method adds tensors (adapters) or trains the base's own (full)
    assert summary["total_base"] == sum(p.numel() for p in tiny_sam().parameters())
    for _, layer in adapter_layers(model):
        if layer.adapter_method == "salt":
            k, r, low = layer.k, layer.rank, layer.lora_rank
            assert sum(p.numel() for p in layer.parameters(recurse=False)) == 2 * r + 2 * (k - r) * low


_RELOAD = """
import sys, torch
sys.path.insert(0, {helpers!r})
from peft_helpers import tiny_sam
from salt.peft import load_adapter
images = torch.load({images!r})
outputs = {{}}
for method in {methods!r}:
    model = tiny_sam().eval()
    info = load_adapter(model, f"{{sys.argv[1]}}/{{method}}.safetensors")
    assert info["metadata"] == {{"run": method}}
    with torch.no_grad():
        outputs[method] = model(images)
torch.save(outputs, f"{{sys.argv[1]}}/reloaded.pt")
"""


def test_save_then_load_in_a_fresh_process(tmp_path: Path, images: torch.Tensor) -> None:
    expected = {}
    for method in METHOD_NAMES:
        model = adapted_sam(method).eval()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        perturb_(trainable)
        path = tmp_path / f"{method}.safetensors"
        sidecar = save_adapter(model, path, metadata={"run": method})
        info = json.loads(sidecar.read_text())
        assert info["method"] == method
        assert info["injections"][0]["targets"] == ([] if method == "none" else match_targets(model, TARGETS))
        count = sum(p.numel() for p in trainable.values())
        assert path.stat().st_size <= 4 * count + 64 * 1024  # grows with the trainable count only
        with torch.no_grad():
            expected[method] = model(images)
    torch.save(images, tmp_path / "images.pt")
    script = _RELOAD.format(
        helpers=str(Path(__file__).parent), images=str(tmp_path / "images.pt"), methods=METHOD_NAMES
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=300)
    reloaded = torch.load(tmp_path / "reloaded.pt")
    for method in METHOD_NAMES:
        torch.testing.assert_close(reloaded[method], expected[method], atol=1e-6, rtol=0, msg=method)
