"""Finding run folders below a root and reading what the table needs from their ``metrics.json``."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from salt.peft import METHODS
from salt.recorded import upgrade_run_config
from salt.results.settings import distinguish_rows, run_settings

log = logging.getLogger(__name__)

ZERO_SHOT = "SAM, text prompt only"
RESOLUTIONS = {"model": "mean", "original": "mean_original"}


class RunError(ValueError):
    """A ``metrics.json`` that cannot be read as a run of the table; the message names the file."""


@dataclass(frozen=True)
class Run:
    """What one run contributes to the table.

    Attributes:
        path: the run folder (holding ``metrics.json``, ``history.csv``, ``overlays/``).
        row: the table row, from the run's configuration (see :func:`row_label`).
        dataset: ``config.dataset.name`` as written in ``metrics.json``.
        split: the evaluated split (``"test"`` for the table).
        seed: the run's seed (None when the run does not record one).
        dice: test Dice averaged over images, or None when the run has none.
        hd95: test HD95 averaged over images, in ``hd95_unit``, or None.
        trainable: number of trainable parameters.
        percent: trainable share of the base model (the backbone alone, or a titled network itself) in percent.
        percent_paper: trainable share in the paper's convention, or None.
        mtime: modification time of ``metrics.json`` (newer wins between duplicates).
        per_class: for a data set of several classes, class name -> ``(dice, hd95)`` (either may be None).
        settings: the recorded configuration, flattened, bookkeeping left out
            (:func:`salt.results.settings.run_settings`); tells apart runs of one cell.
        hd95_unit: ``"px"``, or ``"mm"`` at the original resolution of a data set with ``dataset.spacing``
            (files written before the unit was recorded hold pixels).
    """

    path: Path
    row: str
    dataset: str
    split: str
    seed: int | None
    dice: float | None
    hd95: float | None
    trainable: int | None
    percent: float | None
    percent_paper: float | None
    mtime: float
    per_class: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict, repr=False)
    hd95_unit: str = "px"


def _get(data: dict, dotted: str, source: Path) -> Any:
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise RunError(f"{source}: missing key {dotted!r}")
        value = value[key]
    return value


def _config(metrics: dict, source: Path) -> dict:
    try:
        return upgrade_run_config(metrics.get("config") or {})
    except ValueError as exc:
        raise RunError(f"{source}: {exc}") from None


def row_label(metrics: dict, source: Path) -> str:
    """The table row of a run, composed from what it recorded: ``"<method's label> [<model's tag>]"``.

    A network whose model config has a ``title`` (a baseline trained from scratch) is named by it. Otherwise the run's
    method names its row (:meth:`salt.peft.base.Method.row_label`, from ``config.peft``), or the run is
    the zero-shot row (:func:`is_zero_shot`); the model config's ``tag`` follows in brackets
    (none on the paper's backbone), and a run prompted by boxes or points names
    its prompt, e.g. ``"Zero-shot, box prompt [<tag>]"``, and a run in patch mode (``config.patch``) says so,
    e.g. ``"SALT (rank 4), patch mode [<tag>]"`` or ``"U-Net, patch mode"``. Runs recorded in an earlier form are read in
    today's (:func:`salt.recorded.upgrade_run_config`).

    Raises:
        RunError: a key the label needs is missing; the message names the file and the key.
    """
    config = _config(metrics, source)
    model_cfg = config.get("model") or {}
    if model_cfg.get("title"):
        return f"{model_cfg['title']}, patch mode" if config.get("patch") else str(model_cfg["title"])
    method = _method(metrics, config)
    if method is None:
        _get(metrics, "config.peft._target_", source)
    tag = str(model_cfg.get("tag") or "")
    if is_zero_shot(metrics):
        label = ZERO_SHOT if prompt_mode(config) == "class" else "Zero-shot"
    elif method is not None:
        try:
            label = method.row_label(config.get("peft") or {}, config, paper_backbone=not tag)
        except KeyError as exc:
            raise RunError(f"{source}: missing key {exc.args[0]!r}") from None
    else:
        label = str(metrics.get("method"))
    if prompt_mode(config) != "class":  # a box- or point-prompted run is its own row
        label = f"{label}, {prompt_mode(config)} prompt"
    if config.get("patch"):  # windows at the image's own scale, a sliding window at test: its own row
        label = f"{label}, patch mode"
    return f"{label} [{tag}]" if tag else label


def _method(metrics: dict, config: dict) -> type | None:
    # The method class the run recorded: by its registry name in metrics.json, else by config.peft._target_.
    if metrics.get("method") in METHODS:
        return METHODS[metrics["method"]]
    target = (config.get("peft") or {}).get("_target_")
    return next((cls for cls in METHODS.values() if f"{cls.__module__}.{cls.__qualname__}" == target), None)


def prompt_mode(config: dict) -> str:
    """The run's ``prompt.mode`` (``class``, the paper's, for runs that record none)."""
    return str((config.get("prompt") or {}).get("mode") or "class")


def is_zero_shot(metrics: dict) -> bool:
    """Whether the run tested a model with nothing trained (a method that adapts nothing, ``task: eval``)."""
    try:
        method = _method(metrics, upgrade_run_config(metrics.get("config") or {}))
    except ValueError:
        return False
    return method is not None and not method.matches_targets and metrics.get("task") == "eval"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def load_run(metrics_json: Path, resolution: str = "model") -> Run:
    """Read one ``metrics.json``.

    Args:
        metrics_json: path of the file; its folder is the run folder.
        resolution: ``"model"`` (the paper's protocol, key ``mean``) or ``"original"`` (``mean_original``).

    Raises:
        RunError: unreadable JSON, a missing key, or a non-numeric metric, naming the file.
    """
    try:
        metrics = json.loads(metrics_json.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{metrics_json}: cannot read ({exc})") from exc
    if not isinstance(metrics, dict):
        raise RunError(f"{metrics_json}: expected a JSON object")
    params = _get(metrics, "params", metrics_json)
    if not isinstance(params, dict):
        raise RunError(f"{metrics_json}: 'params' must be an object")
    if not isinstance(metrics.get("config") or {}, dict):
        raise RunError(f"{metrics_json}: 'config' must be an object")
    mean = metrics.get(RESOLUTIONS[resolution]) or {}
    if not isinstance(mean, dict):
        raise RunError(f"{metrics_json}: {RESOLUTIONS[resolution]!r} must be an object")
    titled = bool((_config(metrics, metrics_json).get("model") or {}).get("title"))
    percent_paper = params.get("trainable_percent_paper")
    if percent_paper is None and titled:
        # A network named by its own title is trained whole; the paper reports those against their own size.
        percent_paper = params.get("trainable_percent")
    row = row_label(metrics, metrics_json)
    trainable, percent = params.get("trainable"), params.get("trainable_percent")
    if is_zero_shot(metrics):
        # Nothing is trained for the zero-shot row, whatever the evaluated model leaves unfrozen.
        trainable, percent = 0, 0.0
        percent_paper = None if percent_paper is None else 0.0
    dataset = str(_get(metrics, "dataset", metrics_json))
    seed = metrics.get("seed", (metrics.get("config") or {}).get("seed"))
    try:
        return Run(
            path=metrics_json.parent,
            row=row,
            dataset=dataset,
            split=str(metrics.get("split", "test")),
            seed=None if seed is None else int(seed),
            dice=_number(mean.get("dice")),
            hd95=_number(mean.get("hd95")),
            trainable=None if trainable is None else int(trainable),
            percent=_number(percent),
            percent_paper=_number(percent_paper),
            mtime=metrics_json.stat().st_mtime,
            per_class={
                str(name): (_number(stats.get("dice")), _number(stats.get("hd95")))
                for name, stats in (mean.get("per_class") or {}).items()
            },
            settings=run_settings(metrics.get("config") or {}),
            hd95_unit=str(mean.get("hd95_unit") or "px"),
        )
    except (TypeError, ValueError) as exc:
        raise RunError(f"{metrics_json}: non-numeric value ({exc})") from exc


def find_runs(root: Path, resolution: str = "model", split: str = "test") -> list[Run]:
    """Every run below ``root`` (``metrics.json`` at any depth) on ``split``, one per (row, data set, seed).

    Unreadable files are skipped with a warning, runs of another split with an info message. Runs that
    agree in row, data set and seed but not in their settings (a sweep over a key the row does not name,
    e.g. ``optim.lr``, or one data-set config evaluated on two folders, ``dataset.root``) each get their own
    row, named by the differing settings (:func:`salt.results.settings.distinguish_rows`). Runs that agree
    in settings too are duplicates: the newest ``metrics.json`` (by modification time) is kept, with a
    warning.

    Returns:
        Runs sorted by row, data set and seed.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r}; valid: {', '.join(RESOLUTIONS)}")
    found: list[Run] = []
    for path in sorted(root.rglob("metrics.json")):
        try:
            run = load_run(path, resolution)
        except RunError as exc:
            log.warning("skipped %s", exc)
            continue
        if run.split != split:
            log.info("skipped %s: split %r, not %r", path, run.split, split)
            continue
        if run.dice is None:
            log.warning("%s: no %s-resolution Dice; shown as missing", path, resolution)
        found.append(run)
    labels = distinguish_rows([(r.row, r.dataset, r.seed, r.settings) for r in found])
    kept: dict[tuple[str, str, int | None], Run] = {}
    for run, label in zip(found, labels, strict=True):
        run = replace(run, row=label)
        key = (run.row, run.dataset, run.seed)
        if key in kept:
            newer, older = sorted((run, kept[key]), key=lambda r: r.mtime, reverse=True)
            log.warning(
                "duplicate run for %s on %s, seed %s: keeping %s (newest), ignoring %s",
                *key,
                newer.path,
                older.path,
            )
            run = newer
        kept[key] = run
    return sorted(kept.values(), key=lambda r: (r.row, r.dataset, -1 if r.seed is None else r.seed))
