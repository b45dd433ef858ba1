"""Running the benchmark levels: each returns one :class:`~salt.bench.report.Entry` per measurement."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import torch

from salt.bench.layers import LAYERS, LayerCase, layer_cases
from salt.bench.models import ModelBench
from salt.bench.report import Entry
from salt.bench.timing import interleaved_times, median, peak_bytes
from salt.bench.variants import LAYER_VARIANTS, Variant, method_name, peft_config
from salt.model import build_sam, set_trainable

log = logging.getLogger(__name__)


def _measure(
    calls: dict[str, Callable[[], object]],
    warmup: int,
    repeats: int,
    device: torch.device,
    memory: Collection[str] | None = None,
) -> dict[str, tuple[list[float], int | None]]:
    """``{name: (timed seconds, peak bytes)}``: round-robin timing, then one profiled call per case in
    ``memory`` (default: every case; the others get None)."""
    times = interleaved_times(calls, warmup, repeats, device)
    memory = calls if memory is None else memory
    return {
        name: (times[name], peak_bytes(call, device) if name in memory else None)
        for name, call in calls.items()
    }


def layer_level(
    sam: str,
    sizes: Sequence[int],
    batch: int,
    warmup: int,
    repeats: int,
    device: torch.device,
    config_dir: Path,
) -> list[Entry]:
    """Every layer of :data:`salt.bench.layers.LAYERS` at every input size, every layer variant and SALT form."""
    torch.manual_seed(0)
    model = build_sam(sam, img_size=max(sizes)).to(device)
    set_trainable(model, [])
    variants = [(v, peft_config(v, config_dir, sam)) for v in LAYER_VARIANTS]
    svds: dict = {}
    entries = []
    for short, name in LAYERS.items():
        for px in sizes:
            cases: list[LayerCase] = layer_cases(short, model.get_submodule(name), variants, batch, px, svds)
            log.info("layer %s at %d px: %d cases", short, px, len(cases))
            # the forms of one variant share its tensors and memory needs: profile the variants only
            variant_names = {c.name for c in cases if "form_of" not in c.config}
            results = _measure({c.name: c.call for c in cases}, warmup, repeats, device, variant_names)
            for case in cases:
                seconds, peak = results[case.name]
                entries.append(
                    Entry(case.name, "layer", median(seconds), peak, case.config, seconds, case.multiply_adds)
                )
    return entries


def model_level(bench: ModelBench, variants: Sequence[Variant], warmup: int, repeats: int) -> list[Entry]:
    """One training step of every variant (built on ``bench``), timed side by side."""
    for variant in variants:
        log.info("building %s", variant.name)
        bench.build(variant.name)
    # Counting runs one step of each variant, in table order: it is the first warm-up round.
    counts = {v.name: bench.target_multiply_adds(v.name) for v in variants}
    results = _measure({v.name: bench.step(v.name) for v in variants}, warmup - 1, repeats, bench.device)
    entries = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in variants:
            built = bench.build(variant.name)
            config = {"px": bench.img_size, "batch": bench.batch, "sam": bench.sam, "peft": built.cfg}
            config |= {"groups": list(variant.groups), "naive": variant.naive}
            config |= {
                "trainable": sum(p.numel() for p in built.params),
                "resident_bytes": bench.resident_bytes(variant.name),
            }
            if method_name(built.cfg) != "full":  # full tuning stores whole layers, not an adapter
                config["adapter_file_bytes"] = bench.adapter_file_bytes(variant.name, Path(folder))[0]
            seconds, peak = results[variant.name]
            entries.append(
                Entry(variant.name, "model", median(seconds), peak, config, seconds, counts[variant.name])
            )
    return entries


def inference_level(
    bench: ModelBench, plain: str, salt: str, naive: str, warmup: int, repeats: int
) -> list[Entry]:
    """Forward passes of the plain model and of SALT merged, unmerged (cached or rebuilt) and naive."""
    calls = bench.inference_cases(plain, salt, naive)
    results = _measure(calls, warmup, repeats, bench.device)
    entries = []
    for name, (seconds, peak) in results.items():
        config = {"px": bench.img_size, "batch": bench.batch, "sam": bench.sam}
        config["images_per_s"] = bench.batch / median(seconds)
        entries.append(Entry(name, "inference", median(seconds), peak, config, seconds))
    return entries
