"""An experiment's sweep expanded into its runs, composed exactly as ``python train.py experiment=<name>`` would.

Hydra has no dry run for a multirun; this module expands ``hydra.sweeper.params`` with Hydra's own basic
sweeper and composes each run, so ``scripts/list_runs.py`` can show every run before any starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from salt import CONFIG_DIR
from salt.errors import ConfigError
from salt.results.collect import row_label

CONFIGS = CONFIG_DIR


def experiments() -> list[str]:
    """Names of the experiment files in ``configs/experiment``."""
    return sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


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
    """``train.yaml`` with ``experiment=<name>`` and ``overrides``, including its ``hydra`` node.

    Call inside :func:`hydra_configs`. The HydraConfig is set to this run, so ``${hydra:...}`` resolves and
    ``paths.output_dir`` resolves to ``output_dir``.
    """
    cfg = compose("train", overrides=[f"experiment={experiment}", *overrides], return_hydra_config=True)
    OmegaConf.set_readonly(cfg, False)
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.runtime.output_dir = output_dir
    HydraConfig.instance().set_config(cfg)
    return cfg


def sweep_runs(cfg: DictConfig) -> list[list[str]]:
    """Every run of ``hydra.sweeper.params`` (the cartesian product) as override lists, in launch order."""
    params = cfg.hydra.sweeper.params or {}
    parsed = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [run for batch in batches for run in batch]


def describe(cfg: DictConfig) -> dict:
    """What identifies a composed run in the results: table row, data set, seed and output sub-folder."""
    job = OmegaConf.to_container(cfg, resolve=True)
    hydra = job.pop("hydra")
    metrics = {"config": job, "task": "train" if job.get("fit", True) else "eval"}
    return {
        "row": row_label(metrics, Path("metrics.json")),
        "dataset": job["dataset"]["name"],
        "seed": job["seed"],
        "subdir": str(hydra["sweep"]["subdir"]),
        "job": job,
    }


def list_runs(experiment: str, overrides: list[str] | None = None) -> list[dict]:
    """Every run ``experiment`` launches: ``{"overrides", "row", "dataset", "seed", "subdir", "job"}`` each."""
    overrides = list(overrides or [])
    if experiment not in experiments():
        raise ConfigError(f"experiment={experiment!r} does not exist; valid: {', '.join(experiments())}")
    with hydra_configs():
        base = compose_run(experiment, overrides)
        runs = sweep_runs(base) or [[]]
        given = {o.split("=", 1)[0].lstrip("+") for o in overrides}
        out = []
        for run in runs:
            # A key given on the command line replaces the swept one, as in a real launch.
            kept = [o for o in run if o.split("=", 1)[0].lstrip("+") not in given]
            out.append({"overrides": kept, **describe(compose_run(experiment, [*kept, *overrides]))})
    unique = {tuple(r["overrides"]): r for r in out}
    return list(unique.values())
