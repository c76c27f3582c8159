"""Video files: sample and decode only the frames needed; write H.264 mp4s (imageio-ffmpeg's ffmpeg)."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ..folders import atomic

CRF = {"raw": 0, "c23": 23, "c40": 40}  # FaceForensics++ compression levels as x264 CRF


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _codec_args(suffix: str, crf: int) -> list:
    """H.264 for .mp4 .mov .mkv; what those containers usually hold for .webm (VP9) and .avi (MPEG-4 part 2)."""
    if suffix == ".webm":
        return ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", str(min(63, crf + 10)), "-deadline", "realtime",
                "-cpu-used", "8"]
    if suffix == ".avi":
        return ["-c:v", "mpeg4", "-q:v", str(max(2, crf // 6))]
    return ["-c:v", "libx264", "-preset", "ultrafast" if crf == 0 else "veryfast", "-crf", str(crf)]


def write_mp4(path, frames, fps: int, crf: int = 23, faststart: bool = False) -> None:
    """Encode BGR uint8 frames (N, H, W, 3) as H.264 (VP9 for .webm, MPEG-4 for .avi); bit-exact for the
    same input, atomic on disk. `faststart` puts an mp4's index first, so a browser plays it while it loads."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim == 3:  # grayscale: masks
        frames = np.repeat(frames[..., None], 3, axis=3)
    with atomic(path, keep_suffix=True) as tmp:  # ffmpeg picks the container by the suffix
        _encode(frames, tmp, fps, crf, faststart)


def _encode(frames: np.ndarray, tmp: Path, fps: int, crf: int, faststart: bool = False) -> None:
    h, w = frames.shape[1:3]
    cmd = [
        _ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
        *_codec_args(tmp.suffix.lower(), crf), "-pix_fmt", "yuv420p",
        # CRF 0 (masks) is lossless at any preset: ultrafast only trades file size for time.
        # One thread and bitexact flags: same frames -> same bytes, on any machine.
        "-threads", "1", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        *(["-movflags", "+faststart"] if faststart and tmp.suffix.lower() in (".mp4", ".mov") else []),
        str(tmp),
    ]
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {tmp.name}: {proc.stderr.decode(errors='replace')[-500:]}")


@contextmanager
def captured_stderr():
    """Catch what C libraries (FFmpeg, OpenCV) print to file descriptor 2 while the block runs.

    Yields a dict whose "text" holds it afterwards: the extractor puts it into a failure's detail
    rather than onto a user's terminal, where it would be noise without the file it belongs to.
    """
    box = {"text": ""}
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode(errors="replace")


def decoder_said(text: str, limit: int = 300) -> str:
    """Captured decoder messages on one line for a report: each message kept whole, messages joined by ' | '."""
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[:limit]


class VideoError(ValueError):
    """A video that cannot be used; `reason` is a short machine-readable cause for failures.csv."""

    def __init__(self, path, reason: str, detail: str = ""):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


SAMPLING_POLICIES = ("uniform", "capstone", "all")
SEEK_GAP = 250  # frames: past this gap seeking beats grabbing (x264's default keyframe interval)
DECODE_THREADS = 0  # 0: FFmpeg's default (all cores); worker processes set 1, as the cores are theirs already
# Which decoder read_sampled uses: "pyav" (sampled decoding, less CPU) or "opencv" (grab every frame up to each).
DECODER = os.environ.get("DFLITE_DECODER", "pyav")
if DECODER not in ("pyav", "opencv"):
    raise ValueError(f"DFLITE_DECODER must be pyav or opencv, got {DECODER!r}")


def _open(path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "missing", "no such file")
    if path.stat().st_size == 0:
        raise VideoError(path, "undecodable", "empty file")
    params = [cv2.CAP_PROP_N_THREADS, DECODE_THREADS] if DECODE_THREADS else []
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        raise VideoError(path, "undecodable", "not a video container OpenCV/FFmpeg can open")
    # Phone clips store frames sideways with a display-rotation flag: frames come out as shown (upright faces for
    # the cascade). OpenCV's default, set explicitly because 4.11.0 shipped with it off.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def frame_count(path) -> int:
    """Frames in a video: the container's count, or a grab-count when the container does not say."""
    cap = _open(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if n <= 0:
        n = 0
        while cap.grab():
            n += 1
    cap.release()
    return n


def sample_frame_indices(n_frames: int, policy: str = "uniform", count: int = 32, label: int = 0,
                         seed_key: str = "", seed: int = 0) -> list:
    """Which frames to decode. uniform: `count` evenly spaced; capstone: real videos one frame in
    30, fakes 10 random frames (seeded per video); all: every frame."""
    if n_frames <= 0:
        return []
    if policy == "uniform":
        return sorted(set(np.linspace(0, n_frames - 1, min(count, n_frames)).round().astype(int).tolist()))
    if policy == "capstone":
        if label == 0:
            return list(range(0, n_frames, 30))
        rng = np.random.default_rng([seed, zlib.crc32(seed_key.encode())])
        return sorted(rng.choice(n_frames, size=min(10, n_frames), replace=False).tolist())
    if policy == "all":
        return list(range(n_frames))
    raise ValueError(f"unknown sampling policy {policy!r}; expected one of {', '.join(SAMPLING_POLICIES)}")


def read_frames(path, indices=None) -> np.ndarray:
    """Decode frames (all, or the given sorted indices) as BGR uint8 (N, H, W, 3); raise VideoError."""
    got, frames = read_sampled(path, indices)
    if not frames:
        raise VideoError(path, "no frames", "nothing could be decoded")
    return np.stack(frames)


def read_sampled(path, indices=None) -> tuple:
    """(frame indices read, BGR frames) of the sorted `indices`, or of a function of the frame count that returns
    them (so the file is opened once), or of every frame (None); raises VideoError.

    PyAV's sampled decoding (data/pyav.py: the same frames, bit for bit, for 1.6-2.7x less CPU at 720p-1080p)
    unless DECODER is "opencv" (set DFLITE_DECODER=opencv to force it); PyAV leaves to OpenCV the files whose
    packets cannot number the frames.
    """
    if DECODER == "pyav":
        from . import pyav  # lazily: pyav imports this module

        return pyav.read_sampled(path, indices)
    return read_sampled_opencv(path, indices)


def read_sampled_opencv(path, indices=None) -> tuple:
    """Decode only the wanted frames with OpenCV: grab (no colour conversion) up to each, seek across long gaps.

    `indices` is a list, or a function of the frame count that returns one (so the file is opened
    once). Returns (indices actually read, frames). A seek that lands on the wrong frame falls back
    to grabbing forward from the start, so the frames are the ones asked for in any container.
    """
    cap = _open(path)
    if callable(indices):
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        indices = indices(n if n > 0 else frame_count(path))
    # No indices: every frame, i.e. every index until the video ends.
    wanted = itertools.count() if indices is None else sorted(set(int(i) for i in indices))
    got, out, pos = [], [], 0
    try:
        for target in wanted:
            if target - pos > SEEK_GAP:
                cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == target:
                    pos = target
                else:  # inaccurate seek: reopen and grab forward instead
                    cap.release()
                    cap, pos = _open(path), 0
            while pos < target and cap.grab():
                pos += 1
            if pos < target:
                break  # the video ended (or broke off) before this frame
            ok, frame = cap.read()
            if not ok:
                break
            got.append(target)
            out.append(frame)
            pos += 1
    finally:
        cap.release()
    return got, out
