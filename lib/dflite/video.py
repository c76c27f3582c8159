"""Video files: write H.264 mp4s (through imageio-ffmpeg's bundled ffmpeg) and read frames back."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np

CRF = {"raw": 0, "c23": 23, "c40": 40}  # FaceForensics++ compression levels as x264 CRF


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_mp4(path, frames, fps: int, crf: int = 23) -> None:
    """Encode BGR uint8 frames (N, H, W, 3) as H.264; bit-exact for the same input, atomic on disk."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w = frames.shape[:3]
    if frames.ndim == 3:  # grayscale: masks
        frames = np.repeat(frames[..., None], 3, axis=3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.mp4")
    cmd = [
        _ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
        # One thread and bitexact flags: same frames -> same bytes, on any machine.
        "-threads", "1", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        str(tmp),
    ]
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg could not write {path}: {proc.stderr.decode(errors='replace')[-500:]}")
    os.replace(tmp, path)


def read_frames(path, indices=None) -> np.ndarray:
    """Decode frames (all, or the given indices in order) as BGR uint8 (N, H, W, 3)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path}: not a readable video file")
    wanted = None if indices is None else set(int(i) for i in indices)
    out, i = [], 0
    while True:
        ok = cap.grab()
        if not ok:
            break
        if wanted is None or i in wanted:
            ok, frame = cap.retrieve()
            if ok:
                out.append(frame)
        i += 1
        if wanted is not None and i > max(wanted):
            break
    cap.release()
    if not out:
        raise ValueError(f"no frames could be decoded from {path}")
    return np.stack(out)
