"""Segmentation loss of the paper: focal loss plus soft Dice, both on logits, with an optional valid-pixel mask,
and an optional soft clDice term for thin tubular structures."""

from __future__ import annotations

import torch
from monai.losses import FocalLoss, MaskedDiceLoss, SoftclDiceLoss
from torch import nn

from salt.errors import ConfigError


class FocalDiceLoss(nn.Module):
    """``focal_weight * focal + dice_weight * soft_dice [+ cldice_weight * soft_cldice]``, each class an
    independent sigmoid.

    With ``p = sigmoid(logits)``, ``t`` the 0/1 target and ``m`` the valid-pixel mask (all ones if
    none is given), per pixel and class::

        focal = -[alpha * t * (1 - p)^gamma * log(p) + (1 - alpha) * (1 - t) * p^gamma * log(1 - p)]
        FL    = sum(m * focal) / (C * sum(m))                        mean over valid pixels and classes
        Dice  = mean over (b, c) of 1 - (2 sum(m p t) + smooth) / (sum(m p) + sum(m t) + smooth)

    ``alpha`` weights the positive (vessel) pixels, as in Lin et al. and MONAI's scalar ``alpha``;
    the paper uses ``alpha = 0.75``, ``gamma = 3``, ``smooth = 1``. The Dice term is computed per image
    and class (not pooled over the batch), so an image without vessels is pushed towards an empty
    prediction rather than ignored.

    MONAI implements both terms. Its ``DiceLoss`` defaults to ``smooth_nr = smooth_dr = 1e-5``: both are
    set to ``smooth`` here, which gives the formula above. Its ``FocalLoss`` has no spatial mask
    argument, so it runs unreduced and the masked mean is taken here; the Dice term uses
    ``MaskedDiceLoss``, which zeroes probabilities and targets outside the mask after the sigmoid.

    ``cldice_weight > 0`` adds soft clDice (Shit et al., CVPR 2021), MONAI's ``SoftclDiceLoss``: the
    soft skeleton of the prediction (``cldice_iters`` soft erosions) is scored against the target and
    the target's skeleton against the prediction, so a missed one-pixel vessel costs as much of the
    term as a missed thick one, where soft Dice charges it by its few pixels. Probabilities and targets
    are zeroed outside the mask first; the term is per image, pooled over the classes. Skeletons are
    max-pool stacks: ``2 * (3 + 5 * cldice_iters)`` pools of the ``(B, C, H, W)`` maps a step.
    """

    def __init__(
        self,
        focal_weight: float = 1.0,
        dice_weight: float = 1.0,
        alpha: float = 0.75,
        gamma: float = 3.0,
        smooth: float = 1.0,
        cldice_weight: float = 0.0,
        cldice_iters: int = 3,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"focal alpha must lie in [0, 1], got {alpha}")
        if gamma < 0 or smooth < 0:
            raise ConfigError(f"focal gamma and Dice smooth must be >= 0, got gamma={gamma}, smooth={smooth}")
        whole = isinstance(cldice_iters, int) and not isinstance(cldice_iters, bool)
        if cldice_weight < 0 or not whole or cldice_iters < 0:
            raise ConfigError(
                f"loss.cldice_weight must be >= 0 and loss.cldice_iters an integer >= 0, got "
                f"cldice_weight={cldice_weight}, cldice_iters={cldice_iters!r}"
            )
        self.focal_weight = focal_weight
        self.dice_weight = dice_weight
        self.focal = FocalLoss(
            include_background=True, gamma=gamma, alpha=alpha, use_softmax=False, reduction="none"
        )
        self.dice = MaskedDiceLoss(
            include_background=True, sigmoid=True, smooth_nr=smooth, smooth_dr=smooth, reduction="mean"
        )
        self.cldice_weight = cldice_weight
        self.cldice = SoftclDiceLoss(iter_=cldice_iters, reduction="mean") if cldice_weight > 0 else None

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Loss of ``logits (B, C, H, W)`` against ``target (B, C, H, W)`` (0/1 floats).

        Args:
            logits: raw model outputs, before any sigmoid.
            target: ground truth, same shape, values 0 or 1.
            mask: optional ``(B, 1, H, W)`` bool, True where a pixel counts (e.g. a field of view).

        Returns:
            A scalar tensor.
        """
        if logits.ndim != 4 or logits.shape != target.shape:
            raise ValueError(
                f"logits and target must be (B, C, H, W) of one shape, got {tuple(logits.shape)} "
                f"and {tuple(target.shape)}"
            )
        # Mixed precision: both terms sum over many pixels, which half precision does poorly.
        logits, target = logits.float(), target.float()
        if mask is None:
            valid = torch.ones_like(logits[:, :1])  # (B, 1, H, W)
        else:
            if mask.shape != (logits.shape[0], 1, *logits.shape[2:]):
                raise ValueError(f"mask must be (B, 1, H, W) = {(logits.shape[0], 1, *logits.shape[2:])}")
            valid = mask.to(logits.dtype)
        focal_map = self.focal(logits, target)  # (B, C, H, W)
        # An image batch with no valid pixel contributes no focal loss instead of 0/0.
        focal = (focal_map * valid).sum() / (valid.sum() * logits.shape[1]).clamp(min=1.0)
        dice = self.dice(logits, target, mask=valid)
        loss = self.focal_weight * focal + self.dice_weight * dice
        if self.cldice is not None:
            loss = loss + self.cldice_weight * self.cldice(torch.sigmoid(logits) * valid, target * valid)
        return loss
