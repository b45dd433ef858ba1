"""One-line errors for wrong targets, options and adapter files; failed injections change nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from peft_helpers import TARGETS, adapted_sam, tiny_sam
from safetensors.torch import load_file, save_file
from torch import nn

from salt.peft import AdapterError, adapter_layers, inject, inject_from_config, load_adapter, save_adapter


def _raises(pattern: str, fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError, match=pattern) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _load_raises(pattern: str, model: nn.Module, path: Path) -> str:
    with pytest.raises(AdapterError, match=pattern) as info:
        load_adapter(model, path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_unknown_method_lists_the_valid_ones() -> None:
    _raises(
        r"unknown PEFT method 'salsa'; valid methods: full, hf, lora, none, salt, svd",
        inject,
        tiny_sam(),
        "salsa",
        [],
    )


def test_nothing_matched_names_the_targets() -> None:
    _raises(
        r"target_modules=\['attn.qkvv'\] matched no module", inject, tiny_sam(), "salt", ["attn.qkvv"], rank=4
    )
    _raises(r"not a valid regex", inject, tiny_sam(), "salt", "image_encoder.(", rank=4)
    _raises(r"must be a regex string or a list", inject, tiny_sam(), "salt", 3, rank=4)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (
            {"rank": 33},
            r"option rank=33 does not fit module image_encoder\.blocks\.0\.attn\.qkv: the valid range is \[1, 32\]",
        ),
        (
            {"rank": 4, "rank_pattern": {"neck\\.2": 40}},
            r"rank_pattern\['neck\\\\\.2'\]=40 does not fit module image_encoder\.neck\.2.*\[1, 32\]",
        ),
        ({"rank": 0}, r"option rank=0 must be >= 1"),
        ({"rank": 1.5}, r"option rank=1\.5: a float rank is a fraction of k and must lie in \(0, 1\]"),
        ({"rank": "4"}, r"option rank='4' must be an int >= 1 or a float fraction in \(0, 1\]"),
        ({"rank": 4, "lora_rank": 0}, r"option lora_rank=0 must be an int >= 1"),
        ({"rank": 4, "relu": "leaky"}, r"option relu='leaky' is not valid; valid values: full, diagonal"),
        ({"rank": 4, "init": "kaiming"}, r"option init='kaiming' is not valid; valid values: zero, paper"),
        ({"rnk": 4}, r"unknown option 'rnk' for method 'salt'; valid options: rank, lora_rank"),
    ],
)
def test_salt_option_errors(options: dict, pattern: str) -> None:
    model = tiny_sam()
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    _raises(pattern, inject, model, "salt", TARGETS, **options)
    assert not list(adapter_layers(model))  # the model is left as it was
    assert before == {n: p.requires_grad for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"rank": 64}, r"option rank=64 does not fit module image_encoder\.blocks\.0\.attn\.qkv"),
        ({"alpha": 0}, r"option alpha=0 must be a number > 0"),
        ({"dropout": 1.0}, r"option dropout=1\.0 must lie in \[0, 1\)"),
    ],
)
def test_lora_option_errors(options: dict, pattern: str) -> None:
    _raises(pattern, inject, tiny_sam(), "lora", TARGETS, **options)


def test_injecting_twice_is_refused() -> None:
    for method in ("salt", "full"):
        model = adapted_sam(method)
        _raises(
            r"module image_encoder\.blocks\.0\.attn\.qkv already has a '" + method,
            inject,
            model,
            "lora",
            TARGETS,
        )


def test_unsupported_modules_are_named() -> None:
    _raises(
        r"target module image_encoder\.blocks\.0\.norm1 is a LayerNorm", inject, tiny_sam(), "lora", ["norm1"]
    )
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    _raises(r"target module 0 is a grouped Conv2d \(groups=2\)", inject, grouped, "lora", ["0"], rank=1)


def test_config_without_method() -> None:
    _raises(
        r"peft._target_ is not set: a PEFT config names its method class",
        inject_from_config,
        tiny_sam(),
        {"rank": 4},
    )


def test_none_matches_nothing_without_error() -> None:
    assert inject(tiny_sam(), "none", []) == []


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "adapter.safetensors"
    save_adapter(adapted_sam("salt"), path)
    return path


def test_load_errors_name_the_file(saved: Path, tmp_path: Path) -> None:
    _load_raises(
        r"missing\.safetensors: adapter file not found",
        tiny_sam(),
        tmp_path / "missing.safetensors",
    )
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not safetensors")
    corrupt.with_suffix(".json").write_text(saved.with_suffix(".json").read_text())
    _load_raises(r"corrupt\.safetensors: not a readable safetensors file", tiny_sam(), corrupt)
    saved.with_suffix(".json").unlink()
    _load_raises(r"adapter\.json: sidecar not found", tiny_sam(), saved)


def test_load_refuses_other_base_weights(saved: Path) -> None:
    message = _load_raises(
        r"adapter\.safetensors: the base model's frozen weights differ", tiny_sam(seed=1), saved
    )
    assert re.search(r"fingerprint [0-9a-f]{12} != [0-9a-f]{12}", message)


def test_load_refuses_other_adapters_and_bad_tensors(saved: Path) -> None:
    _load_raises(r"the model already has lora adapters that differ", adapted_sam("lora"), saved)
    tensors = load_file(saved)
    name = next(n for n in tensors if n.endswith("lora_x"))
    save_file({**tensors, name: torch.zeros(3, 3)}, saved)
    _load_raises(rf"tensor {re.escape(name)} has shape \(3, 3\), the model expects", tiny_sam(), saved)
    save_file({n: t for n, t in tensors.items() if n != name}, saved)
    _load_raises(
        rf"1 adapter tensors are missing from the file \(first: {re.escape(name)}\)",
        tiny_sam(),
        saved,
    )
    save_file({**tensors, "extra.weight": torch.zeros(1)}, saved)
    _load_raises(r"1 tensors are not parameters of the model \(first: extra\.weight\)", tiny_sam(), saved)


def test_loading_into_the_same_injected_model_works(saved: Path) -> None:
    info = load_adapter(adapted_sam("salt"), saved)
    assert info["method"] == "salt" and json.loads(saved.with_suffix(".json").read_text()) == info
