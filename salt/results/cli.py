"""``make_tables.py RUNS_DIR``: Table 1 (Markdown, LaTeX or CSV) and the figures from the runs below a folder."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from salt.results.aggregate import Table, build_table
from salt.results.collect import RESOLUTIONS, Run, find_runs
from salt.results.plots import plot_dice_vs_params, plot_training_curves
from salt.results.qualitative import overlay_grid
from salt.results.table import to_csv, to_latex, to_markdown

log = logging.getLogger("make_tables")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_tables.py",
        description="Build the paper's Table 1 (and optionally its figures) from every metrics.json below RUNS_DIR.",
    )
    parser.add_argument(
        "runs_dir", type=Path, metavar="RUNS_DIR", help="folder searched recursively for runs"
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--latex", action="store_true", help="print a LaTeX tabular instead of Markdown")
    form.add_argument("--csv", action="store_true", help="print CSV (plain numbers) instead of Markdown")
    parser.add_argument("--plots", type=Path, metavar="OUT_DIR", help="also write the figures (PNG) here")
    parser.add_argument(
        "--resolution",
        choices=list(RESOLUTIONS),
        default="model",
        help="metrics at the model's input size (the paper's protocol) or at each image's original size",
    )
    parser.add_argument(
        "--datasets",
        help="comma-separated data-set columns in order (default: every data set found, the paper's first)",
    )
    parser.add_argument("--cases", type=int, default=4, help="test cases per qualitative grid (default 4)")
    return parser


def write_plots(runs: Sequence[Run], table: Table, out_dir: Path, cases: int) -> list[Path]:
    """Write the bubble chart, the training curves and one qualitative grid per data set into ``out_dir``.

    A figure without data is skipped with a warning. Returns the paths written.
    """
    order = [row.label for row in table.rows]
    jobs = [
        ("dice_vs_params.png", lambda path: plot_dice_vs_params(table, path)),
        ("training_curves.png", lambda path: plot_training_curves(runs, path, order)),
    ]
    for dataset in table.datasets:
        jobs.append(
            (f"qualitative_{dataset}.png", lambda path, d=dataset: overlay_grid(runs, d, path, order, cases))
        )
    written = []
    for name, draw in jobs:
        try:
            written.append(draw(out_dir / name))
        except ValueError as exc:
            log.warning("%s not written: %s", name, exc)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, print the table to stdout, write figures; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not args.runs_dir.is_dir():
        print(f"error: RUNS_DIR {args.runs_dir} is not a folder", file=sys.stderr)
        return 2
    if args.cases < 1:
        print(f"error: --cases must be at least 1, got {args.cases}", file=sys.stderr)
        return 2
    runs = find_runs(args.runs_dir, resolution=args.resolution)
    if not runs:
        print(f"error: no readable test-split metrics.json below {args.runs_dir}", file=sys.stderr)
        return 1
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    table = build_table(runs, datasets)
    if args.csv:
        sys.stdout.write(to_csv(table))
    elif args.latex:
        sys.stdout.write(to_latex(table, args.resolution))
    else:
        sys.stdout.write(to_markdown(table, args.resolution))
    if args.plots is not None:
        shown = [r for r in runs if r.dataset in table.datasets]
        for path in write_plots(shown, table, args.plots, args.cases):
            print(f"wrote {path}", file=sys.stderr)
    return 0
