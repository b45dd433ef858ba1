"""The training and evaluation jobs behind ``train.py`` and ``eval.py``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from salt.data.prompts import check_prompt_options
from salt.errors import ConfigError
from salt.metrics import MetricAccumulator
from salt.model import parameter_summary
from salt.peft import count_adapter_parameters, save_adapter
from salt.train.callbacks import AtomicCheckpointIO
from salt.train.checks import (
    check_train_config,
    make_output_folders,
    positive_int,
    probability_threshold,
)
from salt.train.datamodule import VesselDataModule
from salt.train.loading import check_resume, load_trained
from salt.train.module import ROW_KEY, SegmentationModule
from salt.train.outputs import summarize, write_results

log = logging.getLogger(__name__)


def parameter_report(module: SegmentationModule, cfg: dict) -> dict:
    """Trainable/total counts against SAM alone and in the paper's convention, with adapter breakdown."""
    summary = parameter_summary(module.model, paper_denominator=cfg["model"].get("paper_param_denominator"))
    summary["adapters"] = count_adapter_parameters(module.model)
    return summary


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
    plain = OmegaConf.to_container(cfg, resolve=True)
    check_train_config(plain)
    if cfg.get("ckpt_path"):
        # A run folder stands for its last.ckpt: the file resumed is the one config.yaml records.
        plain["ckpt_path"] = cfg.ckpt_path = str(check_resume(plain))
    make_output_folders(plain)
    L.seed_everything(int(cfg.seed), workers=True)

    datamodule = VesselDataModule(
        plain["dataset"], **plain["data"], prompt=plain.get("prompt"), patch=plain.get("patch")
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = SegmentationModule(plain)
    module.output_dir = out_dir
    params = parameter_report(module, plain)
    log.info(
        "parameters: %s trainable of %s (%.3f%% of the base model)",
        f"{params['trainable']:,}",
        f"{params['total_base']:,}",
        params["trainable_percent"],
    )

    callbacks = _instantiate_all(cfg.get("callbacks"))
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

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    history = list(module.history)
    result: dict = {}
    if cfg.get("test", True):
        datamodule.setup("test")
        trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
        module.history = history
        if trainer.is_global_zero:
            info = {
                "task": "train" if fit else "eval",
                "dataset": plain["dataset"]["name"],
                "split": "test",
                "method": module.build_info["peft"]["method"],
                "model": plain["model"]["variant"],
                "seed": plain["seed"],
                "checkpoint": best or None,
                "pretrained": module.build_info["checkpoint"],
                "params": params,
                "adapters": module.build_info["ranks"],
                "prompt": plain.get("prompt"),
                "zero_shot": zero_shot,
                "best_val": _best_val(history),
                "epochs": trainer.current_epoch,
                "global_step": trainer.global_step,
                "config": plain,
            }
            result = write_results(out_dir, module.test_rows, info)
    if trainer.is_global_zero:
        save_adapter(module.model, out_dir / "adapter.safetensors", metadata={"config": plain})
        _report(result, out_dir)
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


def _report(result: dict, out_dir: Path, split: str = "test") -> None:
    """Log the mean scores on ``split`` at each resolution (with several classes, a line per class too), with
    HD95's unit, and where outputs went."""
    for key, where in (("mean", "model resolution"), ("mean_original", "original resolution")):
        mean = result.get(key) or {}
        if "dice" not in mean:
            continue
        unit = mean.get("hd95_unit", "px")
        log.info(
            "%s: Dice %.4f  HD95 %.2f %s over %d cases (%s)",
            split,
            mean["dice"],
            mean["hd95"],
            unit,
            mean["n_cases"],
            where,
        )
        for name, stats in (mean.get("per_class") or {}).items():
            log.info(
                "%s, class %s: Dice %.4f  HD95 %.2f %s (%s)",
                split,
                name,
                stats["dice"],
                stats["hd95"],
                unit,
                where,
            )
    dataset = (result.get("config") or {}).get("dataset") or {}
    if result.get("mean") and not result.get("mean_original") and dataset.get("spacing") is not None:
        log.info(
            "dataset.spacing gives mm at the original resolution, which eval.original_resolution=false leaves "
            "out: HD95 is in model pixels"
        )
    log.info("outputs in %s", out_dir)


def given_on_command_line(key: str) -> bool:
    """Whether the running Hydra job got ``key=...`` (or ``+key``, ``++key``) among its command-line overrides."""
    if not HydraConfig.initialized():
        return False
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in HydraConfig.get().overrides.task)


def eval_prompt(run_cfg: dict, given: dict) -> dict:
    """The run's prompt settings with the evaluation's ``eval_box_jitter``/``seed`` where those are not null
    (``load_trained`` has refused a ``prompt.mode`` other than the run's)."""
    recorded = dict(run_cfg.get("prompt") or {"mode": "class"})
    return {**recorded, **{k: v for k, v in given.items() if k != "mode" and v is not None}}


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate a trained checkpoint on one split and write metrics.json, per_case.csv and overlays."""
    out_dir = Path(cfg.paths.output_dir)
    batch_size = positive_int("batch_size", cfg.batch_size)
    # A data set group replaces the run's; a model group that sets dataset.img_size alone (LiteMedSAM) does not.
    chosen = "name" in (cfg.get("dataset") or {})
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True) if chosen else None
    configured_size = dataset.get("img_size") if dataset else None
    if dataset is not None and not given_on_command_line("dataset.img_size"):
        # The data set's img_size is its training size; evaluated, its images take the network's input size.
        dataset.pop("img_size", None)
    eval_cfg = OmegaConf.to_container(cfg.eval, resolve=True)
    threshold = probability_threshold("eval.threshold", eval_cfg["threshold"])
    module, run_cfg = load_trained(cfg.ckpt, cfg.get("base_checkpoint"), dataset, given=cfg)
    size = run_cfg["dataset"]["img_size"]
    if configured_size is not None and configured_size != size:
        log.info(
            "%s: images resized to %d x %d, the network's input size (the data set's img_size %s is for training)",
            run_cfg["dataset"]["name"],
            size,
            size,
            configured_size,
        )
    module.output_dir = out_dir
    module.cfg["eval"] = {**run_cfg.get("eval", {}), **eval_cfg}
    module.threshold = threshold
    prompt = eval_prompt(run_cfg, OmegaConf.to_container(cfg.prompt, resolve=True) if "prompt" in cfg else {})
    check_prompt_options(prompt)
    datamodule = VesselDataModule(
        run_cfg["dataset"],
        batch_size=batch_size,
        num_workers=0,
        test_split=str(cfg.split),
        prompt=prompt,
        patch=run_cfg.get("patch"),
    )
    datamodule.prepare_data()
    datamodule.setup("test")
    accelerator = "auto" if cfg.device == "auto" else ("gpu" if cfg.device == "cuda" else cfg.device)
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False)
    trainer.test(module, datamodule=datamodule, verbose=False)
    info = {
        "task": "eval",
        "dataset": run_cfg["dataset"]["name"],
        "split": str(cfg.split),
        "method": module.build_info["peft"]["method"],
        "model": run_cfg["model"]["variant"],
        "seed": run_cfg.get("seed"),
        "checkpoint": str(cfg.ckpt),
        "pretrained": module.build_info["checkpoint"],
        "params": parameter_report(module, run_cfg),
        "adapters": module.build_info["ranks"],
        "prompt": prompt,
        "config": run_cfg,
    }
    result = write_results(out_dir, module.test_rows, info)
    _report(result, out_dir, str(cfg.split))
    return result
