"""The optimiser, the learning-rate schedule and the loss of a run, each built from its config by ``_target_``.

``configs/optim/<name>.yaml`` is a partial of an optimiser class (``torch.optim.AdamW``), called with the
trainable tensors; ``configs/schedule/<name>.yaml`` a partial called with the optimiser and, where its signature
names them, the run's length (``total_steps``, ``steps_per_epoch``), stepped after every optimiser step;
``configs/loss/<name>.yaml`` a module called as ``loss(logits, target)`` or, inside a field of view,
``loss(logits, target, fov)``. A new optimiser, schedule or loss is one YAML file naming a class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from salt.errors import ConfigError, UserError

# Keys of the former ``optim`` node and where each went; the one-line refusal names the new spelling.
MOVED = {
    "optim.name": "the optimiser is the optim group: optim=adamw (configs/optim/<name>.yaml)",
    "optim.schedule": "the schedule is the schedule group: schedule=cosine or schedule=constant",
    "optim.warmup_epochs": "write schedule.warmup_epochs with schedule=cosine, or dataset.optim.warmup_epochs",
    "optim.min_lr_ratio": "write schedule.min_lr_ratio with schedule=cosine, or dataset.optim.min_lr_ratio",
}


def _partial(key: str, node: Mapping[str, Any]) -> Callable[..., Any]:
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise ConfigError(f"{key} needs a _target_ (a class or function to build it with), got {node!r}")
    try:
        return instantiate(dict(node), _partial_=True, _convert_="all")
    except InstantiationException as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{key}._target_={node['_target_']!r} cannot be built: {reason}") from None


def instantiate_config(key: str, node: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)`` called with ``args`` and ``kwargs`` besides the node's own arguments
    (a ``_partial_`` node is a partial of exactly that call). The given arguments are passed as they are, not
    merged into the config (a data set node holding a ``_target_`` stays data); the node's lists are lists.

    Args:
        key: the node's config key (``optim``, ``schedule``, ``loss``, ``data``), named in the error.
        node: a config node with a ``_target_``.

    Raises:
        ConfigError: one line naming ``key`` when the node has no ``_target_``, the target cannot be found,
            or it refuses the node's arguments.
    """
    build = _partial(key, node)
    try:
        return build(*args, **kwargs)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}._target_={node['_target_']!r} refused its arguments: {exc}") from None


def check_moved_keys(cfg: Mapping[str, Any]) -> None:
    """Refuse, in one line naming the new spelling, a setting written where it was before the optimiser, the
    schedule and the loss became config groups (``optim.schedule: cosine`` in an experiment file)."""
    for key, hint in MOVED.items():
        if key.split(".")[1] in (cfg.get("optim") or {}):
            raise ConfigError(f"{key} is no longer a setting: {hint}")
    recommended = ((cfg.get("dataset") or {}).get("optim") or {}).get("schedule")
    if recommended is not None and not isinstance(recommended, Mapping):
        raise ConfigError(
            f"dataset.optim.schedule={recommended!r} names no schedule: a data set recommends one as a node "
            "(`defaults: [/schedule@optim.schedule: cosine]` in its YAML); on the command line use schedule=cosine"
        )


def refuse_moved_overrides(overrides: Iterable[str]) -> None:
    """Refuse command-line overrides of the former ``optim`` keys (``optim.schedule=cosine``) in one line.

    Hydra would refuse them too, in several lines that do not say where the setting went.
    """
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in MOVED:
            raise ConfigError(f"{override}: {key} is no longer a setting: {MOVED[key]}")
        if key == "dataset.optim.schedule" and value not in ("", "null"):
            raise ConfigError(
                f"{override}: the schedule is the schedule group: schedule={value.split(',')[0]}"
            )


def build_schedule(
    node: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: float
) -> LRScheduler | None:
    """The ``schedule`` node's scheduler for ``optimizer`` (None for a null node: a constant learning rate).

    Args:
        node: a partial of a scheduler class or function (``configs/schedule/<name>.yaml``).
        total_steps: optimiser steps of the whole run.
        steps_per_epoch: optimiser steps per epoch (a fraction when the last epoch is cut short).
    """
    if node is None:
        return None
    if not node.get("_partial_"):
        raise ConfigError("schedule needs `_partial_: true`: it is called with the optimizer")
    accepted = inspect.signature(_partial("schedule", node)).parameters
    run_length = {"total_steps": total_steps, "steps_per_epoch": steps_per_epoch}
    return instantiate_config(
        "schedule", node, optimizer, **{k: v for k, v in run_length.items() if k in accepted}
    )


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: float,
    warmup_epochs: float = 0.0,
    min_lr_ratio: float = 0.0,
) -> LRScheduler:
    """A linear warmup, then a cosine decay to ``lr * min_lr_ratio`` at the last step: torch's
    ``SequentialLR(LinearLR, CosineAnnealingLR)``.

    With ``W = round(warmup_epochs * steps_per_epoch)`` warmup steps and ``T = total_steps``, the learning rate
    of optimiser step ``s`` (0-based) is ``lr * f(s)`` with::

        f(s) = (s + 1) / W                                         s < W
        f(s) = r + (1 - r) * (1 + cos(pi * (s - W) / (T - W))) / 2  s >= W,  r = min_lr_ratio

    Args:
        optimizer: its param groups' ``lr`` is the peak; the floor is ``min_lr_ratio`` times the first group's.
        total_steps: optimiser steps of the run (``T``).
        steps_per_epoch: optimiser steps per epoch, to turn ``warmup_epochs`` into steps.
        warmup_epochs: warmup length in epochs (may be fractional; 0: none).
        min_lr_ratio: the floor of the decay, as a fraction of the peak.
    """
    if warmup_epochs < 0 or not 0.0 <= min_lr_ratio <= 1.0:
        raise ConfigError(
            f"schedule.warmup_epochs={warmup_epochs} must be >= 0 and schedule.min_lr_ratio={min_lr_ratio} "
            "in [0, 1]"
        )
    total = max(int(total_steps), 1)
    warmup = round(warmup_epochs * steps_per_epoch)
    floor = optimizer.param_groups[0]["lr"] * min_lr_ratio
    cosine = CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1), eta_min=floor)
    if warmup == 0:
        return cosine
    linear = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1)
    return SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
