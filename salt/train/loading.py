"""Rebuilding a trained model from a run folder, a Lightning checkpoint or an adapter file."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import torch

from salt.train.errors import ConfigError
from salt.train.module import SegmentationModule

log = logging.getLogger(__name__)


def find_checkpoint(path: str | Path) -> Path:
    """The file to load for ``path``: itself, or in a run folder ``checkpoints/best.ckpt``, then
    ``checkpoints/last.ckpt``, then ``adapter.safetensors``."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "adapter.safetensors"):
            if (path / candidate).is_file():
                return path / candidate
        raise ConfigError(
            f"ckpt={path}: folder holds no checkpoints/best.ckpt, last.ckpt or adapter.safetensors"
        )
    if not path.is_file():
        raise ConfigError(f"ckpt={path}: file not found")
    if path.suffix not in (".ckpt", ".safetensors"):
        raise ConfigError(f"ckpt={path}: expected a run folder, a .ckpt or an adapter .safetensors file")
    return path


def load_trained(
    ckpt: str | Path, base_checkpoint: str | None = None, dataset: dict | None = None
) -> tuple[SegmentationModule, dict]:
    """Rebuild the trained module recorded in ``ckpt``.

    Args:
        ckpt: a run folder, a ``.ckpt`` written by training, or an ``adapter.safetensors``.
        base_checkpoint: a SAM weights file replacing the one recorded at training time.
        dataset: a data-set config replacing the recorded one (its ``num_classes`` must match).

    Returns:
        ``(module, run_cfg)`` with the module in eval mode on the CPU.
    """
    path = find_checkpoint(ckpt)
    if path.suffix == ".ckpt":
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            run_cfg = state["hyper_parameters"]["cfg"]
        except Exception as exc:  # any unreadable file means the same to the user
            raise ConfigError(
                f"ckpt={path}: not a readable training checkpoint ({type(exc).__name__})"
            ) from None
    else:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise ConfigError(f"ckpt={path}: its metadata file {sidecar.name} is missing")
        run_cfg = json.loads(sidecar.read_text()).get("metadata", {}).get("config")
        if run_cfg is None:
            raise ConfigError(f"ckpt={path}: {sidecar.name} records no run configuration")
    run_cfg = copy.deepcopy(run_cfg)
    if base_checkpoint is not None:
        run_cfg["model"]["checkpoint"] = base_checkpoint
    if dataset is not None:
        if int(dataset["num_classes"]) != int(run_cfg["dataset"]["num_classes"]):
            raise ConfigError(
                f"dataset={dataset['name']} has {dataset['num_classes']} classes, the checkpoint was trained "
                f"for {run_cfg['dataset']['num_classes']}"
            )
        run_cfg["dataset"] = dataset
    module = SegmentationModule(run_cfg)
    if path.suffix == ".ckpt":
        module.on_load_checkpoint(state)
        module.load_state_dict(state["state_dict"], strict=False)
    else:
        from salt.peft import load_adapter

        load_adapter(module.model, path)
    log.info("loaded %s", path)
    return module.eval(), run_cfg
