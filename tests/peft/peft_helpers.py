"""Helpers of the PEFT tests: the tiny SAM, its target layers and per-method options that fit it."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from salt.model import build_sam, set_trainable
from salt.model.trainable import PAPER_POLICY
from salt.peft import METHODS, inject

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
# The image-encoder layers of configs/peft/*.yaml: attention, MLP and neck convs.
TARGETS = r"image_encoder\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.lin[12])|neck\.[02])"
# Ranks that fit the tiny encoder (width 32, so k = 32 everywhere); other options stay at their defaults,
# except LoRA's alpha: the default alpha = r makes the scaling 1, so a dropped scaling would go unseen. The
# hf method runs peft's DoRA, on the Linear and Conv2d targets alike.
TINY_OPTIONS: dict[str, dict] = {
    "salt": {"rank": 0.5, "lora_rank": 2},
    "lora": {"rank": 2, "alpha": 6.0},
    "hf": {"config": {"_target_": "peft.LoraConfig", "r": 2, "lora_alpha": 6, "use_dora": True}},
}
METHOD_NAMES = sorted(METHODS)
SEED = 0


def tiny_sam(seed: int = SEED) -> nn.Module:
    """The tiny SAM at 64 px with the paper's trainable groups, its weights fixed by ``seed``."""
    torch.manual_seed(seed)
    model = build_sam("tiny", img_size=64)
    set_trainable(model, PAPER_POLICY)
    return model


def adapted_sam(method: str, seed: int = SEED) -> nn.Module:
    """:func:`tiny_sam` with ``method`` injected into :data:`TARGETS`."""
    model = tiny_sam(seed)
    inject(model, method, TARGETS, **TINY_OPTIONS.get(method, {}))
    return model


def perturb_(params: dict[str, nn.Parameter], scale: float = 0.1, seed: int = 1) -> None:
    """Add seeded noise to ``params`` in place, standing in for training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(params.items()):
            param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)


def composed_peft(model: str, peft: str, *overrides: str) -> dict:
    """The ``peft`` node of ``train.yaml`` composed with ``model=<model> peft=<peft>``, resolved."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"peft={peft}", *overrides])
        return OmegaConf.to_container(cfg.peft, resolve=True)
