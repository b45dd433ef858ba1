"""Train a PEFT method on SAM: `python train.py dataset=drive peft=salt` (see configs/train.yaml)."""

import os
from pathlib import Path

os.environ.setdefault("SALT_ROOT", str(Path(__file__).resolve().parent))

import hydra
from omegaconf import DictConfig

from hydra_plugins.salt_launchers.skip_done import register

register()  # hydra/launcher=submitit_local|submitit_slurm, before Hydra reads its config store


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from salt.cli import run_job
    from salt.train.run import train

    result = run_job(train, cfg) or {}
    return (result.get("mean") or {}).get("dice")


if __name__ == "__main__":
    import sys

    from salt.errors import ConfigError
    from salt.train.optim import refuse_moved_overrides

    try:
        refuse_moved_overrides(sys.argv[1:])  # before Hydra, whose refusal does not say where they went
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    main()
