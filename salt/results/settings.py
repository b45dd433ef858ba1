"""Telling runs apart by their settings: two runs in one table cell that did not run the same thing.

A sweep over a setting the row label does not name (``-m optim.lr=1e-3,3e-4``, ``dataset.max_epochs=...``)
gives runs with the same row, data set and seed. They are not duplicates, so the table shows each as its
own row, named by the settings that differ: ``"Decoder-only [<tag>], optim.lr=0.001"``. So do two
folders evaluated with one data-set config (``eval.py ... dataset=drive dataset.root=<folder>``): what was
evaluated is the data set's name and its ``dataset.root``, and the row names the folder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

# Config keys (and key prefixes) that say where a run wrote, how it was logged or shown, or which hardware
# kind ran it, never what it computed: runs that differ only in these are the same cell. ``dataset.root``
# is not one of them: it says which images were evaluated.
BOOKKEEPING: tuple[str, ...] = (
    "task_name",
    "seed",
    "ckpt_path",
    "test",
    "zero_shot_test",
    "paths",
    "logger",
    "callbacks",
    "hydra",
    "data.num_workers",
    "data.pin_memory",
    "eval.overlays",
    "eval.original_resolution",
    "trainer.default_root_dir",
    "trainer.accelerator",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
)


# The folder a run read its images from: with the data set's name, what was evaluated.
ROOT_KEY = "dataset.root"


def _bookkeeping(key: str) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in BOOKKEEPING)


def run_settings(config: dict[str, Any]) -> dict[str, str]:
    """A run's configuration flattened to ``dotted.key -> JSON text``, bookkeeping keys left out.

    Args:
        config: the resolved configuration a run records (``metrics.json`` key ``config``).
    """
    flat: dict[str, str] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if _bookkeeping(dotted):
                continue
            if isinstance(value, dict) and value:
                walk(value, dotted + ".")
            else:
                flat[dotted] = json.dumps(value, sort_keys=True)

    walk(config, "")
    return flat


def _differing(settings: Sequence[dict[str, str]]) -> set[str]:
    """Keys every run records but not with one value."""
    common = set.intersection(*(set(s) for s in settings))
    return {key for key in common if len({s[key] for s in settings}) > 1}


def _shown(value: str) -> str:
    parsed = json.loads(value)
    if isinstance(parsed, float):
        return f"{parsed:g}"
    return parsed if isinstance(parsed, str) else value


def _without_redundant_root(keys: list[str], settings: Sequence[dict[str, str]]) -> list[str]:
    """``keys`` less ``dataset.root`` when the other keys already tell its folders apart (a data set generated
    per setting, root ``.../synthetic_n60``, is named by the setting, not by its path)."""
    others = [k for k in keys if k != ROOT_KEY]
    if ROOT_KEY not in keys or not others:
        return keys
    roots: dict[tuple[str | None, ...], set[str | None]] = defaultdict(set)
    for s in settings:
        roots[tuple(s.get(k) for k in others)].add(s.get(ROOT_KEY))
    return others if all(len(r) == 1 for r in roots.values()) else keys


def distinguish_rows(cells: Sequence[tuple[str, str, int | None, dict[str, str]]]) -> list[str]:
    """Row labels with the settings that tell apart runs of one cell appended.

    Runs sharing row, data set and seed whose :func:`run_settings` differ get, in every run of that row,
    the differing keys and their values (``", optim.lr=0.001"``); of keys that always move together
    (``optim.lr`` interpolated from ``dataset.optim.lr``) the shortest is shown, and ``dataset.root`` only
    where the other keys shown do not already tell its folders apart. Runs whose settings agree keep their
    label (true duplicates, left to the caller).

    Args:
        cells: per run ``(row, dataset, seed, settings)``, settings from :func:`run_settings`.

    Returns:
        One label per run, in order.
    """
    by_cell: dict[tuple[str, str, int | None], list[dict[str, str]]] = defaultdict(list)
    for row, dataset, seed, settings in cells:
        by_cell[(row, dataset, seed)].append(settings)
    keys: dict[str, set[str]] = defaultdict(set)
    for (row, _, _), settings in by_cell.items():
        if len(settings) > 1:
            keys[row] |= _differing(settings)
    shown: dict[str, list[str]] = {}
    for row, row_keys in keys.items():
        in_row = [settings for label, _, _, settings in cells if label == row]
        together: dict[tuple[str | None, ...], list[str]] = defaultdict(list)
        for key in row_keys:
            together[tuple(s.get(key) for s in in_row)].append(key)
        shown[row] = _without_redundant_root(
            sorted(min(group, key=lambda k: (len(k), k)) for group in together.values()), in_row
        )
    labels = []
    for row, _, _, settings in cells:
        parts = [f"{key}={_shown(settings[key])}" for key in shown.get(row, []) if key in settings]
        labels.append(", ".join([row, *parts]))
    return labels
