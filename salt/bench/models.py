"""Model-level cases: SAM with each compared method, one training step and inference.

All variants are built from one seeded base model. A parameter that a variant keeps frozen is shared with
the base instead of copied, and the singular value decompositions of the frozen weights are computed once
and shared by every spectral variant (the injections share one ``cache``), so a run holds one copy of the
big tensors.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from salt.bench.counts import layer_multiply_adds
from salt.bench.naive import make_naive
from salt.bench.timing import storage_bytes
from salt.bench.variants import SALT_4, Variant, composed, matched_lora_rank, method_name, peft_config
from salt.losses import FocalDiceLoss
from salt.model import build_sam, set_trainable
from salt.model.trainable import group_parameter_names
from salt.peft import adapter_layers, count_adapter_parameters, inject_from_config, merge, save_adapter
from salt.peft.registry import match_targets


@dataclass
class Built:
    """One variant: its model, optimizer, PEFT config and trainable parameters."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    cfg: dict[str, Any]
    params: list[nn.Parameter]


class ModelBench:
    """Variants of one SAM at one input size, built on demand from a shared base.

    Args:
        sam: SAM variant (``vit_b`` or ``tiny``); img_size: input side; batch: images per step.
        device: where everything runs; config_dir: the project's ``configs`` folder (PEFT files, model
            files, and ``train.yaml`` for the optimizer and loss settings).
        variants: the variants :meth:`build` knows by name.
        autocast: run steps and inference under ``torch.autocast`` in this dtype (None: the model's dtype).
    """

    def __init__(
        self,
        sam: str,
        img_size: int,
        batch: int,
        device: torch.device,
        config_dir: Path,
        variants: Sequence[Variant],
        autocast: torch.dtype | None = None,
    ) -> None:
        self.sam, self.img_size, self.batch = sam, img_size, batch
        self.autocast = autocast
        self.device, self.config_dir = device, config_dir
        self.variants = {v.name: v for v in variants}
        self.svds: dict[tuple, tuple[torch.Tensor, ...]] = {}
        torch.manual_seed(0)
        self.base = build_sam(sam, img_size=img_size).to(device)
        set_trainable(self.base, [])
        generator = torch.Generator().manual_seed(1)
        side = (img_size, img_size)
        images = torch.rand(batch, 3, *side, generator=generator) * 255  # (B, 3, S, S) in [0, 255]
        masks = (torch.rand(batch, 1, *side, generator=generator) > 0.9).float()  # (B, 1, S, S) vessels
        self.images, self.masks = images.to(device), masks.to(device)
        # The paper's optimiser and loss (a real data set's settings, not the synthetic set's short schedule).
        paper = [f"model=sam_{sam}", "dataset=drive"]
        self.optim, loss = composed(config_dir, paper, "optim"), composed(config_dir, paper, "loss")
        keys = ("focal_weight", "dice_weight", "alpha", "gamma", "smooth")
        self.loss_fn = FocalDiceLoss(**{k: loss[k] for k in keys})
        self.built: dict[str, Built] = {}

    def _trainable_names(self, variant: Variant, cfg: dict[str, Any]) -> set[str]:
        names = set().union(*(group_parameter_names(self.base, g) for g in variant.groups))
        if method_name(cfg) == "full":
            for target in match_targets(self.base, cfg["target_modules"]):
                names |= {f"{target}.{p}" for p, _ in self.base.get_submodule(target).named_parameters()}
        return names

    def build(self, name: str) -> Built:
        """The named variant's model (built once, with shared frozen tensors) and its AdamW optimizer."""
        if name in self.built:
            return self.built[name]
        variant = self.variants[name]
        cfg = peft_config(variant, self.config_dir, self.sam)
        if variant.matches:
            reference = self.build(variant.matches)
            count = sum(sum(c.values()) for c in count_adapter_parameters(reference.model).values())
            targets = [self.base.get_submodule(n) for n in match_targets(self.base, cfg["target_modules"])]
            cfg["rank"] = matched_lora_rank(count, targets)
        trainable = self._trainable_names(variant, cfg)
        memo = {id(p): p for n, p in self.base.named_parameters() if n not in trainable}
        model = copy.deepcopy(self.base, memo)
        set_trainable(model, variant.groups)
        inject_from_config(model, cfg, cache=self.svds)
        if variant.naive:
            make_naive(model)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params,
            lr=self.optim["lr"],
            weight_decay=self.optim["weight_decay"],
            betas=tuple(self.optim["betas"]),
        )
        self.built[name] = Built(model, optimizer, cfg, params)
        return self.built[name]

    def step(self, name: str) -> Callable[[], None]:
        """One training step of the named variant: forward, focal + Dice loss, backward, AdamW step."""
        built = self.build(name)

        def call() -> None:
            built.optimizer.zero_grad(set_to_none=True)
            with self.autocasting():
                loss = self.loss_fn(built.model(self.images).float(), self.masks)
            loss.backward()
            built.optimizer.step()

        return call

    def autocasting(self) -> torch.autocast:
        """The autocast context of every step and inference call (disabled without ``autocast``)."""
        dtype = self.autocast or torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.autocast is not None)

    def target_multiply_adds(self, name: str) -> int:
        """Multiply-adds of the adapted layers (or, without adapters, the same frozen layers) in one forward
        + backward, at the token counts they see in this model (window padding included)."""
        built = self.build(name)
        # without adapters (none), count the frozen layers SALT would adapt
        targets = (
            built.cfg["target_modules"] or peft_config(SALT_4, self.config_dir, self.sam)["target_modules"]
        )
        total = 0

        def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            nonlocal total
            conv = isinstance(getattr(module, "base_layer", module), nn.Conv2d)
            positions = output.numel() // (output.shape[1] if conv else output.shape[-1])
            total += layer_multiply_adds(module, positions, inputs[0].requires_grad)

        hooks = [
            built.model.get_submodule(n).register_forward_hook(count)
            for n in match_targets(built.model, targets)
        ]
        try:
            self.step(name)()
        finally:
            for hook in hooks:
                hook.remove()
        return total

    def resident_bytes(self, name: str) -> int:
        """Bytes the variant holds between steps: parameters, buffers and optimizer state."""
        built = self.build(name)
        state = [t for s in built.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        return storage_bytes([*built.model.parameters(), *built.model.buffers(), *state])

    def adapter_file_bytes(self, name: str, folder: Path) -> tuple[int, int]:
        """``(file bytes, trainable count)`` of the variant's adapter file written by ``save_adapter``."""
        built = self.build(name)
        path = folder / f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}.safetensors"
        save_adapter(built.model, path)
        return path.stat().st_size, sum(p.numel() for p in built.params)

    def inference_cases(self, plain: str, salt: str, naive: str) -> dict[str, Callable[[], torch.Tensor]]:
        """Forward passes without autograd, in eval mode.

        Args:
            plain: a variant without adapters (the plain model); salt: a SALT variant; naive: its naive
                counterpart.

        Returns:
            Calls named ``plain`` (the plain model), SALT merged into plain layers, SALT unmerged with the
            cached ``W'``, SALT unmerged rebuilding ``W'`` in every call (as after each parameter change),
            and naive SALT.
        """
        models = {key: self.build(key).model.eval() for key in (plain, salt, naive)}
        shared = {id(t): t for t in (*models[salt].parameters(), *models[salt].buffers())}
        merged = merge(copy.deepcopy(models[salt], shared))
        layers = [layer for _, layer in adapter_layers(models[salt])]

        def rebuilt() -> torch.Tensor:
            for layer in layers:
                layer.clear_cache()
            return models[salt](self.images)

        calls = {
            "plain": lambda: models[plain](self.images),
            f"{salt} merged": lambda: merged(self.images),
            f"{salt} unmerged, eval (cached W')": lambda: models[salt](self.images),
            f"{salt} unmerged, W' rebuilt per call": rebuilt,
            naive: lambda: models[naive](self.images),
        }
        return {key: torch.no_grad()(self.autocasting()(call)) for key, call in calls.items()}
