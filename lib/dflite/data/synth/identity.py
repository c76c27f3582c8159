"""Parametric face identities and the renderer that draws one face in a canonical patch.

A face is drawn in a square patch of side ``size`` with the face centred; poses (shift, scale,
roll) are applied later by warping the patch into a frame. Every drawing step is plain numpy on a
pixel grid so the same parameters give the same pixels everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

SKIN_TONES = np.array([  # RGB in 0..1, light to dark
    [0.96, 0.80, 0.69], [0.92, 0.74, 0.60], [0.85, 0.65, 0.50], [0.76, 0.55, 0.40],
    [0.64, 0.45, 0.32], [0.54, 0.37, 0.26], [0.46, 0.31, 0.22],
])
HAIR_COLOURS = np.array([
    [0.08, 0.06, 0.05], [0.20, 0.13, 0.08], [0.40, 0.26, 0.14], [0.62, 0.45, 0.24],
    [0.75, 0.62, 0.40], [0.55, 0.53, 0.52], [0.45, 0.15, 0.07],
])
EYE_COLOURS = np.array([[0.25, 0.15, 0.08], [0.20, 0.35, 0.55], [0.25, 0.42, 0.25], [0.10, 0.08, 0.06]])

# Canonical geometry, as fractions of the patch side.
FACE_CX, FACE_CY = 0.5, 0.55
EYE_Y, MOUTH_Y, NOSE_Y = 0.47, 0.74, 0.62
# Contrast knobs, tuned so OpenCV's Haar frontal cascade finds these faces (see tests/test_synth.py):
# Haar features want a dark eye band with a bright nose bridge between the eyes.
SCLERA = (0.5, 0.48, 0.46)  # eye whites dimmer than real ones: at 24 px a real eye reads dark
IRIS = 1.6                  # iris radius in eye half-heights
BROW_MAX = 0.12             # brows never lighter than this, even for blond hair
SOCK_W, SOCK_H = 1.4, 0.0   # eye-socket shadow size; wider sockets darken the bridge and hurt
SOCKET_DEPTH = 0.3          # eye-socket darkening
RIDGE = 0.25                # nose-ridge brightening


@dataclass(frozen=True)
class Identity:
    """Everything that stays fixed about one synthetic person."""

    skin: tuple        # RGB 0..1
    hair: tuple        # RGB 0..1
    eye_colour: tuple  # RGB 0..1
    lip: tuple         # RGB 0..1
    face_w: float      # half-width of the face ellipse (fraction of the patch)
    face_h: float      # half-height of the face ellipse
    jaw: float         # 0 = oval chin, 1 = square jaw
    eye_sep: float     # half-distance between the eyes
    eye_w: float       # half-width of one eye
    eye_h: float       # half-height of one open eye
    brow_thick: float  # brow thickness
    brow_tilt: float   # brow slope, + = raised outer ends
    nose_len: float    # from eye line down
    nose_w: float
    mouth_w: float     # half-width of the mouth
    lip_h: float
    hair_style: int    # 0 short, 1 long, 2 bald, 3 fringe
    glasses: bool
    beard: bool
    texture_seed: int


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity from the dataset's distribution of faces."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05, 3)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.9, 1.1, 3)
    lip = np.clip(skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.85, 1.05), 0, 1)
    return Identity(
        skin=tuple(np.clip(skin, 0, 1).round(4)),
        hair=tuple(np.clip(hair, 0, 1).round(4)),
        eye_colour=tuple(EYE_COLOURS[rng.integers(len(EYE_COLOURS))]),
        lip=tuple(lip.round(4)),
        face_w=float(rng.uniform(0.27, 0.32)),
        face_h=float(rng.uniform(0.36, 0.41)),
        jaw=float(rng.uniform(0, 1)),
        eye_sep=float(rng.uniform(0.105, 0.13)),
        eye_w=float(rng.uniform(0.045, 0.058)),
        eye_h=float(rng.uniform(0.018, 0.026)),
        brow_thick=float(rng.uniform(0.012, 0.022)),
        brow_tilt=float(rng.uniform(-0.015, 0.015)),
        nose_len=float(rng.uniform(0.12, 0.16)),
        nose_w=float(rng.uniform(0.035, 0.05)),
        mouth_w=float(rng.uniform(0.065, 0.09)),
        lip_h=float(rng.uniform(0.012, 0.02)),
        hair_style=int(rng.integers(4)),
        glasses=bool(rng.random() < 0.2),
        beard=bool(rng.random() < 0.15),
        texture_seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class Expression:
    """What changes frame to frame on one face."""

    eye_open: float = 1.0    # 0 = closed (blink), 1 = open
    mouth_open: float = 0.0  # 0 = closed, 1 = wide open
    smile: float = 0.0       # widens the mouth, -1..1


@dataclass(frozen=True)
class Light:
    """Directional light on the face: direction (x right, y down, z to camera) and strength."""

    direction: tuple = (0.0, -0.3, 1.0)
    ambient: float = 0.55
    diffuse: float = 0.6
    tint: tuple = (1.0, 1.0, 1.0)


@lru_cache(maxsize=8)
def _grid(size: int):
    """Pixel-centre coordinates in 0..1, (size, size) each (cached, read-only)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xs + 0.5) / size, (ys + 0.5) / size
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _ellipse(x, y, cx, cy, ax, ay, soft):
    """Soft-edged ellipse indicator in 0..1 (soft = edge width in normalised radius)."""
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return np.clip((1 - r) / soft + 0.5, 0, 1)


def _paint(img, mask, colour, strength=1.0):
    """Blend `colour` into img where mask > 0 (only over the mask's bounding box: most are small)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    colour = np.asarray(colour, np.float32)
    m = (mask[win] * strength)[..., None]
    c = colour[win] if colour.ndim == 3 else colour  # a per-pixel colour (size, size, 3) is cut too
    img[win] *= 1 - m
    img[win] += m * c


def face_outline(ident: Identity, x, y):
    """Face-skin indicator: an ellipse whose lower half squares off with the jaw parameter."""
    dx = (x - FACE_CX) / ident.face_w
    dy = (y - FACE_CY) / ident.face_h
    p = np.where(dy > 0, 2 + 1.6 * ident.jaw, 2.0)  # superellipse exponent below the cheeks
    r = (np.abs(dx) ** p + np.abs(dy) ** p) ** (1 / p)
    return np.clip((1 - r) / 0.03 + 0.5, 0, 1)


def eye_centres(ident: Identity):
    return [(FACE_CX - ident.eye_sep, EYE_Y), (FACE_CX + ident.eye_sep, EYE_Y)]


@lru_cache(maxsize=64)
def face_regions(ident: Identity, size: int, expr: Expression = Expression()) -> dict:
    """Canonical masks (size, size) in 0..1: skin, inner face, eyes, mouth, lower face, hull (read-only, cached)."""
    x, y = _grid(size)
    eyes = np.zeros((size, size), np.float32)
    for ex, ey in eye_centres(ident):
        eyes = np.maximum(eyes, _ellipse(x, y, ex, ey - 0.01, ident.eye_w * 1.9, ident.eye_h * 3.2 + 0.02,
                                         0.5))
    mw = ident.mouth_w * (1 + 0.25 * expr.smile)
    mouth = _ellipse(x, y, FACE_CX, MOUTH_Y + 0.01, mw * 1.6, 0.06 + 0.03 * expr.mouth_open, 0.5)
    inner = _ellipse(x, y, FACE_CX, 0.6, ident.face_w * 0.86, ident.face_h * 0.72, 0.35)
    # Lower face: mouth, chin and the folds beside the mouth (what NeuralTextures re-renders).
    lower = _ellipse(x, y, FACE_CX, MOUTH_Y + 0.03, ident.face_w * 0.7, 0.12 + 0.03 * expr.mouth_open, 0.4)
    # FaceSwap-style hull: polygon through brows, cheeks and chin, hard edged.
    sep, fw = ident.eye_sep, ident.face_w
    pts = np.array([
        [FACE_CX - sep - 0.07, EYE_Y - 0.07], [FACE_CX + sep + 0.07, EYE_Y - 0.07],
        [FACE_CX + fw * 0.88, 0.62], [FACE_CX + fw * 0.55, 0.82], [FACE_CX, 0.86],
        [FACE_CX - fw * 0.55, 0.82], [FACE_CX - fw * 0.88, 0.62],
    ]) * size
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, np.round(pts).astype(np.int32), 1)
    regions = {"skin": face_outline(ident, x, y), "inner": inner, "eyes": eyes, "mouth": mouth, "lower": lower,
               "hull": hull.astype(np.float32)}
    for m in regions.values():
        m.setflags(write=False)
    return regions


def _skin_texture(ident: Identity, size: int) -> np.ndarray:
    """Low-frequency blotches fixed per identity (multiplicative, around 1)."""
    rng = np.random.default_rng(ident.texture_seed)
    small = rng.normal(0, 1, (8, 8)).astype(np.float32)
    tex = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return 1 + 0.035 * tex


@lru_cache(maxsize=32)
def render_face(ident: Identity, expr: Expression, light: Light, size: int):
    """Draw one face: rgb (size, size, 3) float32 in 0..1 and alpha (size, size).

    Cached (every fake re-renders its target and source for the same frame) and so read-only.
    """
    x, y = _grid(size)
    img = np.zeros((size, size, 3), np.float32)
    skin = face_regions(ident, size)["skin"]  # cached per identity
    neck = ((np.abs(x - FACE_CX) < ident.face_w * 0.55) & (y > FACE_CY)).astype(np.float32)
    ears = np.maximum(_ellipse(x, y, FACE_CX - ident.face_w, 0.54, 0.035, 0.06, 0.3),
                      _ellipse(x, y, FACE_CX + ident.face_w, 0.54, 0.035, 0.06, 0.3))
    body = np.maximum(np.maximum(skin, neck * 0.999), ears)

    # Lambert shading on an ellipsoid: gives the darker temples/cheek edges real faces have.
    nx = np.clip((x - FACE_CX) / (ident.face_w * 1.15), -1, 1)
    ny = np.clip((y - FACE_CY) / (ident.face_h * 1.15), -1, 1)
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    d = np.asarray(light.direction, np.float32)
    d = d / np.linalg.norm(d)
    shade = light.ambient + light.diffuse * np.clip(nx * d[0] + ny * d[1] + nz * d[2], 0, 1)
    base = np.asarray(ident.skin, np.float32) * np.asarray(light.tint, np.float32)
    img[:] = base * (shade * _skin_texture(ident, size))[..., None]
    neck_shadow = 1 - 0.35 * neck * (1 - skin)
    img *= neck_shadow[..., None]

    # Eye sockets and the shadow under the brows: the dark band Haar features look for.
    for ex, ey in eye_centres(ident):
        sock = _ellipse(x, y, ex, ey - 0.015, ident.eye_w * SOCK_W, ident.eye_h * 3.2 + SOCK_H, 1.2)
        img *= (1 - SOCKET_DEPTH * sock)[..., None]
    # Nose: bright ridge, darker flanks and nostrils.
    on_nose = ((y > EYE_Y) & (y < EYE_Y + ident.nose_len)).astype(np.float32)
    ridge = np.exp(-((x - FACE_CX) / (ident.nose_w * 0.45)) ** 2) * on_nose
    img *= (1 + RIDGE * ridge)[..., None]
    ny_tip = EYE_Y + ident.nose_len
    for side in (-1, 1):
        flank = _ellipse(x, y, FACE_CX + side * ident.nose_w * 0.9, ny_tip - 0.03, ident.nose_w * 0.5,
                         ident.nose_len * 0.45, 1.0)
        img *= (1 - 0.18 * flank)[..., None]
        nostril = _ellipse(x, y, FACE_CX + side * ident.nose_w * 0.5, ny_tip, ident.nose_w * 0.28, 0.009, 0.6)
        img *= (1 - 0.6 * nostril)[..., None]

    # Eyes: sclera, iris, pupil, upper lid.
    open_h = ident.eye_h * max(expr.eye_open, 0.08)
    for ex, ey in eye_centres(ident):
        sclera = _ellipse(x, y, ex, ey, ident.eye_w, open_h, 0.25)
        _paint(img, sclera, np.asarray(SCLERA) * np.asarray(light.tint) * shade[..., None])
        iris = _ellipse(x, y, ex, ey, ident.eye_h * IRIS, ident.eye_h * IRIS, 0.2) * sclera
        _paint(img, iris, ident.eye_colour)
        pupil = _ellipse(x, y, ex, ey, ident.eye_h * 0.5, ident.eye_h * 0.5, 0.3) * sclera
        _paint(img, pupil, (0.03, 0.03, 0.03))
        lid = _ellipse(x, y, ex, ey - open_h * 0.6, ident.eye_w * 1.05, open_h * 0.55 + 0.004, 0.3)
        lid = lid * (1 - sclera * 0.7)
        _paint(img, lid * (y < ey).astype(np.float32), (0.12, 0.08, 0.07), 0.85)
        # Brow: a thick arc above the eye.
        side = np.sign(ex - FACE_CX)
        arch = 0.02 * (1 - ((x - ex) / (ident.eye_w * 1.4)) ** 2)
        by = ey - 0.055 - ident.brow_tilt * (x - ex) * side / ident.eye_w - arch
        brow = np.clip(1 - np.abs(y - by) / ident.brow_thick, 0, 1) * (np.abs(x - ex) < ident.eye_w * 1.4)
        _paint(img, brow.astype(np.float32), np.minimum(np.asarray(ident.hair) * 0.6, BROW_MAX), 0.9)

    # Mouth: lips, and a dark opening when speaking.
    mw = ident.mouth_w * (1 + 0.25 * expr.smile)
    lips = _ellipse(x, y, FACE_CX, MOUTH_Y, mw, ident.lip_h + 0.02 * expr.mouth_open, 0.25)
    _paint(img, lips, ident.lip, 0.9)
    gap = _ellipse(x, y, FACE_CX, MOUTH_Y, mw * 0.85, 0.003 + 0.018 * expr.mouth_open, 0.4)
    _paint(img, gap, (0.18, 0.05, 0.05))

    if ident.beard:
        beard = skin * np.clip((y - MOUTH_Y - 0.01) / 0.03, 0, 1)  # jaw and chin, below the lips
        grain = np.random.default_rng(ident.texture_seed + 1).uniform(0.7, 1.0, (size, size))
        grain = grain.astype(np.float32)
        _paint(img, beard * grain, np.asarray(ident.hair) * 0.7, 0.45)

    # Hair: a cap above the hairline, optionally long at the sides or a fringe.
    hair = np.zeros((size, size), np.float32)
    if ident.hair_style != 2:
        cap = _ellipse(x, y, FACE_CX, FACE_CY - 0.04, ident.face_w * 1.12, ident.face_h * 1.08, 0.06)
        line = 0.33 if ident.hair_style == 3 else 0.28
        hair = cap * np.clip((line - y) / 0.02 + 0.5, 0, 1)
        hair = np.maximum(hair, cap * (1 - skin))
        if ident.hair_style == 1:
            off = np.abs(x - FACE_CX)
            sides = (off > ident.face_w * 0.85) & (off < ident.face_w * 1.25) & (y < 0.8)
            hair = np.maximum(hair, sides.astype(np.float32))
        _paint(img, hair, ident.hair)
    if ident.glasses:
        frame = np.zeros((size, size), np.float32)
        for ex, ey in eye_centres(ident):
            r = np.sqrt(((x - ex) / (ident.eye_w * 1.6)) ** 2 + ((y - ey) / (ident.eye_w * 1.2)) ** 2)
            frame = np.maximum(frame, np.clip(1 - np.abs(r - 1) / 0.12, 0, 1))
        bridge = (np.abs(y - EYE_Y + 0.01) < 0.006) & (np.abs(x - FACE_CX) < ident.eye_sep - ident.eye_w * 1.4)
        frame = np.maximum(frame, bridge.astype(np.float32))
        _paint(img, frame, (0.05, 0.05, 0.06), 0.95)

    rgb, alpha = np.clip(img, 0, 1), np.clip(np.maximum(body, hair), 0, 1)
    rgb.setflags(write=False)
    alpha.setflags(write=False)
    return rgb, alpha


def face_box(ident: Identity, size: int) -> np.ndarray:
    """Ground-truth face box in patch pixels (x0, y0, x1, y1): hairline to chin, ear to ear.

    Square, like the boxes face detectors return (sized to match the Haar cascade's on these faces).
    """
    half = ident.face_w * 1.26
    cy = FACE_CY - 0.01
    return np.array([FACE_CX - half, cy - half, FACE_CX + half, cy + half]) * size
