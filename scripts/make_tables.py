"""Table 1 of the paper and its figures from finished runs.

    python scripts/make_tables.py RUNS_DIR [--latex | --csv] [--plots OUT_DIR] [--resolution model|original]
        [--datasets arcade,dias,rose,xray_angio,drive] [--cases N]

Reads every ``metrics.json`` below RUNS_DIR (any depth, e.g. Hydra multirun folders), prints the table to
stdout and, with ``--plots``, writes ``dice_vs_params.png``, ``training_curves.png`` and one
``qualitative_<dataset>.png`` per data set.
"""

import sys

from salt.results.cli import main

if __name__ == "__main__":
    sys.exit(main())
