"""Reading runs: row identity from the configuration, duplicates, unreadable files, resolution."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest

from salt.results import RunError, find_runs, load_run
from salt.results.cli import main
from tests.results.fake_runs import write_run


@pytest.mark.parametrize(
    ("kwargs", "label"),
    [
        ({"peft": {"lora_rank": 256}}, "SALT (rank 256)"),
        (  # the paper's ranks: the Table 1 row
            {"peft": {"lora_rank": 4, "rank": 760, "rank_pattern": {"mlp": 50, "neck": 250}}},
            "SALT (rank 4)",
        ),
        (  # the grid's cell at the paper's ranks is the Table 1 row
            {
                "peft": {"lora_rank": 4, "rank": 760, "rank_pattern": {"mlp": 50, "neck": 250}},
                "ablation": {"mlp_rank": 50, "neck_rank": 250},
            },
            "SALT (rank 4)",
        ),
        (  # a rank-grid cell: its own row
            {"peft": {"lora_rank": 16, "rank": 256, "rank_pattern": {"mlp": 200, "neck": 64}}},
            "SALT (rank 16; r 256/200/64)",
        ),
        (  # another backbone needs other ranks: its tag tells it apart already
            {
                "peft": {"lora_rank": 4, "rank": 24, "rank_pattern": {"mlp": 4, "neck": 8}},
                "model": {"family": "sam", "variant": "tiny"},
            },
            "SALT (rank 4) [tiny]",
        ),
        (  # ... unless the run is a cell of a rank grid
            {
                "peft": {"lora_rank": 2, "rank": 8, "rank_pattern": {"mlp": 16, "neck": 8}},
                "model": {"family": "sam", "variant": "tiny"},
                "ablation": {"mlp_rank": 16, "neck_rank": 8},
            },
            "SALT (rank 2; r 8/16/8) [tiny]",
        ),
        ({"method": "lora", "peft": {"rank": 4}}, "LoRA (rank 4)"),
        ({"method": "svd"}, "S-SAM"),
        ({"method": "full"}, "Full fine-tuning"),
        (  # a peft preset names its row
            {"method": "hf", "peft": {"label": "DoRA (rank 4)", "config": {"_target_": "peft.LoraConfig"}}},
            "DoRA (rank 4)",
        ),
        (  # any other peft config: its class and the fields given
            {
                "method": "hf",
                "peft": {"config": {"_target_": "peft.LoraConfig", "r": None, "use_dora": True}},
            },
            "peft LoraConfig (use_dora=True)",
        ),
        (
            {
                "method": "hf",
                "peft": {"config": {"_target_": "peft.VeraConfig"}},
                "model": {"family": "sam", "variant": "tiny"},
            },
            "peft VeraConfig [tiny]",
        ),
        ({"method": "none", "task": "eval"}, "SAM, text prompt only"),
        (
            {"method": "none", "model": {"family": "sam", "variant": "vit_b", "trainable": ["decoder"]}},
            "Decoder-only",
        ),
        ({"model": {"family": "classic", "name": "deeplabv3plus"}}, "DeepLabV3+"),
        ({"model": {"family": "classic", "name": "mynet"}}, "mynet"),
        ({"method": "svd", "model": {"family": "sam", "variant": "tiny"}}, "S-SAM [tiny]"),
        (  # patch mode is its own row, resized mode (patch: null) the paper's
            {
                "method": "svd",
                "model": {"family": "sam", "variant": "tiny"},
                "config": {"patch": {"scale": 1.0}},
            },
            "S-SAM, patch mode [tiny]",
        ),
        (
            {"method": "svd", "model": {"family": "sam", "variant": "tiny"}, "config": {"patch": None}},
            "S-SAM [tiny]",
        ),
        (
            {"model": {"family": "classic", "name": "unet"}, "config": {"patch": {"scale": 1.0}}},
            "U-Net, patch mode",
        ),
        (
            {
                "method": "svd",
                "model": {"family": "sam", "variant": "vit_b", "default_file": "medsam_vit_b.pth"},
            },
            "S-SAM [medsam_vit_b]",
        ),
    ],
)
def test_row_label_from_config(tmp_path: Path, kwargs: dict, label: str) -> None:
    kwargs = {"peft": {"lora_rank": 4}, **kwargs} if kwargs.get("method", "salt") == "salt" else kwargs
    write_run(tmp_path, dataset="drive", seed=0, dice=0.5, hd95=10.0, **kwargs)
    assert load_run(tmp_path / "metrics.json").row == label


def test_missing_rank_names_the_file_and_key(tmp_path: Path) -> None:
    write_run(tmp_path, dataset="drive", seed=0, dice=0.5, hd95=10.0)  # SALT without peft.lora_rank
    with pytest.raises(RunError, match=r"metrics\.json: missing key 'config\.peft\.lora_rank'"):
        load_run(tmp_path / "metrics.json")


def test_duplicates_keep_the_newest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_run(tmp_path / "old", dataset="drive", seed=1, dice=0.1, hd95=9.0, peft={"lora_rank": 4}, mtime=1e9)
    write_run(tmp_path / "new", dataset="drive", seed=1, dice=0.9, hd95=1.0, peft={"lora_rank": 4}, mtime=2e9)
    write_run(tmp_path / "other", dataset="drive", seed=2, dice=0.5, hd95=5.0, peft={"lora_rank": 4})
    with caplog.at_level(logging.WARNING):
        runs = find_runs(tmp_path)
    assert [(r.seed, r.dice) for r in runs] == [(1, 0.9), (2, 0.5)]
    assert "duplicate run" in caplog.text and str(tmp_path / "old") in caplog.text


def _lr_run(
    folder: Path, lr: float, dataset: str, seed: int, dice: float, mtime: float | None = None, **config: dict
) -> None:
    # What `-m dataset.optim.lr=...` records: the data set's lr and optim.lr interpolated from it.
    optim = {"optim": {"lr": lr, "schedule": "cosine"}, "dataset": {"name": dataset, "optim": {"lr": lr}}}
    write_run(
        folder,
        dataset=dataset,
        seed=seed,
        dice=dice,
        hd95=5.0,
        method="svd",
        mtime=mtime,
        config={**optim, **config},
    )


def test_runs_of_one_cell_with_other_settings_are_rows_of_their_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _lr_run(tmp_path / "a", 1e-3, "drive", 0, 0.7)
    _lr_run(tmp_path / "b", 3e-4, "drive", 0, 0.6)
    _lr_run(tmp_path / "c", 3e-4, "drive", 1, 0.5)
    _lr_run(tmp_path / "d", 1e-3, "stare", 0, 0.4)  # no other lr on stare: still named by its lr
    with caplog.at_level(logging.WARNING):
        runs = find_runs(tmp_path)
    assert [(r.row, r.dataset, r.seed, r.dice) for r in runs] == [
        ("S-SAM, optim.lr=0.0003", "drive", 0, 0.6),
        ("S-SAM, optim.lr=0.0003", "drive", 1, 0.5),
        ("S-SAM, optim.lr=0.001", "drive", 0, 0.7),
        ("S-SAM, optim.lr=0.001", "stare", 0, 0.4),
    ]
    assert "duplicate" not in caplog.text


def test_runs_differing_only_in_bookkeeping_are_duplicates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    where = {"paths": {"output_dir": "/x"}, "data": {"batch_size": 2, "num_workers": 0}, "task_name": "a"}
    elsewhere = {"paths": {"output_dir": "/y"}, "data": {"batch_size": 2, "num_workers": 8}, "task_name": "b"}
    _lr_run(tmp_path / "old", 1e-3, "drive", 0, 0.1, mtime=1e9, **where)
    _lr_run(tmp_path / "new", 1e-3, "drive", 0, 0.9, mtime=2e9, **elsewhere)
    with caplog.at_level(logging.WARNING):
        runs = find_runs(tmp_path)
    assert [(r.row, r.dice) for r in runs] == [("S-SAM", 0.9)]
    assert "duplicate run" in caplog.text
    # ... while a setting that changes what is computed (the batch size) is a row of its own.
    _lr_run(tmp_path / "batch", 1e-3, "drive", 0, 0.3, data={"batch_size": 4, "num_workers": 0})
    assert {r.row for r in find_runs(tmp_path)} == {"S-SAM, data.batch_size=2", "S-SAM, data.batch_size=4"}


def test_unreadable_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_run(tmp_path / "good", dataset="drive", seed=1, dice=0.5, hd95=5.0, method="svd")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    (tmp_path / "val").mkdir()
    data = json.loads((tmp_path / "good" / "metrics.json").read_text())
    (tmp_path / "val" / "metrics.json").write_text(json.dumps({**data, "split": "val"}))
    with caplog.at_level(logging.WARNING):
        runs = find_runs(tmp_path)
    assert [r.path.name for r in runs] == ["good"]
    assert "broken" in caplog.text


def test_a_config_that_is_not_an_object_names_the_file(tmp_path: Path) -> None:
    write_run(tmp_path, dataset="drive", seed=0, dice=0.5, hd95=10.0, method="svd")
    data = json.loads((tmp_path / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**data, "config": [1]}))
    with pytest.raises(RunError, match=r"metrics\.json: 'config' must be an object"):
        load_run(tmp_path / "metrics.json")


def test_original_resolution_reads_mean_original(tmp_path: Path) -> None:
    write_run(tmp_path / "a", dataset="drive", seed=1, dice=0.5, hd95=5.0, method="svd", dice_original=0.45)
    write_run(tmp_path / "b", dataset="drive", seed=2, dice=0.5, hd95=5.0, method="svd")  # mean_original null
    runs = find_runs(tmp_path, resolution="original")
    assert [r.dice for r in runs] == [0.45, None]
    with pytest.raises(ValueError, match="unknown resolution"):
        find_runs(tmp_path, resolution="native")


def test_one_config_evaluated_on_two_folders_makes_two_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    # eval.py ckpt=<run> dataset=drive dataset.root=<folder>, once per folder: the same row, data set and
    # seed, other images.
    for name, dice in (("clinic_a", 0.7), ("clinic_b", 0.4)):
        config = {"dataset": {"name": "drive", "root": f"/data/{name}"}}
        write_run(tmp_path / name, dataset="drive", seed=0, dice=dice, hd95=5.0, method="svd", config=config)
    with caplog.at_level(logging.WARNING):
        runs = find_runs(tmp_path)
    assert [(r.row, r.dice) for r in runs] == [
        ("S-SAM, dataset.root=/data/clinic_a", 0.7),
        ("S-SAM, dataset.root=/data/clinic_b", 0.4),
    ]
    assert "duplicate" not in caplog.text
    assert main([str(tmp_path), "--csv"]) == 0
    table = capsys.readouterr()
    rows = {row["method"]: row["drive_dice_mean"] for row in csv.DictReader(io.StringIO(table.out))}
    assert rows == {"S-SAM, dataset.root=/data/clinic_a": "0.7", "S-SAM, dataset.root=/data/clinic_b": "0.4"}
    assert "duplicate" not in table.err
    # The same folder twice is still a duplicate: the newer run is kept.
    config = {"dataset": {"name": "drive", "root": "/data/clinic_a"}}
    write_run(tmp_path / "again", dataset="drive", seed=0, dice=0.8, hd95=5.0, method="svd", config=config)
    runs = find_runs(tmp_path)
    assert [(r.row, r.dice) for r in runs] == [
        ("S-SAM, dataset.root=/data/clinic_a", 0.8),
        ("S-SAM, dataset.root=/data/clinic_b", 0.4),
    ]


def test_a_folder_generated_per_setting_is_named_by_the_setting(tmp_path: Path) -> None:
    # experiment=proxy: root .../synthetic_n<n>, so the root moves with dataset.synthetic.n.
    for n in (60, 100):
        config = {
            "dataset": {"name": "synthetic", "root": f"/data/proxy/synthetic_n{n}", "synthetic": {"n": n}}
        }
        write_run(
            tmp_path / str(n),
            dataset="synthetic",
            seed=0,
            dice=n / 200,
            hd95=5.0,
            method="svd",
            config=config,
        )
    assert [r.row for r in find_runs(tmp_path)] == [
        "S-SAM, dataset.synthetic.n=100",
        "S-SAM, dataset.synthetic.n=60",
    ]
