"""The numbers of Table 1 of the SALT paper (arXiv 2503.16055, BMVC 2025), as data.

Each row is transcribed from Table 1 ("Dice up, HD95 down; HD95 in pixels at 512 x 512"), in the
paper's column order ARCADE, DIAS, ROSE, XRay-Angio, DRIVE, then the average. The paper prints Dice
with two decimals and "-" where a number is not given (the zero-shot row's HD95, its trainable share).
Its "% trainable" divides by 241M (SAM plus the frozen CLIP model) for the SAM rows and by the network
itself for the classic rows (100%).
"""

from __future__ import annotations

from dataclasses import dataclass

# Data-set names as the configs spell them (config.dataset.name), in the paper's column order.
PAPER_DATASETS: tuple[str, ...] = ("arcade", "dias", "rose", "xray_angio", "drive")
DATASET_TITLES: dict[str, str] = {
    "arcade": "ARCADE",
    "dias": "DIAS",
    "rose": "ROSE",
    "xray_angio": "XRay-Angio",
    "drive": "DRIVE",
}


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 1.

    Attributes:
        dice: data set -> Dice (the keys of :data:`PAPER_DATASETS`).
        hd95: data set -> HD95 in pixels, None where the paper gives none.
        avg_dice: the paper's average Dice over its five data sets.
        avg_hd95: the paper's average HD95, or None.
        percent: trainable share in percent, in the paper's convention, or None.
        count: trainable parameter count, or None.
    """

    dice: dict[str, float]
    hd95: dict[str, float | None]
    avg_dice: float
    avg_hd95: float | None
    percent: float | None
    count: float | None


def _row(
    percent: float | None,
    count: float | None,
    cells: tuple[tuple[float, float | None], ...],
    avg: tuple[float, float | None],
) -> PaperRow:
    if len(cells) != len(PAPER_DATASETS):
        raise ValueError(f"expected {len(PAPER_DATASETS)} cells, got {len(cells)}")
    return PaperRow(
        dice={name: dice for name, (dice, _) in zip(PAPER_DATASETS, cells)},
        hd95={name: hd95 for name, (_, hd95) in zip(PAPER_DATASETS, cells)},
        avg_dice=avg[0],
        avg_hd95=avg[1],
        percent=percent,
        count=count,
    )


# Row labels are those :func:`salt.results.collect.row_label` gives the matching runs.
PAPER_TABLE1: dict[str, PaperRow] = {
    "U-Net": _row(
        100.0,
        6.5e6,
        ((0.36, 157.14), (0.13, 262.66), (0.63, 8.07), (0.71, 30.40), (0.18, 84.43)),
        (0.40, 108.54),
    ),
    "UNETR": _row(
        100.0,
        91e6,
        ((0.48, 162.44), (0.31, 183.97), (0.63, 8.96), (0.74, 20.62), (0.46, 33.58)),
        (0.52, 81.91),
    ),
    "RegUNet": _row(
        100.0,
        7.8e6,
        ((0.11, 247.79), (0.35, 172.09), (0.22, 58.08), (0.42, 79.51), (0.43, 72.97)),
        (0.31, 126.08),
    ),
    "SegNet": _row(
        100.0,
        29e6,
        ((0.14, 231.11), (0.13, 295.06), (0.38, 9.09), (0.09, 110.94), (0.14, 79.03)),
        (0.18, 145.05),
    ),
    "DeepLabV3+": _row(
        100.0,
        45e6,
        ((0.55, 103.22), (0.55, 77.66), (0.52, 12.90), (0.74, 14.03), (0.46, 27.79)),
        (0.56, 47.12),
    ),
    "SegFormer": _row(
        100.0,
        43e6,
        ((0.53, 113.98), (0.57, 73.64), (0.56, 11.21), (0.75, 16.55), (0.48, 36.98)),
        (0.58, 50.47),
    ),
    "SAM, text prompt only": _row(
        None, None, ((0.00, None), (0.00, None), (0.00, None), (0.04, None), (0.00, None)), (0.01, None)
    ),
    "S-SAM": _row(
        0.40, 1e6, ((0.76, 52.44), (0.67, 42.36), (0.65, 12.41), (0.75, 27.56), (0.70, 15.81)), (0.71, 30.12)
    ),
    "LoRA (rank 4)": _row(
        0.64,
        1.5e6,
        ((0.78, 39.58), (0.61, 27.81), (0.59, 16.26), (0.73, 26.78), (0.62, 21.04)),
        (0.66, 26.29),
    ),
    "LoRA (rank 256)": _row(
        14.08,
        33.9e6,
        ((0.81, 36.89), (0.63, 34.36), (0.62, 14.62), (0.76, 24.84), (0.68, 19.00)),
        (0.70, 25.94),
    ),
    "SALT (rank 4)": _row(
        0.46,
        1.1e6,
        ((0.78, 51.74), (0.69, 39.58), (0.66, 12.19), (0.75, 29.55), (0.72, 16.04)),
        (0.72, 29.82),
    ),
    "SALT (rank 256)": _row(
        3.9, 9.4e6, ((0.81, 42.50), (0.71, 27.35), (0.67, 12.64), (0.77, 23.67), (0.75, 13.20)), (0.74, 23.87)
    ),
}


def dataset_title(name: str) -> str:
    """The paper's spelling of a data set (``"xray_angio"`` -> ``"XRay-Angio"``); other names unchanged."""
    return DATASET_TITLES.get(name, name)
