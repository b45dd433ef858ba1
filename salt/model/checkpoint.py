"""Loading official SAM / MedSAM checkpoints at any input size.

The official files (``sam_vit_b_01ec64.pth``, ``medsam_vit_b.pth``, ...) are plain state dicts of
``segment_anything.Sam`` at 1024 px. At another input size the absolute position embedding
``(1, 64, 64, C)`` is resized bicubically to ``(1, S/16, S/16, C)`` and the relative position tables of the
global-attention blocks ``(2*64-1, head_dim)`` linearly to ``(2*S/16-1, head_dim)``; window blocks keep
their ``(2*14-1, head_dim)`` tables. The load is non-strict with the exact missing/unexpected key sets
asserted, so a partial load can never pass silently.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

CHECKPOINTS_HELP = "see checkpoints/README.md for the official file names and download addresses"
_REL_POS = re.compile(r"image_encoder\.blocks\.\d+\.attn\.rel_pos_[hw]$")
_BLOCK = re.compile(r"image_encoder\.blocks\.(\d+)\.")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit the requested model (one-line message)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a SAM state dict from ``path`` (plain, or wrapped under ``model``/``state_dict``).

    Raises:
        CheckpointError: the file is missing, empty, truncated, or holds no tensor state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; {CHECKPOINTS_HELP}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty (0 bytes); download it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files; all mean the same to a user
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or wrong format: {reason})"
        ) from None
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path}: file holds no state dict of tensors, so it is not a SAM checkpoint")
    return obj


def detect_variant(state_dict: dict[str, torch.Tensor], variants: dict) -> str | None:
    """Name of the variant in ``variants`` whose encoder width and depth match ``state_dict``, or None."""
    weight = state_dict.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        return None
    depth = len({int(m.group(1)) for k in state_dict if (m := _BLOCK.match(k))})
    for name, arch in variants.items():
        if arch.embed_dim == weight.shape[0] and arch.depth == depth:
            return name
    return None


def _resize_pos_embed(pos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    x = pos.permute(0, 3, 1, 2).float()  # (1, C, H0, W0)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False)  # (1, C, H, W)
    return x.permute(0, 2, 3, 1).to(pos.dtype)  # (1, H, W, C)


def _resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    x = table.t().unsqueeze(0).float()  # (1, head_dim, L0)
    x = F.interpolate(x, size=length, mode="linear", align_corners=False)  # (1, head_dim, L)
    return x.squeeze(0).t().to(table.dtype)  # (L, head_dim)


def adapt_state_dict(
    state_dict: dict[str, torch.Tensor], target: dict[str, torch.Tensor], path: str | Path
) -> dict[str, torch.Tensor]:
    """Resize the size-dependent tensors of ``state_dict`` to the shapes in ``target``.

    Only ``image_encoder.pos_embed`` and the ``rel_pos_h``/``rel_pos_w`` tables may differ; any other
    shape mismatch raises :class:`CheckpointError` naming the key.
    """
    out = dict(state_dict)
    for key, value in state_dict.items():
        want = target.get(key)
        if want is None or want.shape == value.shape:
            continue
        if key == "image_encoder.pos_embed":
            out[key] = _resize_pos_embed(value, (want.shape[1], want.shape[2]))
        elif _REL_POS.match(key):
            out[key] = _resize_rel_pos(value, want.shape[0])
        else:
            raise CheckpointError(
                f"{path}: tensor {key} has shape {tuple(value.shape)}, the model expects {tuple(want.shape)}"
            )
        log.info("resized %s from %s to %s", key, tuple(value.shape), tuple(want.shape))
    return out


def load_sam_checkpoint(model: nn.Module, path: str | Path, variant: str) -> None:
    """Load an official SAM checkpoint into a :class:`~salt.model.SamSegmenter` in place.

    Raises:
        CheckpointError: missing/unreadable file, a checkpoint of another variant, or key sets that differ
            from the expected ones (missing: exactly the segmenter's own additions; unexpected: none).
    """
    from salt.model.build import VARIANTS

    state_dict = read_state_dict(path)
    found = detect_variant(state_dict, VARIANTS)
    if found is None:
        raise CheckpointError(f"{path}: not a SAM checkpoint (no SAM image encoder of a known size inside)")
    if found != variant:
        raise CheckpointError(f"{path}: this is a {found} checkpoint, but variant {variant!r} was requested")
    target = model.state_dict()
    state_dict = adapt_state_dict(state_dict, target, path)
    result = model.load_state_dict(state_dict, strict=False)
    expected_missing = set(model.extra_state_keys())
    missing, unexpected = set(result.missing_keys), set(result.unexpected_keys)
    if missing != expected_missing or unexpected:
        extra = sorted(missing - expected_missing)[:5]
        raise CheckpointError(
            f"{path}: checkpoint keys do not match the model (missing {extra}, unexpected {sorted(unexpected)[:5]})"
        )
    log.info("loaded %s checkpoint %s", variant, path)
