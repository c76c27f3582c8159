"""Degradations real footage suffers between a camera and a detector, applied to face crops at graded strengths.

Each family takes a strength where 0 leaves the crops untouched (returned as they are) and larger is harsher:

- jpeg: re-encoded as a JPEG of quality 100 - strength (libjpeg's quality scale, as cv2 and PIL write it);
- resize: shrunk to (1 - strength) of its side (area averaging) and scaled back up (bilinear), as a thumbnail
  blown up again;
- blur: a Gaussian blur of sigma = strength pixels;
- noise: Gaussian noise of sd = strength grey levels (of 255), seeded;
- h264: each video's crops, in frame order, re-encoded as one H.264 clip at CRF = strength (libx264, medium
  preset, one thread, in ffmpeg processes: libx264 and the decoder driven in-process through PyAV gave different
  pixels once in a few thousand calls, at crop sizes);
- exposure: every pixel times 1 - strength, an under-exposed camera (darker and flatter at once);
- social: `resize` at the strength, then a JPEG of quality 75, as platforms shrink and re-encode uploads.

Crops are BGR uint8 (N, H, W, 3), as cv2 reads them. Strengths are checked by tests/test_degrade.py against what
each family says it does (a JPEG's quantisation table, the CRF in the H.264 stream's own settings, a blurred
impulse's spread, the noise's sd, the exposure's mean).
"""
from __future__ import annotations

import subprocess
import zlib

import cv2
import numpy as np

FAMILIES = ("jpeg", "resize", "blur", "noise", "h264", "exposure", "social")
SOCIAL_QUALITY = 75


# What a family's strength measures, for axes.
UNITS = {"jpeg": "100 - JPEG quality", "resize": "1 - scale", "blur": "sigma (px)", "noise": "sd (grey levels)",
         "h264": "CRF", "exposure": "1 - gain", "social": "1 - scale (then JPEG 75)"}


def describe(family: str, strength: float, short: bool = False) -> str:
    """The strength in the family's own words, e.g. 'JPEG quality 60' (short: 'q 60')."""
    _check(family)
    if strength == 0:
        return "none"
    s = strength
    if short:
        return {"jpeg": f"q {100 - s:g}", "resize": f"{1 - s:.0%}", "blur": f"σ {s:g} px", "noise": f"sd {s:g}",
                "h264": f"CRF {s:g}", "exposure": f"× {1 - s:g}",
                "social": f"{1 - s:.0%}, q {SOCIAL_QUALITY}"}[family]
    return {"jpeg": f"JPEG quality {100 - s:g}", "resize": f"resized to {1 - s:.0%} and back",
            "blur": f"Gaussian blur sigma {s:g} px", "noise": f"noise sd {s:g} levels", "h264": f"H.264 CRF {s:g}",
            "exposure": f"exposure x {1 - s:g}",
            "social": f"resized to {1 - s:.0%}, JPEG quality {SOCIAL_QUALITY}"}[family]


def _check(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown degradation {family!r}; expected one of {', '.join(FAMILIES)}")


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding at quality {quality} failed")
    return data.tobytes()


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg_bytes(image, quality), np.uint8), cv2.IMREAD_COLOR)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def h264_bytes(frames: np.ndarray, crf: float) -> bytes:
    """One clip of BGR frames (T, H, W, 3) as an H.264 elementary stream at `crf` (libx264, medium preset, one
    thread, in imageio-ffmpeg's ffmpeg)."""
    from .video import _ffmpeg

    t, h, w = frames.shape[:3]
    # Even sides for 4:2:0 (the edge pixels repeated), cut off again after decoding.
    padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    args = [_ffmpeg(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w + w % 2}x{h + h % 2}",
            "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "medium", "-crf", f"{crf:g}", "-threads", "1",
            "-pix_fmt", "yuv420p", "-f", "h264", "-"]
    done = subprocess.run(args, input=np.ascontiguousarray(padded).tobytes(), capture_output=True, check=False)
    if done.returncode:
        raise RuntimeError(f"H.264 encoding at CRF {crf:g} failed: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout


def _h264(frames: np.ndarray, crf: float) -> np.ndarray:
    from .video import _ffmpeg

    t, h, w = frames.shape[:3]
    ph, pw = h + h % 2, w + w % 2
    done = subprocess.run([_ffmpeg(), "-loglevel", "error", "-threads", "1", "-f", "h264", "-i", "-", "-f",
                           "rawvideo", "-pix_fmt", "bgr24", "-"], input=h264_bytes(frames, crf),
                          capture_output=True, check=False)
    out = np.frombuffer(done.stdout, np.uint8)
    if done.returncode or out.size != t * ph * pw * 3:
        raise RuntimeError(f"H.264 at CRF {crf:g}: {t} frames in, {out.size // (ph * pw * 3)} out "
                           f"({done.stderr.decode(errors='replace')[-300:]})")
    return out.reshape(t, ph, pw, 3)[:, :h, :w].copy()


def degrade(images: np.ndarray, family: str, strength: float, seed: int = 0, clips=None) -> np.ndarray:
    """`images` (N, H, W, 3) BGR uint8 degraded by `family` at `strength` (0: returned unchanged).

    `clips`: for h264, a label per image naming its video (images of one clip in frame order; default: all one
    clip). `seed` seeds the noise: the same call gives the same pixels."""
    _check(family)
    if strength < 0:
        raise ValueError(f"{family}: strength must be 0 or more, got {strength}")
    if strength == 0:
        return images
    images = np.asarray(images)
    if family == "h264":
        # Each clip encoded and decoded by ffmpeg processes of its own, two clips at a time.
        from concurrent.futures import ThreadPoolExecutor

        clips = np.zeros(len(images), int) if clips is None else np.asarray(clips)
        groups = [np.flatnonzero(clips == c) for c in dict.fromkeys(clips.tolist())]
        out = np.empty_like(images)
        with ThreadPoolExecutor(2) as pool:
            for rows, frames in zip(groups, pool.map(lambda r: _h264(images[r], strength), groups)):
                out[rows] = frames
        return out
    if family == "noise":
        # One stream per (seed, strength): each strength's noise is its own draw, the same on every call.
        rng = np.random.default_rng([seed, zlib.crc32(f"noise {strength:g}".encode())])
        noisy = images.astype(np.float32) + np.float32(strength) * rng.standard_normal(images.shape, np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if family == "exposure":
        return np.clip(np.rint(images.astype(np.float32) * (1 - strength)), 0, 255).astype(np.uint8)
    if family in ("jpeg", "resize", "social") and not (0 < strength < 100 if family == "jpeg" else 0 < strength < 1):
        raise ValueError(f"{family}: strength must be below {100 if family == 'jpeg' else 1}, got {strength}")
    one = {"jpeg": lambda im: _jpeg(im, round(100 - strength)),
           "resize": lambda im: _resize(im, 1 - strength),
           "blur": lambda im: cv2.GaussianBlur(im, (0, 0), sigmaX=strength, borderType=cv2.BORDER_REFLECT),
           "social": lambda im: _jpeg(_resize(im, 1 - strength), SOCIAL_QUALITY)}[family]
    return np.stack([one(im) for im in images])
