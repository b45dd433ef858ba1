"""export.py on a LiteMedSAM SALT run: the TinyViT graph keeps a free batch dimension, its per-image min-max
input scaling is recorded, and onnxruntime's masks are predict.py's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from salt.data.reading import read_image
from salt.data.transforms import fit_to_square, to_original
from salt.export.job import sidecar_path
from tests.train.conftest import run_script
from tests.train.reference_metrics import predicted_masks, split_cases

pytestmark = pytest.mark.slow

# One optimizer step leaves LiteMedSAM's class prompt near its start, where the vessel probabilities are
# about 1e-4 (far below 0.5): the threshold sits there so that the masks compared have pixels on both sides.
THRESHOLD = 1e-4


@pytest.fixture(scope="module")
def lite_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(run folder, data folder, ONNX file)`` of one step of SALT on LiteMedSAM, 256 px synthetic vessels."""
    base = tmp_path_factory.mktemp("lite")
    run, data, output = base / "run", base / "data", base / "export" / "lite.onnx"
    proc = run_script(
        "train.py",
        "model=medsam_lite",
        "dataset=synthetic",
        f"dataset.root={data}",
        "dataset.synthetic.n=10",
        "dataset.synthetic.size=256",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=1",
        "++trainer.limit_val_batches=1",
        "data.batch_size=2",
        "eval.overlays=0",
        "zero_shot_test=false",
        "optim.lr=0.01",
        f"hydra.run.dir={run}",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    proc = run_script(
        "export.py",
        f"ckpt={run}",
        f"output={output}",
        f"threshold={THRESHOLD}",
        f"hydra.run.dir={base / 'h'}",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return run, data, output


def test_lite_onnx_masks_are_predict_masks(lite_export: tuple[Path, Path, Path], tmp_path: Path) -> None:
    run, data, output = lite_export
    info = json.loads(sidecar_path(output).read_text())
    assert info["img_size"] == 256 and info["threshold"] == THRESHOLD
    assert info["preprocessing"]["normalization"]["kind"] == "per_image_min_max"
    cases = split_cases(data)
    assert len(cases) > 1
    expected = predicted_masks(run, [image for _, image, _, _ in cases], tmp_path, f"threshold={THRESHOLD}")
    planes = [read_image(image)[0] for _, image, _, _ in cases]  # (H, W, 3) uint8 each
    squares, pads = [], []
    for plane in planes:
        labels = np.zeros((*plane.shape[:2], 1), np.uint8)
        square, _, pad = fit_to_square(plane, labels, 256, info["preprocessing"]["resize"]["mode"])
        squares.append(square.transpose(2, 0, 1))  # (3, S, S)
        pads.append(pad)
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    batch = np.stack(squares).astype(np.float32)  # (N, 3, S, S)
    (logits,) = session.run(["logits"], {"images": batch})
    (single,) = session.run(["logits"], {"images": batch[:1]})  # another batch size than the export's
    np.testing.assert_allclose(single[0], logits[0], rtol=0, atol=1e-4)
    # The probabilities come from the logits in float64 here: onnxruntime's float32 sigmoid resolves values
    # this small only in steps of 2**-24 (6e-8), coarser than the neighbourhood of the threshold checked below.
    probabilities = torch.sigmoid(torch.from_numpy(logits).double())  # (N, 1, S, S)
    for (stem, _, _, _), plane, pad, prob in zip(cases, planes, pads, probabilities):
        back = to_original(prob, plane.shape[:2], pad)[0].numpy()  # (H, W)
        mask = back > THRESHOLD
        assert mask.any() and not mask.all(), stem
        differ = mask != expected[stem]
        # Float rounding may flip a pixel whose probability is at the threshold, nothing else.
        assert np.all(np.abs(back[differ] - THRESHOLD) < 1e-3 * THRESHOLD), stem
