"""Preprocessing speed at real resolutions: the naive pipeline against dflite's, same videos, same frames.

naive  = what the capstone and DeepfakeBench-style scripts do: decode every frame (cv2 read), run the
         Haar cascade at full resolution on the sampled frames, crop the biggest face, write a PNG.
dflite = dflite.data.extract: PyAV's sampled decoding (as an ablation, OpenCV grabbing unsampled frames
         without colour conversion), Haar at full resolution (as an ablation, on a copy shrunk to 360 px but
         never so far that a face of min_size is lost), search near the previous face first (tracking), same
         crop and PNG; 1 and 2 worker processes. Each shortcut is also run on its own, to show what it buys.

Videos: 720p and 1080p (and 480p on request), 450 frames (18 s at 25 fps, across two of x264's 250-frame GOPs,
as in real uploads), one face of 80-300 px drifting across the frame, written as H.264 in the FF++ layout with
ground-truth boxes; the capstone's sampling (real videos
one frame in 30, fakes 10 random frames), the paper profile's detector settings (min_size 80,
min_box 0.85, full resolution). Prints crops per second, recall against the boxes, and the speed ratio against
naive measured in the same run.

    .venv/bin/python benchmarks/preprocess.py [--resolutions 720p,1080p] [--videos 6] [--frames 450]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pandas as pd
from dflite import paths
from dflite.config import ExtractConfig, get_profile, override, stable_hash
from dflite.data import video
from dflite.data.extract import extract
from dflite.data.faces import crop_square, detect_faces, haar_config, iou
from dflite.data.sources import ffpp_records
from dflite.data.synth.sizes import RESOLUTIONS, face_scene
from dflite.data.video import frame_count, sample_frame_indices, write_mp4
from dflite.folders import write_json
from tqdm import tqdm


def make_videos(root: Path, res: str, videos: int, frames: int, seed: int = 0) -> Path:
    """An FF++-layout root of `videos` real and `videos` fake-labelled videos (labels only steer the
    capstone sampling), each one face of 80-300 px drifting; boxes in ground_truth/<id>.json."""
    if (root / "done.json").is_file():
        return root
    h, w = RESOLUTIONS[res]
    rng = np.random.default_rng([seed, w])
    ids = [f"{i:03d}" for i in range(videos)]
    for kind, folder in (("original", "original_sequences/youtube/c23/videos"),
                         ("Deepfakes", "manipulated_sequences/Deepfakes/c23/videos")):
        for k, vid in enumerate(tqdm(ids, desc=f"{res} {kind} videos")):
            side = float(rng.uniform(80, 300))
            frame, box = face_scene(rng, (h, w), side)
            # Drift: a slow horizontal sway of up to 10 % of the width, the box following it.
            room = int(min(box[0], w - box[0] - box[2], 0.1 * w))
            shifts = np.round(room * np.sin(np.linspace(0, np.pi * rng.uniform(1, 3), frames))).astype(int)
            clip = np.stack([np.roll(frame, s, axis=1) for s in shifts])
            stem = vid if kind == "original" else f"{vid}_{ids[(k + 1) % videos]}"
            write_mp4(root / folder / f"{stem}.mp4", clip, fps=25)
            write_json(root / "ground_truth" / kind / f"{stem}.json",
                       {"boxes": [[box[0] + s, box[1], box[2], box[3]] for s in shifts.tolist()]})
    (root / "splits").mkdir(parents=True, exist_ok=True)
    pairs = [[ids[i], ids[(i + 1) % videos]] for i in range(0, videos, 2)]
    for split, chosen in (("train", pairs), ("val", []), ("test", [])):
        (root / "splits" / f"{split}.json").write_text(json.dumps(chosen))
    write_json(root / "done.json", {"videos": videos, "frames": frames})
    return root


def truth_boxes(root: Path, media_id: str) -> list:
    """The face's true box in every frame of one of make_videos' videos ("<kind>/<stem>")."""
    kind, stem = media_id.split("/")
    return json.loads((Path(root) / "ground_truth" / kind / f"{stem}.json").read_text())["boxes"]


def media_of(video: Path) -> tuple:
    """(root, media id) of one of make_videos' videos: <root>/*/<kind or youtube>/c23/videos/<stem>.mp4."""
    kind = "original" if video.parents[2].name == "youtube" else video.parents[2].name
    return video.parents[4], f"{kind}/{video.stem}"


def naive_faces(path, wanted: set, haar, cfg: ExtractConfig, truth: list):
    """The naive face step on one video: every frame decoded (cv2 read, converted to BGR), the cascade on the wanted
    frames; yields (frame index, crop of the biggest face, whether it is the true face) per frame with a face."""
    cap, i = cv2.VideoCapture(str(path)), 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted:
                boxes = detect_faces(frame, haar)
                if len(boxes):
                    yield i, crop_square(frame, boxes[0], cfg.expand, cfg.size), iou(boxes[0], truth[i]) >= 0.4
            i += 1
    finally:
        cap.release()


def naive(records, cfg: ExtractConfig, out: Path, root: Path) -> dict:
    """Decode everything, detect at full resolution; returns crops, seconds, recall."""
    haar = override(haar_config(cfg), max_side=0)
    crops = hits = sampled = 0
    started = time.perf_counter()
    for r in records:
        wanted = set(sample_frame_indices(frame_count(r.path), cfg.sampling, cfg.frames, r.label, r.media_id,
                                          cfg.seed))
        sampled += len(wanted)
        for i, crop, true in naive_faces(r.path, wanted, haar, cfg, truth_boxes(root, r.media_id)):
            cv2.imwrite(str(out / f"{r.media_id.replace('/', '_')}_{i}.png"), crop)
            crops += 1
            hits += true
    return {"crops": crops, "seconds": time.perf_counter() - started, "recall": hits / max(sampled, 1)}


@contextmanager
def decoding_with(decoder: str):
    """video.DECODER here and in spawned worker processes (they read DFLITE_DECODER when they import it)."""
    with mock.patch.dict(os.environ, DFLITE_DECODER=decoder), mock.patch.object(video, "DECODER", decoder):
        yield


def dflite_run(root: Path, cfg: ExtractConfig, out: Path, workers: int) -> dict:
    started = time.perf_counter()
    store = extract("ffpp", root, out, cfg, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    hits = sum(iou((r.x, r.y, r.w, r.h), truth_boxes(root, r.media_id)[r.frame]) >= 0.4
               for r in store.index.itertuples())
    result = {"crops": len(store.index), "seconds": seconds, "recall": hits / store.summary["sampled"]}
    shutil.rmtree(out)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", default="720p,1080p")
    ap.add_argument("--videos", type=int, default=6, help="real videos per resolution (as many fakes)")
    ap.add_argument("--frames", type=int, default=450)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # one core per pipeline process: the comparison is per core, then 2 workers
    # The paper profile's detector (min_size 80, min_box 0.85, full resolution); "shrink" = a copy <= 360 px.
    cfg = override(get_profile("paper").extract, methods=("Deepfakes",), size=128, detect_max_side=0)
    shrunk = override(cfg, detect_max_side=360)
    tables = []
    for res in args.resolutions.split(","):
        key = stable_hash({"res": res, "videos": args.videos, "frames": args.frames, "v": 1})
        root = make_videos(paths.data_dir() / "bench" / f"preprocess_{res}_{key}", res, args.videos, args.frames)
        records = ffpp_records(root, cfg.methods, "c23")
        rows = {}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "naive").mkdir()
            rows["naive: decode all, full-res Haar, 1 process"] = naive(records, cfg, tmp / "naive", root)
            # The decoder is a setting of its own: OpenCV's grab path against PyAV's sampled decoding (the default).
            variants = [("dflite: OpenCV grab, full-res Haar, 1 process", "opencv", override(cfg, track=False), 1),
                        ("dflite: PyAV, full-res Haar, 1 process", "pyav", override(cfg, track=False), 1),
                        ("dflite: PyAV, shrink to 360 px, 1 process", "pyav", override(shrunk, track=False), 1),
                        ("dflite: PyAV, full-res, tracking, 1 process", "pyav", cfg, 1),
                        ("dflite: OpenCV grab, full-res, tracking, 2 processes", "opencv", cfg, 2),
                        ("dflite: PyAV, full-res, tracking, 2 processes (default)", "pyav", cfg, 2),
                        ("dflite: PyAV, shrink, tracking, 2 processes", "pyav", shrunk, 2)]
            for name, decoder, c, workers in variants:
                with decoding_with(decoder):
                    rows[name] = dflite_run(root, c, tmp / "store", workers)
        table = pd.DataFrame(rows).T
        table["crops/s"] = table["crops"] / table["seconds"]
        table["speed vs naive"] = table["crops/s"] / table.iloc[0]["crops/s"]
        table.insert(0, "video", f"{res}, {2 * args.videos} x {args.frames} frames")
        tables.append(table)
    out = pd.concat(tables)
    out["crops"] = out["crops"].astype(int)
    print(f"\ncapstone sampling, min_size {cfg.min_size}, min_box {cfg.min_box}, "
          f"faces 80-300 px, {paths.show(paths.data_dir())}/bench")
    print(out.round(3).to_string())


if __name__ == "__main__":
    main()
