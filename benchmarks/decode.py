"""Sampled decoding: CPU seconds of OpenCV's grab path (video.read_sampled_opencv) and of PyAV's (data/pyav.py) on the
same clips and samples, as a ratio timed in the same run, with the frames checked bit-identical.

Clips are made here with the ffmpeg bundled in imageio-ffmpeg: 720p and 1080p, 30 s at 30 fps, busy noise,
x264 CRF 23 with its default GOP (250) and a long open GOP (600). Usage: python benchmarks/decode.py [--seconds 30]
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from dflite.data import pyav, video
from dflite.data.video import sample_frame_indices

GOPS = {"GOP 250": [], "open GOP 600": ["-x264-params", "keyint=600:min-keyint=600:scenecut=0:open-gop=1"]}


def cpu(read, clip, wanted):
    """(CPU seconds of this process, what read(clip, wanted) returned)."""
    start = time.process_time()
    out = read(clip, wanted)
    return time.process_time() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=30, help="clip length (default: 30)")
    args = ap.parse_args()
    print(f"{'clip':<24} {'frames':>10} {'OpenCV s':>9} {'PyAV s':>7} {'ratio':>6}  identical")
    with tempfile.TemporaryDirectory() as tmp:
        for height in (720, 1080):
            for gop, extra in GOPS.items():
                clip = Path(tmp) / f"{height}_{len(extra)}.mp4"
                subprocess.run([video._ffmpeg(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                                f"testsrc2=size={height * 16 // 9}x{height}:rate=30,noise=alls=4:allf=t",
                                "-t", str(args.seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                                *extra, "-pix_fmt", "yuv420p", str(clip)], check=True)
                n = video.frame_count(clip)
                for count in (32, 8):
                    wanted = sample_frame_indices(n, "uniform", count)
                    t_cv, (got_cv, frames_cv) = cpu(video.read_sampled_opencv, clip, wanted)
                    t_av, (got_av, frames_av) = cpu(pyav.read_sampled, clip, wanted)
                    same = got_cv == got_av == wanted and all(np.array_equal(a, b)
                                                              for a, b in zip(frames_cv, frames_av))
                    print(f"{f'{height}p {gop}':<24} {f'{count} of {n}':>10} {t_cv:9.2f} {t_av:7.2f} "
                          f"{t_cv / t_av:5.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
