"""Preprocessing speed: the naive pipeline against dflite's, on the same videos, same sampled frames.

naive  = what the capstone and DeepfakeBench-style scripts do: decode every frame (cv2 read), run the
         Haar cascade at full resolution on the sampled frames, crop the biggest face, write a PNG.
dflite = dflite.data.extract: grab without decoding colour for unsampled frames, detect on a copy at most
         320 px long, same crop and PNG; with 1 and 2 worker processes.

Both use the capstone's sampling (real videos one frame in 30, fakes 10 random frames) on synthetic
FF++-layout videos at 480 px, 150 frames, so recall is measured against ground-truth boxes.
Prints crops per second, recall, and the speed ratio against naive measured in the same run.

    .venv/bin/python benchmarks/preprocess.py [--identities 16] [--frames 150] [--size 480]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import pandas as pd
from dflite import paths
from dflite.config import ExtractConfig, SynthConfig, config_hash, override
from dflite.data.extract import extract
from dflite.data.faces import HaarConfig, crop_square, detect_faces, iou
from dflite.data.sources import ffpp_records
from dflite.data.synth import generate
from dflite.data.synth.check import store_recall
from dflite.data.video import frame_count, sample_frame_indices


def naive(records, cfg: ExtractConfig, out: Path, gt_root: Path) -> dict:
    """Decode everything, detect at full resolution; returns crops, seconds, recall."""
    haar = HaarConfig(cfg.scale_factor, cfg.min_neighbors, cfg.min_size, max_side=0)
    crops = hits = sampled = 0
    decode = detect = 0.0
    started = time.perf_counter()
    for r in records:
        wanted = set(sample_frame_indices(frame_count(r.path), cfg.sampling, cfg.frames, r.label, r.media_id,
                                          cfg.seed))
        kind, stem = r.media_id.split("/")
        gt = json.loads((gt_root / "ground_truth" / kind / f"{stem}.json").read_text())
        cap = cv2.VideoCapture(r.path)
        i = 0
        while True:
            t = time.perf_counter()
            ok, frame = cap.read()  # every frame decoded and converted
            decode += time.perf_counter() - t
            if not ok:
                break
            if i in wanted:
                sampled += 1
                t = time.perf_counter()
                boxes = detect_faces(frame, haar)
                detect += time.perf_counter() - t
                if len(boxes):
                    crop = crop_square(frame, boxes[0], cfg.expand, cfg.size)
                    cv2.imwrite(str(out / f"{stem}_{kind}_{i}.png"), crop)
                    crops += 1
                    hits += iou(boxes[0], gt["boxes"][i]) >= 0.4
            i += 1
        cap.release()
    return {"crops": crops, "seconds": time.perf_counter() - started, "recall": hits / sampled,
            "decode s": decode, "detect s": detect}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=16)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", type=int, default=480)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # one core per pipeline process: the comparison is per core, then 2 workers
    synth_cfg = override(SynthConfig(), identities=args.identities, frames=args.frames, frame_size=args.size,
                         patch_size=192, face_frac=0.45, methods=("Deepfakes", "FaceSwap"), compressions=("c23",),
                         of_images=(1, 1, 1, 1))
    data = generate(paths.data_dir() / "bench" / f"preprocess_{config_hash(synth_cfg)}", cfg=synth_cfg, progress=True)
    cfg = override(ExtractConfig(), sampling="capstone", methods=synth_cfg.methods, size=128)
    records = [r for r in ffpp_records(data.ffpp_root, cfg.methods, "c23")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "naive").mkdir()
        base = naive(records, cfg, tmp / "naive", data.ffpp_root)
        rows.append({"pipeline": "naive (decode all, full-res Haar), 1 process", **base})
        for workers in (1, 2):
            out = tmp / f"dflite{workers}"
            started = time.perf_counter()
            store = extract("ffpp", data.ffpp_root, out, cfg, workers=workers, progress=False)
            seconds = time.perf_counter() - started
            recall = store_recall(store, data.ffpp_root).loc["all", "recall"]
            rows.append({"pipeline": f"dflite.data.extract, {workers} process{'es' if workers > 1 else ''}",
                         "crops": len(store.index), "seconds": seconds, "recall": recall,
                         "decode s": store.summary["stage_seconds"]["decode"],
                         "detect s": store.summary["stage_seconds"]["detect"]})
            shutil.rmtree(out)
    table = pd.DataFrame(rows).set_index("pipeline")
    table["crops/s"] = table["crops"] / table["seconds"]
    table["speed vs naive"] = table["crops/s"] / table.iloc[0]["crops/s"]
    print(f"\n{len(records)} videos, {args.frames} frames at {args.size} px, capstone sampling, 2 CPU cores")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
