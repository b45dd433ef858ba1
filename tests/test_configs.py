"""Every option of every config group composes with train.yaml, resolves and builds; eval/predict compose."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hydra_plugins.salt_launchers.skip_done import register
from salt.data import VesselDataset
from salt.data.shapes import ensure_shapes
from salt.data.synthetic import generate, make_style
from salt.errors import ConfigError
from salt.model.factory import build_network
from salt.train.optim import build_schedule, instantiate_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GROUPS = (
    "augment",
    "dataset",
    "model",
    "peft",
    "prompt",
    "optim",
    "schedule",
    "loss",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "hydra",
    "debug",
    "experiment",
)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def _compose(name: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
        OmegaConf.set_readonly(cfg, False)
        OmegaConf.set_struct(cfg, False)
        cfg.hydra.runtime.output_dir = "/tmp/salt-config-test"
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)


CASES = [(group, option) for group in GROUPS for option in options(group)]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic 64 px images with FOV masks, for building each data-set option's dataset."""
    root = tmp_path_factory.mktemp("configs") / "synthetic"
    generate(root, n=6, size=64, seed=0, style=make_style())
    return root


def _build(group: str, option: str, cfg: dict, data: Path) -> None:
    """Build what option ``group=option`` configures, so that a wrong value fails here and not in a run."""
    # tests/classic builds the classic networks
    if group == "model" and cfg["model"]["_target_"] != "salt.classic.ClassicSegmenter":
        bare = {**cfg, "peft": {"_target_": "salt.peft.none.NoAdapter"}}
        try:
            with torch.device("meta"):  # the architecture only: no memory, no weights file
                build_network({**bare, "model": {**cfg["model"], "checkpoint": None}})
        except (
            RuntimeError,
            ConfigError,
        ) as exc:  # a builder that computes values (TinyViT): small, so built for real
            if "meta" not in str(exc):
                raise
            build_network(bare)
    elif group == "prompt":  # the prompt mode set on the tiny SAM, and its trainable prompt tensors
        model, _ = build_network(
            _compose("train", [f"prompt={option}", "model=sam_tiny", "dataset.img_size=64"])
        )
        assert model.prompt_mode == cfg["prompt"]["mode"] and any(
            p.requires_grad for p in model.prompt_encoder.parameters()
        ) == (option != "class")
    elif group == "peft":  # the method on the tiny SAM, adapters and all
        build_network(_compose("train", [f"peft={option}", "model=sam_tiny", "dataset.img_size=64"]))
    elif group in (
        "optim",
        "schedule",
    ):  # an optimiser for one tensor, and its schedule over 10 steps of 5 an epoch
        optimizer = instantiate_config("optim", cfg["optim"], [torch.nn.Parameter(torch.zeros(2))])
        assert type(optimizer).__module__.startswith("torch.optim")
        build_schedule(cfg["schedule"], optimizer, total_steps=10, steps_per_epoch=5.0)
    elif group == "loss":
        loss = instantiate_config("loss", {k: v for k, v in cfg["loss"].items() if k != "within_fov"})
        logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
        assert torch.isfinite(loss(logits, target))
    elif group == "dataset":
        dataset = cfg["dataset"]
        settings = {k: dataset[k] for k in ("img_size", "resize", "label_map", "num_classes", "slice_axis")}
        if "shapes" in dataset:  # a generated set of its own: a small copy of it, in its own label values
            data = ensure_shapes(data.parent / option, **{**dataset["shapes"], "n": 6, "size": 64})
        assert VesselDataset(data, "train", augment=dataset["augment"], **settings)[0]["mask"].any()
    for entry in [*(cfg.get("logger") or {}).values(), *(cfg.get("callbacks") or {}).values()]:
        instantiate(entry)
    trainer = dict(cfg["trainer"])
    if trainer.get("accelerator") == "gpu" and not torch.cuda.is_available():
        trainer["accelerator"] = "cpu"  # everything else of a GPU trainer is still built and checked
    instantiate(trainer, logger=False)


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes_and_builds(group: str, option: str, tiny_data: Path) -> None:
    cfg = _compose("train", [f"{group}={option}"])
    for key in ("dataset", "model", "peft", "trainer", "optim", "loss", "data", "eval"):
        assert key in cfg, key
    assert cfg["trainer"]["_target_"] == "lightning.pytorch.Trainer"
    _build(group, option, cfg, tiny_data)


def test_every_group_has_options() -> None:
    for group in ("dataset", "model", "peft", "trainer", "logger", "debug"):
        assert options(group), group


def test_defaults_are_the_embedded_job() -> None:
    cfg = _compose("train", [])
    assert cfg["dataset"]["name"] == "synthetic"
    assert cfg["model"]["variant"] == "medsam_lite" and cfg["model"]["checkpoint"] == "bundled"
    assert cfg["model"]["img_size"] == cfg["dataset"]["img_size"] == 256
    assert cfg["peft"]["_target_"] == "salt.peft.salt.Salt"
    # the synthetic set's short schedule; a real data set gets the paper's optimiser at a constant rate
    assert cfg["optim"]["_target_"] == "torch.optim.AdamW" and cfg["optim"]["lr"] > 1e-4
    assert cfg["schedule"]["_target_"] == "salt.train.optim.warmup_cosine"
    assert cfg["schedule"]["warmup_epochs"] == 0.25
    drive = _compose("train", ["dataset=drive", "model=sam_vit_b"])
    assert drive["optim"]["lr"] == pytest.approx(1e-4) and drive["schedule"] is None
    assert drive["optim"]["weight_decay"] == pytest.approx(1e-2) and drive["trainer"]["max_epochs"] == 200
    assert drive["dataset"]["img_size"] == drive["model"]["img_size"] == 512
    assert cfg["loss"]["_target_"] == "salt.losses.FocalDiceLoss"
    assert cfg["loss"]["alpha"] == 0.75 and cfg["loss"]["gamma"] == 3
    assert cfg["data"]["_target_"] == "salt.data.datamodule.VesselDataModule"


def test_a_given_schedule_replaces_the_data_sets_recommendation() -> None:
    assert _compose("train", ["schedule=constant"])["schedule"] is None
    cosine = _compose("train", ["dataset=drive", "schedule=cosine", "schedule.warmup_epochs=0.5"])["schedule"]
    assert cosine["_target_"] == "salt.train.optim.warmup_cosine" and cosine["warmup_epochs"] == 0.5
    assert _compose("train", ["dataset.optim.warmup_epochs=1"])["schedule"]["warmup_epochs"] == 1


@pytest.mark.parametrize("name", ["eval", "predict", "export"])
def test_eval_predict_and_export_compose(name: str) -> None:
    extra = {"predict": ["input=a", "output=b"], "export": ["output=b.onnx"]}.get(name, [])
    cfg = _compose(name, ["ckpt=somewhere", *extra])
    assert cfg["ckpt"] == "somewhere"


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm"])
def test_submitit_launchers_are_the_projects(launcher: str) -> None:
    register()
    options = ["timeout_min=30", "skip_done=false"]
    if launcher == "submitit_slurm":
        options += ["partition=gpu", "gpus_per_task=1", "array_parallelism=5"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(
            "train",
            [f"hydra/launcher={launcher}", *(f"hydra.launcher.{o}" for o in options)],
            return_hydra_config=True,
        )
    chosen = OmegaConf.to_container(cfg.hydra.launcher)
    assert chosen["_target_"].startswith("hydra_plugins.salt_launchers.skip_done.")
    assert chosen["timeout_min"] == 30 and chosen["skip_done"] is False
    if launcher == "submitit_slurm":
        assert (chosen["partition"], chosen["gpus_per_task"], chosen["array_parallelism"]) == ("gpu", 1, 5)


@pytest.mark.parametrize("dataset", ["drive", "synthetic"])  # synthetic recommends a training schedule
def test_eval_takes_a_dataset_group(dataset: str) -> None:
    cfg = _compose("eval", ["ckpt=x", f"dataset={dataset}"])
    assert cfg["dataset"]["name"] == dataset


def test_experiment_files_start_with_package_global() -> None:
    for path in (CONFIGS / "experiment").glob("*.yaml"):
        assert path.read_text().splitlines()[0] == "# @package _global_", path.name


@pytest.mark.parametrize("model", ["deeplabv3plus", "segformer"])
def test_a_network_argument_the_library_would_drop_is_refused(model: str) -> None:
    # segmentation-models-pytorch takes **kwargs and drops them for its own encoders: a misspelt key would
    # otherwise build the default network without a word.
    cfg = _compose("train", [f"model={model}", "+model.net.decoder_chanels=16"])
    with pytest.raises(
        ConfigError, match=r"^model.net: segmentation_models_pytorch\.\w+ takes no argument decoder_chanels "
    ):
        build_network(cfg)
