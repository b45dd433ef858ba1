"""What each trained method predicts on a real fundus photograph (no ground truth: a picture, not a number).

    python scripts/real_image.py RUNS_DIR [--dataset synthetic_fundus] [--out docs/figures/proxy_retina.png]

Finds the runs below RUNS_DIR (e.g. outputs/proxy_table1), takes one trained run per method of the data-set
column (lowest seed) and writes the photograph and each method's mask side by side.
"""

import argparse
import logging
import sys
from pathlib import Path

from salt.results.collect import find_runs
from salt.results.real_image import real_image_figure


def main() -> int:
    parser = argparse.ArgumentParser(prog="real_image.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs_dir", type=Path, metavar="RUNS_DIR", help="folder searched recursively for runs"
    )
    parser.add_argument("--dataset", default="synthetic_fundus", help="data-set column whose runs are shown")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/proxy_retina.png"), help="figure path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not args.runs_dir.is_dir():
        print(f"real_image.py: RUNS_DIR {args.runs_dir} is not a folder", file=sys.stderr)
        return 1
    try:
        path = real_image_figure(find_runs(args.runs_dir), args.dataset, args.out)
    except ValueError as exc:
        print(f"real_image.py: {args.runs_dir}: {exc}", file=sys.stderr)
        return 1
    logging.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
