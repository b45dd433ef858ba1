"""Runs recorded before objects were named by ``_target_`` still build the same network and get the same row."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from salt.model.factory import build_network
from salt.recorded import upgrade_run_config
from salt.results.collect import row_label

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PATHS = {"checkpoint_dir": "checkpoints"}


def _today(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "dataset.img_size=64"])
    return {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "peft", "dataset", "prompt")}


def _state(cfg: dict) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model, _ = build_network({**cfg, "paths": PATHS})
    return model.state_dict()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# A SALT run on the tiny SAM and a U-Net run as the previous version recorded them in config.yaml.
OLD_SALT = {
    "model": {
        "_target_": "salt.model.build_sam",
        "variant": "tiny",
        "checkpoint": None,
        "default_file": None,
        "img_size": 64,
        "trainable": ["norm", "pos_embed", "prompt"],
        "adapters": {},
        "paper_param_denominator": None,
    },
    "peft": {
        "method": "salt",
        "target_modules": r"image_encoder\.(blocks\.\d+\.(attn\.(qkv|proj)|mlp\.lin[12])|neck\.[02])",
        "rank": 24,
        "rank_pattern": {r"mlp\.lin[12]": 4, r"neck\.[02]": 8},
        "lora_rank": 4,
        "relu": "full",
        "init": "zero",
        "execution": "auto",
        "reg_weight": 0.0,
        "companions": [],
    },
    "dataset": {"name": "synthetic", "num_classes": 1, "img_size": 64},
    "prompt": {"mode": "class"},
}
OLD_UNET = {
    "model": {
        "family": "classic",
        "name": "unet",
        "variant": "unet",
        "img_size": 64,
        "kwargs": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
        "trainable": [],
        "paper_param_denominator": None,
    },
    "peft": {"method": "salt", "rank": None, "lora_rank": 4},
    "dataset": {"name": "synthetic", "num_classes": 2, "img_size": 64},
    "prompt": {"mode": "class"},
}


def test_old_salt_record_builds_todays_network() -> None:
    upgraded = upgrade_run_config(OLD_SALT)
    assert upgraded["peft"]["_target_"] == "salt.peft.salt.Salt" and "method" not in upgraded["peft"]
    assert upgraded["model"]["tag"] == "tiny" and upgraded["model"]["num_classes"] == 1
    assert _same(_state(OLD_SALT), _state(_today(["model=sam_tiny", "peft=salt"])))


def test_old_classic_record_builds_todays_network() -> None:
    upgraded = upgrade_run_config(OLD_UNET)["model"]
    assert upgraded["net"]["_target_"] == "monai.networks.nets.UNet"
    assert upgraded["net"]["channels"] == [4, 8, 16] and upgraded["net"]["out_channels"] == 2
    net = ["model.net.channels=[4,8,16]", "model.net.strides=[2,2]", "model.net.num_res_units=1"]
    today = _today(["model=unet", "dataset.num_classes=2", *net])
    assert _same(_state(OLD_UNET), _state(today))


def test_old_records_keep_their_table_rows() -> None:
    decoder = {"model": {"variant": "vit_b", "default_file": "medsam_vit_b.pth", "trainable": ["decoder"]}}
    runs = {
        "U-Net": {"config": OLD_UNET, "method": "none"},
        "SALT (rank 4) [tiny]": {"config": OLD_SALT, "method": "salt"},
        "Decoder-only [medsam_vit_b]": {"config": {**decoder, "peft": {"method": "none"}}, "method": "none"},
    }
    assert {row_label(metrics, Path("metrics.json")) for metrics in runs.values()} == set(runs)
