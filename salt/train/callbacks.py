"""What the training run always uses: ``last.ckpt``, atomic checkpoint writes, a model summary without FLOPs."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelSummary, RichModelSummary
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.model_summary.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
)

from salt.errors import ConfigError

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in its own folder and renames it into place.

    A process killed while writing leaves the previous file intact. Lightning's own write goes through a
    temporary file in the system temp folder, which is a copy rather than a rename when that folder is on
    another file system.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class LastCheckpoint(Checkpoint):
    """Keeps ``<dirpath>/last.ckpt`` at the end of the latest epoch, and every N optimizer steps when asked.

    Lightning's ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only when it saves a monitored
    checkpoint too, so beside a best-by-validation checkpoint it stays at the best epoch. Being a
    :class:`~lightning.pytorch.callbacks.Checkpoint`, this callback's epoch-end hook runs after the
    LightningModule's, so the file holds the finished epoch's history row.

    A step checkpoint lies inside an epoch: resuming from it finishes that epoch with the batches it has left,
    drawn in a new order (Lightning cannot resume a plain DataLoader mid-epoch), so only epoch-end files
    reproduce an uninterrupted run exactly.

    Args:
        dirpath: the checkpoint folder.
        every_n_train_steps: also save after every N-th optimizer step (None: only at epoch ends).
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = None) -> None:
        n = every_n_train_steps
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(
                f"callbacks.last_checkpoint.every_n_train_steps={n!r} must be an int >= 1 or null"
            )
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_train_steps = n
        self._saved_step: int | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        n, step = self.every_n_train_steps, trainer.global_step
        # The last batch of an epoch is followed by the epoch-end save, which also holds the epoch's row.
        if (
            not n
            or step % n
            or step == self._saved_step
            or trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        ):
            return
        self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Nothing of an unfinished epoch is saved (resuming inside it could not reproduce it): say where to
        # resume from instead.
        if not isinstance(exception, KeyboardInterrupt) or not trainer.is_global_zero:
            return
        where = f"resume with ckpt_path={self.path}" if self.path.is_file() else "no state to resume from yet"
        log.warning("interrupted in epoch %d: that epoch is not recorded; %s", trainer.current_epoch, where)

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step = trainer.global_step


class LayerSummary(ModelSummary):
    """Lightning's model summary at the start of training (layers, parameter counts, train/eval modules)
    without the FLOPs column and total when they were not measured.

    Lightning counts FLOPs only for a module that sets ``example_input_array``; the segmentation module sets
    none, so its default summary reads 0 FLOPs for every layer. Drawn as Lightning's default summary is:
    a Rich table on the console where Rich is installed, else plain text in the log.

    Args:
        max_depth: the layer nesting the table shows (0: no summary).
    """

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        """Print the table and the totals (Lightning's own summary where FLOPs were counted)."""
        rich = importlib.util.find_spec("rich") is not None
        if total_flops:
            parent = RichModelSummary if rich else ModelSummary
            parent.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
            return
        columns = [(name, [str(v) for v in values]) for name, values in summary_data if name != "FLOPs"]
        totals = [
            ("Trainable params", get_human_readable_count(trainable_parameters)),
            ("Non-trainable params", get_human_readable_count(total_parameters - trainable_parameters)),
            ("Total params", get_human_readable_count(total_parameters)),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", str(total_training_modes["train"])),
            ("Modules in eval mode", str(total_training_modes["eval"])),
        ]
        if rich:
            _print_rich(columns, totals, summarize_kwargs.get("header_style", "bold magenta"))
        else:
            log.info("\n%s", _plain_table(columns, totals))


def _print_rich(
    columns: list[tuple[str, list[str]]], totals: list[tuple[str, str]], header_style: str
) -> None:
    from rich import get_console
    from rich.table import Table

    table = Table(header_style=header_style)
    numeric = {"Params", "Params per Device", "In sizes", "Out sizes"}
    for name, _ in columns:
        table.add_column(
            name, justify="right" if name in numeric else "left", style="dim" if name == " " else None
        )
    for row in zip(*(values for _, values in columns)):
        table.add_row(*row)
    grid = Table.grid(expand=True)
    grid.add_column()
    for label, value in totals:
        grid.add_row(f"[bold]{label}[/]: {value}")
    console = get_console()
    console.print(table)
    console.print(grid)


def _plain_table(columns: list[tuple[str, list[str]]], totals: list[tuple[str, str]]) -> str:
    widths = [max([len(name), *(len(v) for v in values)]) for name, values in columns]
    lines = [" | ".join(name.ljust(w) for (name, _), w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths)) for row in zip(*(v for _, v in columns))]
    lines.append("-" * len(lines[0]))
    lines += [f"{value:<10} {label}" for label, value in totals]
    return "\n".join(lines)
