"""Adapter checkpoints: the trainable tensors in safetensors plus a JSON sidecar.

``save_adapter(model, "run/adapter.safetensors")`` writes the tensors of :func:`adapter_state_dict` and
``run/adapter.json``::

    {"method": "salt", "injections": [{"method", "target_modules", "options", "targets"}, ...],
     "base_fingerprint": "<sha256>", "salt_version": "0.1.0",
     "tensors": {"count": n, "parameters": p}, "metadata": {...}}

(``method`` joins the methods with ``+`` when several injections were made; ``none`` when there was none.)
``load_adapter`` re-injects those records into a fresh base model, refuses a base whose frozen weights
differ from the one trained on, and loads the tensors with exact key checks. Buffers derived from the base
(the SVD buffers, peft's VeRA projections from their seed, OSF's frozen subspaces) are not in the file:
they are recomputed at injection from the base weight, which the fingerprint guarantees is the same.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import salt
from salt.errors import UserError
from salt.peft.counting import adapter_parameter_names
from salt.peft.layer import adapter_modules, owned_state_names
from salt.peft.registry import canonical_name, inject, injections, tensor_samples

log = logging.getLogger(__name__)


class AdapterError(UserError, ValueError):
    """An adapter file is missing, unreadable or does not fit the model (one-line message)."""


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of an adapter file: the same path with suffix ``.json``."""
    return Path(path).with_suffix(".json")


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter with ``requires_grad=True`` and every adapter parameter
    (:func:`~salt.peft.counting.adapter_parameter_names`), by its ``named_parameters()`` name (detached)."""
    adapters = adapter_parameter_names(model)
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad or name in adapters}


def base_fingerprint(model: nn.Module, exclude: set[str]) -> str:
    """SHA-256 over the frozen base: every state-dict tensor not in ``exclude`` and not added by an adapter.

    Each tensor contributes its base-model name, shape and the ``FINGERPRINT_SAMPLES`` values of
    :func:`~salt.peft.registry.tensor_samples`, so the hash is cheap, exact (no floating-point sums) and the
    same before and after injection: a base tensor that an injection rewrote contributes the samples its
    record kept from before (``base_samples``).
    """
    added = {f"{name}.{key}" for name, module in adapter_modules(model) for key in owned_state_names(module)}
    skip = {canonical_name(n) for n in exclude | adapter_parameter_names(model) | added}
    kept = {
        key: base64.b64decode(value)
        for r in injections(model)
        for key, value in r.get("base_samples", {}).items()
    }
    digest = hashlib.sha256()
    for name, tensor in sorted((canonical_name(n), t) for n, t in model.state_dict().items()):
        if name in skip:
            continue
        digest.update(f"{name}:{tuple(tensor.shape)}:".encode())
        digest.update(kept[name] if name in kept else tensor_samples(tensor))
    return digest.hexdigest()


def save_adapter(model: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the trainable tensors of ``model`` to ``path`` (safetensors) and the sidecar next to it.

    Returns:
        The sidecar path.
    """
    path, sidecar = Path(path), sidecar_path(path)
    if sidecar == path:
        raise AdapterError(f"{path}: an adapter file needs a suffix other than .json (its sidecar is .json)")
    tensors = {name: t.contiguous().cpu() for name, t in adapter_state_dict(model).items()}
    records = injections(model)
    info = {
        "method": "+".join(r["method"] for r in records) or "none",
        "injections": records,
        "base_fingerprint": base_fingerprint(model, set(tensors)),
        "salt_version": salt.__version__,
        "tensors": {"count": len(tensors), "parameters": sum(t.numel() for t in tensors.values())},
        "metadata": metadata or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    sidecar.write_text(json.dumps(info, indent=2) + "\n")
    log.info("saved %d adapter tensors to %s", len(tensors), path)
    return sidecar


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    sidecar = sidecar_path(path)
    if not path.is_file():
        raise AdapterError(f"{path}: adapter file not found")
    if not sidecar.is_file():
        raise AdapterError(f"{sidecar}: sidecar not found (save_adapter writes it next to {path.name})")
    try:
        info = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterError(f"{sidecar}: not valid JSON ({exc})") from None
    missing = [key for key in ("injections", "base_fingerprint") if key not in info]
    if missing:
        raise AdapterError(
            f"{sidecar}: sidecar lacks the key {missing[0]!r}; it was not written by save_adapter"
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise AdapterError(f"{path}: not a readable safetensors file ({exc})") from None
    return info, tensors


def _ensure_injected(model: nn.Module, wanted: list[dict[str, Any]], path: Path) -> None:
    current = json.loads(json.dumps(injections(model)))
    if current == wanted:
        return
    if current:
        methods = "+".join(r["method"] for r in current)
        raise AdapterError(
            f"{path}: the model already has {methods} adapters that differ from the file's; load it into a fresh base model"
        )
    for record in wanted:
        names = inject(model, record["method"], record["target_modules"], **record["options"])
        if names != record["targets"]:
            raise AdapterError(
                f"{path}: the file adapts {len(record['targets'])} modules, this model matches {len(names)}"
            )


def _check_keys(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    params = dict(model.named_parameters())
    unexpected = sorted(set(tensors) - set(params))
    if unexpected:
        raise AdapterError(
            f"{path}: {len(unexpected)} tensors are not parameters of the model (first: {unexpected[0]})"
        )
    for name, tensor in tensors.items():
        if tensor.shape != params[name].shape:
            raise AdapterError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)}, the model expects {tuple(params[name].shape)}"
            )
    missing = sorted(adapter_parameter_names(model) - set(tensors))
    if missing:
        raise AdapterError(
            f"{path}: {len(missing)} adapter tensors are missing from the file (first: {missing[0]})"
        )


def load_adapter(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load an adapter saved by :func:`save_adapter` into ``model`` (a freshly built, pretrained base).

    Injects the recorded methods unless ``model`` already carries exactly them, then copies every tensor
    of the file into the parameter of the same name. ``requires_grad`` flags are left as they are.

    Returns:
        The sidecar dict.

    Raises:
        AdapterError: missing/unreadable files, other adapters already injected, a base model whose
            frozen weights differ from those trained on, or key/shape mismatches.
    """
    path = Path(path)
    info, tensors = _read(path)
    fingerprint = base_fingerprint(model, set(tensors))
    if fingerprint != info["base_fingerprint"]:
        raise AdapterError(
            f"{path}: the base model's frozen weights differ from those the adapter was trained on "
            f"(fingerprint {fingerprint[:12]} != {info['base_fingerprint'][:12]}); load the same pretrained checkpoint first"
        )
    _ensure_injected(model, info["injections"], path)
    _check_keys(model, tensors, path)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor)
    log.info("loaded %d adapter tensors from %s", len(tensors), path)
    return info
