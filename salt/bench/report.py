"""Benchmark results as data: one :class:`Entry` per measurement, the ratio targets, Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ADAPTER_FILE_SLACK = 1.1  # the file may exceed 4 bytes per trainable value by 10 % ...
ADAPTER_FILE_OVERHEAD = 64 * 1024  # ... plus 64 KiB (safetensors header and tensor names)


@dataclass
class Entry:
    """One measurement; serialised as a JSON object with these keys.

    Attributes:
        name: the case, e.g. ``SALT l=4``; level: ``layer``, ``model``, ``inference`` or ``data``.
        seconds_median: median seconds of one call (data: of one image).
        peak_bytes: peak tensor bytes during one call above the level at its start (None: not measured).
        config: what was measured (shapes, tokens, method options, device, ...).
        seconds: every timed repeat.
        multiply_adds: forward + backward multiply-adds of the adapted layers (None: not counted).
    """

    name: str
    level: str
    seconds_median: float
    peak_bytes: int | None
    config: dict[str, Any] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    multiply_adds: int | None = None


@dataclass
class Target:
    """A ratio from one run and its bound (``None``: reported without a bound)."""

    label: str
    value: float
    bound: float | None

    @property
    def met(self) -> bool | None:
        """Whether the ratio is within its bound (None without a bound)."""
        return None if self.bound is None else self.value <= self.bound

    def status(self) -> str:
        """``met``, ``missed by x %`` or ``-`` (no bound)."""
        if self.bound is None:
            return "-"
        return "met" if self.met else f"missed by {100 * (self.value / self.bound - 1):.0f} %"


def find(entries: Sequence[Entry], level: str, name: str, **config: Any) -> Entry | None:
    """The entry of ``level`` called ``name`` whose config has the given values, or None."""
    for entry in entries:
        if (
            entry.level == level
            and entry.name == name
            and all(entry.config.get(k) == v for k, v in config.items())
        ):
            return entry
    return None


def _ratio(entries: Sequence[Entry], level: str, a: str, b: str, **config: Any) -> float | None:
    first, second = find(entries, level, a, **config), find(entries, level, b, **config)
    if first is None or second is None:
        return None
    return first.seconds_median / second.seconds_median


def training_targets(entries: Sequence[Entry], px: int) -> list[Target]:
    """The step-time and memory ratios of the model level at input size ``px``."""
    pairs = [
        ("SALT l=4", "naive SALT l=4", 0.80),
        ("SALT l=4", "LoRA r=4", 1.30),
        ("SALT l=4", "frozen", None),
        ("SALT l=4", "full", None),
        ("SALT diag r=0.1k", "LoRA equal count", 1.15),
    ]
    targets = []
    for a, b, bound in pairs:
        value = _ratio(entries, "model", a, b, px=px)
        if value is not None:
            targets.append(Target(f"step time {a} / {b} ({px} px)", value, bound))
    total = {}
    for name in ("SALT l=4", "LoRA r=4", "naive SALT l=4"):
        entry = find(entries, "model", name, px=px)
        if entry is not None and entry.peak_bytes is not None:
            total[name] = entry.config["resident_bytes"] + entry.peak_bytes
    for other, bound in (("LoRA r=4", 1.25), ("naive SALT l=4", 1.0)):
        if "SALT l=4" in total and other in total:
            label = f"training memory (resident + step peak) SALT l=4 / {other} ({px} px)"
            targets.append(Target(label, total["SALT l=4"] / total[other], bound))
    for entry in entries:
        if entry.level == "model" and entry.config.get("px") == px and "adapter_file_bytes" in entry.config:
            allowed = ADAPTER_FILE_SLACK * 4 * entry.config["trainable"] + ADAPTER_FILE_OVERHEAD
            label = f"adapter file bytes / (1.1 x 4 x trainable + 64 KiB), {entry.name}"
            targets.append(Target(label, entry.config["adapter_file_bytes"] / allowed, 1.0))
    return targets


def inference_targets(entries: Sequence[Entry], salt: str, naive: str) -> list[Target]:
    """Inference time ratios to the plain model: merged <= 1.03, unmerged in eval mode <= 1.05."""
    cases = [
        (f"{salt} merged", 1.03),
        (f"{salt} unmerged, eval (cached W')", 1.05),
        (f"{salt} unmerged, W' rebuilt per call", None),
        (naive, None),
    ]
    targets = []
    for name, bound in cases:
        value = _ratio(entries, "inference", name, "plain")
        if value is not None:
            targets.append(Target(f"inference time {name} / plain", value, bound))
    return targets


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats as given (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
