"""Overlay colours at known pixels, and the written PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from salt.data.prompt_file import ClassPrompt
from salt.data.transforms import to_model_coords
from salt.inference.evaluation import evaluate_batch
from salt.inference.predict import _Plane, _Writer
from salt.metrics import MetricAccumulator
from salt.viz import FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_POSITIVE, overlay, save_overlay


@pytest.fixture
def case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.full((4, 5, 3), 200, dtype=np.uint8)
    image[..., 2] = 100
    gt = np.zeros((4, 5), dtype=bool)
    pred = np.zeros((4, 5), dtype=bool)
    gt[0, 0] = pred[0, 0] = True  # hit
    gt[1, 1] = True  # missed
    pred[2, 2] = True  # false alarm
    return image, pred, gt


def test_colours_at_known_pixels(case) -> None:
    image, pred, gt = case
    out = overlay(image, pred, gt)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == TRUE_POSITIVE == (255, 255, 255)
    assert tuple(out[1, 1]) == FALSE_NEGATIVE == (255, 0, 0)
    assert tuple(out[2, 2]) == FALSE_POSITIVE
    assert len({TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE}) == 3
    assert tuple(out[3, 4]) == (100, 100, 50)  # background: the image at half brightness
    assert np.array_equal(image[0, 0], [200, 200, 100])  # input untouched


def test_without_gt_prediction_is_white(case) -> None:
    image, pred, gt = case
    out = overlay(image, pred | gt, None, dim=0.25)
    assert tuple(out[1, 1]) == tuple(out[2, 2]) == TRUE_POSITIVE
    assert tuple(out[3, 4]) == (50, 50, 25)


def test_grey_image_and_torch_masks(case) -> None:
    image, pred, gt = case
    grey = image[..., 0]
    out = overlay(grey, torch.from_numpy(pred), torch.from_numpy(gt).float())
    assert tuple(out[1, 1]) == FALSE_NEGATIVE and tuple(out[3, 4]) == (100, 100, 100)


def test_bad_inputs_raise(case) -> None:
    image, pred, gt = case
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), pred, gt)
    with pytest.raises(ValueError, match="image size"):
        overlay(image, pred[:3], gt)
    with pytest.raises(ValueError, match="image size"):
        overlay(image, pred, gt[:, :4])


def test_save_overlay_writes_readable_png(case, tmp_path) -> None:
    image, pred, gt = case
    path = save_overlay(tmp_path / "nested" / "case.png", image, pred, gt)
    with Image.open(path) as written:
        assert written.format == "PNG"
        # The overlay on top, its legend below.
        assert np.array_equal(np.asarray(written.convert("RGB"))[:4, :5], overlay(image, pred, gt))


YELLOW, GREEN, MAGENTA = (255, 255, 0), (0, 255, 0), (255, 0, 255)


def _read(path) -> np.ndarray:
    with Image.open(path) as written:
        return np.asarray(written.convert("RGB"))  # (H', W, 3)


def _colours(picture: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in picture.reshape(-1, 3)}


def test_the_legend_shows_found_missed_and_false_positive(tmp_path) -> None:
    image = np.full((40, 160, 3), 90, dtype=np.uint8)
    pred, gt = np.zeros((40, 160), bool), np.zeros((40, 160), bool)
    picture = _read(save_overlay(tmp_path / "case.png", image, pred, gt))
    assert picture.shape[0] > 40 and picture.shape[1] == 160
    legend = picture[40:]
    # Nothing was found, missed or wrong: the three colours are in the legend's swatches alone.
    assert not _colours(picture[:40]) & {TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE}
    assert {TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE} <= _colours(legend)


def test_several_classes_each_have_a_colour() -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    pred = np.zeros((2, 4, 4), bool)
    gt = np.zeros((2, 4, 4), bool)
    pred[0, 0, 0] = gt[0, 0, 0] = True  # class 0 found
    pred[1, 1, 1] = gt[1, 1, 1] = True  # class 1 found
    gt[1, 2, 2] = True  # class 1 missed
    pred[0, 3, 3] = True  # class 0 where there is nothing
    out = overlay(image, pred, gt)
    first, second = tuple(out[0, 0]), tuple(out[1, 1])
    assert first != second
    assert not {first, second} & {TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE, (0, 0, 0)}
    assert tuple(out[2, 2]) == FALSE_NEGATIVE and tuple(out[3, 3]) == FALSE_POSITIVE
    # One class given as (1, H, W) is the (H, W) overlay.
    assert np.array_equal(overlay(image, pred[:1], gt[:1]), overlay(image, pred[0], gt[0]))


def test_the_box_and_points_given_are_drawn(tmp_path) -> None:
    from salt.viz import ShownPrompts

    image = np.zeros((64, 64, 3), dtype=np.uint8)
    empty = np.zeros((64, 64), bool)
    prompts = ShownPrompts(
        boxes={0: np.array([10.0, 20.0, 40.0, 50.0])},
        points={0: np.array([[30.0, 30.0], [5.0, 60.0]])},
        labels={0: np.array([1, 0])},
    )
    picture = _read(save_overlay(tmp_path / "case.png", image, empty, empty, prompts=prompts))
    assert tuple(picture[20, 25]) == tuple(picture[35, 10]) == tuple(picture[50, 25]) == YELLOW  # edges
    assert tuple(picture[35, 25]) == (0, 0, 0)  # inside the box: the image
    assert tuple(picture[30, 30]) == GREEN and tuple(picture[60, 5]) == MAGENTA
    assert {YELLOW, GREEN, MAGENTA} <= _colours(picture[64:])  # and in the legend


class _OriginalSizes:
    """A test split of one 40 x 80 image (the model sees 64 x 64, the content 32 x 64) with an empty mask."""

    img_size, resize = 64, "longest_pad"

    def original(self, index: int) -> dict:
        return {
            "image": np.zeros((40, 80, 3), np.uint8),
            "mask": np.zeros((1, 40, 80), bool),
            "fov": np.ones((40, 80), bool),
        }

    def to_original(self, prob: torch.Tensor, index: int) -> torch.Tensor:
        return torch.zeros(1, 40, 80)


def test_evaluation_overlays_draw_the_box_at_the_original_size(tmp_path) -> None:
    box = torch.tensor([[[8.0, 4.0, 40.0, 24.0]]])  # (B, C, 4) in model pixels: half the original's
    batch = {
        "image": torch.zeros(1, 3, 64, 64),
        "mask": torch.zeros(1, 1, 64, 64),
        "fov": torch.ones(1, 1, 64, 64, dtype=torch.bool),
        "name": ["case"],
        "index": torch.tensor([0]),
        "box": box,
        "box_valid": torch.tensor([[True]]),
    }
    accumulator = MetricAccumulator(key=("name", "class", "resolution"))
    logits = torch.full((1, 1, 64, 64), -10.0)
    evaluate_batch(logits, batch, 0.5, accumulator, _OriginalSizes(), tmp_path, overlays=1)
    picture = _read(tmp_path / "case.png")
    assert picture.shape[1] == 80 and picture.shape[0] > 40
    from salt.data.transforms import to_image_coords

    # The 40 x 80 image fills 32 x 64 of the input: model pixels times 1.25 in x and y.
    corners = to_image_coords(box[0, 0].numpy().reshape(2, 2), (40, 80), 64, "longest_pad")
    np.testing.assert_allclose(corners, [[10, 5], [50, 30]])
    assert tuple(picture[5, 30]) == YELLOW and tuple(picture[20, 10]) == YELLOW  # top and left edges
    assert tuple(picture[20, 30]) == (0, 0, 0)  # inside: the image


def test_image_coords_invert_model_coords() -> None:
    from salt.data.transforms import to_image_coords

    xy = np.array([[0.0, 0.0], [79.0, 39.0], [12.5, 30.0]])
    back = to_image_coords(to_model_coords(xy, (40, 80), 64, "longest_pad"), (40, 80), 64, "longest_pad")
    np.testing.assert_allclose(back, xy, atol=1e-4)


def test_predict_overlays_name_the_classes_and_draw_the_file_s_prompts(tmp_path) -> None:
    from omegaconf import OmegaConf

    writer = _Writer(
        None, torch.device("cpu"), OmegaConf.create({"threshold": 0.5}), tmp_path, ["disc", "bar"]
    )
    plane = np.zeros((48, 64, 3), np.uint8)
    given = {1: ClassPrompt(box=np.array([4.0, 4.0, 30.0, 40.0]))}
    item = _Plane("case", plane, plane, np.zeros(4, np.int64), None, given=given)
    prob = torch.zeros(2, 48, 64)
    prob[0, :10, 40:] = 0.9  # disc predicted top right
    prob[1, 20:30, 10:20] = 0.9  # bar inside its box
    writer._write(item, prob)
    picture = _read(tmp_path / "case_overlay.png")
    disc, bar = tuple(picture[5, 50]), tuple(picture[25, 15])
    assert disc != bar and not {disc, bar} & {TRUE_POSITIVE, (0, 0, 0)}
    assert tuple(picture[4, 20]) == bar  # the bar's box, in the bar's colour
    assert {disc, bar} <= _colours(picture[48:])  # both in the legend


def test_nothing_is_painted_outside_the_field_of_view(case) -> None:
    image, pred, gt = case
    pred, gt = pred.copy(), gt.copy()
    pred[3, 4] = gt[3, 3] = True  # a false positive and a miss in the last row
    fov = np.ones((4, 5), bool)
    fov[3] = False  # the last row is outside: no metric counts it
    out = overlay(image, pred, gt, fov=fov)
    assert tuple(out[3, 4]) == tuple(out[3, 3]) == (100, 100, 50)  # the darkened image, as background
    assert tuple(out[0, 0]) == TRUE_POSITIVE and tuple(out[1, 1]) == FALSE_NEGATIVE
    assert tuple(out[2, 2]) == FALSE_POSITIVE
    assert np.array_equal(overlay(image, pred, gt, fov=np.ones((4, 5), bool)), overlay(image, pred, gt))


def test_evaluation_overlays_paint_only_the_scored_field_of_view(tmp_path) -> None:
    fov = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    fov[..., 4:12, 4:12] = True
    batch = {
        "image": torch.full((1, 3, 16, 16), 80.0),
        "mask": torch.zeros(1, 1, 16, 16),
        "fov": fov,
        "name": ["case"],
        "index": torch.tensor([0]),
    }
    accumulator = MetricAccumulator(key=("name", "class", "resolution"))
    logits = torch.full((1, 1, 16, 16), 10.0)  # vessel everywhere: false positives everywhere
    evaluate_batch(logits, batch, 0.5, accumulator, None, tmp_path, overlays=1)
    picture = _read(tmp_path / "case.png")[:16, :16]  # the legend below is wider than the picture
    cyan = (picture == FALSE_POSITIVE).all(-1)  # (16, 16)
    assert np.array_equal(cyan, fov[0, 0].numpy())
