"""A callback that stands for a checkout changed while a run trains (used by the code-version test)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

import salt.inference.outputs

CHANGED = {"salt": "changed while training", "commit": "0" * 40, "dirty": True}


class ChangeCheckout(Callback):
    """At the end of fitting, make every later read of the code version in this process return ``CHANGED``."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        salt.inference.outputs.code_version = lambda: dict(CHANGED)
