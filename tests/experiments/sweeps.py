"""An experiment's sweep expanded into runs and composed as ``python train.py experiment=<name>`` would."""

from __future__ import annotations

from omegaconf import DictConfig

from salt.experiments import CONFIGS, compose_run, describe, experiments, hydra_configs, sweep_runs

__all__ = [
    "CONFIGS",
    "EXPERIMENTS",
    "REDUCED_TABLE1_ROWS",
    "axes",
    "compose_run",
    "describe",
    "hydra_configs",
    "sweep_runs",
]

EXPERIMENTS = experiments()

# The table rows each reduced Table 1 experiment produces.
REDUCED_TABLE1_ROWS = {
    "table1_reduced": {
        "SALT (rank 4) [tiny]",
        "SALT (rank 256) [tiny]",
        "LoRA (rank 4) [tiny]",
        "LoRA (rank 32) [tiny]",
        "S-SAM [tiny]",
    },
    "table1_zero_shot_reduced": {"SAM, text prompt only [tiny]"},
    "table1_sam2_reduced": {
        "SALT (rank 4) [sam2.1_hiera_tiny]",
        "SALT (rank 256) [sam2.1_hiera_tiny]",
        "LoRA (rank 4) [sam2.1_hiera_tiny]",
        "S-SAM [sam2.1_hiera_tiny]",
    },
    "table1_classic_reduced": {"U-Net", "UNETR", "RegUNet", "DeepLabV3+", "SegFormer", "SegNet"},
}


def axes(cfg: DictConfig) -> dict[str, list[str]]:
    """Swept key -> its values as override strings (``"+method=salt_l4"`` ...), from ``hydra.sweeper.params``."""
    out: dict[str, list[str]] = {}
    for run in sweep_runs(cfg):
        for override in run:
            key = override.split("=", 1)[0]
            out.setdefault(key, [])
            if override not in out[key]:
                out[key].append(override)
    return out
