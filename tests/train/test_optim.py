"""The optimiser, the schedule, the loss and the data module are what their config's ``_target_`` names; a wrong
``_target_`` or a setting of the former ``optim`` node is refused in one line naming the key; the epoch's
training loss survives a checkpoint taken inside the epoch."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from monai.losses import DiceCELoss
from omegaconf import OmegaConf

from salt.errors import ConfigError
from salt.experiments import compose_run, hydra_configs
from salt.losses import FocalDiceLoss
from salt.train.module import SegmentationModule
from salt.train.optim import check_moved_keys, instantiate_config, refuse_moved_overrides

TINY = ["model=sam_tiny", "dataset.img_size=64"]


def _cfg(tmp_path: Path, *overrides: str) -> dict:
    """``train.py experiment=reduced`` on the tiny SAM, resolved as the training module receives it."""
    with hydra_configs():
        cfg = compose_run("reduced", [f"paths.data_dir={tmp_path}", *TINY, *overrides], str(tmp_path / "run"))
        del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)


def _configured(cfg: dict, total_steps: int, epochs: int) -> tuple[torch.optim.Optimizer, object]:
    """``configure_optimizers`` of the module built from ``cfg``, for a run of ``total_steps`` steps."""
    module = SegmentationModule(cfg)
    module._trainer = SimpleNamespace(estimated_stepping_batches=total_steps, max_epochs=epochs)
    configured = module.configure_optimizers()
    if isinstance(configured, torch.optim.Optimizer):
        return configured, None
    assert configured["lr_scheduler"]["interval"] == "step"
    return configured["optimizer"], configured["lr_scheduler"]["scheduler"]


def _lrs(optimizer: torch.optim.Optimizer, scheduler: object, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return lrs


def test_the_optimiser_is_the_class_its_config_names(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path, "optim._target_=torch.optim.SGD", "~optim.betas", "+optim.momentum=0.5", "optim.lr=0.2"
    )
    optimizer, _ = _configured(cfg, total_steps=4, epochs=1)
    assert type(optimizer) is torch.optim.SGD
    assert (optimizer.defaults["lr"], optimizer.defaults["momentum"]) == (0.2, 0.5)
    adamw, _ = _configured(_cfg(tmp_path), total_steps=4, epochs=1)
    assert type(adamw) is torch.optim.AdamW and tuple(adamw.defaults["betas"]) == (0.9, 0.999)


def test_cosine_schedule_follows_its_closed_form(tmp_path: Path) -> None:
    # 6 epochs of 16 steps, a quarter-epoch warmup (4 steps), decaying to a tenth of the peak.
    cfg = _cfg(tmp_path, "schedule=cosine", "schedule.warmup_epochs=0.25", "schedule.min_lr_ratio=0.1")
    peak, total, warmup, floor = cfg["optim"]["lr"], 96, 4, 0.1
    optimizer, scheduler = _configured(cfg, total_steps=total, epochs=6)
    expected = [
        peak * (s + 1) / warmup
        if s < warmup
        else peak * (floor + (1 - floor) * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) / 2)
        for s in range(total)
    ]
    assert _lrs(optimizer, scheduler, total) == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_a_library_schedule_is_called_with_the_run_length_it_names(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg["schedule"] = {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "_partial_": True, "max_lr": 0.1}
    scheduler = _configured(cfg, total_steps=20, epochs=2)[1]
    assert type(scheduler) is torch.optim.lr_scheduler.OneCycleLR and scheduler.total_steps == 20
    assert _configured(_cfg(tmp_path, "schedule=constant"), total_steps=20, epochs=2)[1] is None


def test_the_loss_is_the_class_its_config_names(tmp_path: Path) -> None:
    assert type(SegmentationModule(_cfg(tmp_path)).loss_fn) is FocalDiceLoss
    cfg = _cfg(tmp_path)
    cfg["loss"] = {"_target_": "monai.losses.DiceCELoss", "sigmoid": True, "within_fov": True}
    with pytest.raises(
        ConfigError, match=r"^loss.within_fov=true: monai.losses.DiceCELoss takes no field-of-view"
    ):
        SegmentationModule(cfg)
    cfg["loss"]["within_fov"] = False
    module = SegmentationModule(cfg)
    assert type(module.loss_fn) is DiceCELoss
    batch = {"mask": torch.ones(1, 1, 8, 8), "fov": torch.zeros(1, 1, 8, 8, dtype=torch.bool)}
    assert torch.isfinite(module.loss(torch.zeros(1, 1, 8, 8), batch))


@pytest.mark.parametrize("key", ["optim", "schedule", "loss"])
def test_a_wrong_target_is_refused_in_one_line_naming_the_key(tmp_path: Path, key: str) -> None:
    cfg = _cfg(tmp_path, "schedule=cosine")
    cfg[key] = {**cfg[key], "_target_": "torch.optim.NoSuchThing"}
    with pytest.raises(ConfigError) as refused:
        _configured(cfg, total_steps=4, epochs=1)
    message = str(refused.value)
    assert message.startswith(f"{key}._target_='torch.optim.NoSuchThing' cannot be built: ")
    assert "\n" not in message


def test_a_target_refusing_its_arguments_is_named_by_key() -> None:
    with pytest.raises(ConfigError, match=r"^data._target_='salt.data.datamodule.VesselDataModule' refused"):
        instantiate_config("data", {"_target_": "salt.data.datamodule.VesselDataModule", "batch_sise": 2})
    with pytest.raises(ConfigError, match=r"^optim needs a _target_"):
        instantiate_config("optim", {"lr": 0.1}, [torch.nn.Parameter(torch.zeros(1))])


def test_the_data_module_is_built_from_its_target() -> None:
    node = {"_target_": "salt.data.datamodule.VesselDataModule", "batch_size": 3}
    dataset = {"name": "x", "optim": {"schedule": {"_target_": "salt.train.optim.warmup_cosine"}}}
    module = instantiate_config("data", node, dataset=dataset, prompt=None, patch=None)
    assert type(module).__name__ == "VesselDataModule" and module.batch_size == 3
    assert module.cfg is dataset  # passed as given: a data set's schedule recommendation stays data


@pytest.mark.parametrize(
    ("override", "new"),
    [
        ("optim.schedule=cosine", "schedule=cosine"),
        ("optim.warmup_epochs=0.5", "schedule.warmup_epochs"),
        ("optim.min_lr_ratio=0.1", "schedule.min_lr_ratio"),
        ("optim.name=adamw", "optim=adamw"),
        ("dataset.optim.schedule=constant", "schedule=constant"),
    ],
)
def test_a_former_optim_setting_is_refused_naming_its_new_spelling(override: str, new: str) -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_moved_overrides(["model=sam_tiny", override])
    given, hint = str(refused.value).split(": ", 1)  # the override as written, then where it went
    assert given == override and new in hint and "\n" not in hint
    refuse_moved_overrides(
        ["schedule=cosine", "dataset.optim.schedule=null", "dataset.optim.warmup_epochs=1"]
    )


def test_a_former_optim_setting_in_a_config_file_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(ConfigError, match=r"^optim.schedule is no longer a setting: .*schedule=cosine"):
        SegmentationModule({**cfg, "optim": {**cfg["optim"], "schedule": "cosine"}})
    with pytest.raises(ConfigError, match=r"^dataset.optim.schedule='cosine' names no schedule"):
        check_moved_keys({**cfg, "dataset": {**cfg["dataset"], "optim": {"schedule": "cosine"}}})


def test_the_epoch_loss_survives_a_checkpoint_inside_the_epoch(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    losses = [torch.tensor(v) for v in (0.9, 0.7, 0.4, 0.35, 0.2)]
    first = SegmentationModule(cfg)
    for loss in losses[:3]:
        first.train_loss.update(loss)
    checkpoint = {"state_dict": {k: v for k, v in first.state_dict().items() if k in first.trainable_names()}}
    first.on_save_checkpoint(checkpoint)
    resumed = SegmentationModule(cfg)
    resumed.on_load_checkpoint(checkpoint)
    for loss in losses[3:]:
        resumed.train_loss.update(loss)
    assert float(resumed.train_loss.compute()) == pytest.approx(sum(map(float, losses)) / 5, rel=1e-6)
    # A checkpoint of an earlier version holds the epoch's step losses as a list.
    checkpoint["salt"] = {**checkpoint["salt"], "epoch_loss": [0.9, 0.7, 0.4]}
    del checkpoint["salt"]["train_loss"]
    older = SegmentationModule(cfg)
    older.on_load_checkpoint(checkpoint)
    assert float(older.train_loss.compute()) == pytest.approx(2.0 / 3, rel=1e-6)
