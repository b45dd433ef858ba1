"""Training and inference cost of SALT against LoRA, S-SAM's SVD, full tuning and the authors' naive SALT.

    python scripts/benchmark.py --quick                   # a few minutes on 2 CPU cores
    python scripts/benchmark.py --device cuda --json runs/bench.json
    python scripts/benchmark.py --only model --model-px 512 --quick

Levels, each measured side by side (cases interleaved round-robin, medians over repeats after warm-up):
layer (one SAM ViT-B target layer, forward + backward, at the token counts of an input size), model (one
training step of SAM ViT-B, batch 2), inference (images/s, SALT merged, unmerged, naive) and data (loading
throughput of the synthetic set next to what a training step consumes). Prints Markdown tables and the
ratio targets; ``--json`` writes every measurement (keys name, level, seconds_median, peak_bytes, config).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from bench_data import measure

from salt.bench.models import ModelBench
from salt.bench.report import Entry, inference_targets, training_targets
from salt.bench.run import inference_level, layer_level, model_level
from salt.bench.tables import print_report
from salt.bench.variants import (
    FROZEN,
    LORA_4,
    LORA_256,
    MODEL_VARIANTS,
    NAIVE_SALT_4,
    SALT_4,
    SALT_256,
    Variant,
)
from salt.data.synthetic import generate, make_style

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
LEVELS = ("layer", "model", "inference", "data")
QUICK_MODEL_VARIANTS = tuple(v for v in MODEL_VARIANTS if v not in (LORA_256, SALT_256))


@dataclass(frozen=True)
class Mode:
    """Sizes and repeats of one run mode (model sizes: CPU, CUDA)."""

    sam: str
    layer_px: tuple[int, ...]
    model_px: tuple[int, ...]
    model_px_cuda: tuple[int, ...]
    warmup: int
    repeats: int
    data_images: int
    data_source_px: int
    model_variants: tuple[Variant, ...] = MODEL_VARIANTS


MODES = {
    # The tiny SAM on 64 px inputs: checks that every level runs (tests), says nothing about speed.
    "smoke": Mode("tiny", (64,), (64,), (64,), 1, 1, 3, 64),
    # One layer size; the model at 224 px (one 14 x 14 window per image, so no padding) on a CPU, without
    # the two rank-256 variants (no target involves them).
    "quick": Mode("vit_b", (512,), (224,), (512,), 1, 3, 8, 584, QUICK_MODEL_VARIANTS),
    "full": Mode("vit_b", (256, 512, 1024), (512,), (512, 1024), 2, 5, 32, 584),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="mode", const="quick", help="few-minute run")
    group.add_argument("--smoke", action="store_const", dest="mode", const="smoke", help="tiny SAM, seconds")
    parser.set_defaults(mode="full")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--only", default=",".join(LEVELS), help=f"comma-separated levels (default {','.join(LEVELS)})"
    )
    parser.add_argument("--model-px", type=int, nargs="+", help="model-level input sizes (default: by mode)")
    parser.add_argument("--batch", type=int, default=2, help="images per step / layer call (default 2)")
    parser.add_argument("--repeats", type=int, help="timed rounds (default: by mode)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="write every measurement to this JSON file")
    args = parser.parse_args(argv)
    levels = [level.strip() for level in args.only.split(",") if level.strip()]
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        parser.error(f"--only: unknown level {unknown[0]!r}; valid levels: {', '.join(LEVELS)}")
    args.levels = levels
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device {args.device!r}: valid devices are cpu and cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible to torch")
    return args


def data_level(mode: Mode, px: int, repeats: int, consumers: list[Entry]) -> list[Entry]:
    """Loading rates of the synthetic set (median of ``repeats`` runs of bench_data.measure, one epoch each)."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate(root, mode.data_images, mode.data_source_px, seed=0, style=make_style())
        for _ in range(repeats):
            runs.append(measure(root, "train", px, epochs=1, workers=0, batch_size=1))
    config = {"px": px, "source_px": mode.data_source_px, "images": mode.data_images, "workers": 0}
    entries = []
    for key in runs[0]:
        rates = [run[key] for run in runs]
        seconds = [1 / rate for rate in rates]
        entries.append(
            Entry(
                f"load {key}",
                "data",
                statistics.median(seconds),
                None,
                config | {"images_per_s": statistics.median(rates)},
                seconds,
            )
        )
    for step in consumers:
        rate = step.config["batch"] / step.seconds_median
        entries.append(
            Entry(f"train step {step.name}", "data", 1 / rate, None, step.config | {"images_per_s": rate}, [])
        )
    return entries


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    mode = MODES[args.mode]
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or mode.repeats
    model_px = args.model_px or (mode.model_px_cuda if device.type == "cuda" else mode.model_px)
    started, load_before = time.perf_counter(), os.getloadavg()
    entries: list[Entry] = []
    targets = []
    if "layer" in args.levels:
        entries += layer_level(mode.sam, mode.layer_px, args.batch, mode.warmup, repeats, device, CONFIG_DIR)
    for index, px in enumerate(model_px):
        if not {"model", "inference", "data"} & set(args.levels):
            break
        bench = ModelBench(mode.sam, px, args.batch, device, CONFIG_DIR, mode.model_variants)
        model_entries = []
        if "model" in args.levels:
            model_entries = model_level(bench, mode.model_variants, mode.warmup, repeats)
            targets += training_targets(model_entries, px)
        if "inference" in args.levels and index == 0:
            found = inference_level(bench, FROZEN.name, SALT_4.name, NAIVE_SALT_4.name, mode.warmup, repeats)
            targets += inference_targets(found, SALT_4.name, NAIVE_SALT_4.name)
            entries += found
        if "data" in args.levels and index == 0:
            consumers = [e for e in model_entries if e.name in (FROZEN.name, LORA_4.name, SALT_4.name)]
            entries += data_level(mode, px, repeats, consumers)
        entries += model_entries
        del bench
    machine = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
    }
    for entry in entries:
        entry.config |= {"device": args.device, "threads": machine["threads"]}
    command = "python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print_report(command, machine, entries, targets)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"command": command, "machine": machine, "entries": [asdict(e) for e in entries]}
        report["targets"] = [asdict(t) | {"met": t.met} for t in targets]
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
