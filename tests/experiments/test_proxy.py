"""The proxy Table 1 on LiteMedSAM: its rows, one settings block for every method, and a run that learns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salt.model.factory import build_network, peft_options
from tests.experiments.sweeps import axes, compose_run, describe, hydra_configs
from tests.train.conftest import run_script

PROXY_ROWS = {
    "SAM, text prompt only",
    "Decoder-only",
    "Full fine-tuning",
    "S-SAM",
    "LoRA (rank 4)",
    "LoRA (rank 56)",
    "SALT (rank 4)",
    "SALT (rank 256)",
}
# What may differ between the methods of one look and seed: the method itself and whether it trains.
METHOD_KEYS = {"peft", "fit", "model"}


def _jobs(experiment: str) -> list[dict]:
    with hydra_configs():
        grid = axes(compose_run(experiment, []))
        look, seed = grid["dataset.synthetic.look"][0], grid["seed"][0]
        return [describe(compose_run(experiment, [look, method, seed])) for method in grid["+method"]]


def test_proxy_table_has_the_issue_rows_on_litemedsam_and_three_looks() -> None:
    runs = _jobs("proxy_table1")
    assert {r["row"] for r in runs} == {f"{row} [medsam_lite]" for row in PROXY_ROWS}
    with hydra_configs():
        grid = axes(compose_run("proxy_table1", []))
    assert grid["dataset.synthetic.look"] == [
        f"dataset.synthetic.look={v}" for v in ("fundus", "angio", "octa")
    ]
    assert grid["seed"] == ["seed=0", "seed=1", "seed=2"]


# Rows whose learning rate was chosen on the validation split (experiment=proxy_lr_search, docs/proxy.md).
VAL_CHOSEN_LR = {"decoder_lr1e-3": 1.0e-3, "full_lr3e-4": 3.0e-4}


def _without_lr(job: dict) -> dict:
    return {
        **job,
        "optim": {**job["optim"], "lr": None},
        "dataset": {**job["dataset"], "optim": {**job["dataset"]["optim"], "lr": None}},
    }


@pytest.mark.parametrize("experiment", ["proxy_table1", "proxy_table1_reduced"])
def test_every_method_shares_one_settings_block(experiment: str) -> None:
    runs = _jobs(experiment)
    first = runs[0]["job"]
    shared_lr = first["optim"]["lr"]
    assert shared_lr not in VAL_CHOSEN_LR.values()
    base = _without_lr(first)
    for run in runs[1:]:
        # The lr is the one setting allowed to differ, and only for a validation-chosen row, to the searched value.
        lr = VAL_CHOSEN_LR.get(run["subdir"].split("/")[1], shared_lr)
        assert run["job"]["optim"]["lr"] == run["job"]["dataset"]["optim"]["lr"] == lr
        job = _without_lr(run["job"])
        for key in set(first) - METHOD_KEYS - {"paths"}:
            assert job[key] == base[key], key
        assert {k: v for k, v in job["model"].items() if k != "trainable"} == {
            k: v for k, v in base["model"].items() if k != "trainable"
        }
    assert first["model"]["variant"] == "medsam_lite" and first["model"]["checkpoint"] == "bundled"


def test_reduced_twin_is_the_same_code_path_on_less_data() -> None:
    full, reduced = _jobs("proxy_table1")[0]["job"], _jobs("proxy_table1_reduced")[0]["job"]
    assert reduced["dataset"]["synthetic"]["n"] < full["dataset"]["synthetic"]["n"]
    # Data sets of different sizes never share a folder: each is generated once and reused.
    assert reduced["dataset"]["root"] != full["dataset"]["root"]
    assert reduced["trainer"]["max_epochs"] <= full["trainer"]["max_epochs"]
    assert {**reduced["trainer"], "max_epochs": 0} == {**full["trainer"], "max_epochs": 0}
    for key in ("optim", "loss", "data", "prompt", "model", "peft"):
        assert reduced[key] == full[key], key


@pytest.mark.slow
def test_lora_r56_has_about_salt_l256s_trainable_count() -> None:
    # Trainable tensors counted directly, less what the same model trains without an adapter (norms, prompt).
    jobs = {r["subdir"].split("/")[1]: r["job"] for r in _jobs("proxy_table1")}
    jobs["plain"] = {
        **jobs["lora_r56"],
        "peft": {"_target_": "salt.peft.none.NoAdapter", "target_modules": [], "reg_weight": 0.0},
    }
    trained = {
        name: sum(p.numel() for p in build_network(jobs[name])[0].parameters() if p.requires_grad)
        for name in ("lora_r56", "salt_l256", "plain")
    }
    counts = {name: trained[name] - trained["plain"] for name in ("lora_r56", "salt_l256")}
    assert abs(counts["lora_r56"] - counts["salt_l256"]) <= 0.02 * counts["salt_l256"]


def test_lr_search_tries_the_shared_lr_and_the_chosen_ones_on_validation_only() -> None:
    with hydra_configs():
        grid = axes(compose_run("proxy_lr_search", []))
        job = describe(compose_run("proxy_lr_search", [values[0] for values in grid.values()]))["job"]
    lrs = {float(v.split("=")[1]) for v in grid["dataset.optim.lr"]}
    table = _jobs("proxy_table1")[0]["job"]
    assert {table["optim"]["lr"], *VAL_CHOSEN_LR.values()} <= lrs
    assert grid["+method"] == ["+method=decoder", "+method=full", "+method=lora_r56"]
    assert job["test"] is False  # the choice never sees the test split
    job, table = _without_lr(job), _without_lr(table)
    for key in ("loss", "data", "prompt", "trainer", "dataset"):
        assert job[key] == table[key], key


def test_proxy_rank_grid_reaches_the_adapters() -> None:
    with hydra_configs():
        grid = axes(compose_run("proxy_rank_ablation", []))
        last = [values[-1] for values in grid.values()]
        job = describe(compose_run("proxy_rank_ablation", last))["job"]
    options = peft_options(job)
    assert (options["rank"], options["lora_rank"]) == (0.99, 64)
    assert options["rank_pattern"] == {r"mlp\.fc[12]": 0.25, r"neck\.[02]": 0.98}


@pytest.mark.slow
def test_a_proxy_run_learns_beyond_zero_shot(tmp_path: Path) -> None:
    # The proxy settings on a few images: trained SALT must beat the pretrained model as it comes by a margin.
    run = tmp_path / "run"
    proc = run_script(
        "train.py",
        "experiment=proxy",
        "+method=salt_l4",
        "zero_shot_test=true",
        "dataset.synthetic.n=16",
        "dataset.max_epochs=2",
        f"dataset.root={tmp_path / 'data'}",
        f"hydra.run.dir={run}",
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pretrained"].endswith("lite_medsam.pth")
    assert metrics["mean"]["dice"] >= metrics["zero_shot"]["mean"]["dice"] + 0.3
