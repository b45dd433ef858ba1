"""FocalDiceLoss against the paper's formula written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from salt.errors import ConfigError
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


def _soft_skeleton(img: np.ndarray, iters: int) -> np.ndarray:
    """Shit et al.'s soft skeleton of one ``(H, W)`` map, with scipy's grey morphology: erosion over the
    4-neighbour cross, dilation over the 3 x 3 square, pixels outside the image ignored."""
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)

    def erode(x: np.ndarray) -> np.ndarray:
        return ndimage.grey_erosion(x, footprint=cross, mode="constant", cval=np.inf)

    def opened(x: np.ndarray) -> np.ndarray:
        return ndimage.grey_dilation(erode(x), footprint=np.ones((3, 3), bool), mode="constant", cval=-np.inf)

    skel = np.maximum(img - opened(img), 0)
    for _ in range(iters):
        img = erode(img)
        delta = np.maximum(img - opened(img), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


def _cldice_reference(prob: torch.Tensor, target: torch.Tensor, iters: int = 3) -> float:
    """Mean over images of ``1 - 2 Tprec Tsens / (Tprec + Tsens)``, each image pooled over its classes."""
    p, t = prob.double().numpy(), target.double().numpy()
    values = []
    for pi, ti in zip(p, t, strict=True):
        sp = np.stack([_soft_skeleton(c, iters) for c in pi])
        st = np.stack([_soft_skeleton(c, iters) for c in ti])
        prec = ((sp * ti).sum() + 1) / (sp.sum() + 1)
        sens = ((st * pi).sum() + 1) / (st.sum() + 1)
        values.append(1 - 2 * prec * sens / (prec + sens + 1e-4))
    return float(np.mean(values))


@pytest.mark.parametrize("iters", [0, 3])
def test_cldice_term_matches_formula_inside_the_mask(iters) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 12, 10, generator=gen) * 3
    target = (torch.rand(2, 2, 12, 10, generator=gen) > 0.6).float()
    mask = torch.rand(2, 1, 12, 10, generator=gen) > 0.2
    plain = FocalDiceLoss()(logits, target, mask)
    with_term = FocalDiceLoss(cldice_weight=0.5, cldice_iters=iters)(logits, target, mask)
    m = mask.float()
    expected = _cldice_reference(torch.sigmoid(logits) * m, target * m, iters)
    assert (with_term - plain).item() == pytest.approx(0.5 * expected, rel=1e-5)


def _bars(thin_line: bool, thick_rows: int) -> torch.Tensor:
    target = torch.zeros(1, 1, 32, 32)
    target[..., 4 : 4 + thick_rows, 4:28] = 1  # a thick vessel
    if thin_line:
        target[..., 24, 4:28] = 1  # a one-pixel vessel of the same length
    return target


def test_cldice_charges_a_missed_thin_vessel_more_than_dice_does() -> None:
    target = _bars(thin_line=True, thick_rows=7)
    # Two predictions that miss the same 24 pixels: the whole thin vessel, or one edge row of the thick one.
    missed_thin = _bars(thin_line=False, thick_rows=7) * 16 - 8
    thinner_thick = _bars(thin_line=True, thick_rows=6) * 16 - 8
    dice = FocalDiceLoss(focal_weight=0.0)
    assert dice(missed_thin, target).item() == pytest.approx(dice(thinner_thick, target).item(), rel=1e-4)
    cldice = FocalDiceLoss(focal_weight=0.0, dice_weight=0.0, cldice_weight=1.0)
    assert cldice(missed_thin, target).item() > 0.1
    assert cldice(missed_thin, target).item() > 5 * cldice(thinner_thick, target).item()


def test_cldice_gives_no_gradient_outside_the_mask(batch) -> None:
    logits, target, mask = batch
    logits = logits.clone().requires_grad_(True)
    FocalDiceLoss(cldice_weight=1.0)(logits, target, mask).backward()
    assert torch.all(logits.grad[(~mask).expand_as(logits)] == 0)


@pytest.mark.parametrize("kwargs", [{"cldice_weight": -0.5}, {"cldice_iters": -1}, {"cldice_iters": 1.5}])
def test_bad_cldice_settings_name_the_key(kwargs) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        FocalDiceLoss(**kwargs)
