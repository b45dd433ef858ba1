"""Reading weights files: one-line errors for missing, empty, truncated and non-checkpoint files.

Each backbone family (``salt.model.backbones``) loads what it reads here non-strictly, then asserts the
exact missing/unexpected key sets, so a partial load can never pass silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from salt.errors import UserError

CHECKPOINTS_HELP = "see checkpoints/README.md for the official file names and download addresses"


class CheckpointError(UserError, ValueError):
    """A checkpoint file is missing, unreadable or does not fit the requested model (one-line message)."""


# torch.load's weights-only refusal opens with paragraphs of advice; what the file held follows this marker.
_UNPICKLER_MARKER = "WeightsUnpickler error:"


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load`` failed, as one whole sentence: the exception's type and the first sentence of its
    message (for a weights-only refusal, of what the file held rather than torch's advice)."""
    text = str(exc)
    if _UNPICKLER_MARKER in text:
        text = text.split(_UNPICKLER_MARKER, 1)[1]
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0].rstrip(".")
    return f"{type(exc).__name__}: {sentence}" if sentence else type(exc).__name__


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (plain, or wrapped under ``model``/``state_dict``).

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
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or wrong format: {load_failure(exc)})"
        ) from None
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path}: file holds no state dict of tensors, so it is not a SAM checkpoint")
    return obj
