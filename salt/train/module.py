"""The LightningModule: SAM + PEFT trained with focal + Dice loss, evaluated per image with Dice/HD95."""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from salt.errors import ConfigError
from salt.losses import FocalDiceLoss
from salt.metrics import MetricAccumulator
from salt.model.sliding import sliding_window_logits, use_image_range
from salt.peft import after_optimizer_step, base_fingerprint, regularization, set_training_steps
from salt.train.checks import pixel_spacing
from salt.train.errors import NonFiniteLossError
from salt.train.evaluation import evaluate_batch
from salt.train.factory import build_network

log = logging.getLogger(__name__)
ROW_KEY = ("name", "class", "resolution")
PROMPT_KEYS = ("box", "box_valid", "points", "point_labels")


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
        # A base without pretrained weights (tiny, or no checkpoint file) is random: seeding its build makes
        # it the same network every time it is rebuilt from the configuration, e.g. by eval.py.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg.get("seed", 0)))
            self.model, self.build_info = build_network(cfg)
        # Patch mode: training sees windows of the input side, validation and test whole images through a
        # sliding window (salt.data.patches); the normaliser may take its range from the whole image.
        self.patch = cfg.get("patch") or None
        try:
            use_image_range(self.model, self.patch)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.base_fingerprint = self._fingerprint()
        loss = cfg["loss"]
        self.loss_fn = FocalDiceLoss(
            focal_weight=loss["focal_weight"],
            dice_weight=loss["dice_weight"],
            alpha=loss["alpha"],
            gamma=loss["gamma"],
            smooth=loss["smooth"],
        )
        # The metrics score only the field of view (False in the padding of a data set with FOV masks), so
        # the loss, by default, sees the same pixels.
        self.loss_within_fov = bool(loss.get("within_fov", True))
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
        self._epoch_loss: list[float] = []
        self._val_summary: dict = {}

    # ----------------------------------------------------------------------------------------- training
    def forward(self, images: torch.Tensor, prompts: dict | None = None) -> torch.Tensor:
        """Logits ``(B, C, S, S)`` for images ``(B, 3, S, S)`` in [0, 255] and the prompt mode's prompts."""
        return self.model(images, prompts) if prompts else self.model(images)

    def logits(self, batch: dict) -> torch.Tensor:
        """Logits of a batch, with the box or point prompts it carries (``salt.data.prompts``)."""
        return self(batch["image"], {k: batch[k] for k in PROMPT_KEYS if k in batch})

    def whole_image_logits(self, batch: dict) -> torch.Tensor:
        """Logits ``(B, C, H, W)`` of a batch of whole images: a sliding window of the model's input side in
        patch mode, one forward pass of the ``(B, 3, S, S)`` input otherwise."""
        if self.patch is None:
            return self.logits(batch)
        return sliding_window_logits(
            self.model,
            batch["image"],
            window=int(self.cfg["dataset"]["img_size"]),
            overlap=float(self.patch["overlap"]),
            blend=str(self.patch["blend"]),
            sw_batch_size=int(self.patch["sw_batch_size"]),
        )

    def trainable_names(self) -> set[str]:
        """State-dict keys of the trainable tensors (what a checkpoint stores)."""
        return {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}

    def _fingerprint(self) -> str:
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return base_fingerprint(self.model, exclude=trainable)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Focal + Dice loss of ``logits (B, C, S, S)`` against ``batch["mask"]``, inside ``batch["fov"]``
        ``(B, 1, S, S)`` unless ``loss.within_fov`` is false."""
        return self.loss_fn(logits, batch["mask"], batch["fov"] if self.loss_within_fov else None)

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
        self._epoch_loss.append(loss.detach().item())
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=len(logits))
        return loss

    def on_fit_start(self) -> None:
        # A method with a schedule over the run (AdaLoRA's rank allocation) learns the run's length here.
        set_training_steps(self.model, int(self.trainer.estimated_stepping_batches))

    def on_train_batch_end(self, outputs: Any, batch: dict, batch_idx: int) -> None:
        after_optimizer_step(self.model, self.global_step)

    def on_train_epoch_start(self) -> None:
        self._epoch_loss = []

    def on_train_epoch_end(self) -> None:
        row = {"epoch": self.current_epoch, "step": self.global_step}
        loss = float(np.mean(self._epoch_loss)) if self._epoch_loss else math.nan
        # Each process trained on its own share of the batches (equal counts under the distributed sampler), so
        # the epoch's loss is the mean of the processes' means.
        mean = self.trainer.strategy.reduce(torch.tensor(loss, device=self.device), reduce_op="mean")
        row["train/loss"] = float(mean)
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
        logits = self.whole_image_logits(batch)
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
                "nothing to train: peft.method and model.trainable leave no trainable tensor "
                "(use eval.py for a model without training)"
            )
        optim = self.cfg["optim"]
        if optim.get("name", "adamw") != "adamw":
            raise ConfigError(f"optim.name={optim['name']!r} is not supported; valid: adamw")
        optimizer = torch.optim.AdamW(
            params, lr=optim["lr"], weight_decay=optim["weight_decay"], betas=tuple(optim["betas"])
        )
        schedule = optim.get("schedule", "constant")
        if schedule == "constant":
            return optimizer
        if schedule != "cosine":
            raise ConfigError(f"optim.schedule={schedule!r} is not supported; valid: constant, cosine")
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = total / max(int(self.trainer.max_epochs or 1), 1)
        warmup = round(float(optim.get("warmup_epochs", 0)) * per_epoch)
        floor = float(optim.get("min_lr_ratio", 0.0))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        keep = self.trainable_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        checkpoint["salt"] = {
            "history": self.history,
            # The losses of the epoch so far: a checkpoint saved inside an epoch resumes its mean.
            "epoch_loss": list(self._epoch_loss),
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
        self._epoch_loss = list(extra.get("epoch_loss", []))
        if "rng" in extra:
            _set_rng_state(extra["rng"])
