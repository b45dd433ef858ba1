"""configs/peft/*.yaml: one file per registered method (and the named settings of the ``hf`` method), each
injecting on the tiny SAM with the targets and ranks of the model config it is composed with
(``model.adapters``)."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from omegaconf import OmegaConf
from peft_helpers import CONFIG_DIR, composed_peft, tiny_sam

from salt.errors import ConfigError
from salt.model import build_sam
from salt.peft import METHODS, adapter_layers, count_adapter_parameters, inject_from_config
from salt.peft.registry import CONFIG_KEYS, method_class

CONFIGS = sorted(p.stem for p in (CONFIG_DIR / "peft").glob("*.yaml"))


def _load(name: str):
    return OmegaConf.load(CONFIG_DIR / "peft" / f"{name}.yaml")


def test_every_config_names_a_registered_method_and_every_method_has_its_config() -> None:
    named = {name: method_class(composed_peft("sam_tiny", name)).name for name in CONFIGS}
    # a registered method's own config carries its name; the other configs are named settings of one of them
    assert set(METHODS) <= set(CONFIGS)
    assert all(named[name] == name for name in METHODS)
    assert set(named.values()) <= set(METHODS)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_keys_are_the_method_options(name: str) -> None:
    cfg = composed_peft("sam_tiny", name)
    options = {f.name for f in dataclasses.fields(method_class(cfg))}
    assert set(cfg) - set(CONFIG_KEYS) <= options
    # the authors' configs train without a regulariser; AdaLoRA's weight is peft's own default
    assert cfg["reg_weight"] == (0.5 if name == "adalora" else 0.0)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_injects_into_the_image_encoder_only(name: str) -> None:
    cfg = composed_peft("sam_tiny", name)
    names = inject_from_config(tiny_sam(), cfg)
    if name == "none":
        assert names == []
        return
    convs = 2 if "Conv2d" in cfg.get("layer_types", ["Conv2d"]) else 0  # peft's PiSSA, VeRA, OSF: Linear only
    assert len(names) == 2 * 4 + convs  # tiny: 2 blocks x (qkv, proj, lin1, lin2) + neck.0 + neck.2
    assert all(n.startswith("image_encoder.") for n in names)


def test_salt_on_vit_b_gets_the_paper_ranks() -> None:
    with torch.device("meta"):
        model = build_sam("vit_b", img_size=512)
    inject_from_config(model, composed_peft("sam_vit_b", "salt"))
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


def test_peft_configs_name_no_module_of_any_backbone() -> None:
    # Targets and ranks belong to the model configs; a method file only points at them.
    for name in CONFIGS:
        text = OmegaConf.to_yaml(_load(name))  # the values, without the comments
        for module_name in ("image_encoder", "blocks", "qkv", "lin1", "fc1", "neck", "layers"):
            assert module_name not in text, (name, module_name)


def test_command_line_ranks_win_over_the_model_config() -> None:
    peft = composed_peft("sam_vit_b", "salt", "peft.rank=512", "peft.lora_rank=16")
    assert peft["rank"] == 512 and peft["lora_rank"] == 16
    assert peft["rank_pattern"] == {r"mlp\.lin[12]": 50, r"neck\.[02]": 250}  # the model's, not replaced
    assert composed_peft("sam_vit_b", "salt", "peft.rank_pattern={}")["rank_pattern"] == {}
    assert composed_peft("sam_vit_b", "lora", "peft.rank=256")["rank"] == 256


def test_medsam_lite_takes_the_paper_ranks_as_fractions_of_k() -> None:
    model = build_sam("medsam_lite")
    inject_from_config(model, composed_peft("medsam_lite", "salt"))
    got = {name: (layer.k, layer.rank) for name, layer in adapter_layers(model)}
    # attention 760/768 of k, MLP 50/768, neck 250/256 (floored), on every transformer block of stages 1-3
    widths = {1: 128, 2: 160, 3: 320}
    blocks = {1: 2, 2: 6, 3: 2}
    expected = {}
    for stage, k in widths.items():
        for b in range(blocks[stage]):
            prefix = f"image_encoder.layers.{stage}.blocks.{b}"
            expected |= {f"{prefix}.attn.qkv": (k, int(0.99 * k)), f"{prefix}.attn.proj": (k, int(0.99 * k))}
            expected |= {f"{prefix}.mlp.fc1": (k, int(0.065 * k)), f"{prefix}.mlp.fc2": (k, int(0.065 * k))}
    expected |= {"image_encoder.neck.0": (256, 250), "image_encoder.neck.2": (256, 250)}
    assert got == expected


@pytest.mark.parametrize(
    ("name", "field"),
    [("dora", "r"), ("pissa", "r"), ("vera", "r"), ("adalora", "target_r"), ("osf", "effective_rank")],
)
def test_a_peft_package_preset_takes_its_rank_as_a_config_field(name: str, field: str) -> None:
    # The README: peft.rank is this project's methods' rank; a peft config's rank is one of its own fields.
    with pytest.raises(
        ConfigError, match=re.escape("option rank=8: ") + ".*" + re.escape(f"peft.config.{field}=8")
    ):
        inject_from_config(tiny_sam(), composed_peft("sam_tiny", name, "peft.rank=8"))
    given = composed_peft("sam_tiny", name, f"peft.config.{field}=8")
    assert given["config"][field] == 8
