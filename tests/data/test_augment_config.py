"""``configs/augment``: one copy of the augmentation, composed into ``dataset.augment`` for every data set."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose
from omegaconf import OmegaConf

from salt.data import augment_settings, build_augmentation
from salt.data.layout import DatasetError
from salt.experiments import CONFIGS, hydra_configs

DATASETS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))


def _dataset(overrides: list[str]) -> dict:
    with hydra_configs():
        cfg = compose("train", overrides=overrides)
    return OmegaConf.to_container(cfg.dataset, resolve=False)


@pytest.mark.parametrize("name", DATASETS)
def test_every_data_set_gets_the_default_augmentation(name: str) -> None:
    dataset = _dataset([f"dataset={name}"])
    assert dataset["augment"] == augment_settings("default")
    assert len(build_augmentation(dataset["augment"]).transforms) == 4


def test_the_default_file_holds_the_papers_settings() -> None:
    assert augment_settings() == {
        "hflip_p": 0.5,
        "vflip_p": 0.0,  # not the paper's: off unless a recipe turns it on
        "rotate_limit": 10.0,
        "rotate_p": 0.5,
        "brightness_range": [0.5, 2.0],
        "brightness_p": 0.5,
        "scale_range": [0.8, 1.2],
        "scale_p": 0.5,
        "contrast_range": [0.5, 2.0],
        "contrast_p": 0.0,  # not the paper's: off unless a recipe turns it on
    }


def test_a_key_is_changed_from_the_command_line() -> None:
    dataset = _dataset(["dataset=drive", "dataset.augment.rotate_p=0.2"])
    assert dataset["augment"] == {**augment_settings(), "rotate_p": 0.2}


@pytest.mark.parametrize("override", ["augment=none", "~augment", "dataset.augment=null"])
def test_augmentation_is_turned_off(override: str) -> None:
    dataset = _dataset(["dataset=drive", override])
    assert build_augmentation(dataset.get("augment")) is None


def test_a_data_set_overrides_keys_of_its_own(tmp_path: Path) -> None:
    """A data-set file's ``augment:`` keys are merged after the group's (the defaults list's order)."""
    text = (CONFIGS / "dataset" / "rose.yaml").read_text() + "augment:\n  hflip_p: 0.0\n"
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "rose_noflip.yaml").write_text(text)
    with hydra_configs():
        cfg = compose("train", overrides=[f"hydra.searchpath=[file://{tmp_path}]", "dataset=rose_noflip"])
    assert OmegaConf.to_container(cfg.dataset.augment) == {**augment_settings(), "hflip_p": 0.0}


def test_unknown_option_names_the_options() -> None:
    with pytest.raises(DatasetError, match=r"augment: unknown option 'strong' \(valid: default, none\)"):
        augment_settings("strong")
