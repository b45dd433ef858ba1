"""Centreline recall by vessel width, checked on drawn lines whose widths and centrelines are known."""

from __future__ import annotations

import numpy as np
import pytest

from salt.metrics.thin import centreline_widths, width_recall


def lines() -> np.ndarray:
    """A 1 px vertical line (rows 10-49, col 10) and a 5 px horizontal bar (rows 60-64, cols 20-99)."""
    mask = np.zeros((80, 120), bool)
    mask[10:50, 10] = True
    mask[60:65, 20:100] = True
    return mask


@pytest.mark.parametrize("width", [1, 3, 5, 7])
def test_the_width_of_an_odd_bar_is_read_on_its_centreline(width: int) -> None:
    mask = np.zeros((40, 60), bool)
    mask[10 : 10 + width, 5:55] = True
    centre, widths = centreline_widths(mask)
    middle = 10 + width // 2
    # away from the bar's ends the centreline is the middle row, and the width is the bar's
    assert centre[middle, 20:40].all() and centre[:, 20:40].sum() == 20
    assert np.all(widths[middle, 20:40] == width)
    assert np.all(widths[~centre] == 0)


def test_thin_and_thick_centreline_pixels_are_counted_apart() -> None:
    mask = lines()
    pred = np.zeros_like(mask)
    pred[10:30, 10] = True  # the upper half of the thin line
    pred[55:70, 15:105] = True  # all of the bar, and more
    result = width_recall(pred, mask, max_width=2.0)
    assert (result.thin_total, result.thin_found) == (40, 20)  # the 1 px line is its own centreline
    assert result.thin_recall == 0.5
    assert result.thick_total > 60 and result.thick_found == result.thick_total
    assert result.thick_recall == 1.0


def test_the_field_of_view_and_the_width_limit_select_the_pixels() -> None:
    mask = lines()
    fov = np.ones_like(mask)
    fov[:30] = False  # the upper half of the thin line lies outside
    bar = width_recall(mask, mask, max_width=2.0).thick_total  # the bar's centreline, all inside the FOV
    everything = width_recall(mask, mask, fov, max_width=10.0)
    assert everything.thin_total == 20 + bar  # with a 10 px limit the bar is thin too
    assert everything.thick_total == 0 and np.isnan(everything.thick_recall)
    nothing = width_recall(np.zeros_like(mask), mask, fov, max_width=2.0)
    assert (nothing.thin_total, nothing.thin_found, nothing.thin_recall) == (20, 0, 0.0)


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        width_recall(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
