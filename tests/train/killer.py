"""A callback that stops its own process with a signal at one point of training (used by the resume tests)."""

from __future__ import annotations

import os
import signal

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class Kill(Checkpoint):
    """Send the signal named ``sig`` (SIGKILL, SIGINT) to this process at one point of training.

    ``at``: ``step`` after optimizer step ``step``; ``validation`` after the first validation batch of epoch
    ``epoch``; ``epoch_end`` at the end of epoch ``epoch``, right after the checkpoints are written. It is a
    Checkpoint so that Lightning runs its epoch-end hook after those of the other checkpoint callbacks.
    """

    def __init__(self, at: str, step: int = 0, epoch: int = 0, sig: str = "SIGKILL") -> None:
        if at not in ("step", "validation", "epoch_end"):
            raise ValueError(f"at={at!r}")
        self.at, self.step, self.epoch, self.signal = at, step, epoch, getattr(signal, sig)

    def _fire(self) -> None:
        os.kill(os.getpid(), self.signal)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if self.at == "step" and trainer.global_step >= self.step:
            self._fire()

    def on_validation_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if self.at == "validation" and trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            self._fire()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at == "epoch_end" and trainer.current_epoch == self.epoch:
            self._fire()
