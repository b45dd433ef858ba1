"""Evaluate a trained run: `python eval.py ckpt=outputs/train/runs/<time> dataset=drive split=test`."""

import os
from pathlib import Path

os.environ.setdefault("SALT_ROOT", str(Path(__file__).resolve().parent))

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> float | None:
    from salt.cli import run_job
    from salt.inference.evaluate import evaluate

    result = run_job(evaluate, cfg) or {}
    return (result.get("mean") or {}).get("dice")


if __name__ == "__main__":
    main()
