"""Each degradation does what it says, at the strength it says, the same way every time."""
from __future__ import annotations

import numpy as np
import pytest
from dflite.data import degrade as dg

# The JPEG standard's example luminance table (ITU-T T.81, Annex K, table K.1), row by row.
K1 = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
               14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
               49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
          21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
          60, 61, 54, 47, 55, 62, 63]


def crops(n=4, size=48, seed=0) -> np.ndarray:
    """Textured BGR crops: smooth shading plus fine noise, so every family changes something."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    base = 100 + 60 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None]
    return np.clip(base + rng.normal(0, 20, (n, size, size, 3)), 0, 255).astype(np.uint8)


def luminance_table(jpeg: bytes) -> np.ndarray:
    """The 8-bit quantisation table 0 of a JPEG file, in row order (from its DQT segment)."""
    at = jpeg.index(b"\xff\xdb")
    length = int.from_bytes(jpeg[at + 2:at + 4], "big")
    segment = jpeg[at + 4:at + 2 + length]
    assert segment[0] == 0  # 8-bit precision, table 0 first
    table = np.zeros(64, int)
    table[ZIGZAG] = np.frombuffer(segment[1:65], np.uint8)
    return table


def libjpeg_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((K1 * scale + 50) // 100, 1, 255)


@pytest.mark.parametrize("family", dg.FAMILIES)
def test_strength_zero_is_the_identity_and_every_strength_changes_the_crops(family):
    images = crops()
    assert dg.degrade(images, family, 0) is images
    strength = {"jpeg": 40, "resize": 0.5, "blur": 1.0, "noise": 5, "h264": 30, "exposure": 0.3, "social": 0.5}[family]
    out = dg.degrade(images, family, strength, seed=3)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)
    assert np.array_equal(out, dg.degrade(images, family, strength, seed=3))  # deterministic
    assert dg.describe(family, strength) != "none"


@pytest.mark.parametrize("quality", [90, 60, 30])
def test_a_jpeg_has_the_quality_it_says(quality):
    """The file's own quantisation table is libjpeg's table for that quality, and the degraded crop is that file."""
    image = crops(1)[0]
    data = dg.jpeg_bytes(image, quality)
    assert np.array_equal(luminance_table(data), libjpeg_table(quality))
    assert not np.array_equal(luminance_table(data), libjpeg_table(quality + 5))
    import cv2
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(dg.degrade(image[None], "jpeg", 100 - quality)[0], decoded)


@pytest.mark.parametrize("crf", [23, 32, 40])
def test_an_h264_clip_has_the_crf_it_says_and_clips_are_encoded_apart(crf):
    images = crops(6)
    stream = dg.h264_bytes(images[:3], crf)
    assert f"crf={crf:.1f}".encode() in stream  # x264 writes its settings into the stream (an SEI message)
    together = dg.degrade(images, "h264", crf, clips=[0, 0, 0, 1, 1, 1])
    assert np.array_equal(together[:3], dg.degrade(images[:3], "h264", crf))
    assert np.array_equal(together[3:], dg.degrade(images[3:], "h264", crf))
    assert not np.array_equal(together, dg.degrade(images, "h264", crf))  # one clip: frames predict each other
    # The same pixels on every call (in-process encoding through PyAV once gave other pixels every few calls)
    assert all(np.array_equal(together, dg.degrade(images, "h264", crf, clips=[0, 0, 0, 1, 1, 1])) for _ in range(10))
    # harsher CRF, larger error
    error = np.abs(together.astype(int) - images).mean()
    assert error < np.abs(dg.degrade(images, "h264", crf + 8).astype(int) - images).mean()


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_a_blurred_line_spreads_by_sigma(sigma):
    image = np.zeros((1, 41, 41, 3), np.uint8)
    image[0, :, 20] = 255
    profile = dg.degrade(image, "blur", sigma)[0, 20, :, 0].astype(float)
    x = np.arange(41) - 20
    spread = np.sqrt((profile * x ** 2).sum() / profile.sum())
    assert abs(spread - sigma) < 0.1 * sigma + 0.05, spread


@pytest.mark.parametrize("sd", [3, 8, 16])
def test_noise_has_the_sd_it_says_and_follows_its_seed(sd):
    grey = np.full((2, 64, 64, 3), 128, np.uint8)
    out = dg.degrade(grey, "noise", sd, seed=1).astype(float) - 128
    assert abs(out.std() - sd) < 0.03 * sd and abs(out.mean()) < 4 * sd / np.sqrt(out.size)
    assert not np.array_equal(dg.degrade(grey, "noise", sd, seed=2), dg.degrade(grey, "noise", sd, seed=1))


def test_exposure_scales_every_pixel():
    images = crops()
    out = dg.degrade(images, "exposure", 0.4)
    assert np.abs(out.astype(float) - images * 0.6).max() <= 0.5


def test_resizing_removes_the_detail_above_the_smaller_sides_resolution():
    images = crops(1, 96)[..., 0].astype(float)
    out = dg.degrade(crops(1, 96), "resize", 0.5)[..., 0].astype(float)

    def band(x, low, high):  # spectral energy at radii in [low, high) of the Nyquist frequency
        f = np.abs(np.fft.fftshift(np.fft.fft2(x[0] - x[0].mean()))) ** 2
        y, xx = np.mgrid[-48:48, -48:48] / 48
        r = np.hypot(y, xx)
        return f[(r >= low) & (r < high)].sum()
    assert band(out, 0.6, 1.0) < 0.1 * band(images, 0.6, 1.0)  # above the half-size image's Nyquist: mostly gone
    assert band(out, 0.0, 0.2) > 0.8 * band(images, 0.0, 0.2)  # coarse shading kept


def test_the_social_chain_is_harsher_than_its_resize_alone():
    images = crops()
    resized = np.abs(dg.degrade(images, "resize", 0.5).astype(int) - images).mean()
    social = np.abs(dg.degrade(images, "social", 0.5).astype(int) - images).mean()
    assert social > resized


def test_bad_families_and_strengths_are_named():
    with pytest.raises(ValueError, match="unknown degradation 'fog'"):
        dg.degrade(crops(), "fog", 1)
    with pytest.raises(ValueError, match="strength must be 0 or more"):
        dg.degrade(crops(), "blur", -1)
    with pytest.raises(ValueError, match="below 1"):
        dg.degrade(crops(), "resize", 1.5)
