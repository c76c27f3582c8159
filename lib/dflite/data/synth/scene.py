"""Backgrounds, head motion, expressions over time, and the camera that turns a render into pixels."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .identity import Expression, Light, face_box


def random_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A static 'room': two-colour gradient, blurred blocks (furniture, windows), fine noise."""
    c0, c1 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).astype(np.float32).copy()
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        bw, bh = rng.integers(w // 8, w // 2), rng.integers(h // 8, h // 2)
        bg[y0:y0 + bh, x0:x0 + bw] = rng.uniform(0.05, 0.95, 3)
    bg = cv2.GaussianBlur(bg, (0, 0), max(h, w) / 60)
    bg += rng.normal(0, 0.015, (h, w, 1)).astype(np.float32)
    return np.clip(bg, 0, 1)


def busy_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Clutter that fires the face cascade: thousands of overlapping ellipses of random tone and colour (foliage,
    a patterned tablecloth, a crowd's clothes), its grain scaled 1-3x so the false boxes span 60-400 px."""
    grain = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
    sh, sw = max(8, int(h / grain)), max(8, int(w / grain))
    img = np.full((sh, sw, 3), 0.5, np.float32)
    tint = rng.uniform(0.6, 1.0, 3).astype(np.float32)
    for _ in range(int(4000 * sh * sw / (720 * 1280)) + 50):
        centre = (int(rng.integers(0, sw)), int(rng.integers(0, sh)))
        axes = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
        tone = float(rng.uniform(0, 1))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, (tone * tint).tolist(), -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def random_light(rng: np.random.Generator) -> Light:
    """A mostly frontal light from above, a little to one side, with a colour cast."""
    return Light(
        direction=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.5, 0.0)), 1.0),
        ambient=float(rng.uniform(0.5, 0.6)),
        diffuse=float(rng.uniform(0.5, 0.65)),
        tint=tuple(np.round(rng.uniform(0.92, 1.05, 3), 4)),
    )


@dataclass
class Track:
    """Per-frame head pose (patch centre in pixels, scale, roll in degrees) and expression."""

    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    expressions: list


def _wander(rng, n, amp, speed):
    """Smooth random motion: a sum of three slow sinusoids, in [-amp, amp]."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for _ in range(3):
        out += np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * speed * t + rng.uniform(0, 2 * np.pi))
    return amp * out / 3


def random_track(rng: np.random.Generator, n: int, frame: tuple, face_frac: float, fps: int) -> Track:
    """A talking head: drifting, breathing in scale, tilting a little, blinking and speaking."""
    h, w = frame
    speed = 1.0 / fps
    scale = face_frac * (1 + _wander(rng, n, 0.08, speed))
    cx = w / 2 + rng.uniform(-0.08, 0.08) * w + _wander(rng, n, 0.05 * w, speed)
    cy = h / 2 + rng.uniform(-0.05, 0.05) * h + _wander(rng, n, 0.04 * h, speed)
    angle = rng.uniform(-3, 3) + _wander(rng, n, 5.0, speed)
    blink_every = rng.uniform(2.0, 4.0) * fps
    phase = rng.uniform(0, blink_every)
    talk = np.abs(np.sin(2 * np.pi * rng.uniform(2, 4) * speed * np.arange(n) + rng.uniform(0, 6)))
    talk *= 0.5 + 0.5 * (np.sin(2 * np.pi * 0.4 * speed * np.arange(n) + rng.uniform(0, 6)) > -0.3)
    smile = _wander(rng, n, 0.5, speed * 0.5)
    exprs = []
    for f in range(n):
        since_blink = (f + phase) % blink_every
        eye_open = 0.1 if since_blink < 1 else (0.5 if since_blink < 2 else 1.0)
        exprs.append(Expression(eye_open=eye_open, mouth_open=float(talk[f] * 0.8), smile=float(smile[f])))
    return Track(cx=cx, cy=cy, scale=scale, angle=angle, expressions=exprs)


def patch_to_frame(size: int, cx: float, cy: float, scale_px: float, angle: float) -> np.ndarray:
    """2x3 affine taking canonical patch pixels to frame pixels (patch side becomes scale_px)."""
    s = scale_px / size
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, s)
    m[:, 2] += (cx - size / 2, cy - size / 2)
    return m


def warp(patch: np.ndarray, m: np.ndarray, frame_hw: tuple) -> np.ndarray:
    h, w = frame_hw
    return cv2.warpAffine(patch, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def over(dst: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite rgb over dst (all float32 in 0..1)."""
    a = alpha[..., None]
    return rgb * a + dst * (1 - a)


def box_in_frame(ident, size: int, m: np.ndarray, frame_hw: tuple) -> list:
    """The face box carried through the pose, as an axis-aligned [x, y, w, h] clipped to the frame."""
    x0, y0, x1, y1 = face_box(ident, size)
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ m.T
    # A rotated square's bounding box grows; shrink it back so the box keeps the face's side.
    cx, cy = corners.mean(0)
    side = np.hypot(*(corners[1] - corners[0]))
    h, w = frame_hw
    bx0, by0 = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
    bx1, by1 = min(float(w), cx + side / 2), min(float(h), cy + side / 2)
    return [round(bx0, 1), round(by0, 1), round(bx1 - bx0, 1), round(by1 - by0, 1)]


def camera(frame: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Sensor noise and a slight optical blur."""
    out = cv2.GaussianBlur(frame, (0, 0), 0.5)
    out = out + rng.normal(0, noise, frame.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)
