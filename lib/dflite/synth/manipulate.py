"""The five manipulation methods, each a distinct family of artifacts, in canonical patch space.

Every method returns the manipulated face patch and the mask of pixels it changed (0..1, soft where
the method blends). ``strength`` in (0, 1] scales the artifacts: 1 is the easiest to detect.
"""
from __future__ import annotations

import cv2
import numpy as np

from .identity import Expression, Identity, Light, face_regions, render_face

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


def _colour_shift(rgb, mask, target_rgb, keep):
    """Move the masked region's mean colour towards the target's, leaving `keep` of the gap."""
    m = mask[..., None] > 0.5
    if not m.any():
        return rgb
    src_mean = (rgb * m).sum((0, 1)) / m.sum()
    tgt_mean = (target_rgb * m).sum((0, 1)) / m.sum()
    return np.clip(rgb + (1 - keep) * (tgt_mean - src_mean), 0, 1)


def _feather(mask, size, frac):
    k = max(1.0, size * frac)
    return np.clip(cv2.GaussianBlur(mask, (0, 0), k), 0, 1)


def deepfakes(target, source, expr_t, expr_s, light, size, rng, strength):
    """Autoencoder swap: source face at low resolution, imperfect colour, feathered seam."""
    real, alpha = render_face(target, expr_t, light, size)
    src, _ = render_face(source, expr_t, light, size)
    code = max(12, int(size * (0.34 - 0.14 * strength)))  # bottleneck resolution
    src = cv2.resize(cv2.resize(src, (code, code), interpolation=cv2.INTER_AREA), (size, size),
                     interpolation=cv2.INTER_LINEAR)
    mask = _feather(face_regions(target, size)["inner"], size, 0.03)
    src = _colour_shift(src, mask, real, keep=0.2 + 0.5 * strength)
    return real * (1 - mask[..., None]) + src * mask[..., None], mask


def face2face(target, source, expr_t, expr_s, light, size, rng, strength):
    """Expression reenactment: the source's mouth and eyes, warped onto the target, region-limited."""
    real, _ = render_face(target, expr_t, light, size)
    driven = Expression(eye_open=expr_s.eye_open, mouth_open=min(1.0, expr_s.mouth_open + 0.3),
                        smile=expr_s.smile)
    fake, _ = render_face(target, driven, light, size)
    # Warp field: a smooth random displacement, as a blendshape transfer leaves behind.
    amp = size * 0.012 * (0.5 + strength)
    g = np.random.default_rng(int(rng.integers(2**31)))
    dx = cv2.resize(g.normal(0, 1, (4, 4)).astype(np.float32), (size, size)) * amp
    dy = cv2.resize(g.normal(0, 1, (4, 4)).astype(np.float32), (size, size)) * amp
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    fake = cv2.remap(fake, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    fake = cv2.GaussianBlur(fake, (0, 0), 0.6 + 0.6 * strength)
    regions = face_regions(target, size, driven)
    mask = _feather(np.maximum(regions["mouth"], regions["eyes"]), size, 0.015)
    return real * (1 - mask[..., None]) + fake * mask[..., None], mask


def faceswap(target, source, expr_t, expr_s, light, size, rng, strength):
    """Graphics swap: source face fitted in a hard-edged hull, shaded under the wrong light."""
    real, _ = render_face(target, expr_t, light, size)
    wrong = Light(direction=(-light.direction[0] - 0.4, 0.1, 1.0), ambient=light.ambient + 0.08 * strength,
                  diffuse=light.diffuse, tint=(1.0, 1.0, 1.0))
    src, _ = render_face(source, expr_t, wrong, size)
    mask = face_regions(target, size)["hull"]
    src = _colour_shift(src, mask, real, keep=0.1 + 0.4 * strength)
    return real * (1 - mask[..., None]) + src * mask[..., None], mask


def neural_textures(target, source, expr_t, expr_s, light, size, rng, strength):
    """Neural re-rendering of the mouth: the source's mouth motion with periodic upsampling marks."""
    real, _ = render_face(target, expr_t, light, size)
    driven = Expression(eye_open=expr_t.eye_open, mouth_open=expr_s.mouth_open, smile=expr_s.smile)
    fake, _ = render_face(target, driven, light, size)
    half = cv2.resize(fake, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    fake = cv2.resize(half, (size, size), interpolation=cv2.INTER_NEAREST)
    # Transposed-convolution checkerboard: a period-2 pattern whose sign flips per pixel pair.
    ys, xs = np.mgrid[0:size, 0:size]
    checker = (((xs // 2) + (ys // 2)) % 2 * 2 - 1).astype(np.float32)
    fake = fake + (0.012 + 0.03 * strength) * checker[..., None]
    mask = _feather(face_regions(target, size, driven)["mouth"], size, 0.01)
    return np.clip(real * (1 - mask[..., None]) + fake * mask[..., None], 0, 1), mask


def faceshifter(target, source, expr_t, expr_s, light, size, rng, strength):
    """High-fidelity swap: full-resolution source, matched colour, soft mask, faint HF trace."""
    real, _ = render_face(target, expr_t, light, size)
    src, _ = render_face(source, expr_t, light, size)
    regions = face_regions(target, size)
    mask = _feather(regions["inner"], size, 0.06)
    src = _colour_shift(src, mask, real, keep=0.0)
    # Faint generator fingerprint: a fixed high-frequency grating at a few grey levels.
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    grating = np.sin(2 * np.pi * (xs / 3.0 + ys / 5.0))
    src = src + (0.004 + 0.012 * strength) * grating[..., None]
    return np.clip(real * (1 - mask[..., None]) + src * mask[..., None], 0, 1), mask


MANIPULATORS = {
    "Deepfakes": deepfakes,
    "Face2Face": face2face,
    "FaceSwap": faceswap,
    "NeuralTextures": neural_textures,
    "FaceShifter": faceshifter,
}


def manipulate(method: str, target: Identity, source: Identity, expr_t: Expression,
               expr_s: Expression, light: Light, size: int, rng: np.random.Generator,
               strength: float):
    """Apply one method; returns (patch rgb (size, size, 3), changed-pixel mask (size, size))."""
    if method not in MANIPULATORS:
        raise ValueError(f"unknown manipulation method {method!r}; expected one of {', '.join(METHODS)}")
    return MANIPULATORS[method](target, source, expr_t, expr_s, light, size, rng, strength)
