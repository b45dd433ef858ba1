"""What a backbone family declares: how it is built and loaded, its input contract and its trainable groups.

A family (SAM's ViT, LiteMedSAM's TinyViT, ...) is one :class:`Backbone` subclass in its own module,
registered in ``salt.model.backbones.BACKBONES``. Nothing outside that module knows the family's module
names: what each PEFT method adapts and at which ranks is declared next to it, in the model config
(``configs/model/<name>.yaml``, key ``adapters``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from torch import nn

from salt.errors import ConfigError
from salt.model.checkpoint import CheckpointError, read_state_dict
from salt.model.segmenter import SamSegmenter

GroupFn = Callable[[SamSegmenter], Iterable[str]]


class BackboneError(ConfigError):
    """A setting the backbone cannot take (input size, trainable group, variant); one-line message."""


def module_parameters(model: nn.Module, prefix: str) -> list[str]:
    """Names of every parameter below the submodule ``prefix`` of ``model``."""
    return [f"{prefix}.{name}" for name, _ in model.get_submodule(prefix).named_parameters()]


def parameters_of_type(model: nn.Module, prefixes: Iterable[str], types: tuple[type, ...]) -> list[str]:
    """Names of the parameters owned by modules of ``types`` below each submodule in ``prefixes``."""
    names = []
    for prefix in prefixes:
        for name, module in model.get_submodule(prefix).named_modules():
            if isinstance(module, types):
                names += [
                    ".".join(p for p in (prefix, name, pname) if p)
                    for pname, _ in module.named_parameters(recurse=False)
                ]
    return names


class Backbone(ABC):
    """One SAM-family encoder: builder, weights, input contract, trainable groups, eval-mode modules.

    Attributes:
        name: the registry key (``sam``, ``medsam_lite``), recorded on every model it builds.
        variants: the variant names it builds (``vit_b``, ``tiny``, ``medsam_lite`` ...), unique across families.
        norm_types: module types whose parameters form the ``norm`` trainable group.
        frozen_stat_types: module types kept in eval mode while training (their running statistics frozen).
    """

    name: ClassVar[str]
    variants: ClassVar[tuple[str, ...]]
    norm_types: ClassVar[tuple[type[nn.Module], ...]]
    frozen_stat_types: ClassVar[tuple[type[nn.Module], ...]] = ()

    @abstractmethod
    def default_img_size(self, variant: str) -> int:
        """The input side the variant's official weights were trained at."""

    @abstractmethod
    def check_img_size(self, img_size: int) -> None:
        """Raise :class:`BackboneError` unless the encoder can take square inputs of side ``img_size``."""

    @abstractmethod
    def build(self, variant: str, img_size: int, num_classes: int) -> SamSegmenter:
        """A randomly initialised segmenter of ``variant`` for inputs ``(B, 3, img_size, img_size)``."""

    @abstractmethod
    def load(self, model: SamSegmenter, checkpoint: str | Path, variant: str) -> None:
        """Load weights into ``model`` in place, with the exact missing/unexpected key sets asserted.

        ``checkpoint`` is a file path, or a name the family resolves itself (``bundled``).

        Raises:
            CheckpointError: missing/unreadable/corrupted file, another family's or variant's file, or key
                sets other than the expected ones (one-line message naming the file).
        """

    def prepare_export(self, model: SamSegmenter) -> None:
        """Make ``model`` traceable with a free batch dimension, in place, computing the same outputs.

        A family whose code reads the batch size as a Python number (which a tracer freezes at the example's
        size) works around it here; by default there is nothing to do.
        """
        return None

    def weights_file(self, checkpoint: str) -> str:
        """The file a ``checkpoint`` setting loads (a path as given; a name such as ``bundled`` resolved)."""
        return checkpoint

    def groups(self) -> dict[str, GroupFn]:
        """Trainable groups: name -> function giving the parameter names of a model in that group.

        Every family has ``norm`` (its ``norm_types`` in the image encoder and the decoder's two-way
        transformer, not the decoder's upscaling head, which the paper keeps frozen with the decoder),
        ``prompt`` (the learned prompts), ``decoder`` and ``encoder``; a family adds its own (``pos_embed``).
        """
        return {
            "norm": lambda m: parameters_of_type(
                m, ("image_encoder", "mask_decoder.transformer"), self.norm_types
            ),
            "prompt": lambda m: m.prompt_parameter_names(),
            "decoder": lambda m: module_parameters(m, "mask_decoder"),
            "encoder": lambda m: module_parameters(m, "image_encoder"),
        }

    def read(self, path: str | Path) -> dict:
        """The state dict in ``path`` (see :func:`salt.model.checkpoint.read_state_dict`)."""
        return read_state_dict(path)

    def load_exact(self, model: SamSegmenter, state_dict: dict, path: str | Path) -> None:
        """``load_state_dict`` non-strict, then demand: missing = the segmenter's own keys, unexpected = none."""
        result = model.load_state_dict(state_dict, strict=False)
        expected_missing = set(model.extra_state_keys())
        missing, unexpected = set(result.missing_keys), set(result.unexpected_keys)
        if missing != expected_missing or unexpected:
            extra = sorted(missing - expected_missing)[:5]
            raise CheckpointError(
                f"{path}: checkpoint keys do not match the {self.name} model "
                f"(missing {extra}, unexpected {sorted(unexpected)[:5]})"
            )
