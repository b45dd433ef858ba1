"""last.ckpt is the end of the latest epoch (and of every N steps when asked), written atomically."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from salt.train.callbacks import AtomicCheckpointIO

CALLBACKS = Path(__file__).resolve().parents[2] / "configs" / "callbacks" / "default.yaml"


class PeakedEarly(L.LightningModule):
    """A toy run whose validation Dice is best at epoch 0 and falls afterwards; 4 steps an epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.log("val/dice", 1.0 - 0.1 * self.current_epoch)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.randn(8, 2), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(torch.randn(2, 2), batch_size=2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class RecordingIO(AtomicCheckpointIO):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, int, int]] = []

    def save_checkpoint(self, checkpoint: dict, path: object, storage_options: object = None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        self.saved.append((Path(str(path)).name, checkpoint["epoch"], checkpoint["global_step"]))


def _fit(tmp_path: Path, *overrides: str) -> RecordingIO:
    cfg = OmegaConf.merge(
        {"paths": {"output_dir": str(tmp_path)}, "callbacks": OmegaConf.load(CALLBACKS)},
        OmegaConf.from_dotlist(list(overrides)),
    )
    callbacks = [instantiate(c) for name, c in cfg.callbacks.items() if name != "progress_bar"]
    io = RecordingIO()
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=callbacks,
        plugins=[io],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(PeakedEarly())
    return io


def _state(path: Path) -> tuple[int, int]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["epoch"], state["global_step"]


def test_last_is_the_latest_epoch_when_the_best_was_early(tmp_path: Path) -> None:
    io = _fit(tmp_path)
    assert _state(tmp_path / "checkpoints" / "best.ckpt") == (0, 4)
    assert _state(tmp_path / "checkpoints" / "last.ckpt") == (2, 12)
    assert [s for s in io.saved if s[0] == "last.ckpt"] == [
        ("last.ckpt", 0, 4),
        ("last.ckpt", 1, 8),
        ("last.ckpt", 2, 12),
    ]
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))


def test_last_every_n_steps_and_at_each_epoch_end(tmp_path: Path) -> None:
    io = _fit(tmp_path, "callbacks.last_checkpoint.every_n_train_steps=3")
    steps = [step for name, _, step in io.saved if name == "last.ckpt"]
    assert steps == [3, 4, 6, 8, 9, 12]  # steps 3, 6, 9 inside epochs; 4, 8, 12 at their ends


def test_a_write_that_dies_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, path)

    def dies_halfway(obj: object, f: object) -> None:
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
