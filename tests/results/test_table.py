"""Table 1 from fake runs with known numbers: cells, ± over seeds, paper numbers, missing cells, formats."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from salt.paper import PAPER_DATASETS, PAPER_TABLE1
from salt.results import build_table, find_runs, to_csv, to_latex, to_markdown
from salt.results.table import MISSING
from tests.results.fake_runs import write_run

SALT4 = {"peft": {"lora_rank": 4}}
UNET = {"family": "classic", "name": "unet"}


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    for i, (seed, dice, hd95) in enumerate([(1, 0.70, 15.0), (2, 0.72, 16.0), (3, 0.74, 17.0)]):
        write_run(
            root / "multiruns" / "t0" / str(i), dataset="drive", seed=seed, dice=dice, hd95=hd95, **SALT4
        )
    write_run(root / "a" / "b" / "syn1", dataset="synthetic", seed=1, dice=0.5, hd95=30.0, **SALT4)
    write_run(root / "syn2", dataset="synthetic", seed=2, dice=0.6, hd95=20.0, **SALT4)
    write_run(root / "unet", dataset="arcade", seed=1, dice=0.40, hd95=150.0, model=UNET, trainable=6_500_000)
    write_run(root / "zs", dataset="xray_angio", seed=0, dice=0.03, hd95=200.0, method="none", task="eval")
    return root


def _cells(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row)) for row in rows}


def test_markdown_cells_stats_and_paper_numbers(runs_dir: Path) -> None:
    text = to_markdown(build_table(find_runs(runs_dir)))
    cells = _cells(text)
    assert list(cells) == ["U-Net", "SAM, text prompt only", "SALT (rank 4)"]  # the paper's row order
    salt = cells["SALT (rank 4)"]
    assert salt["Seeds"] == "3"
    assert salt["DRIVE Dice"] == "0.720±0.020 (paper .72, +0.00)"
    assert salt["DRIVE HD95"] == "16.00±1.00 (paper 16.04, -0.04)"
    assert salt["ARCADE Dice"] == MISSING and salt["ARCADE HD95"] == MISSING  # missing, never 0
    assert salt["synthetic Dice"] == "0.550±0.071"  # a data set outside the paper: no paper number
    assert salt["Avg Dice"] == MISSING  # arcade and xray_angio are missing for this row
    assert salt["Trainable"] == "1.10M (paper 1.1M, +0.00M)"
    assert salt["Trainable % (paper: /241M)"] == f"{100 * 1.1e6 / 2.41e8:.3g}% (paper 0.46%, -0.00)"
    unet = cells["U-Net"]
    assert unet["ARCADE Dice"] == "0.400 (paper .36, +0.04)"  # one seed: no ±
    assert unet["ARCADE HD95"] == "150.00 (paper 157.14, -7.14)"
    assert unet["Trainable % (base model)"] == "100%"
    assert unet["Trainable % (paper: /241M)"] == "100% (paper 100%, +0.00)"
    assert unet["DRIVE Dice"] == MISSING
    zero_shot = cells["SAM, text prompt only"]
    assert zero_shot["XRay-Angio Dice"] == "0.030 (paper .04, -0.01)"
    assert zero_shot["XRay-Angio HD95"] == "200.00"  # the paper gives no HD95 for this row
    assert zero_shot["Trainable"] == "0"  # nothing is trained, whatever the evaluated model left unfrozen
    assert "0.000" not in text
    assert "columns differ" in text  # the note on the paper's average


def test_average_over_complete_seeds(runs_dir: Path) -> None:
    table = build_table(find_runs(runs_dir), datasets=["drive", "synthetic"])
    salt = next(row for row in table.rows if row.label == "SALT (rank 4)")
    # seed 1: (0.70 + 0.5) / 2, seed 2: (0.72 + 0.6) / 2; seed 3 has no synthetic run
    assert salt.average["dice"].n == 2
    assert salt.average["dice"].mean == pytest.approx(0.63)
    assert salt.average["dice"].std == pytest.approx(0.0424264, rel=1e-5)
    assert _cells(to_markdown(table))["SALT (rank 4)"]["Avg Dice"] == "0.630±0.042"
    assert [row.label for row in table.rows] == ["SALT (rank 4)"]  # rows without these data sets drop out


def test_paper_average_beside_the_five_paper_datasets(tmp_path: Path) -> None:
    paper = PAPER_TABLE1["SALT (rank 256)"]
    for name in PAPER_DATASETS:
        write_run(
            tmp_path / name,
            dataset=name,
            seed=0,
            dice=paper.dice[name] + 0.01,
            hd95=20.0,
            peft={"lora_rank": 256},
        )
    text = to_markdown(build_table(find_runs(tmp_path), datasets=list(PAPER_DATASETS)))
    row = _cells(text)["SALT (rank 256)"]
    assert row["Avg Dice"] == f"{sum(paper.dice.values()) / 5 + 0.01:.3f} (paper .74, +0.01)"
    assert row["Avg HD95"] == "20.00 (paper 23.87, -3.87)"
    assert "columns differ" not in text


def test_csv_parses_with_numbers_and_blanks(runs_dir: Path) -> None:
    rows = {r["method"]: r for r in csv.DictReader(io.StringIO(to_csv(build_table(find_runs(runs_dir)))))}
    salt = rows["SALT (rank 4)"]
    assert float(salt["drive_dice_mean"]) == pytest.approx(0.72)
    assert float(salt["drive_dice_std"]) == pytest.approx(0.02)
    assert int(salt["drive_dice_n"]) == 3
    assert float(salt["drive_dice_paper"]) == 0.72
    assert salt["arcade_dice_mean"] == "" and salt["avg_dice_mean"] == ""
    assert salt["synthetic_dice_paper"] == ""
    assert int(float(salt["trainable_min"])) == 1_100_000
    assert float(rows["U-Net"]["paper_trainable"]) == 6.5e6
    assert rows["SAM, text prompt only"]["xray_angio_hd95_paper"] == ""


def test_latex_is_a_consistent_tabular(runs_dir: Path) -> None:
    text = to_latex(build_table(find_runs(runs_dir)))
    body = text[text.index(r"\begin{tabular}") :].splitlines()
    assert body[0].startswith(r"\begin{tabular}{l") and body[-1] == r"\end{tabular}"
    spec = body[0][len(r"\begin{tabular}{") : -1]
    table_rows = [line for line in body if line.endswith(r"\\")]
    assert len(table_rows) == 4  # header + three methods
    for line in table_rows:
        assert line.replace(r"\&", "").count("&") == len(spec) - 1
        assert "%" not in line.replace(r"\%", "") and "_" not in line.replace(r"\_", "")
    assert r"0.720$\pm$0.020 (paper .72, +0.00)" in text


def test_rank_grid_cells_are_rows_of_their_own_in_numeric_order(tmp_path: Path) -> None:
    grid = [(760, 50, 250, 4), (256, 50, 64, 16), (256, 50, 64, 4), (512, 200, 250, 256)]
    for attn, mlp, neck, low in grid:
        peft = {"lora_rank": low, "rank": attn, "rank_pattern": {r"mlp\.lin[12]": mlp, r"neck\.[02]": neck}}
        write_run(
            tmp_path / f"{attn}_{mlp}_{neck}_{low}", dataset="drive", seed=0, dice=0.7, hd95=15.0, peft=peft
        )
    cells = _cells(to_markdown(build_table(find_runs(tmp_path))))
    assert list(cells) == [
        "SALT (rank 4)",  # the paper's setting: the Table 1 row, first, with the paper's numbers
        "SALT (rank 4; r 256/50/64)",
        "SALT (rank 16; r 256/50/64)",
        "SALT (rank 256; r 512/200/250)",
    ]
    assert "paper .72" in cells["SALT (rank 4)"]["DRIVE Dice"]
    assert "paper" not in cells["SALT (rank 4; r 256/50/64)"]["DRIVE Dice"]
