"""Rendering of synthetic vessel images with exact masks, in three looks modelled on the paper's modalities.

A vessel tree grows breadth-first from its roots: each segment is a random walk whose heading follows a
smoothed (AR(1)) curvature plus an optional steady turn, so ``tortuosity`` bends it; its diameter tapers along
it, and at its end it splits into a major and a minor child that are thinner, down to ``min_width`` pixels.
Segments are drawn at twice the resolution and area-averaged, giving a sub-pixel coverage; the mask is
``coverage >= 0.5``. What each look imitates:

- ``fundus`` (DRIVE): an orange-red colour photograph in a circular field of view with vignetting; the trees
  start at a bright optic disc on one side and arch above and below a darker macula, whose centre (the fovea)
  no vessel enters; vessels are darker red, most in green and blue.
- ``angio`` (ARCADE, DIAS, XRay-Angio): a grey X-ray; the contrast-filled tree enters from one border, and the
  image is the X-ray attenuation ``exp(-k * thickness)`` of the vessels (a vessel's thickness is its diameter,
  so wide vessels are dark, thin ones faint and crossings darker still) over smooth anatomy and quantum noise.
- ``octa`` (ROSE): bright vessels on a dark background speckled by a capillary mesh that is not labelled; the
  large vessels come in from the borders and stop short of the dark, vessel-free foveal avascular zone.
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
_TAPER = (0.8, 0.95)  # end diameter / start diameter of a segment
_CHUNK = 6  # walk steps drawn with one thickness: the taper is drawn in pieces this long
# Fundus anatomy, in fractions of the image size: the optic disc's distance from the centre and radius, the
# macula's radius (the fovea, which no vessel enters, is its inner third).
_DISC_OFFSET, _DISC_RADIUS, _MACULA_RADIUS = 0.27, 0.075, 0.1
_FAZ_RADIUS = 0.09  # OCTA: the foveal avascular zone
# Background colour (RGB, [0, 1]) and per-channel vessel contrast weight of the colour looks.
_FUNDUS_BACKGROUND = (0.80, 0.38, 0.17)
_FUNDUS_VESSEL = (0.55, 1.0, 0.9)
_DISC_COLOUR = (1.0, 0.85, 0.6)


@dataclass(frozen=True)
class VesselStyle:
    """Appearance of the synthetic images; lengths are fractions of the image size unless noted."""

    look: str = "fundus"  # fundus (colour, dark vessels), angio (grey X-ray), octa (bright on dark)
    fov: bool = True  # circular field of view, written as fov/<stem>_fov.png
    roots: tuple[int, int] = (3, 5)  # range of the number of vessel trees
    root_width: float = 0.018  # trunk diameter (DRIVE's widest vessels: about 0.015 of the image side)
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


@dataclass(frozen=True)
class Anatomy:
    """Where a sample's landmarks are, in pixels (x, y): the tree roots, and the zone no vessel enters."""

    roots: list[tuple[np.ndarray, float, float]]  # (start, heading, steady turn per step) per tree
    avoid_centre: np.ndarray | None = None  # centre of the vessel-free zone (fovea, FAZ)
    avoid_radius: float = 0.0
    disc: tuple[np.ndarray, float] | None = None  # fundus: the optic disc (centre, radius)
    macula: tuple[np.ndarray, float] | None = None  # fundus: the macula (centre, radius)


def _walk(
    rng: np.random.Generator, start: np.ndarray, heading: float, steps: int, tortuosity: float, turn: float
) -> np.ndarray:
    """Points ``(steps + 1, 2)`` (x, y) of a unit-step walk whose curvature is AR(1) noise plus ``turn``."""
    curvature = np.convolve(rng.normal(0.0, tortuosity, steps), _CURVATURE_KERNEL)[:steps] + turn
    angles = heading + np.cumsum(curvature)
    moves = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (steps, 2)
    return np.vstack([start, start + np.cumsum(moves, axis=0)])  # (steps + 1, 2)


def anatomy(rng: np.random.Generator, size: int, style: VesselStyle) -> Anatomy:
    """The landmarks of one sample: an optic disc and macula (fundus), an entry border (angio), a FAZ (octa)."""
    count = int(rng.integers(style.roots[0], style.roots[1] + 1))
    centre = np.array([size / 2, size / 2]) + rng.uniform(-0.03, 0.03, 2) * size
    if style.look == "angio":
        side = rng.uniform(0, 2 * np.pi)
        origin = size / 2 + 0.45 * size * np.array([np.cos(side), np.sin(side)])
        inward = side + np.pi
        return Anatomy([(origin.copy(), inward + rng.uniform(-0.9, 0.9), 0.0) for _ in range(count)])
    if style.look == "octa":
        sides = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(count) / count + rng.normal(0, 0.2, count)
        roots = []
        for side in sides:
            start = centre + 0.49 * size * np.array([np.cos(side), np.sin(side)])
            # heading inward but past the centre, so the vessel arcs around the avascular zone
            roots.append((start, side + np.pi + rng.choice([-1, 1]) * rng.uniform(0.25, 0.6), 0.0))
        return Anatomy(roots, avoid_centre=centre, avoid_radius=_FAZ_RADIUS * size)
    temporal = rng.choice([-1.0, 1.0])  # +1: the macula is to the right of the disc (a left eye)
    disc = centre - np.array([temporal * _DISC_OFFSET * size, rng.uniform(-0.02, 0.02) * size])
    macula = centre + rng.uniform(-0.02, 0.02, 2) * size
    toward = 0.0 if temporal > 0 else np.pi  # heading from the disc to the macula
    roots = []
    for k in range(count):
        vertical = -1.0 if k % 2 == 0 else 1.0  # alternate superior / inferior trees
        if k < 4:  # the four arcades: leave the disc steeply, then bend towards the macula's side
            heading = toward - temporal * vertical * rng.uniform(1.0, 1.35)
            turn = temporal * vertical * rng.uniform(0.5, 0.8) / (0.45 * size)
        else:  # nasal trees, away from the macula
            heading = toward + np.pi + temporal * vertical * rng.uniform(0.3, 0.9)
            turn = 0.0
        start = disc + 0.3 * _DISC_RADIUS * size * np.array([np.cos(heading), np.sin(heading)])
        roots.append((start, heading, turn))
    return Anatomy(
        roots,
        avoid_centre=macula,
        avoid_radius=_MACULA_RADIUS * size / 3,
        disc=(disc, _DISC_RADIUS * size),
        macula=(macula, _MACULA_RADIUS * size),
    )


def _stop(points: np.ndarray, size: int, layout: Anatomy) -> int:
    """Index of the first point outside the image or inside the vessel-free zone (``len`` if none)."""
    bad = ~np.all((points >= 0) & (points < size), axis=1)
    if layout.avoid_centre is not None:
        bad |= np.linalg.norm(points - layout.avoid_centre, axis=1) < layout.avoid_radius
    return int(np.argmax(bad)) if bad.any() else len(points)


def grow_tree(
    rng: np.random.Generator, size: int, style: VesselStyle, layout: Anatomy | None = None
) -> list[tuple[np.ndarray, float, float]]:
    """Vessel segments as ``(points (N, 2) in pixels (x, y), start diameter, end diameter)`` in pixels."""
    layout = layout or anatomy(rng, size, style)
    width0 = style.root_width * size
    queue = deque((p, h, t, width0 * rng.uniform(0.8, 1.2)) for p, h, t in layout.roots)
    segments: list[tuple[np.ndarray, float, float]] = []
    while queue and len(segments) < style.max_segments:
        start, heading, turn, width = queue.popleft()
        steps = max(2, int(style.branch_length * size * rng.uniform(0.5, 1.5)))
        points = _walk(rng, start, heading, steps, style.tortuosity, turn)
        end = _stop(points, size, layout)
        if end < 2:
            continue
        tip = width * rng.uniform(*_TAPER)
        segments.append((points[:end], width, tip))
        if end < len(points):
            continue  # left the image or reached the vessel-free zone: no children
        tail = points[-1] - points[-2]
        direction = float(np.arctan2(tail[1], tail[0]))
        sign = rng.choice([-1.0, 1.0])
        children = (
            (direction + sign * rng.uniform(0.15, 0.5), tip * rng.uniform(0.75, 0.9)),
            (direction - sign * rng.uniform(0.5, 1.1), tip * rng.uniform(0.45, 0.65)),
        )
        queue.extend((points[-1], h, turn, w) for h, w in children if w >= style.min_width)
    return segments


def _draw(canvas: np.ndarray, segments: list[tuple[np.ndarray, float, float]], value_of_width: bool) -> None:
    """Draw the segments into a ``2S x 2S`` canvas, each taper piece as a polyline of its own thickness.

    With ``value_of_width`` the pieces add their diameter (in pixels) to a float canvas (X-ray thickness);
    otherwise they set 255 in a uint8 canvas (coverage).
    """
    scale = _SUPERSAMPLE * (1 << _SHIFT)
    for points, start, end in segments:
        # A segment's pieces overlap at their joints: within a segment they overwrite (a cylinder is crossed
        # once), and only separate segments add up in the thickness map.
        layer = np.zeros_like(canvas) if value_of_width else canvas
        for first in range(0, len(points) - 1, _CHUNK):
            piece = points[first : first + _CHUNK + 1]
            width = start + (end - start) * (first + len(piece) / 2) / len(points)
            fixed = np.round(piece * scale).astype(np.int32).reshape(-1, 1, 2)  # (N, 1, 2) fixed-point x, y
            thickness = max(1, round(width * _SUPERSAMPLE))
            value = float(width) if value_of_width else 255
            cv2.polylines(
                layer, [fixed], False, value, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT
            )
        if value_of_width:
            canvas += layer


def rasterise(segments: list[tuple[np.ndarray, float, float]], size: int) -> np.ndarray:
    """Vessel coverage ``(size, size)`` float32 in [0, 1], drawn at 2x resolution and area-averaged."""
    canvas = np.zeros((size * _SUPERSAMPLE, size * _SUPERSAMPLE), dtype=np.uint8)
    _draw(canvas, segments, value_of_width=False)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def thickness_map(segments: list[tuple[np.ndarray, float, float]], size: int) -> np.ndarray:
    """X-ray path length through the vessels ``(size, size)`` float32, in pixels: overlaps add up."""
    canvas = np.zeros((size * _SUPERSAMPLE, size * _SUPERSAMPLE), dtype=np.float32)
    _draw(canvas, segments, value_of_width=True)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field ``(size, size)`` of about unit amplitude with ``cells`` blobs per side."""
    coarse = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _blob(xx: np.ndarray, yy: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """A soft disc ``(S, S)`` in [0, 1]: 1 inside ``radius``, a Gaussian shoulder outside."""
    distance = np.hypot(xx - centre[0], yy - centre[1])
    return np.exp(-(np.maximum(distance - 0.6 * radius, 0.0) ** 2) / (2 * (0.4 * radius) ** 2)).astype(
        np.float32
    )


def _lighting(rng: np.random.Generator, size: int, style: VesselStyle) -> np.ndarray:
    """Uneven illumination times low-frequency texture ``(S, S)``, about 1 on average."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5  # (S, S) each, centred
    centre = rng.uniform(-0.25, 0.25, 2)
    angle = rng.uniform(0, 2 * np.pi)
    radial = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2
    light = 1.0 - style.illumination * (1.5 * radial + 0.5 * (xx * np.cos(angle) + yy * np.sin(angle)))
    texture = style.texture * (0.7 * _smooth_noise(rng, size, 5) + 0.3 * _smooth_noise(rng, size, 17))
    return np.clip(light + texture, 0.05, None)


def _fundus(
    rng: np.random.Generator, size: int, style: VesselStyle, layout: Anatomy, profile: np.ndarray
) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = _lighting(rng, size, style)[..., None] * np.asarray(_FUNDUS_BACKGROUND, np.float32)  # (S, S, 3)
    radius = np.hypot(xx - size / 2, yy - size / 2) / (_FOV_RADIUS * size)
    base *= (1.0 - 0.45 * np.clip(radius, 0, 1) ** 3)[..., None]  # vignetting towards the rim
    macula_centre, macula_radius = layout.macula
    base *= (1.0 - 0.35 * _blob(xx, yy, macula_centre, macula_radius))[..., None]
    disc_centre, disc_radius = layout.disc
    disc = _blob(xx, yy, disc_centre, disc_radius)[..., None]
    base = base * (1 - disc) + disc * np.asarray(_DISC_COLOUR, np.float32) * rng.uniform(0.85, 1.0)
    weight = np.asarray(_FUNDUS_VESSEL, np.float32)
    return base * (1.0 - style.contrast * 1.6 * weight * profile[..., None])


def _angio(rng: np.random.Generator, size: int, style: VesselStyle, thickness: np.ndarray) -> np.ndarray:
    anatomy_shadows = 0.2 * np.clip(_smooth_noise(rng, size, 3), -1.5, 1.5)  # heart and diaphragm edges
    base = 0.62 * (_lighting(rng, size, style) + anatomy_shadows)
    attenuation = np.exp(-2.0 * style.contrast * thickness / (style.root_width * size))  # the trunk: ~0.5
    grey = base * attenuation
    return np.repeat(grey[..., None], 3, axis=2)


def _octa(
    rng: np.random.Generator, size: int, style: VesselStyle, layout: Anatomy, profile: np.ndarray
) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mesh = np.abs(_smooth_noise(rng, size, max(4, size // 5))) * np.abs(
        _smooth_noise(rng, size, max(4, size // 9))
    )
    faz = 1.0 - _blob(xx, yy, layout.avoid_centre, layout.avoid_radius * 1.1)
    capillaries = 2 * style.texture * np.clip(mesh, 0, 1.5) * faz
    signal = 0.08 + style.contrast * 1.8 * profile + capillaries
    grey = signal * _lighting(rng, size, style)
    return np.repeat(grey[..., None], 3, axis=2)


def render(
    rng: np.random.Generator, size: int, style: VesselStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One synthetic sample: image ``(S, S, 3)`` uint8, mask ``(S, S)`` bool, FOV ``(S, S)`` bool or None."""
    layout = anatomy(rng, size, style)
    segments = grow_tree(rng, size, style, layout)
    coverage = rasterise(segments, size)
    mask = coverage >= 0.5
    profile = cv2.GaussianBlur(coverage, (0, 0), sigmaX=0.7)  # the imaging blur: thin vessels fade
    if style.look == "fundus":
        image = _fundus(rng, size, style, layout, profile)
    elif style.look == "angio":
        image = _angio(rng, size, style, cv2.GaussianBlur(thickness_map(segments, size), (0, 0), sigmaX=0.7))
    else:
        image = _octa(rng, size, style, layout, profile)
    image = image + rng.normal(0.0, style.noise, image.shape).astype(np.float32)
    fov = None
    if style.fov:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        fov = (xx**2 + yy**2) <= _FOV_RADIUS**2
        mask &= fov
        image = np.where(fov[..., None], image, 0.02 * rng.random(image.shape, dtype=np.float32))
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), mask, fov
