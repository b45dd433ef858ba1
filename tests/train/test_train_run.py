"""End-to-end: a tiny training run writes every output; eval and predict read it back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from salt.inference.outputs import code_version
from tests.train.checkout import CHANGED
from tests.train.conftest import ROOT, run_script, tiny_overrides
from tests.train.reference_metrics import predicted_masks, reference_metrics, split_cases

pytestmark = pytest.mark.slow


def test_training_writes_every_output(smoke_run: Path) -> None:
    for name in (
        "config.yaml",
        "metrics.json",
        "per_case.csv",
        "history.csv",
        "curves.png",
        "adapter.safetensors",
    ):
        assert (smoke_run / name).is_file(), name
    assert (smoke_run / "checkpoints" / "best.ckpt").is_file()
    assert (smoke_run / "checkpoints" / "last.ckpt").is_file()
    overlays = sorted((smoke_run / "overlays").glob("*.png"))
    assert len(overlays) == 2
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["method"] == "salt"
    n_test = metrics["mean"]["n_cases"]
    assert n_test > 0 and len(metrics["per_case"]) == 2 * n_test
    assert 0.0 <= metrics["mean"]["dice"] <= 1.0
    assert sum(metrics["mean"]["cases"].values()) == n_test
    assert metrics["mean_original"]["n_cases"] == n_test
    params = metrics["params"]
    assert 0 < params["trainable"] < params["total"]
    assert params["groups"]["adapter"]["trainable"] > 0
    assert metrics["epochs"] == 2
    assert metrics["config"]["model"]["variant"] == "tiny"
    assert "salt" in metrics["code_version"]


def test_checkpoint_holds_only_trainable_tensors(smoke_run: Path) -> None:
    state = torch.load(smoke_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    keys = set(state["state_dict"])
    assert "model.class_tokens" in keys
    assert not any(k.endswith("patch_embed.proj.weight") for k in keys)
    assert not any(k.endswith((".U", ".S", ".Vh")) for k in keys)
    assert {"optimizer_states", "loops", "salt"} <= set(state)
    assert "rng" in state["salt"]


def test_eval_reproduces_test_metrics(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_script("eval.py", f"ckpt={smoke_run}", "split=test", "batch_size=1", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = json.loads((smoke_run / "metrics.json").read_text())
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["mean"]["dice"] == pytest.approx(trained["mean"]["dice"], abs=1e-6)
    assert evaluated["mean"]["hd95"] == pytest.approx(trained["mean"]["hd95"], abs=1e-6)
    assert (out / "per_case.csv").is_file() and list((out / "overlays").glob("*.png"))
    # Recomputed from the masks predict.py writes, with Dice and HD95 written out from their definitions.
    cases = split_cases(Path(trained["config"]["dataset"]["root"]))
    masks = predicted_masks(smoke_run, [image for _, image, _, _ in cases], tmp_path)
    rows = {r["name"]: r for r in evaluated["per_case"] if r["resolution"] == "original"}
    assert sorted(rows) == sorted(masks) == sorted(stem for stem, _, _, _ in cases)
    for stem, _, gt, fov in cases:
        dice, hd95 = reference_metrics(masks[stem], gt, fov)
        assert rows[stem]["dice"] == pytest.approx(dice, abs=1e-6), stem
        assert rows[stem]["hd95"] == pytest.approx(hd95, abs=1e-4), stem


def test_eval_from_adapter_file(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval_adapter"
    proc = run_script("eval.py", f"ckpt={smoke_run / 'adapter.safetensors'}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = json.loads((smoke_run / "metrics.json").read_text())
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["mean"]["dice"] == pytest.approx(trained["mean"]["dice"], abs=1e-6)


def test_predict_writes_masks_at_original_size(smoke_run: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)).save(
        src / "a.png"
    )
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (50, 40), dtype=np.uint8)).save(src / "b.tif")
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "pred"
    proc = run_script(
        "predict.py", f"ckpt={smoke_run}", f"input={src}", f"output={out}", f"hydra.run.dir={tmp_path / 'h'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(out / "a_mask.png").size == (90, 70)
    assert Image.open(out / "b_mask.png").size == (40, 50)
    assert (out / "a_overlay.png").is_file()
    assert not (out / "broken_mask.png").exists()
    assert "broken.png" in proc.stdout + proc.stderr
    # Both images went through the model in one batch (data.batch_size=8), each with its own padding: one
    # image at a time gives the same masks.
    assert re.search(
        r"throughput: [\d.]+ images/s end to end \(2 images in [\d.]+ s, batch size 8",
        proc.stdout + proc.stderr,
    )
    single = tmp_path / "pred1"
    proc = run_script(
        "predict.py",
        f"ckpt={smoke_run}",
        f"input={src}",
        f"output={single}",
        "data.batch_size=1",
        f"hydra.run.dir={tmp_path / 'h1'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "batch size 1" in proc.stdout + proc.stderr
    for name in ("a_mask.png", "b_mask.png"):
        np.testing.assert_array_equal(
            np.asarray(Image.open(out / name)), np.asarray(Image.open(single / name))
        )


def test_missing_data_folder_says_how_to_prepare(tmp_path: Path) -> None:
    proc = run_script(
        "train.py",
        "model=sam_tiny",
        "dataset=drive",
        f"dataset.root={tmp_path / 'nowhere'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 1
    assert "salt.data.prepare drive" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "run").exists()


def test_missing_checkpoint_says_where_to_get_it(tmp_path: Path) -> None:
    overrides = tiny_overrides(
        tmp_path / "synthetic", tmp_path / "run", f"model.checkpoint={tmp_path / 'sam.pth'}"
    )
    proc = run_script("train.py", *overrides)
    assert proc.returncode == 1
    assert "checkpoints/README.md" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_non_finite_loss_stops_with_a_message(tmp_path: Path) -> None:
    overrides = tiny_overrides(
        tmp_path / "synthetic", tmp_path / "run", "optim.lr=1e30", "trainer.gradient_clip_val=null"
    )
    proc = run_script("train.py", *overrides)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "loss became" in proc.stdout + proc.stderr


def test_lightning_lines_are_printed_once(smoke_run: Path) -> None:
    console = (smoke_run.parent / "console.txt").read_text()
    assert console.count("Seed set to 42") == 1
    assert console.count("`Trainer.fit` stopped") == 1


def test_eval_refuses_a_network_that_contradicts_the_run(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = run_script("eval.py", f"ckpt={smoke_run}", "peft=lora", f"hydra.run.dir={out}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert "peft._target_='salt.peft.lora.Lora' contradicts ckpt=" in line
    assert "trained with peft._target_='salt.peft.salt.Salt'" in line
    assert not out.exists()


def test_resume_refuses_a_network_that_contradicts_the_checkpoint(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "resumed"
    last = smoke_run / "checkpoints" / "last.ckpt"
    data = Path(json.loads((smoke_run / "metrics.json").read_text())["config"]["dataset"]["root"])
    proc = run_script("train.py", *tiny_overrides(data, run_dir, "peft=lora", f"ckpt_path={last}"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert f"peft._target_='salt.peft.lora.Lora' contradicts ckpt_path={last}, trained with " in line
    assert "peft._target_='salt.peft.salt.Salt'" in line
    assert not run_dir.exists()


def test_metrics_record_the_code_version_the_run_started_with(tmp_path: Path) -> None:
    # The callback makes any later read of the version return CHANGED, as a checkout changed during training.
    overrides = tiny_overrides(
        tmp_path / "synthetic",
        tmp_path / "run",
        "trainer.max_epochs=1",
        "+callbacks.checkout._target_=tests.train.checkout.ChangeCheckout",
    )
    proc = run_script("train.py", *overrides, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["code_version"]
    assert recorded == code_version()
    assert recorded != CHANGED
