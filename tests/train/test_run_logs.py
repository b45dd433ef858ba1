"""What the four scripts print: each line once, nothing a user cannot act on, the evaluated split by name."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch

from salt.data.shapes import ensure_shapes
from salt.model.checkpoint import CheckpointError, read_state_dict
from tests.train.conftest import run_script

# Lines the runs printed that a user can do nothing about.
NOISE = ("litlogger", "litmodels", "LeafSpec", "FLOPs", "Flops", "is deprecated")


def _output(proc: object) -> str:
    return proc.stdout + proc.stderr  # type: ignore[attr-defined]


def _lines(text: str, fragment: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", text) if fragment in line]


@pytest.mark.slow
def test_training_prints_no_advert_warning_or_empty_flops(smoke_run: Path) -> None:
    console = (smoke_run.parent / "console.txt").read_text()
    log = (smoke_run / "train.log").read_text()
    for text in (console, log):
        assert not [line for line in text.splitlines() if any(word in line for word in NOISE)]
    assert "Total params" in console and "Trainable params" in console  # the layer table is still there
    # What was adapted is said once, by one line.
    assert _lines(log, "PEFT") == _lines(log, "PEFT salt: adapted 10 modules")
    assert len(_lines(log, "PEFT")) == 1
    assert len(_lines(log, "trainable of")) == 1


@pytest.mark.slow
def test_eval_names_the_split_and_prints_no_training_counts(smoke_run: Path, tmp_path: Path) -> None:
    proc = run_script("eval.py", f"ckpt={smoke_run}", "split=val", f"hydra.run.dir={tmp_path / 'eval'}")
    output = _output(proc)
    assert proc.returncode == 0, output[-2000:]
    mean = json.loads((tmp_path / "eval" / "metrics.json").read_text())["mean"]
    (line,) = [x for x in _lines(output, "Dice ") if "(model resolution)" in x]
    assert f"val: Dice {mean['dice']:.4f}" in line and "test" not in line
    (line,) = [x for x in _lines(output, "Dice ") if "(original resolution)" in x]
    assert line.split(" - ", 1)[-1].startswith("val: Dice")
    assert (
        not _lines(output, "trainable") and not _lines(output, "litlogger") and not _lines(output, "LeafSpec")
    )
    assert len(_lines(output, "PEFT")) == 1


@pytest.mark.slow
def test_eval_logs_a_line_per_class(tmp_path: Path) -> None:
    data = ensure_shapes(tmp_path / "shapes3", n=15, size=96, classes=3)
    run = tmp_path / "run"
    common = ("model=sam_tiny", "dataset=shapes3", f"dataset.root={data}", "dataset.img_size=64")
    proc = run_script("train.py", *common, "trainer=cpu", "trainer.max_epochs=1", f"hydra.run.dir={run}")
    assert proc.returncode == 0, _output(proc)[-2000:]
    proc = run_script("eval.py", f"ckpt={run}", "split=val", f"hydra.run.dir={tmp_path / 'eval'}")
    output = _output(proc)
    assert proc.returncode == 0, output[-2000:]
    per_class = json.loads((tmp_path / "eval" / "metrics.json").read_text())["mean"]["per_class"]
    assert set(per_class) == {"disc", "ellipse", "rectangle"}
    for name, stats in per_class.items():
        (line,) = [x for x in _lines(output, f"val, class {name}:") if "(model resolution)" in x]
        assert f"Dice {stats['dice']:.4f}  HD95 {stats['hd95']:.2f}" in line
    # The training run's own test lines name the classes too.
    lines = _lines((run / "train.log").read_text(), "test, class ")
    assert len([x for x in lines if "(model resolution)" in x]) == 3


@pytest.mark.slow
def test_predict_bar_counts_images(smoke_run: Path, tmp_path: Path) -> None:
    images = (
        Path(json.loads((smoke_run / "metrics.json").read_text())["config"]["dataset"]["root"]) / "images"
    )
    count = len(list(images.iterdir()))
    proc = run_script(
        "predict.py",
        f"ckpt={smoke_run}",
        f"input={images}",
        f"output={tmp_path / 'masks'}",
        "data.batch_size=5",
    )
    output = _output(proc)
    assert proc.returncode == 0, output[-2000:]
    assert "file/s" not in output
    bars = _lines(output, "predict:")
    # The bar advances by batch of images through the model (5, 10, then the last 2), not by file read.
    counts = {int(re.search(r"\| (\d+)/\d+ \[", line).group(1)) for line in bars}
    assert count in counts and counts <= {0, 5, 10, count}
    assert all(f"/{count} [" in line for line in bars) and "image/s" in bars[-1]


@pytest.mark.slow
def test_torchscript_export_prints_no_deprecation(smoke_run: Path, tmp_path: Path) -> None:
    output_file = tmp_path / "model.pt"
    proc = run_script(
        "export.py",
        f"ckpt={smoke_run}",
        "format=torchscript",
        f"output={output_file}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    output = _output(proc)
    assert proc.returncode == 0 and output_file.is_file(), output[-2000:]
    assert "deprecated" not in output and "Warning" not in output
    assert len(_lines(output, "PEFT")) == 1


@pytest.mark.slow
def test_unreadable_base_checkpoint_is_named_in_a_whole_line(smoke_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "sam.pth"
    bad.write_text("not a checkpoint")
    proc = run_script(
        "eval.py", f"ckpt={smoke_run}", f"base_checkpoint={bad}", f"hydra.run.dir={tmp_path / 'eval'}"
    )
    output = _output(proc)
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = _lines(output, "error:")
    assert line.endswith(
        f"error: base_checkpoint={bad}: not a readable PyTorch checkpoint (truncated or wrong format: "
        "UnpicklingError: Unsupported operand 110)"  # 'n', the file's first byte, is no pickle opcode
    )


class _NotATensor:
    pass


def test_load_failure_is_a_whole_sentence(tmp_path: Path) -> None:
    path = tmp_path / "objects.pth"
    torch.save({"weight": _NotATensor()}, path)
    with pytest.raises(CheckpointError) as refused:
        read_state_dict(path)
    message = str(refused.value)
    # torch's advice on weights_only is left out; what the file holds is said in full.
    assert "weights_only" not in message and "In PyTorch" not in message
    assert message.startswith(f"{path}: not a readable PyTorch checkpoint (truncated or wrong format: ")
    assert message.endswith(f"{__name__}._NotATensor was not an allowed global by default)")


def test_lightning_adverts_are_dropped_and_its_other_lines_kept(caplog: pytest.LogCaptureFixture) -> None:
    from salt.cli import quiet_library_notices

    quiet_library_notices()
    name = "lightning.pytorch.utilities.rank_zero"  # where Lightning's rank-zero lines are logged
    lightning_log = logging.getLogger(name)
    with caplog.at_level(logging.INFO, logger=name):
        lightning_log.info(
            "💡 Tip: For seamless cloud logging and experiment tracking, try installing litlogger"
        )
        lightning_log.info("GPU available: False, used: False")
        lightning_log.info("TPU available: False, using: 0 TPU cores")
        lightning_log.info("Loading `train_dataloader` to estimate number of stepping batches.")
        lightning_log.info("GPU available: True (cuda), used: False")
        lightning_log.info("Restoring states from the checkpoint path at best.ckpt")
    assert [r.getMessage() for r in caplog.records] == [
        "GPU available: True (cuda), used: False",
        "Restoring states from the checkpoint path at best.ckpt",
    ]
