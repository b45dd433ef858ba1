"""Printing a benchmark run as Markdown: the command, the machine, one table per level and the targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from salt.bench.report import Entry, Target, find, markdown

MIB = 2**20


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _giga(value: int) -> str:
    return f"{value / 1e9:.3g}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _relative(entries: Sequence[Entry], entry: Entry, level: str, name: str, **config: Any) -> float | None:
    other = find(entries, level, name, **config)
    return None if other is None else entry.seconds_median / other.seconds_median


def _layer_rows(layer: Sequence[Entry]) -> list[list[Any]]:
    rows = []
    for e in layer:
        key = {"layer": e.config["layer"], "px": e.config["px"]}
        relative = [_times(_relative(layer, e, "layer", n, **key)) for n in ("frozen", "LoRA r=4")]
        cells = [e.config["form"] or "-", f"{1e3 * e.seconds_median:.1f}", *relative, _giga(e.multiply_adds)]
        rows.append([e.config["layer"], e.name, *cells, _mib(e.peak_bytes), e.config["trainable"]])
    return rows


def _form_rows(variants: Sequence[Entry], forms: Sequence[Entry]) -> list[list[Any]]:
    """One row per layer and form-checked variant: its own case (the form auto picks) and the other forms."""
    rows = []
    for pick in variants:
        others = [
            e for e in forms if e.config["layer"] == pick.config["layer"] and e.config["form_of"] == pick.name
        ]
        if not others:
            continue
        entries = sorted([pick, *others], key=lambda e: e.config["form"])
        fastest = min(entries, key=lambda e: e.seconds_median)
        cells = "; ".join(
            f"{e.config['form']} {1e3 * e.seconds_median:.0f} ms / {_giga(e.multiply_adds)} G"
            for e in entries
        )
        ratio = _times(pick.seconds_median / fastest.seconds_median)
        rows.append(
            [pick.config["layer"], pick.name, pick.config["form"], cells, fastest.config["form"], ratio]
        )
    return rows


def layer_tables(entries: Sequence[Entry]) -> list[str]:
    """Per input size: every layer variant (x frozen, x LoRA r=4), then the measured cost of each SALT form."""
    tables = []
    for px in sorted({e.config["px"] for e in entries if e.level == "layer"}):
        layer = [e for e in entries if e.level == "layer" and e.config["px"] == px]
        variants = [e for e in layer if "form_of" not in e.config]
        tokens = next(e.config["tokens"] for e in layer if e.config["kind"] == "Linear")
        headers = ["layer", "case", "form (auto)", "ms", "x frozen", "x LoRA r=4", "GMAC", "peak MiB"]
        title = f"Layer level, {px} px inputs ({tokens} tokens for the Linear layers), forward + backward"
        tables.append(title + "\n\n" + markdown([*headers, "trainable"], _layer_rows(variants)))
        headers = ["layer", "variant", "auto picks", "each form: ms / GMAC", "fastest", "pick / fastest"]
        title = f"Execution forms, {px} px: the cost model's pick against measurement"
        forms = [e for e in layer if "form_of" in e.config]
        tables.append(title + "\n\n" + markdown(headers, _form_rows(variants, forms)))
    return tables


def model_tables(entries: Sequence[Entry]) -> list[str]:
    """Per input size: one training step of every variant."""
    tables = []
    for px in sorted({e.config["px"] for e in entries if e.level == "model"}):
        model = [e for e in entries if e.level == "model" and e.config["px"] == px]
        rows = []
        for e in model:
            relative = [
                _times(_relative(model, e, "model", n))
                for n in ("LoRA r=4", "frozen", "full", "naive SALT l=4")
            ]
            memory = [
                _mib(e.peak_bytes),
                _mib(e.config["resident_bytes"]),
                _mib(e.config.get("adapter_file_bytes")),
            ]
            step = f"{e.seconds_median:.2f}"
            rows.append(
                [e.name, f"{e.config['trainable']:,}", step, *relative, _giga(e.multiply_adds), *memory]
            )
        headers = [
            "variant",
            "trainable",
            "step s",
            "x LoRA r=4",
            "x frozen",
            "x full",
            "x naive",
            "target GMAC",
        ]
        headers += ["step peak MiB", "resident MiB", "adapter file MiB"]
        title = f"Model level: one training step, SAM {model[0].config['sam']} at {px} px, batch {model[0].config['batch']}"
        tables.append(title + "\n\n" + markdown(headers, rows))
    return tables


def other_tables(entries: Sequence[Entry]) -> list[str]:
    """Inference and data tables."""
    tables = []
    inference = [e for e in entries if e.level == "inference"]
    if inference:
        plain = next(e for e in inference if e.name == "plain")
        rows = []
        for e in inference:
            speed = [f"{e.seconds_median:.3f}", f"{e.config['images_per_s']:.2f}"]
            rows.append([e.name, *speed, _times(e.seconds_median / plain.seconds_median), _mib(e.peak_bytes)])
        title = f"Inference without autograd, {plain.config['px']} px, batch {plain.config['batch']}"
        tables.append(
            title + "\n\n" + markdown(["case", "s per batch", "images/s", "x plain", "peak MiB"], rows)
        )
    data = [e for e in entries if e.level == "data"]
    if data:
        rows = [[e.name, f"{e.config['images_per_s']:.2f}"] for e in data]
        title = (
            f"Data: loading (no workers) next to what one training step consumes, {data[0].config['px']} px"
        )
        tables.append(title + "\n\n" + markdown(["case", "images/s"], rows))
    return tables


def print_report(
    command: str, machine: dict[str, Any], entries: Sequence[Entry], targets: Sequence[Target]
) -> None:
    """Print the run as Markdown to stdout."""
    print(f"`{command}`\n")
    load = ", ".join(f"{v:.1f}" for v in machine["load_average_before"])
    hardware = f"{machine['device']}, {machine['cpu_count']} CPUs, torch {machine['torch']}, {machine['threads']} threads"
    precision = machine.get("precision", "float32")
    print(f"{hardware}, {precision}; load average before {load}; run time {machine['seconds']:.0f} s\n")
    for table in [*layer_tables(entries), *model_tables(entries), *other_tables(entries)]:
        print(table + "\n")
    rows = [
        [t.label, f"{t.value:.3f}", "-" if t.bound is None else f"{t.bound:.2f}", t.status()] for t in targets
    ]
    print("Targets\n\n" + markdown(["ratio", "measured", "bound", "status"], rows))
