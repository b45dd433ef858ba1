"""Wall time of a short training run with ``cpu_allocator=system`` and ``retain``, side by side.

    python scripts/bench_allocator.py --root data/drive                  # the DRIVE recipe, 8 steps
    python scripts/bench_allocator.py --root data/drive --steps 32 --rounds 1
    python scripts/bench_allocator.py --experiment reduced --root /tmp/synth --windows 0 --steps 2   # any other run

Each run is ``train.py experiment=<experiment> dataset.root=<root>`` for one epoch cut to ``--steps`` optimiser
steps (``trainer.limit_train_batches``; in patch mode the epoch has ``--windows`` windows, enough for them),
without validation or test, in a process of its own (the setting is process-wide). The settings alternate within each round, so a change in the machine's
load falls on both. Prints, per setting: the median over rounds of wall, user and system seconds, peak
resident memory and minor page faults (from ``wait4``), then the ratio of the wall times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("system", "retain")


def _run(setting: str, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    overrides = [
        f"experiment={args.experiment}",
        f"dataset.root={args.root}",
        f"cpu_allocator={setting}",
        "test=false",
        "zero_shot_test=false",
        "++trainer.limit_val_batches=0",
        f"++trainer.limit_train_batches={args.steps}",
        "dataset.max_epochs=1",
        "logger=csv",
        f"hydra.run.dir={folder / setting}",
        *args.overrides,
    ]
    if args.windows:
        overrides.append(f"patch.windows_per_epoch={args.windows}")
    env = {**os.environ, "WANDB_MODE": "offline"}
    folder.mkdir(parents=True, exist_ok=True)
    log_path = (
        folder / f"{setting}.log"
    )  # a file, not a pipe: a pipe nobody reads stalls a long run when full
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *overrides],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"error: train.py {' '.join(overrides)} failed:\n{log_path.read_text()[-2000:]}")
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_gib": usage.ru_maxrss / 2**20,  # KiB on Linux
        "minor_faults_m": usage.ru_minflt / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True, help="the converted data set (dataset.root)")
    parser.add_argument(
        "--experiment", default="drive_real", help="configs/experiment/<name> (default drive_real)"
    )
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per run (default 8)")
    parser.add_argument(
        "--windows",
        type=int,
        default=1024,
        help="patch.windows_per_epoch, at least steps x batch (0: leave it; for runs without patch mode)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting, alternating (default 2)")
    parser.add_argument("overrides", nargs="*", help="further train.py overrides")
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {s: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                result = _run(setting, args, Path(tmp) / f"round{round_}")
                results[setting].append(result)
                print(
                    f"round {round_ + 1} {setting}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()),
                    flush=True,
                )
    keys = list(results[SETTINGS[0]][0])
    print(
        f"\n{args.steps} steps of `train.py experiment={args.experiment}`, median of {args.rounds} runs each:"
    )
    print("| cpu_allocator | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    medians = {s: {k: statistics.median(r[k] for r in results[s]) for k in keys} for s in SETTINGS}
    for setting in SETTINGS:
        print(f"| {setting} | " + " | ".join(f"{medians[setting][k]:.2f}" for k in keys) + " |")
    print(f"wall time, system / retain: {medians['system']['wall_s'] / medians['retain']['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
