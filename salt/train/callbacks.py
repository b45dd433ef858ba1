"""Callbacks the training run always uses."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C, save ``interrupted.ckpt`` next to the other checkpoints so the run can be resumed.

    Other failures (a non-finite loss, say) save nothing: the checkpoints written before them are the last
    good state.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != "fit":
            return
        path = self.dirpath / "interrupted.ckpt"
        trainer.save_checkpoint(path)
        self.saved = path
        log.warning("interrupted: saved %s; resume with ckpt_path=%s", path, path)
