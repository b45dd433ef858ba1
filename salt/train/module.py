"""The LightningModule: SAM + PEFT trained with focal + Dice loss, evaluated per image with Dice/HD95."""

from __future__ import annotations

import inspect
import logging
import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torchmetrics import MeanMetric

from salt.errors import ConfigError
from salt.inference.evaluation import ROW_KEY, batch_logits, evaluate_batch, whole_image_logits
from salt.inference.loading import build_run_network
from salt.metrics import MetricAccumulator
from salt.peft import after_optimizer_step, base_fingerprint, regularization, set_training_steps
from salt.train.checks import pixel_spacing
from salt.train.errors import NonFiniteLossError
from salt.train.optim import build_schedule, check_moved_keys, instantiate_config

log = logging.getLogger(__name__)


def _rng_state() -> dict:
    # Only tensors and plain Python values, so the checkpoint loads with torch.load(weights_only=True).
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class SegmentationModule(L.LightningModule):
    """Trains the network of a run configuration and evaluates it per image.

    Checkpoints hold only the trainable tensors (adapters, norms, position embedding, class prompts, ...)
    plus optimizer, scheduler, loop and RNG state; the frozen base is rebuilt from the SAM weights file.

    Args:
        cfg: the resolved run configuration (``configs/train.yaml``), as a plain dict.
    """

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        self.save_hyperparameters({"cfg": cfg})
        self.cfg = cfg
        check_moved_keys(cfg)
        # Built as eval.py rebuilds it (the random base seeded); patch mode: training sees windows of the input
        # side, validation and test whole images through a sliding window (salt.data.patches).
        self.model, self.build_info = build_run_network(cfg)
        self.patch = cfg.get("patch") or None
        self.base_fingerprint = self._fingerprint()
        # The metrics score only the field of view (False in the padding of a data set with FOV masks), so
        # the loss, by default, sees the same pixels: loss.within_fov is this module's option, not the loss's.
        loss = dict(cfg["loss"])
        self.loss_within_fov = bool(loss.pop("within_fov", True))
        self.loss_fn = instantiate_config("loss", loss)
        if self.loss_within_fov and len(inspect.signature(self.loss_fn.forward).parameters) < 3:
            raise ConfigError(
                f"loss.within_fov=true: {loss['_target_']} takes no field-of-view mask; set loss.within_fov=false"
            )
        self.reg_weight = float(cfg["peft"].get("reg_weight") or 0.0)
        self.threshold = float(cfg["eval"]["threshold"])
        self.class_names = list(cfg["dataset"].get("class_names") or [])
        # The size of an original pixel in mm (None: unknown), for HD95 at the original resolution.
        self.spacing = pixel_spacing(cfg["dataset"].get("spacing"))
        # Checkpoints omit the frozen base, so Lightning must not demand every key; the exact key set is
        # checked in on_load_checkpoint instead.
        self.strict_loading = False
        self.output_dir: Path | None = None
        self.overlay_subdir = "overlays"  # below output_dir; the zero-shot test pass writes elsewhere
        self.history: list[dict] = []
        self.test_rows: list[dict] = []
        self._val = MetricAccumulator(key=ROW_KEY)
        self._test = MetricAccumulator(key=ROW_KEY)
        # The epoch's mean training loss, summed on the device and reduced over processes once an epoch; every
        # step weighs the same. No NaN check: it would synchronise every step, and training_step refuses a
        # non-finite loss already.
        self.train_loss = MeanMetric(nan_strategy="disable")
        self._val_summary: dict = {}

    # ----------------------------------------------------------------------------------------- training
    def forward(self, images: torch.Tensor, prompts: dict | None = None) -> torch.Tensor:
        """Logits ``(B, C, S, S)`` for images ``(B, 3, S, S)`` in [0, 255] and the prompt mode's prompts."""
        return self.model(images, prompts) if prompts else self.model(images)

    def logits(self, batch: dict) -> torch.Tensor:
        """Logits of a batch, with the box or point prompts it carries (``salt.data.prompts``)."""
        return batch_logits(self, batch)

    def whole_image_logits(self, batch: dict, tta: bool = True) -> torch.Tensor:
        """Logits ``(B, C, H, W)`` of a batch of whole images: a sliding window of the model's input side in
        patch mode, one forward pass of the ``(B, 3, S, S)`` input otherwise. ``tta=False`` drops the
        test-time flips of ``patch.tta`` (validation only ranks checkpoints, as nnU-Net's does)."""
        patch = self.patch if tta or not self.patch else {**self.patch, "tta": "none"}
        return whole_image_logits(self, batch, patch, int(self.cfg["dataset"]["img_size"]))

    def trainable_names(self) -> set[str]:
        """State-dict keys of the trainable tensors (what a checkpoint stores)."""
        return {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}

    def _fingerprint(self) -> str:
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return base_fingerprint(self.model, exclude=trainable)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The ``loss`` config's loss of ``logits (B, C, S, S)`` against ``batch["mask"]``, inside
        ``batch["fov"]`` ``(B, 1, S, S)`` unless ``loss.within_fov`` is false."""
        if self.loss_within_fov:
            return self.loss_fn(logits, batch["mask"], batch["fov"])
        return self.loss_fn(logits, batch["mask"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.logits(batch)
        loss = self.loss(logits, batch)
        if self.reg_weight:
            reg = regularization(self.model)
            self.log("train/reg", reg, on_step=True, batch_size=len(logits))
            loss = loss + self.reg_weight * reg
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                "training stopped and the checkpoints saved before this step are kept "
                "(try a lower optim.lr or trainer.precision=32-true)"
            )
        self.train_loss.update(loss.detach())
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=len(logits))
        return loss

    def on_fit_start(self) -> None:
        # A method with a schedule over the run (AdaLoRA's rank allocation) learns the run's length here.
        set_training_steps(self.model, int(self.trainer.estimated_stepping_batches))

    def on_train_batch_end(self, outputs: Any, batch: dict, batch_idx: int) -> None:
        after_optimizer_step(self.model, self.global_step)

    def on_train_epoch_end(self) -> None:
        row = {"epoch": self.current_epoch, "step": self.global_step}
        # Each process trained on its own share of the batches (equal counts under the distributed sampler):
        # compute() sums every process's losses and counts, the mean of the processes' means.
        row["train/loss"] = float(self.train_loss.compute()) if self.train_loss.update_called else math.nan
        self.train_loss.reset()
        row.update(self._val_summary)
        self._val_summary = {}
        self.history.append(row)
        if self.output_dir is not None and self.trainer.is_global_zero:
            from salt.train.outputs import write_history

            write_history(self.output_dir, self.history)

    # --------------------------------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val = MetricAccumulator(key=ROW_KEY)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.whole_image_logits(batch, tta=False)
        loss = self.loss(logits, batch)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(logits))
        evaluate_batch(logits.float(), batch, self.threshold, self._val, class_names=self.class_names)

    def on_validation_epoch_end(self) -> None:
        # Every process gathers every case, so the logged value is the same everywhere (no sync_dist).
        self._val.gather_distributed()
        if not len(self._val):
            return
        summary = self._val.summary()
        self.log("val/dice", summary["dice_mean"], prog_bar=True)
        self.log("val/hd95", summary["hd95_mean"], prog_bar=True)
        self._val_summary = {
            "val/dice": summary["dice_mean"],
            "val/hd95": summary["hd95_mean"],
            "val/cases": summary["n_cases"],
        }

    # --------------------------------------------------------------------------------------------- test
    def on_test_epoch_start(self) -> None:
        self._test = MetricAccumulator(key=ROW_KEY)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.whole_image_logits(batch).float()
        dataset = self.trainer.test_dataloaders.dataset
        overlay_dir = self.output_dir / self.overlay_subdir if self.output_dir is not None else None
        evaluate_batch(
            logits,
            batch,
            self.threshold,
            self._test,
            dataset=dataset if self.cfg["eval"].get("original_resolution", True) else None,
            overlay_dir=overlay_dir,
            overlays=int(self.cfg["eval"].get("overlays", 0)),
            class_names=self.class_names,
            spacing=self.spacing,
        )

    def on_test_epoch_end(self) -> None:
        self._test.gather_distributed()
        self.test_rows = sorted(self._test.rows, key=lambda r: (r["resolution"], r["name"], r["class"]))
        if len(self._test):
            summary = self._test.summary(resolution="model")
            self.log("test/dice", summary["dice_mean"])
            self.log("test/hd95", summary["hd95_mean"])

    # -------------------------------------------------------------------------------------- optimizers
    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ConfigError(
                "nothing to train: the peft config and model.trainable leave no trainable tensor "
                "(use eval.py for a model without training)"
            )
        optimizer = instantiate_config("optim", self.cfg["optim"], params)
        if self.cfg.get("schedule") is None:
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = total / max(int(self.trainer.max_epochs or 1), 1)
        scheduler = build_schedule(self.cfg["schedule"], optimizer, total, per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["salt"] = {
            "history": self.history,
            # The epoch's loss so far (sum and count): a checkpoint saved inside an epoch resumes its mean.
            "train_loss": {k: v.detach().cpu() for k, v in self.train_loss.metric_state.items()},
            "rng": _rng_state(),
            "targets": self.build_info["targets"],
            "base_fingerprint": self.base_fingerprint,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        keys, expected = set(checkpoint["state_dict"]), self.trainable_names()
        if keys != expected:
            missing, unexpected = sorted(expected - keys)[:3], sorted(keys - expected)[:3]
            raise ConfigError(
                "checkpoint does not fit this model and PEFT configuration "
                f"(missing {missing}, unexpected {unexpected})"
            )
        extra = checkpoint.get("salt", {})
        if extra.get("base_fingerprint", self.base_fingerprint) != self.base_fingerprint:
            raise ConfigError(
                "checkpoint was trained on other base weights than the ones loaded now "
                f"({self.build_info['checkpoint'] or 'random weights'}); give the SAM file used in training"
            )
        self.history = list(extra.get("history", []))
        self.train_loss.reset()
        for name, value in (extra.get("train_loss") or {}).items():
            setattr(self.train_loss, name, value.to(self.train_loss.device))
        for loss in extra.get("epoch_loss", []):  # written by earlier versions: the epoch's step losses
            self.train_loss.update(torch.tensor(loss))
        if "rng" in extra:
            _set_rng_state(extra["rng"])
