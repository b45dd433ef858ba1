"""configs/peft/*.yaml: one file per registered method, each injecting on the tiny SAM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from peft_helpers import tiny_sam

from salt.model import build_sam
from salt.peft import METHODS, adapter_layers, count_adapter_parameters, inject_from_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "peft"
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
# Ranks that fit the tiny encoder (k = 32): a fraction for every rank and rank_pattern entry.
TINY_RANK = 0.25


def _load(name: str):
    return OmegaConf.load(CONFIG_DIR / f"{name}.yaml")


def test_config_names_equal_registry_keys() -> None:
    assert sorted(METHODS) == CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_config_keys_are_the_method_options(name: str) -> None:
    cfg = _load(name)
    assert cfg.method == name
    options = {f.name for f in dataclasses.fields(METHODS[name])}
    assert set(cfg) - {"method", "target_modules", "reg_weight"} <= options
    assert cfg.reg_weight == 0.0  # the authors' configs train without the regulariser


@pytest.mark.parametrize("name", CONFIGS)
def test_config_injects_into_the_image_encoder_only(name: str) -> None:
    cfg = _load(name)
    if "rank" in cfg:
        cfg.rank = TINY_RANK
    for pattern in cfg.get("rank_pattern", {}):
        cfg.rank_pattern[pattern] = TINY_RANK
    names = inject_from_config(tiny_sam(), cfg)
    if name == "none":
        assert names == []
        return
    assert len(names) == 2 * 4 + 2  # tiny: 2 blocks x (qkv, proj, lin1, lin2) + neck.0 + neck.2
    assert all(n.startswith("image_encoder.") for n in names)


def test_salt_config_holds_the_paper_vit_b_ranks() -> None:
    with torch.device("meta"):
        model = build_sam("vit_b", img_size=512)
    inject_from_config(model, _load("salt"))
    ranks = {
        name.split(".", 3)[-1] if "blocks" in name else name: layer.rank
        for name, layer in adapter_layers(model)
    }
    assert ranks == {
        "attn.qkv": 760,
        "attn.proj": 760,
        "mlp.lin1": 50,
        "mlp.lin2": 50,
        "image_encoder.neck.0": 250,
        "image_encoder.neck.2": 250,
    }
    layers = dict(adapter_layers(model))
    assert len(layers) == 12 * 4 + 2 and all(layer.lora_rank == 4 for layer in layers.values())
    expected = sum(2 * m.rank + 2 * (m.k - m.rank) * 4 for m in layers.values())
    assert sum(count_adapter_parameters(model)["salt"].values()) == expected
