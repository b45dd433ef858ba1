"""MetricAccumulator: rows, summary statistics, CSV, and merging results of several processes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch.distributed as dist

from salt.metrics import MetricAccumulator, segmentation_metrics


def _square(r0: int, r1: int, size: int = 6) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[r0:r1, 1:4] = True
    return mask


EMPTY = np.zeros((6, 6), dtype=bool)
# (pred, gt) per case name: perfect, overlapping, missed vessel, nothing to find and nothing found.
CASE_MASKS = {
    "a": (_square(1, 3), _square(1, 3)),
    "b": (_square(1, 3), _square(2, 4)),
    "c": (EMPTY, _square(1, 3)),
    "d": (EMPTY, EMPTY),
}


def _filled(names: str = "abcd") -> MetricAccumulator:
    acc = MetricAccumulator()
    for name in names:
        acc.add(name, *CASE_MASKS[name], split="test")
    return acc


def test_rows_and_summary() -> None:
    acc = _filled()
    rows = acc.rows
    assert [r["name"] for r in rows] == ["a", "b", "c", "d"]
    assert rows[1] == {
        "name": "b",
        "class": 0,
        **segmentation_metrics(_square(1, 3), _square(2, 4)),
        "split": "test",
    }
    dice = [r["dice"] for r in rows]
    hd95 = [r["hd95"] for r in rows]
    summary = acc.summary()
    assert summary["n_cases"] == 4
    assert summary["dice_mean"] == pytest.approx(np.mean(dice))
    assert summary["dice_std"] == pytest.approx(np.std(dice))
    assert summary["hd95_mean"] == pytest.approx(np.mean(hd95))
    assert summary["hd95_std"] == pytest.approx(np.std(hd95))
    assert summary["cases"] == {"both_nonempty": 2, "both_empty": 1, "pred_empty": 1, "gt_empty": 0}
    assert "per_class" not in summary


def test_empty_summary_is_nan() -> None:
    summary = MetricAccumulator().summary()
    assert summary["n_cases"] == 0 and math.isnan(summary["dice_mean"]) and math.isnan(summary["hd95_std"])


def test_multiclass_rows_and_per_class_summary() -> None:
    acc = MetricAccumulator()
    acc.add("x", np.stack([_square(1, 3), EMPTY]), np.stack([_square(1, 3), _square(1, 3)]))
    acc.add("y", np.stack([_square(1, 3), EMPTY]), np.stack([_square(2, 4), EMPTY]))
    summary = acc.summary()
    assert len(acc) == 4 and summary["n_cases"] == 2
    assert summary["per_class"][0]["cases"]["both_nonempty"] == 2
    assert summary["per_class"][1]["cases"] == {
        "both_nonempty": 0,
        "both_empty": 1,
        "pred_empty": 1,
        "gt_empty": 0,
    }
    assert summary["per_class"][1]["dice_mean"] == pytest.approx(0.5)


def test_duplicate_names_counted_once(caplog: pytest.LogCaptureFixture) -> None:
    acc = _filled()
    acc.add("a", _square(1, 3), _square(1, 3), split="test")
    assert len(acc) == 4 and not caplog.records
    acc.add("a", EMPTY, _square(1, 3))
    assert len(acc) == 4 and acc.rows[0]["dice"] == 1.0
    assert "added twice with different metrics" in caplog.text


def test_key_with_resolution_and_filtered_summary() -> None:
    acc = MetricAccumulator(key=("name", "class", "resolution"))
    acc.add("a", np.zeros((3, 3), bool), np.zeros((3, 3), bool), resolution="model")
    acc.add("a", EMPTY, _square(1, 3), resolution="original")
    acc.merge(acc.state())  # a repeated shard changes nothing
    assert len(acc) == 2
    assert acc.summary(resolution="model")["cases"]["both_empty"] == 1
    original = acc.summary(resolution="original")
    assert original["n_cases"] == 1 and original["hd95_mean"] == pytest.approx(math.hypot(6, 6))
    assert acc.summary()["n_cases"] == 1 and acc.summary()["dice_mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lacks"):
        acc.add("b", EMPTY, EMPTY)  # no resolution column
    with pytest.raises(ValueError, match="must include"):
        MetricAccumulator(key=("name",))


def test_reserved_extra_keys_rejected() -> None:
    with pytest.raises(ValueError, match="reserved"):
        MetricAccumulator().add("a", EMPTY, EMPTY, dice=0.3)


def test_merge_states_of_shards_matches_single_process() -> None:
    full = _filled()
    # Two "ranks" of a padded split: case "a" is seen by both.
    rank0, rank1 = _filled("abc"), _filled("da")
    rank0.merge(rank1.state())
    rank1.merge(rank0.state())
    assert rank0.summary() == full.summary() == rank1.summary()
    with pytest.raises(ValueError, match="lacks"):
        rank0.merge([{"name": "z", "dice": 1.0}])


def test_gather_distributed_single_process_group(tmp_path) -> None:
    acc = _filled()
    acc.gather_distributed()  # no process group: unchanged
    assert len(acc) == 4
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        acc.gather_distributed()
    finally:
        dist.destroy_process_group()
    assert acc.summary() == _filled().summary()


def test_to_csv_sorted_with_extras(tmp_path) -> None:
    acc = MetricAccumulator()
    acc.add("b", _square(1, 3), _square(2, 4), resolution="model")
    acc.add("a", EMPTY, EMPTY, resolution="model", source="x.png")
    path = acc.to_csv(tmp_path / "out" / "per_case.csv")
    with path.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["name", "class", "dice", "hd95", "case", "resolution", "source"]
    assert [r["name"] for r in rows] == ["a", "b"]
    assert float(rows[1]["dice"]) == pytest.approx(acc.rows[0]["dice"])
    assert rows[0]["source"] == "x.png" and rows[1]["source"] == ""
