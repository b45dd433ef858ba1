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

from salt import CONFIG_DIR
from salt.bench.models import ModelBench
from salt.bench.report import Entry, Target, inference_targets, training_targets
from salt.bench.run import inference_level, layer_level, model_level
from salt.bench.tables import print_report
from salt.bench.variants import (
    FORM_VARIANTS,
    FROZEN,
    LORA_4,
    LORA_256,
    MODEL_VARIANTS,
    NAIVE_SALT_4,
    SALT_4,
    SALT_256,
    SVD,
    Variant,
)
from salt.data.synthetic import generate, make_style
from salt.model.backbones.sam import PATCH_SIZE

LEVELS = ("layer", "model", "inference", "data")
CUDA_ROUNDS = 5  # timed rounds on CUDA: this many times the mode's
QUICK_MODEL_VARIANTS = tuple(v for v in MODEL_VARIANTS if v not in (LORA_256, SALT_256, SVD))


@dataclass(frozen=True)
class Mode:
    """Sizes and repeats of one run mode (model sizes on a CPU and on CUDA; layer calls are short and
    noisier, so they get more timed rounds)."""

    sam: str
    layer_px: tuple[int, ...]
    model_px: tuple[int, ...]
    model_px_cuda: tuple[int, ...]
    warmup: int
    repeats: int
    layer_repeats: int
    data_images: int
    data_source_px: int
    model_variants: tuple[Variant, ...] = MODEL_VARIANTS


MODES = {
    # The tiny SAM on 64 px inputs: checks that every level runs (tests), says nothing about speed.
    "smoke": Mode("tiny", (64,), (64,), (64,), 1, 1, 1, 3, 64),
    # One layer size; the model at 224 px (one 14 x 14 window per image, so no padding) on a CPU, without
    # the variants no target involves (the two rank-256 ones and S-SAM's SVD).
    "quick": Mode("vit_b", (512,), (224,), (512,), 1, 3, 3, 8, 584, QUICK_MODEL_VARIANTS),
    "full": Mode("vit_b", (256, 512, 1024), (512,), (512, 1024), 2, 5, 7, 32, 584),
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
    parser.add_argument(
        "--forms",
        action="store_true",
        help="model level: also SALT with each execution form fixed (weight, basis, delta) next to auto",
    )
    parser.add_argument(
        "--amp", action="store_true", help="bf16 autocast in model steps and inference, as trainer=gpu (CUDA)"
    )
    parser.add_argument("--json", type=Path, help="write every measurement to this JSON file")
    args = parser.parse_args(argv)
    levels = [level.strip() for level in args.only.split(",") if level.strip()]
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        parser.error(f"--only: unknown level {unknown[0]!r}; valid levels: {', '.join(LEVELS)}")
    args.levels = levels
    for name in ("batch", "repeats", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.model_px and any(px <= 0 or px % PATCH_SIZE for px in args.model_px):
        parser.error(
            f"--model-px: every size must be a positive multiple of {PATCH_SIZE}, got {args.model_px}"
        )
    if args.device not in ("cpu", "cuda"):
        parser.error(f"--device {args.device!r}: valid devices are cpu and cuda")
    if args.json is not None:  # checked now, not after minutes of measuring
        folder = args.json.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            if args.json.is_dir():
                raise IsADirectoryError(args.json)
            with tempfile.TemporaryFile(dir=folder):  # a probe: root passes os.access checks it then fails
                pass
        except OSError:
            parser.error(f"--json {args.json}: cannot write a file there")
    if args.amp and args.device != "cuda":
        parser.error("--amp needs --device cuda (bf16 autocast on a CPU is slower than float32)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible to torch")
    return args


def data_level(mode: Mode, px: int, repeats: int, consumers: list[Entry]) -> list[Entry]:
    """Loading rates of the synthetic set (median of ``repeats`` runs of bench_data.measure, one epoch each),
    and the images/s that the ``consumers`` (model-level training steps) take in."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate(root, mode.data_images, mode.data_source_px, seed=0, style=make_style())
        runs = [measure(root, "train", px, epochs=1, workers=0, batch_size=1) for _ in range(repeats)]
    config = {"px": px, "source_px": mode.data_source_px, "images": mode.data_images, "workers": 0}
    entries = []
    for key in runs[0]:
        seconds = [1 / run[key] for run in runs]  # per image
        per_image = statistics.median(seconds)
        entries.append(
            Entry(f"load {key}", "data", per_image, None, config | {"images_per_s": 1 / per_image}, seconds)
        )
    for step in consumers:
        rate = step.config["batch"] / step.seconds_median
        entries.append(
            Entry(f"train step {step.name}", "data", 1 / rate, None, config | {"images_per_s": rate})
        )
    return entries


def run(args: argparse.Namespace) -> tuple[list[Entry], list[Target]]:
    """Every requested level; inference and data at the first model-level size."""
    mode, device = MODES[args.mode], torch.device(args.device)
    repeats, layer_repeats = (
        (args.repeats, args.repeats) if args.repeats else (mode.repeats, mode.layer_repeats)
    )
    warmup = mode.warmup
    if device.type == "cuda" and not args.repeats:
        # GPU calls take milliseconds and vary with clocks and launch queues: many more rounds cost little
        warmup, repeats, layer_repeats = warmup + 2, CUDA_ROUNDS * repeats, CUDA_ROUNDS * layer_repeats
    autocast = torch.bfloat16 if args.amp else None
    entries: list[Entry] = []
    targets: list[Target] = []
    if "layer" in args.levels:
        entries += layer_level(mode.sam, mode.layer_px, args.batch, warmup, layer_repeats, device, CONFIG_DIR)
    if not {"model", "inference", "data"} & set(args.levels):
        return entries, targets
    model_px = args.model_px or (mode.model_px_cuda if device.type == "cuda" else mode.model_px)
    variants = (*mode.model_variants, *FORM_VARIANTS) if args.forms else mode.model_variants
    for index, px in enumerate(model_px):
        bench = ModelBench(mode.sam, px, args.batch, device, CONFIG_DIR, variants, autocast)
        steps = model_level(bench, variants, warmup, repeats) if "model" in args.levels else []
        targets += training_targets(steps, px)
        if "inference" in args.levels and index == 0:
            found = inference_level(bench, FROZEN.name, SALT_4.name, NAIVE_SALT_4.name, warmup, repeats)
            targets += inference_targets(found, SALT_4.name, NAIVE_SALT_4.name)
            entries += found
        if "data" in args.levels and index == 0:
            consumers = [e for e in steps if e.name in (FROZEN.name, LORA_4.name, SALT_4.name)]
            entries += data_level(mode, px, repeats, consumers)
        entries += steps
    return entries, targets


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()
    entries, targets = run(args)
    machine = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast" if args.amp else "float32",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
    }
    for entry in entries:
        entry.config |= {"device": args.device, "threads": machine["threads"], "amp": args.amp}
    command = "python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print_report(command, machine, entries, targets)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"command": command, "machine": machine, "entries": [asdict(e) for e in entries]}
        report["targets"] = [asdict(t) | {"met": t.met} for t in targets]
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(report, indent=1) + "\n")
        partial.replace(args.json)  # a reader never sees half a file
    return 0


if __name__ == "__main__":
    sys.exit(main())
