"""Box and point prompts end to end: zero-shot LiteMedSAM with boxes, training with each prompt kind,
reloading, prompts files for predict.py, and a three-class data set with per-class metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from salt.data.prompts import box_from_mask
from salt.data.shapes import ensure_shapes
from tests.train.conftest import run_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One disc or ellipse on noise per image, 256 px (LiteMedSAM's size), 15 images: 3 test images."""
    return ensure_shapes(tmp_path_factory.mktemp("shapes") / "shapes", n=15, size=256, classes=1)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _run(script: str, *overrides: str) -> None:
    proc = run_script(script, *overrides)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def test_litemedsam_segments_boxed_objects_zero_shot_and_not_without_a_box(
    shapes: Path, tmp_path: Path
) -> None:
    common = ["model=medsam_lite", "dataset=shapes", f"dataset.root={shapes}", "fit=false", "peft=none"]
    _run("train.py", *common, "prompt=box", f"hydra.run.dir={tmp_path / 'box'}")
    _run("train.py", *common, "prompt=class", f"hydra.run.dir={tmp_path / 'class'}")
    box, plain = _metrics(tmp_path / "box"), _metrics(tmp_path / "class")
    assert (
        box["task"] == "eval"
        and box["prompt"]["mode"] == "box"
        and box["pretrained"].endswith("lite_medsam.pth")
    )
    assert box["mean"]["dice"] >= 0.90
    assert plain["mean"]["dice"] <= box["mean"]["dice"] - 0.5


def _predict_and_check(run: Path, images: Path, prompts_file: Path, out: Path, stems: list[str]) -> None:
    _run("predict.py", f"ckpt={run}", f"input={images}", f"output={out}", f"prompts={prompts_file}")
    for stem in stems:
        mask = np.array(Image.open(out / f"{stem}_mask.png"))
        assert mask.shape == np.array(Image.open(images / f"{stem}.png")).shape[:2]


@pytest.mark.parametrize(
    ("model", "prompt"),
    [
        ("sam_tiny", "point"),
        ("sam_tiny", "class+box"),
        ("medsam_lite", "point"),
        ("medsam_lite", "class+box"),
    ],
)
def test_prompted_training_saves_reloads_and_evaluates(
    model: str, prompt: str, shapes: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    size = ["dataset.img_size=64"] if model == "sam_tiny" else []
    _run(
        "train.py",
        f"model={model}",
        "dataset=shapes",
        f"dataset.root={shapes}",
        *size,
        f"prompt={prompt}",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        f"hydra.run.dir={run}",
    )
    trained = _metrics(run)
    assert trained["prompt"]["mode"] == prompt and trained["config"]["prompt"]["mode"] == prompt
    _run("eval.py", f"ckpt={run}", f"hydra.run.dir={tmp_path / 'eval'}")
    _run("eval.py", f"ckpt={run / 'adapter.safetensors'}", f"hydra.run.dir={tmp_path / 'eval_adapter'}")
    for again in (_metrics(tmp_path / "eval"), _metrics(tmp_path / "eval_adapter")):
        assert again["mean"]["dice"] == pytest.approx(trained["mean"]["dice"], abs=1e-6)
        assert again["mean"]["hd95"] == pytest.approx(trained["mean"]["hd95"], abs=1e-4)


def test_predict_with_a_prompts_file(shapes: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(
        "train.py",
        "model=sam_tiny",
        "dataset=shapes",
        f"dataset.root={shapes}",
        "dataset.img_size=64",
        "prompt=box",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        f"hydra.run.dir={run}",
    )
    images = tmp_path / "images"
    images.mkdir()
    stems = ["shape_0000", "shape_0001"]
    rows = []
    for stem in stems:
        (images / f"{stem}.png").write_bytes((shapes / "images" / f"{stem}.png").read_bytes())
        mask = np.array(Image.open(shapes / "masks" / f"{stem}_mask.png")) > 0
        rows.append({"image": stem, "class": "object", "box": box_from_mask(mask).tolist()})
    good = tmp_path / "prompts.json"
    good.write_text(json.dumps(rows))
    _predict_and_check(run, images, good, tmp_path / "out", stems)
    csv_file = tmp_path / "prompts.csv"
    csv_file.write_text(
        "image,class,x0,y0,x1,y1\n"
        + "".join(f"{r['image']},1,{','.join(str(v) for v in r['box'])}\n" for r in rows)
    )
    _predict_and_check(run, images, csv_file, tmp_path / "out_csv", stems)
    assert (tmp_path / "out" / "shape_0000_mask.png").read_bytes() == (
        tmp_path / "out_csv" / "shape_0000_mask.png"
    ).read_bytes()

    bad = {
        "missing_image": (
            "image,class,x0,y0,x1,y1\nshape_0000,object,1,1,5,5\nnowhere,object,1,1,5,5\n",
            "line 3: image 'nowhere'",
        ),
        "outside": ("image,class,x0,y0,x1,y1\nshape_0000,object,1,1,300,5\n", "line 2: box"),
        "unknown_class": (
            "image,class,x0,y0,x1,y1\nshape_0000,vessel,1,1,5,5\n",
            "line 2: unknown class 'vessel'",
        ),
        "malformed": (
            "image,class,x0,y0,x1,y1\nshape_0000,object,1,1,five,5\n",
            "line 2: a box must be 4 numbers",
        ),
    }
    for name, (text, fragment) in bad.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        proc = run_script(
            "predict.py", f"ckpt={run}", f"input={images}", f"output={tmp_path / name}", f"prompts={path}"
        )
        output = proc.stdout + proc.stderr
        errors = [line for line in output.splitlines() if "error: " in line]
        assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
        assert len(errors) == 1 and str(path) in errors[0] and fragment in errors[0], (name, errors)
        assert not (tmp_path / name).exists()


def test_three_classes_train_with_per_class_metrics(tmp_path: Path) -> None:
    data = ensure_shapes(tmp_path / "shapes3", n=15, size=96, classes=3)
    run = tmp_path / "run"
    _run(
        "train.py",
        "model=sam_tiny",
        "dataset=shapes3",
        f"dataset.root={data}",
        "dataset.img_size=64",
        "trainer=cpu",
        "trainer.max_epochs=1",
        f"hydra.run.dir={run}",
    )
    mean = _metrics(run)["mean"]
    assert set(mean["per_class"]) == {"disc", "ellipse", "rectangle"}
    per_class = [mean["per_class"][c]["dice"] for c in ("disc", "ellipse", "rectangle")]
    assert mean["dice"] == pytest.approx(sum(per_class) / 3)  # every image scores every class
    # images without a class are scored by the empty-mask rule and counted
    absent = sum(
        v
        for c in mean["per_class"].values()
        for k, v in c["cases"].items()
        if k in ("gt_empty", "both_empty")
    )
    labels = [np.array(Image.open(p)) for p in sorted((data / "masks").glob("*.png"))]
    test_stems = [
        line.split(",")[0]
        for line in (data / "data_split.csv").read_text().splitlines()[1:]
        if line.endswith(",test")
    ]
    expected = sum(
        int(not (np.array(Image.open(data / "masks" / f"{Path(s).stem}_mask.png")) == v).any())
        for s in test_stems
        for v in (1, 2, 3)
    )
    assert labels and absent == expected
    header = (run / "per_case.csv").read_text().splitlines()[0].split(",")
    assert "class_name" in header
    table = run_script("scripts/make_tables.py", str(run))
    assert (
        table.returncode == 0
        and "shapes3 disc Dice" in table.stdout
        and "shapes3 rectangle HD95" in table.stdout
    )
