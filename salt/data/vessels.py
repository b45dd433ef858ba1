"""Rendering of synthetic vessel images with exact masks.

A vessel tree grows breadth-first from a few roots: each segment is a random walk whose heading follows a
smoothed (AR(1)) curvature, so ``tortuosity`` bends it; at its end it splits into a major and a minor child
that are thinner. Segments are drawn at twice the resolution and area-averaged, giving a sub-pixel vessel
coverage; the mask is ``coverage >= 0.5``. The image darkens (or, for ``octa``, brightens) the background
by the blurred coverage, so thin vessels are fainter, over textured, unevenly lit background plus noise.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from salt.data.layout import DatasetError

LOOKS = ("fundus", "angio", "octa")
_SUPERSAMPLE = 2
_SHIFT = 4  # cv2 fixed-point bits for sub-pixel line ends
_FOV_RADIUS = 0.47  # of the image size
_CURVATURE_MEMORY = 0.9  # AR(1) coefficient: how long a bend persists along the walk
# AR(1) impulse response, truncated where it has decayed below 1%.
_CURVATURE_KERNEL = _CURVATURE_MEMORY ** np.arange(int(np.log(0.01) / np.log(_CURVATURE_MEMORY)) + 1)
# Background colour (RGB, [0, 1]) and per-channel vessel contrast weight of each look.
_BACKGROUND = {"fundus": (0.78, 0.36, 0.16), "angio": (0.62, 0.62, 0.62), "octa": (0.10, 0.10, 0.10)}
_VESSEL_WEIGHT = {"fundus": (0.45, 1.0, 1.0), "angio": (1.0, 1.0, 1.0), "octa": (1.0, 1.0, 1.0)}


@dataclass(frozen=True)
class VesselStyle:
    """Appearance of the synthetic images; lengths are fractions of the image size unless noted."""

    look: str = "fundus"  # fundus (colour, dark vessels), angio (grey X-ray), octa (bright on dark)
    fov: bool = True  # circular field of view, written as fov/<stem>_fov.png
    roots: tuple[int, int] = (3, 5)  # range of the number of vessel trees
    root_width: float = 0.025  # trunk diameter
    min_width: float = 1.0  # pixels; thinner branches are not grown
    branch_length: float = 0.15  # mean segment length between bifurcations
    tortuosity: float = 0.01  # std of the curvature noise per pixel of walk (radians)
    max_segments: int = 150  # cap on segments per image
    contrast: float = 0.35  # relative intensity change at the centre of a wide vessel
    noise: float = 0.04  # std of additive Gaussian noise (intensity range = 1)
    texture: float = 0.12  # amplitude of the low-frequency background texture
    illumination: float = 0.35  # strength of the uneven (radial + linear) illumination

    def __post_init__(self) -> None:
        if self.look not in LOOKS:
            raise DatasetError(f"synthetic.look: unknown look {self.look!r} (valid: {', '.join(LOOKS)})")
        if not 1 <= self.roots[0] <= self.roots[1]:
            raise DatasetError(f"synthetic.roots: expected 1 <= low <= high, got {list(self.roots)}")
        for name in ("root_width", "min_width", "branch_length", "contrast"):
            if getattr(self, name) <= 0:
                raise DatasetError(f"synthetic.{name}: must be positive, got {getattr(self, name)}")


def _walk(
    rng: np.random.Generator, start: np.ndarray, heading: float, steps: int, tortuosity: float
) -> np.ndarray:
    """Points ``(steps + 1, 2)`` (x, y) of a unit-step walk whose curvature is AR(1) noise."""
    curvature = np.convolve(rng.normal(0.0, tortuosity, steps), _CURVATURE_KERNEL)[:steps]
    angles = heading + np.cumsum(curvature)
    moves = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (steps, 2)
    return np.vstack([start, start + np.cumsum(moves, axis=0)])  # (steps + 1, 2)


def _roots(rng: np.random.Generator, size: int, style: VesselStyle) -> list[tuple[np.ndarray, float]]:
    """Start points and headings: around an optic disc (fundus, octa) or from one border (angio)."""
    count = int(rng.integers(style.roots[0], style.roots[1] + 1))
    if style.look == "angio":
        side = rng.uniform(0, 2 * np.pi)
        origin = size / 2 + 0.45 * size * np.array([np.cos(side), np.sin(side)])
        inward = side + np.pi
        return [(origin.copy(), inward + rng.uniform(-0.9, 0.9)) for _ in range(count)]
    offset = rng.choice([-1, 1]) * rng.uniform(0.1, 0.2) * size
    origin = np.array([size / 2 + offset, size / 2 + rng.uniform(-0.05, 0.05) * size])
    first = rng.uniform(0, 2 * np.pi)
    return [(origin.copy(), first + 2 * np.pi * k / count + rng.normal(0, 0.3)) for k in range(count)]


def grow_tree(rng: np.random.Generator, size: int, style: VesselStyle) -> list[tuple[np.ndarray, float]]:
    """Vessel segments as ``(points (N, 2) in pixels (x, y), diameter in pixels)``."""
    width0 = style.root_width * size
    queue = deque((p, h, width0 * rng.uniform(0.8, 1.2)) for p, h in _roots(rng, size, style))
    segments: list[tuple[np.ndarray, float]] = []
    while queue and len(segments) < style.max_segments:
        start, heading, width = queue.popleft()
        steps = max(2, int(style.branch_length * size * rng.uniform(0.5, 1.5)))
        points = _walk(rng, start, heading, steps, style.tortuosity)
        inside = np.all((points >= 0) & (points < size), axis=1)
        end = int(np.argmin(inside)) if not inside.all() else len(points)
        if end < 2:
            continue
        segments.append((points[:end], width))
        if end < len(points):
            continue  # left the image: no children
        tail = points[-1] - points[-2]
        direction = float(np.arctan2(tail[1], tail[0]))
        sign = rng.choice([-1.0, 1.0])
        children = (
            (direction + sign * rng.uniform(0.15, 0.5), width * rng.uniform(0.7, 0.85)),
            (direction - sign * rng.uniform(0.5, 1.1), width * rng.uniform(0.45, 0.65)),
        )
        queue.extend((points[-1], h, w) for h, w in children if w >= style.min_width)
    return segments


def rasterise(segments: list[tuple[np.ndarray, float]], size: int) -> np.ndarray:
    """Vessel coverage ``(size, size)`` float32 in [0, 1], drawn at 2x resolution and area-averaged."""
    canvas = np.zeros((size * _SUPERSAMPLE, size * _SUPERSAMPLE), dtype=np.uint8)
    scale = _SUPERSAMPLE * (1 << _SHIFT)
    for points, width in segments:
        fixed = np.round(points * scale).astype(np.int32).reshape(-1, 1, 2)  # (N, 1, 2) fixed-point x, y
        thickness = max(1, round(width * _SUPERSAMPLE))
        cv2.polylines(canvas, [fixed], False, 255, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field ``(size, size)`` of about unit amplitude with ``cells`` blobs per side."""
    coarse = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def render(
    rng: np.random.Generator, size: int, style: VesselStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One synthetic sample: image ``(S, S, 3)`` uint8, mask ``(S, S)`` bool, FOV ``(S, S)`` bool or None."""
    coverage = rasterise(grow_tree(rng, size, style), size)
    mask = coverage >= 0.5
    profile = cv2.GaussianBlur(coverage, (0, 0), sigmaX=0.7)  # the imaging blur: thin vessels fade

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5  # (S, S) each, centred
    centre = rng.uniform(-0.25, 0.25, 2)
    angle = rng.uniform(0, 2 * np.pi)
    radial = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2
    light = 1.0 - style.illumination * (1.5 * radial + 0.5 * (xx * np.cos(angle) + yy * np.sin(angle)))
    texture = style.texture * (0.7 * _smooth_noise(rng, size, 5) + 0.3 * _smooth_noise(rng, size, 17))
    base = np.clip(light + texture, 0.05, None)  # (S, S)

    colour = np.asarray(_BACKGROUND[style.look], dtype=np.float32)
    weight = np.asarray(_VESSEL_WEIGHT[style.look], dtype=np.float32)
    if style.look == "octa":  # bright vessels over a dark background speckled by the capillary plexus
        plexus = np.abs(_smooth_noise(rng, size, max(4, size // 6)))[..., None]  # (S, S, 1)
        signal = style.contrast * (weight * profile[..., None] + 2 * style.texture * plexus)
        image = (colour + signal) * base[..., None]
    else:
        image = colour * base[..., None] * (1.0 - style.contrast * weight * profile[..., None])  # (S, S, 3)
    image = image + rng.normal(0.0, style.noise, image.shape).astype(np.float32)

    fov = None
    if style.fov:
        fov = (xx**2 + yy**2) <= _FOV_RADIUS**2
        mask &= fov
        image = np.where(fov[..., None], image, 0.02 * rng.random(image.shape, dtype=np.float32))
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), mask, fov
