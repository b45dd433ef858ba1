"""Every experiment composes, sweeps by itself, and launches one run per table cell and seed."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import pytest
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from salt.experiments import CONFIGS
from salt.inference.loading import build_run_network
from salt.model.factory import peft_options, resolve_checkpoint
from salt.model.normalize import MinMaxNormalize
from salt.model.sliding import ImageRangeScale
from salt.paper import PAPER_DATASETS, PAPER_TABLE1
from salt.results.settings import distinguish_rows, run_settings
from tests.experiments.sweeps import (
    EXPERIMENTS,
    REDUCED_TABLE1_ROWS,
    axes,
    compose_run,
    describe,
    hydra_configs,
    sweep_runs,
)

TABLE1 = ("table1", "table1_zero_shot", "table1_classic")
FULL_SIZE = (*TABLE1, "rank_ablation", "peft_field_vit_b")
# Experiment -> the runs it launches, as its header comment and docs/reproduce.md state them.
RUN_COUNTS = {
    "table1": 75,
    "table1_zero_shot": 15,
    "table1_classic": 90,
    "rank_ablation": 48,
    "peft_field": 9,
    "peft_field_vit_b": 135,
    "peft_field_reduced": 9,
    "table1_reduced": 10,
    "table1_zero_shot_reduced": 2,
    "table1_classic_reduced": 12,
    "rank_ablation_reduced": 16,
    "proxy_table1": 72,
    "proxy_table1_reduced": 9,
    "proxy_rank_ablation": 8,
    "proxy_lr_search": 12,
    "table1_sam2": 60,
    "table1_sam2_reduced": 8,
    "dias_real": 9,
    "drive_real_table": 27,
}
# Experiments that are one run (`python train.py experiment=<name>` trains it), not a sweep.
SINGLE_RUNS = ("drive_real",)


@functools.cache
def _axis_runs(experiment: str) -> dict[str, list[dict]]:
    """Swept key -> one described run per value, the other keys at their first value (composed once)."""
    with hydra_configs():
        grid = axes(compose_run(experiment, []))
        first = [values[0] for values in grid.values()]
        return {
            key: [describe(compose_run(experiment, [*first[:i], value, *first[i + 1 :]])) for value in values]
            for i, (key, values) in enumerate(grid.items())
        }


def _cells(axis_runs: dict[str, list[dict]]) -> set[tuple[str, str, int]]:
    """(row, data set, seed) of every run of the product, each part taken from the axis that sets it."""
    varying = {
        part: [r[part] for runs in axis_runs.values() for r in runs if r[part] != runs[0][part]]
        for part in ("row", "dataset", "seed")
    }
    base = next(iter(axis_runs.values()))[0]
    values = {part: sorted({base[part], *varying[part]}, key=str) for part in varying}
    return set(itertools.product(values["row"], values["dataset"], values["seed"]))


def test_every_experiment_is_checked() -> None:
    assert set(EXPERIMENTS) == {*RUN_COUNTS, *SINGLE_RUNS, "reduced", "proxy"}


@pytest.mark.parametrize("experiment", SINGLE_RUNS)
def test_single_run_experiments_train_one_run_in_patch_mode(experiment: str) -> None:
    with hydra_configs():
        cfg = compose_run(experiment, [])
        keys = ("patch", "prompt", "dataset", "model", "trainer")
        job = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in keys}
    assert cfg.hydra.mode != RunMode.MULTIRUN
    assert job["patch"]["scale"] == 1.0 and job["prompt"]["mode"] == "class"
    assert (job["dataset"]["name"], job["dataset"]["img_size"], job["model"]["variant"]) == (
        "drive",
        256,
        "medsam_lite",
    )


@pytest.mark.parametrize("experiment", sorted(RUN_COUNTS))
def test_experiment_sweeps_its_runs(experiment: str) -> None:
    with hydra_configs():
        cfg = compose_run(experiment, [])
    runs = sweep_runs(cfg)
    assert cfg.hydra.mode == RunMode.MULTIRUN  # `python train.py experiment=<name>` launches the sweep
    assert len(runs) == RUN_COUNTS[experiment]
    assert len({tuple(run) for run in runs}) == len(runs)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(RUN_COUNTS))
def test_each_run_is_its_own_cell_and_folder(experiment: str) -> None:
    axis_runs = _axis_runs(experiment)
    for key, runs in axis_runs.items():
        # Every value of a swept key is its own table cell (as make_tables names rows) and its own folder.
        rows = distinguish_rows([(r["row"], r["dataset"], r["seed"], run_settings(r["job"])) for r in runs])
        identities = {(row, r["dataset"], r["seed"]) for row, r in zip(rows, runs, strict=True)}
        assert len(identities) == len(runs), key
        assert len({r["subdir"] for r in runs}) == len(runs), key
    if experiment.startswith("table1"):
        assert len(_cells(axis_runs)) == RUN_COUNTS[experiment]


@pytest.mark.slow
def test_table1_experiments_cover_the_paper_table() -> None:
    cells = set()
    for experiment in TABLE1:
        cells |= {(row, dataset) for row, dataset, _ in _cells(_axis_runs(experiment))}
    assert cells == set(itertools.product(PAPER_TABLE1, PAPER_DATASETS))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(REDUCED_TABLE1_ROWS))
def test_reduced_table1_rows(experiment: str) -> None:
    cells = _cells(_axis_runs(experiment))
    assert {row for row, _, _ in cells} == REDUCED_TABLE1_ROWS[experiment]
    assert len({dataset for _, dataset, _ in cells}) == 2


@pytest.mark.parametrize("experiment", FULL_SIZE)
def test_full_size_experiments_use_the_paper_settings(experiment: str) -> None:
    with hydra_configs():
        job = describe(compose_run(experiment, []))["job"]
    assert job["dataset"]["img_size"] == 512
    assert job["trainer"]["accelerator"] == "gpu" and job["trainer"]["devices"] == 1
    optim = job["optim"]
    assert (optim["_target_"], optim["lr"], optim["weight_decay"]) == ("torch.optim.AdamW", 1e-4, 1e-2)
    assert job["schedule"] is None  # the paper's constant learning rate
    assert job["loss"]["_target_"] == "salt.losses.FocalDiceLoss"
    assert (job["loss"]["alpha"], job["loss"]["gamma"], job["loss"]["smooth"]) == (0.75, 3.0, 1.0)
    if job["fit"]:
        assert job["trainer"]["max_epochs"] == 200
    if job["model"]["_target_"] != "salt.classic.ClassicSegmenter":
        # An explicit file, so a missing download stops the run instead of training random weights.
        weights = resolve_checkpoint(job["model"], job["paths"]["checkpoint_dir"])
        assert job["model"]["variant"] == "vit_b"
        assert Path(weights) == Path(job["paths"]["checkpoint_dir"]) / "sam_vit_b_01ec64.pth"


def test_zero_shot_trains_nothing() -> None:
    with hydra_configs():
        for experiment in ("table1_zero_shot", "table1_zero_shot_reduced"):
            job = describe(compose_run(experiment, []))["job"]
            assert job["fit"] is False and job["test"] is True
            assert job["peft"]["_target_"] == "salt.peft.none.NoAdapter" and job["model"]["trainable"] == []


@pytest.mark.parametrize("experiment", ["rank_ablation", "rank_ablation_reduced"])
def test_rank_ablation_reaches_the_adapters(experiment: str) -> None:
    with hydra_configs():
        grid = axes(compose_run(experiment, []))
        last = [values[-1] for values in grid.values()]
        job = describe(compose_run(experiment, last))["job"]
    wanted = dict(override.split("=", 1) for override in last)
    options = peft_options(job)  # what the SALT injection receives, model overrides applied
    assert options["rank"] == int(wanted["peft.rank"])
    assert options["lora_rank"] == int(wanted["peft.lora_rank"])
    assert options["rank_pattern"] == {
        r"mlp\.lin[12]": int(wanted["ablation.mlp_rank"]),
        r"neck\.[02]": int(wanted["ablation.neck_rank"]),
    }


def test_reduced_salt_keeps_the_swept_l() -> None:
    # The tiny model's own l (4) must not replace the l of the method being swept.
    with hydra_configs():
        job = describe(compose_run("table1_reduced", ["+method=salt_l256"]))["job"]
    assert peft_options(job)["lora_rank"] == 256


def test_list_runs_script_prints_every_run() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(CONFIGS.parent / "scripts" / "list_runs.py"), "table1", "dataset=drive"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "15 runs"
    assert sum(line.startswith("#") for line in lines) == 15
    assert any("SALT (rank 256)" in line and "drive" in line for line in lines)
    bad = subprocess.run(
        [sys.executable, str(CONFIGS.parent / "scripts" / "list_runs.py"), "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "valid:" in bad.stderr


PEFT_FIELD = {
    "SALT (rank 4)",
    "SALT (rank 256)",
    "LoRA (rank 4)",
    "S-SAM",
    "DoRA (rank 4)",
    "PiSSA (rank 4)",
    "AdaLoRA (rank 4)",
    "VeRA (rank 256)",
    "OSF",
}


@pytest.mark.parametrize(("experiment", "tag"), [("peft_field", " [medsam_lite]"), ("peft_field_vit_b", "")])
def test_peft_field_compares_the_field_on_one_backbone(experiment: str, tag: str) -> None:
    runs = _axis_runs(experiment)["+method"]
    assert {r["row"] for r in runs} == {f"{row}{tag}" for row in PEFT_FIELD}
    assert len({r["job"]["model"]["variant"] for r in runs}) == 1


def test_peft_field_takes_backbone_data_and_schedule_from_the_defaults() -> None:
    # The proxy comparison sets only what it sweeps: what it trains on, and how long, is the default job's.
    with hydra_configs():
        field = describe(compose_run("peft_field", ["+method=dora"]))["job"]
        cfg = compose("train", overrides=["+method=dora"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        keys = ("model", "dataset", "optim", "loss", "data", "trainer")
        default = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in keys}
        default |= {key: cfg[key] for key in ("seed", "fit", "test")}
    for key in ("model", "dataset", "optim", "loss", "data", "seed", "fit", "test"):
        assert field[key] == default[key], key
    assert {**field["trainer"], "default_root_dir": None} == {**default["trainer"], "default_root_dir": None}


@pytest.mark.parametrize("method", ["unet", "salt_l4"])
def test_drive_table_rows_build_with_the_recipes_normalisation(method: str) -> None:
    # The recipe takes each window's range from its whole photograph (patch.normalize=image); the table's
    # rows inherit it, the U-Net's constant normalisation included.
    with hydra_configs():
        cfg = compose_run("drive_real_table", [f"+method={method}"])
        run = OmegaConf.to_container(cfg, resolve=True)
    assert run["patch"]["normalize"] == "image"
    model, _ = build_run_network({k: v for k, v in run.items() if k != "hydra"})
    kinds = {type(m) for m in model.modules()}
    assert MinMaxNormalize not in kinds  # LiteMedSAM's per-window min-max is replaced; the U-Net has none
    assert (ImageRangeScale in kinds) == (method != "unet")
