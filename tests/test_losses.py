"""FocalDiceLoss against the paper's formula written out by hand."""

from __future__ import annotations

import pytest
import torch

from salt.losses import FocalDiceLoss


def _reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    alpha: float = 0.75,
    gamma: float = 3.0,
    smooth: float = 1.0,
    focal_weight: float = 1.0,
    dice_weight: float = 1.0,
) -> torch.Tensor:
    logits, target = logits.double(), target.double()
    m = torch.ones_like(logits[:, :1]) if mask is None else mask.double()
    p = torch.sigmoid(logits)
    focal = -(alpha * target * (1 - p) ** gamma * torch.log(p)) - (
        (1 - alpha) * (1 - target) * p**gamma * torch.log(1 - p)
    )
    m_full = m.expand_as(p)
    fl = (focal * m_full).sum() / m_full.sum()
    inter = (p * target * m).sum(dim=(2, 3))  # (B, C)
    dice = 1 - (2 * inter + smooth) / ((p * m).sum(dim=(2, 3)) + (target * m).sum(dim=(2, 3)) + smooth)
    return focal_weight * fl + dice_weight * dice.mean()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 4, generator=gen) * 2
    target = (torch.rand(2, 3, 5, 4, generator=gen) > 0.7).float()
    target[1, 2] = 0  # an image and class without any foreground
    mask = torch.rand(2, 1, 5, 4, generator=gen) > 0.3
    return logits, target, mask


def test_default_matches_paper_formula(batch) -> None:
    logits, target, _ = batch
    loss = FocalDiceLoss()(logits, target)
    assert loss.item() == pytest.approx(_reference(logits, target).item(), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0.25, "gamma": 2.0, "smooth": 1e-3},
        {"focal_weight": 20.0, "dice_weight": 0.5},
        {"focal_weight": 0.0, "smooth": 2.0},
    ],
)
def test_configurable_terms(batch, kwargs) -> None:
    logits, target, _ = batch
    loss = FocalDiceLoss(**kwargs)(logits, target)
    assert loss.item() == pytest.approx(_reference(logits, target, **kwargs).item(), rel=1e-5)


def test_alpha_weights_positive_pixels() -> None:
    # One confidently wrong positive pixel: the focal term scales with alpha, not with 1 - alpha.
    logits, target = torch.full((1, 1, 1, 1), -3.0), torch.ones(1, 1, 1, 1)
    low = FocalDiceLoss(dice_weight=0.0, alpha=0.25)(logits, target)
    high = FocalDiceLoss(dice_weight=0.0, alpha=0.75)(logits, target)
    assert (high / low).item() == pytest.approx(3.0, rel=1e-5)


def test_mask_matches_formula_and_blocks_gradient_outside(batch) -> None:
    logits, target, mask = batch
    logits = logits.clone().requires_grad_(True)
    loss = FocalDiceLoss()(logits, target, mask)
    assert loss.item() == pytest.approx(_reference(logits.detach(), target, mask).item(), rel=1e-5)
    loss.backward()
    outside = (~mask).expand_as(logits)
    assert torch.all(logits.grad[outside] == 0)
    assert torch.all(logits.grad[~outside] != 0)


def test_values_outside_mask_do_not_matter(batch) -> None:
    logits, target, mask = batch
    changed = torch.where(mask, logits, torch.randn_like(logits) * 10)
    changed_target = torch.where(mask, target, 1 - target)
    loss = FocalDiceLoss()
    assert loss(changed, changed_target, mask).item() == pytest.approx(loss(logits, target, mask).item())


def test_half_precision_logits_give_float32_loss(batch) -> None:
    logits, target, _ = batch
    loss = FocalDiceLoss()(logits.bfloat16(), target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_reference(logits.bfloat16().float(), target).item(), rel=1e-5)


def test_bad_inputs_raise(batch) -> None:
    logits, target, mask = batch
    with pytest.raises(ValueError, match="one shape"):
        FocalDiceLoss()(logits, target[:, :1])
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        FocalDiceLoss()(logits, target, mask.expand(-1, 3, -1, -1))
    with pytest.raises(ValueError, match="alpha"):
        FocalDiceLoss(alpha=1.5)
