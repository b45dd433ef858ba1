"""HD95 in mm (original resolution of a data set with a pixel spacing) is labelled as such in the tables,
never set beside the paper's pixels, and never averaged with pixels."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from salt.results import build_table, find_runs, to_csv, to_markdown
from salt.results.table import MISSING
from tests.results.fake_runs import write_run

SALT4 = {"peft": {"lora_rank": 4}}


def _with_unit(folder: Path, unit: str) -> None:
    path = folder / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["mean_original"]["hd95_unit"] = unit
    path.write_text(json.dumps(metrics))


def _cells(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_mm_cells_say_mm_and_stand_apart_from_pixels(tmp_path: Path) -> None:
    for seed, hd95 in ((1, 0.04), (2, 0.06)):
        folder = write_run(
            tmp_path / f"rose{seed}",
            dataset="rose",
            seed=seed,
            dice=0.7,
            dice_original=0.7,
            hd95=hd95,
            **SALT4,
        )
        _with_unit(folder, "mm")
        # DRIVE without a spacing: a file of an older version, which records no unit, holds pixels.
        write_run(
            tmp_path / f"drive{seed}",
            dataset="drive",
            seed=seed,
            dice=0.7,
            dice_original=0.7,
            hd95=16.0,
            **SALT4,
        )
    table = build_table(find_runs(tmp_path, resolution="original"))
    text = to_markdown(table, resolution="original")
    row = _cells(text)["SALT (rank 4)"]
    assert row["ROSE HD95"] == "0.05±0.01 mm"  # no paper number: the paper's HD95 is in pixels
    assert row["DRIVE HD95"] == "16.00±0.00 (paper 16.04, -0.04)"
    assert row["Avg HD95"] == MISSING and row["Avg Dice"] != MISSING  # mm and pixels are not averaged
    assert "a cell marked mm" in text
    (line,) = csv.DictReader(io.StringIO(to_csv(table)))
    assert (line["rose_hd95_unit"], line["rose_hd95_paper"], line["drive_hd95_unit"]) == ("mm", "", "px")
    assert float(line["rose_hd95_mean"]) == 0.05
