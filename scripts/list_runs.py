"""List every run an experiment launches, before launching it.

python scripts/list_runs.py table1                 # all 75 runs of Table 1's SAM rows
python scripts/list_runs.py table1 dataset=drive   # only the DRIVE column
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salt.experiments import experiments, list_runs


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("experiments:", ", ".join(experiments()))
        return 0 if argv else 2
    try:
        runs = list_runs(argv[0], argv[1:])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max(len(r["row"]) for r in runs)
    for i, run in enumerate(runs):
        print(f"#{i:<3} {run['row']:<{width}}  {run['dataset']:<12} seed={run['seed']:<3} -> {run['subdir']}")
        print(f"      {' '.join(run['overrides'])}")
    print(f"{len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
