"""Training scores the loss on the pixels the metrics score: inside the field of view, not in the padding."""

from __future__ import annotations

import pytest
import torch

from salt.experiments import compose_run, hydra_configs
from salt.train.module import SegmentationModule


def _module(within_fov: bool) -> SegmentationModule:
    with hydra_configs():
        cfg = compose_run("reduced", [f"loss.within_fov={str(within_fov).lower()}"])
        del cfg["hydra"]
        return SegmentationModule(cfg)


def _batch_and_logits(outside: float) -> tuple[dict, torch.Tensor]:
    """A batch whose FOV is the left half; ``outside`` sets logits and targets right of it."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 64, 64, generator=generator)
    mask = (torch.rand(2, 1, 64, 64, generator=generator) > 0.8).float()
    fov = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    fov[..., :32] = True
    logits[..., 32:], mask[..., 32:] = outside, float(outside > 0)
    return {"image": torch.zeros(2, 3, 64, 64), "mask": mask, "fov": fov}, logits


def _training_loss(module: SegmentationModule, outside: float) -> float:
    batch, logits = _batch_and_logits(outside)
    module.forward = lambda images, prompts=None: logits  # the network's output, fixed
    with pytest.warns(UserWarning, match="self.log"):  # no Trainer attached to log to
        return float(module.training_step(batch, 0))


def test_training_loss_ignores_pixels_outside_the_fov() -> None:
    module = _module(within_fov=True)
    # Confidently wrong or confidently right outside the FOV: the loss is the same, as the metrics are.
    assert _training_loss(module, -8.0) == pytest.approx(_training_loss(module, 8.0), abs=1e-7)
    batch, logits = _batch_and_logits(0.0)
    inside = {k: v[..., :32] for k, v in batch.items() if k != "image"}
    expected = module.loss_fn(logits[..., :32], inside["mask"])  # the loss of the FOV pixels alone
    assert _training_loss(module, 3.0) == pytest.approx(float(expected), rel=1e-5)


def test_within_fov_false_trains_on_every_pixel() -> None:
    module = _module(within_fov=False)
    assert _training_loss(module, -8.0) != pytest.approx(_training_loss(module, 8.0), abs=1e-3)
