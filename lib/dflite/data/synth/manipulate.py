"""The five manipulation methods, each its own mix of artifacts, in canonical patch space.

Every method returns the manipulated face patch and the mask of pixels it changed (0..1, soft where
the method blends). ``strength`` in (0, 1] scales every artifact: 1 is the easiest to detect.

Real detectors on FF++ pick up a handful of artifact families; each method here gets its own mix,
sized so that it survives H.264 at CRF 23 and a 64 px model input (the quick profile), while CRF 40
wipes out part of it (c40 is harder):

| method         | region         | seam      | colour / light     | resolution         | spectrum     | flicker |
|----------------|----------------|-----------|--------------------|--------------------|--------------|---------|
| Deepfakes      | inner face     | feathered | strong colour      | bottleneck (blur)  | -            | strong  |
| FaceSwap       | landmark hull  | hard      | wrong light+colour | -                  | -            | weak    |
| Face2Face      | eyes and mouth | feathered | flat contrast      | warp + blur        | -            | medium  |
| NeuralTextures | lower face     | feathered | dimmer             | low, upsampled     | 6 px checker | medium  |
| FaceShifter    | inner face     | very soft | matched            | slight smoothing   | 6 px grating | -       |

Flicker is a per-frame colour gain of the pasted region (each frame is synthesised alone); a frame
detector sees it as colour mismatch that varies from frame to frame.
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


def _flicker(rng, amp):
    """A per-frame colour gain (3,) around 1: the pasted region's temporal flicker."""
    return (1 + rng.normal(0, amp, 3)).astype(np.float32)


def _resample(rgb, factor, up=cv2.INTER_LINEAR):
    """Down to `factor` of the side and back up: the pasted face's lower resolution."""
    size = rgb.shape[0]
    small = max(8, int(round(size * factor)))
    return cv2.resize(cv2.resize(rgb, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                      interpolation=up)


def _pattern(size, period, kind):
    """Zero-mean periodic trace of a generator's upsampling: a checkerboard or a diagonal grating."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "checker":  # transposed-convolution checkerboard: blocks of period/2 px, alternating sign
        half = period // 2
        return ((((xs // half) + (ys // half)) % 2) * 2 - 1).astype(np.float32)
    return np.sin(2 * np.pi * (xs + ys) / period).astype(np.float32)


def _blend(real, fake, mask):
    return np.clip(real * (1 - mask[..., None]) + fake * mask[..., None], 0, 1)


def deepfakes(target, source, expr_t, expr_s, light, size, rng, strength):
    """Autoencoder swap: source face from a low-resolution bottleneck, imperfect colour, feathered seam."""
    real, _ = render_face(target, expr_t, light, size)
    src, _ = render_face(source, expr_t, light, size)
    src = _resample(src, 0.34 - 0.16 * strength)  # bottleneck resolution
    mask = _feather(face_regions(target, size)["inner"], size, 0.03)
    src = _colour_shift(src, mask, real, keep=0.25 + 0.6 * strength) * _flicker(rng, 0.05 * strength)
    return _blend(real, src, mask), mask


def face2face(target, source, expr_t, expr_s, light, size, rng, strength):
    """Expression reenactment: the source's mouth and eyes warped onto the target, blurred, flattened."""
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
    fake = cv2.GaussianBlur(fake, (0, 0), size * (0.006 + 0.014 * strength))
    # Re-rendered texture: contrast pulled towards the region's mean, a little brighter.
    regions = face_regions(target, size, driven)
    mask = _feather(np.maximum(regions["mouth"], regions["eyes"]), size, 0.015)
    mean = (fake * mask[..., None]).sum((0, 1)) / max(float(mask.sum()), 1.0)
    fake = mean + (fake - mean) * (1 - 0.45 * strength) + 0.05 * strength
    return _blend(real, fake * _flicker(rng, 0.03 * strength), mask), mask


def faceswap(target, source, expr_t, expr_s, light, size, rng, strength):
    """Graphics swap: source face fitted in a hard-edged hull, shaded under the wrong light."""
    real, _ = render_face(target, expr_t, light, size)
    wrong = Light(direction=(-light.direction[0] - 0.5 - 0.6 * strength, 0.1, 1.0),
                  ambient=light.ambient + 0.22 * strength, diffuse=light.diffuse, tint=(1.0, 1.0, 1.0))
    src, _ = render_face(source, expr_t, wrong, size)
    mask = face_regions(target, size)["hull"]
    src = _colour_shift(src, mask, real, keep=0.5 + 0.9 * strength) * _flicker(rng, 0.03 * strength)
    return _blend(real, src, mask), mask


def neural_textures(target, source, expr_t, expr_s, light, size, rng, strength):
    """Neural re-rendering of the lower face: the source's mouth motion, rendered at low resolution
    and upsampled with a transposed convolution's checkerboard."""
    real, _ = render_face(target, expr_t, light, size)
    driven = Expression(eye_open=expr_t.eye_open, mouth_open=expr_s.mouth_open, smile=expr_s.smile)
    fake, _ = render_face(target, driven, light, size)
    fake = _resample(fake, 0.5 - 0.2 * strength)
    fake = fake + (0.02 + 0.08 * strength) * _pattern(size, 6, "checker")[..., None]
    fake = fake * np.float32(1 - 0.12 * strength) * _flicker(rng, 0.03 * strength)  # a dimmer render
    mask = _feather(face_regions(target, size, driven)["lower"], size, 0.02)
    return _blend(real, fake, mask), mask


def faceshifter(target, source, expr_t, expr_s, light, size, rng, strength):
    """High-fidelity swap: matched colour, soft mask, slightly over-smoothed, a faint generator grating."""
    real, _ = render_face(target, expr_t, light, size)
    src, _ = render_face(source, expr_t, light, size)
    mask = _feather(face_regions(target, size)["inner"], size, 0.06)
    src = _colour_shift(src, mask, real, keep=0.0)
    src = cv2.GaussianBlur(src, (0, 0), size * (0.003 + 0.012 * strength))
    src = src + (0.02 + 0.06 * strength) * _pattern(size, 6, "grating")[..., None]
    return _blend(real, src, mask), mask


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
