"""Export a trained run for deployment: `python export.py ckpt=outputs/train/runs/<time> format=onnx output=model.onnx`."""

import os
from pathlib import Path

os.environ.setdefault("SALT_ROOT", str(Path(__file__).resolve().parent))

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="export")
def main(cfg: DictConfig) -> None:
    from salt.cli import run_job
    from salt.export.job import export

    run_job(export, cfg)


if __name__ == "__main__":
    main()
