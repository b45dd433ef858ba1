"""``configs/dataset/*.yaml``: every key the data layer reads is present, commented and accepted by it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from salt.data import ensure_synthetic
from salt.data.reading import normalise_label_map
from salt.data.synthetic import make_style
from salt.data.transforms import RESIZE_MODES

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "dataset"
NAMES = ["synthetic", "drive", "rose", "arcade", "dias", "xray_angio"]
KEYS = {"name", "root", "img_size", "resize", "num_classes", "class_names", "label_map", "spacing"}


@pytest.mark.parametrize("name", NAMES)
def test_dataset_config_is_complete_and_usable(name: str) -> None:
    path = CONFIGS / f"{name}.yaml"
    cfg = OmegaConf.merge({"paths": {"data_dir": "/data"}}, {"dataset": OmegaConf.load(path)}).dataset
    assert set(cfg) >= KEYS, KEYS - set(cfg)
    assert cfg.name == name and cfg.root == f"/data/{name}"
    assert cfg.img_size == (224 if name == "synthetic" else 512)
    assert cfg.resize in RESIZE_MODES and len(cfg.class_names) == cfg.num_classes
    normalise_label_map(cfg.label_map, cfg.num_classes)
    for line in path.read_text().splitlines():  # every key carries a comment
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"{path.name}: uncommented line {line!r}"


def test_synthetic_settings_match_the_generator() -> None:
    synthetic = OmegaConf.to_container(OmegaConf.load(CONFIGS / "synthetic.yaml").synthetic)
    generator = set(inspect.signature(ensure_synthetic).parameters) - {"root", "style"}
    style = {k: v for k, v in synthetic.items() if k not in generator}
    assert generator <= set(synthetic)
    make_style(**style)  # raises on an unknown or invalid style key
