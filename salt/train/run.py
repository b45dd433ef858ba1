"""The training job behind ``train.py``: fit, test the best checkpoint, write the run's outputs."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from salt.data.datamodule import VesselDataModule
from salt.errors import ConfigError
from salt.inference.evaluation import ROW_KEY
from salt.inference.outputs import code_version, parameter_report, report, run_info, summarize, write_results
from salt.metrics import MetricAccumulator
from salt.peft import save_adapter
from salt.train.callbacks import AtomicCheckpointIO, LastCheckpoint
from salt.train.checks import check_train_config, make_output_folders
from salt.train.module import SegmentationModule
from salt.train.optim import instantiate_config
from salt.train.resume import check_resume

log = logging.getLogger(__name__)


def _instantiate_all(group: DictConfig | None) -> list:
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def _check_launch(trainer: L.Trainer) -> None:
    # Lightning's ddp strategy starts the other processes of a node by running the command line again (unless
    # a cluster manager such as SLURM started them); inside a Hydra multirun that command line is the whole
    # sweep, so every process would start every run of it.
    environment = getattr(trainer.strategy, "cluster_environment", None)
    relaunches = (
        isinstance(getattr(trainer.strategy, "launcher", None), _SubprocessScriptLauncher)
        and environment is not None
        and not environment.creates_processes_externally
        and trainer.num_devices > 1
    )
    if relaunches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"trainer=ddp with {trainer.num_devices} processes per node cannot run inside a multirun (-m or an "
            "experiment's hydra.mode=MULTIRUN): start each run on its own with hydra.mode=RUN and its overrides"
        )


def train(cfg: DictConfig) -> dict:
    """Fit, pick the best checkpoint by validation Dice, test it, and write the run's outputs.

    With ``data.train_splits: [train, val]`` nothing is held out to validate on: validation is off
    (``trainer.limit_val_batches`` is 0, and config.yaml says so) and the last epoch's ``last.ckpt`` is tested.

    With ``fit: false`` nothing is trained: the model as built (pretrained weights, initial adapters and
    prompts) is tested and ``metrics.json`` records the run as ``task: eval`` (the zero-shot row).

    Returns:
        The content of ``metrics.json`` (empty when testing is off or the run was interrupted).
    """
    fit = bool(cfg.get("fit", True))
    if not fit and not cfg.get("test", True):
        raise ConfigError("fit=false and test=false leave nothing to do")
    if not fit and cfg.get("ckpt_path"):
        raise ConfigError("fit=false tests the model as built; to test a checkpoint use eval.py ckpt=...")
    out_dir = Path(cfg.paths.output_dir)
    version = code_version()  # the code that runs: the checkout may change while it trains
    plain = OmegaConf.to_container(cfg, resolve=True)
    check_train_config(plain)
    if fit and "val" in plain["data"].get("train_splits", ["train"]):
        # Nothing is held out to validate on: validation is off, so the run's record says so too.
        log.info("data.train_splits holds val: validation is off and the last epoch is tested")
        with open_dict(cfg):
            cfg.trainer.limit_val_batches = 0
        plain["trainer"]["limit_val_batches"] = 0
    if cfg.get("ckpt_path"):
        # A run folder stands for its last.ckpt: the file resumed is the one config.yaml records.
        plain["ckpt_path"] = cfg.ckpt_path = str(check_resume(plain))
    make_output_folders(plain)
    L.seed_everything(int(cfg.seed), workers=True)

    datamodule: VesselDataModule = instantiate_config(
        "data", plain["data"], dataset=plain["dataset"], prompt=plain.get("prompt"), patch=plain.get("patch")
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = SegmentationModule(plain)
    module.output_dir = out_dir
    params = parameter_report(module.model, plain)
    log.info(
        "parameters: %s trainable of %s (%.3f%% of the base model)",
        f"{params['trainable']:,}",
        f"{params['total_base']:,}",
        params["trainable_percent"],
    )

    callbacks = _instantiate_all(cfg.get("callbacks"))
    if not datamodule.validates:
        # A checkpoint judged by a validation metric never gets one; last.ckpt is the run's checkpoint.
        callbacks = [c for c in callbacks if not str(getattr(c, "monitor", None) or "").startswith("val/")]
    loggers = _instantiate_all(cfg.get("logger")) or False
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )
    _check_launch(trainer)
    if trainer.is_global_zero:
        (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    zero_shot = None
    if fit and cfg.get("test", True) and cfg.get("zero_shot_test", True):
        zero_shot = _zero_shot(trainer, module, datamodule)
    if fit:
        with warnings.catch_warnings():
            # Layers kept in eval mode on purpose (BatchNorm statistics, see SamSegmenter) are not a mistake.
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            trainer.fit(module, datamodule=datamodule, ckpt_path=plain.get("ckpt_path"))
        if trainer.interrupted:
            return {}

    best = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
    if not best and fit and not datamodule.validates:
        last = [c.path for c in callbacks if isinstance(c, LastCheckpoint) and c.path.is_file()]
        best = str(last[0]) if last else ""
    history = list(module.history)
    result: dict = {}
    if cfg.get("test", True):
        datamodule.setup("test")
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
        module.history = history
        if trainer.is_global_zero:
            info = run_info(
                "train" if fit else "eval",
                plain,
                "test",
                best or None,
                module.build_info,
                params,
                plain.get("prompt"),
                zero_shot=zero_shot,
                best_val=_best_val(history),
                epochs=trainer.current_epoch,
                global_step=trainer.global_step,
                code_version=version,
            )
            result = write_results(out_dir, module.test_rows, info)
    if trainer.is_global_zero:
        save_adapter(module.model, out_dir / "adapter.safetensors", metadata={"config": plain})
        report(result, out_dir)
    return result


def _zero_shot(trainer: L.Trainer, module: SegmentationModule, datamodule: VesselDataModule) -> dict | None:
    """Test the model as built (before any training step); overlays go to ``overlays/zero_shot``.

    Returns:
        ``{"mean", "mean_original"}`` summaries as in metrics.json (None on processes other than rank 0).
    """
    datamodule.setup("test")
    module.overlay_subdir = "overlays/zero_shot"
    trainer.test(module, datamodule=datamodule, verbose=False)
    module.overlay_subdir = "overlays"
    if not trainer.is_global_zero:
        return None
    accumulator = MetricAccumulator(key=ROW_KEY)
    accumulator.merge(module.test_rows)
    names = module.class_names
    result = {
        "mean": summarize(accumulator, "model", names),
        "mean_original": summarize(accumulator, "original", names),
    }
    mean = result["mean"] or {}
    if "dice" in mean:
        log.info(
            "zero-shot test (before training): Dice %.4f  HD95 %.2f %s over %d cases",
            mean["dice"],
            mean["hd95"],
            mean["hd95_unit"],
            mean["n_cases"],
        )
    return result


def _best_val(history: list[dict]) -> dict | None:
    scored = [h for h in history if "val/dice" in h]
    return max(scored, key=lambda h: h["val/dice"]) if scored else None
