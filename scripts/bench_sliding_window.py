"""Sliding-window inference speed (and what the overlap buys) of a patch-mode run, measured side by side.

    python scripts/bench_sliding_window.py --ckpt <patch-mode run> --data <converted data set> [--split val]
        [--overlaps 0 0.25 0.5] [--sw-batch-sizes 1 8] [--precisions 32-true bf16-mixed]
        [--tta none hflip flips] [--images 4] [--threads 2]

For every overlap (and windows-per-forward, precision and test-time-flip setting) each image of the split goes
whole through the run's sliding window at its patch scale: the script prints the seconds per image (median over
images, after one warm-up image), the windows per image (all flips' passes), the share of the time spent in the
image encoder (timed by hooks around it), and the Dice and HD95 at the original resolution inside the field of
view, the same metrics eval.py reports. Pick the split you choose settings on (val), never the test split. Nothing
is asserted: the figures are for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from salt.data import VesselDataset
from salt.data.patches import TTA_FLIPS, TTA_MODES, PatchSettings, WholeImageDataset
from salt.inference.loading import load_trained
from salt.metrics import MetricAccumulator
from salt.model.sliding import sliding_window_logits
from salt.peft import merge

log = logging.getLogger("bench_sliding_window")


class _EncoderClock:
    """Seconds spent inside ``module``'s forward passes (hooks before and after each call)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seconds, self._start = 0.0, 0.0
        module.register_forward_pre_hook(self._before)
        module.register_forward_hook(self._after)

    def _before(self, *_: object) -> None:
        self._start = time.perf_counter()

    def _after(self, *_: object) -> None:
        self.seconds += time.perf_counter() - self._start


def _windows(height: int, width: int, window: int, overlap: float) -> int:
    """Windows MONAI's sliding window takes over an ``(H, W)`` image (after padding to at least a window)."""
    count = 1
    for side in (max(height, window), max(width, window)):
        step = max(int(window * (1 - overlap)), 1)
        count *= -(-(side - window) // step) + 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="a patch-mode training run (folder, .ckpt or adapter)")
    parser.add_argument("--data", required=True, help="a converted data set (canonical layout)")
    parser.add_argument("--split", default="val", help="split to measure on (default: val)")
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--sw-batch-sizes", type=int, nargs="+", default=None, help="default: the run's")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["32-true"],
        choices=["32-true", "bf16-mixed"],
        help="forward passes in float32 and/or under bf16 autocast (as trainer.precision / predict.py precision)",
    )
    parser.add_argument(
        "--tta",
        nargs="+",
        default=None,
        choices=list(TTA_MODES),
        help="test-time flips (patch.tta; default: the run's): each runs the sliding window once per flip",
    )
    parser.add_argument("--images", type=int, default=0, help="use the first N images (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)

    run = load_trained(args.ckpt)
    run_cfg = run.config
    if not run_cfg.get("patch"):
        parser.error(f"--ckpt {args.ckpt}: not a patch-mode run (trained without patch=native)")
    settings = PatchSettings.from_config(run_cfg["patch"])
    window = int(run_cfg["dataset"]["img_size"])
    model = merge(run.model).eval()
    encoder = getattr(model, "image_encoder", None)
    clock = _EncoderClock(encoder) if encoder is not None else None
    base = VesselDataset(
        args.data,
        args.split,
        img_size=window,
        num_classes=int(run_cfg["dataset"]["num_classes"]),
        label_map=run_cfg["dataset"].get("label_map"),
    )
    data = WholeImageDataset(base, settings)
    count = len(data) if args.images <= 0 else min(args.images, len(data))
    threshold = float(run_cfg["eval"]["threshold"])
    spacing = run_cfg["dataset"].get("spacing")
    log.info(
        "run %s: window %d px, scale %g, %s blending; %d %s images of %s; %d torch threads",
        args.ckpt,
        window,
        settings.scale,
        settings.blend,
        count,
        args.split,
        args.data,
        args.threads,
    )
    header = (
        f"{'precision':>10} {'tta':>5} {'overlap':>7} {'sw_batch':>8} {'windows':>7} {'s/image':>8} "
        f"{'encoder':>7} {'Dice':>7} {'HD95':>7}"
    )
    rows = [header]
    cases = [
        (precision, tta, sw_batch, overlap)
        for precision in args.precisions
        for tta in args.tta or [settings.tta]
        for sw_batch in args.sw_batch_sizes or [settings.sw_batch_size]
        for overlap in args.overlaps
    ]
    for precision, tta, sw_batch, overlap in cases:
        bf16 = precision == "bf16-mixed"
        seconds, encoder_share, windows = [], [], []
        accumulator = MetricAccumulator()
        for index in range(count):
            item = data[index]
            images = item["image"][None]
            if clock is not None:
                clock.seconds = 0.0
            start = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = sliding_window_logits(model, images, window, overlap, settings.blend, sw_batch, tta)
            logits = logits.float()
            elapsed = time.perf_counter() - start
            if index > 0 or count == 1:  # the first image warms up the allocator and caches
                seconds.append(elapsed)
                encoder_share.append(clock.seconds / elapsed if clock is not None else float("nan"))
            windows.append(_windows(*images.shape[-2:], window, overlap) * len(TTA_FLIPS[tta]))  # every pass
            original = data.original(index)
            prob = data.to_original(torch.sigmoid(logits[0]), index)
            accumulator.add(
                item["name"],
                (prob > threshold).numpy(),
                original["mask"],
                fov=original["fov"],
                **({"spacing": spacing} if spacing else {}),
            )
        summary = accumulator.summary()
        rows.append(
            f"{precision:>10} {tta:>5} {overlap:>7.2f} {sw_batch:>8d} {statistics.mean(windows):>7.1f} "
            f"{statistics.median(seconds):>8.2f} {100 * statistics.mean(encoder_share):>6.0f}% "
            f"{summary['dice_mean']:>7.4f} {summary['hd95_mean']:>7.2f}"
        )
        log.info("%s", rows[-1])
    print("\n".join(rows))


if __name__ == "__main__":
    main()
