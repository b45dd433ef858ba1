"""The methods the benchmark compares, as PEFT configurations read from ``configs/``.

Each variant is a method variant of ``configs/method/<name>.yaml`` (where the method variants of the
experiments are listed, once) or a plain ``configs/peft/<method>.yaml`` group, plus benchmark-only option
overrides and the trainable groups of the model; it is composed with the model config as ``train.py``
does, so its targets and ranks are the model's (``model.adapters``: the ViT-B ranks for ViT-B, smaller
ones for the tiny SAM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from salt.model.trainable import PAPER_POLICY
from salt.peft.base import flat_shape
from salt.peft.registry import CONFIG_KEYS, method_class


@dataclass(frozen=True)
class Variant:
    """One compared method.

    Attributes:
        name: the case name in the benchmark's tables and JSON.
        method: a ``configs/method/<method>.yaml`` variant (composed as ``+method=<method>``), or, for a
            method without variants there, ``peft=<method>`` (``none``, ``full``).
        overrides: benchmark-only options replacing the composed ones.
        groups: trainable groups besides the adapters (the backbone's groups, ``salt.model.group_parameter_names``).
        naive: run SALT with the authors' algorithm (``salt.bench.naive``).
        tiny_method: the method variant for the tiny SAM of smoke runs, when ``method`` does not fit it.
        matches: for a LoRA variant, the name of the variant whose adapter count its rank matches
            (:func:`matched_lora_rank`, computed where the layers are known).
    """

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = PAPER_POLICY
    naive: bool = False
    tiny_method: str = ""
    matches: str = ""


FROZEN = Variant("frozen", "none")
DECODER_ONLY = Variant("decoder-only", "none", groups=("decoder",))
LORA_4 = Variant("LoRA r=4", "lora_r4")
LORA_256 = Variant("LoRA r=256", "lora_r256", tiny_method="lora_r32")
SVD = Variant("SVD", "ssam")
SALT_4 = Variant("SALT l=4", "salt_l4")
SALT_256 = Variant("SALT l=256", "salt_l256")
NAIVE_SALT_4 = Variant("naive SALT l=4", "salt_l4", naive=True)
FULL = Variant("full", "full")
# The authors' SAM2 setting: r = 0.1 k top singular values, here with the diagonal ReLU.
SALT_DIAGONAL = Variant("SALT diag r=0.1k", "salt_l4", {"relu": "diagonal", "rank": 0.1, "rank_pattern": {}})
LORA_MATCHED = Variant("LoRA equal count", "lora_r4", matches=SALT_DIAGONAL.name)

MODEL_VARIANTS = (
    DECODER_ONLY,
    FROZEN,
    LORA_4,
    LORA_256,
    SVD,
    SALT_4,
    SALT_256,
    NAIVE_SALT_4,
    FULL,
    SALT_DIAGONAL,
    LORA_MATCHED,
)
# SALT with its execution form fixed instead of chosen by `auto` (benchmark --forms): the model-level check
# of the form choice, side by side with the variants above.
FORM_VARIANTS = (
    Variant("SALT l=4 weight form", "salt_l4", {"execution": "weight"}),
    Variant("SALT l=4 basis form", "salt_l4", {"execution": "basis"}),
    Variant("SALT diag delta form", "salt_l4", SALT_DIAGONAL.overrides | {"execution": "delta"}),
)
LAYER_VARIANTS = (FROZEN, FULL, LORA_4, SVD, SALT_4, SALT_256, NAIVE_SALT_4, SALT_DIAGONAL, LORA_MATCHED)


def composed(config_dir: Path, overrides: list[str], key: str) -> dict[str, Any]:
    """Node ``key`` of ``train.yaml`` composed with ``overrides`` as ``train.py`` would, resolved."""
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=overrides)[key], resolve=True)


def peft_config(variant: Variant, config_dir: Path, model_variant: str) -> dict[str, Any]:
    """The PEFT config of ``variant`` for SAM ``model_variant`` (``vit_b``, ``tiny``, ...).

    Returns:
        A ``configs/peft`` mapping (``_target_``, ``target_modules``, options) for ``inject_from_config``.
    """
    method = variant.tiny_method if model_variant == "tiny" and variant.tiny_method else variant.method
    choice = (
        f"+method={method}"
        if (Path(config_dir) / "method" / f"{method}.yaml").is_file()
        else f"peft={method}"
    )
    cfg = composed(config_dir, [f"model=sam_{model_variant}", choice], "peft")
    cfg.update(variant.overrides)
    return cfg


def method_name(cfg: dict[str, Any]) -> str:
    """The registry name of the method a PEFT config names by ``_target_`` (``salt``, ``lora``, ``full`` ...)."""
    return method_class(cfg).name


def options(cfg: dict[str, Any]) -> dict[str, Any]:
    """The method options of a PEFT config (without the keys of every config, ``registry.CONFIG_KEYS``)."""
    return {k: v for k, v in cfg.items() if k not in CONFIG_KEYS}


def matched_lora_rank(target_count: int, modules: list[nn.Module]) -> int:
    """The LoRA rank whose trainable count on ``modules`` (``r (in_f + out)`` each) is closest to ``target_count``."""
    per_rank = sum(sum(flat_shape(m)) for m in modules)
    low = max(1, math.floor(target_count / per_rank))
    return min((low, low + 1), key=lambda q: abs(q * per_rank - target_count))
