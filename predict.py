"""Segment a folder of images: `python predict.py ckpt=outputs/train/runs/<time> input=DIR output=DIR`."""

import os
from pathlib import Path

os.environ.setdefault("SALT_ROOT", str(Path(__file__).resolve().parent))

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    from salt.cli import run_job
    from salt.inference.predict import predict

    run_job(predict, cfg)


if __name__ == "__main__":
    main()
