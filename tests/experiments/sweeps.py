"""An experiment's sweep expanded into runs and composed as ``python train.py experiment=<name>`` would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from salt.results.collect import row_label

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
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
    "table1_classic_reduced": {"U-Net", "UNETR", "RegUNet", "DeepLabV3+", "SegFormer", "SegNet"},
}


@contextmanager
def hydra_configs() -> Iterator[None]:
    """Hydra initialised on the project's configs; the global HydraConfig is cleared on exit."""
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            yield
    finally:
        HydraConfig.instance().cfg = None


def compose_run(
    experiment: str, overrides: list[str], output_dir: str = "/tmp/salt-experiment"
) -> DictConfig:
    """``train.yaml`` with ``experiment=<name>`` and ``overrides``, with its ``hydra`` node.

    Call inside :func:`hydra_configs`. The HydraConfig is set to this run, so ``${hydra:...}`` resolves, and
    ``paths.output_dir`` resolves to ``output_dir``.
    """
    cfg = compose("train", overrides=[f"experiment={experiment}", *overrides], return_hydra_config=True)
    OmegaConf.set_readonly(cfg, False)
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.runtime.output_dir = output_dir
    HydraConfig.instance().set_config(cfg)
    return cfg


def sweep_runs(cfg: DictConfig) -> list[list[str]]:
    """Every run of ``hydra.sweeper.params`` (the cartesian product), as override lists, in launch order."""
    params = cfg.hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [run for batch in batches for run in batch]


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


def describe(cfg: DictConfig) -> dict:
    """What identifies a run in the results: table row, data set, seed and output sub-folder."""
    job = OmegaConf.to_container(cfg, resolve=True)
    hydra = job.pop("hydra")
    metrics = {"config": job, "task": "train" if job["fit"] else "eval"}
    return {
        "row": row_label(metrics, Path("metrics.json")),
        "dataset": job["dataset"]["name"],
        "seed": job["seed"],
        "subdir": str(hydra["sweep"]["subdir"]),
        "job": job,
    }
