"""`dflite detect` speed on 720p videos: frames per second split into decode, face detection, crop and
classification, against a naive detector (every frame decoded with cv2.read, the Haar cascade at full
resolution on the sampled frames, the biggest face cropped and scored, as the capstone's video script does) and
against `dflite extract` followed by `predict` (PNG crops written, read back, scored), on the same videos and
the same sampled frames, timed in the same run, with each path's recall against the faces' true boxes.

Videos: benchmarks/preprocess.py's FF++-layout set (one face of 80-300 px drifting, H.264), 720p by
default. The detector is a finished run (--run) or, by default, an untrained CNN-5 at 64 px: speed does
not depend on the weights. One process, one torch thread for both paths.

    .venv/bin/python benchmarks/detect.py [--resolution 720p] [--videos 4] [--frames 450] [--sampled 16] [--run RUN]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from dflite import detect
from dflite.config import ExtractConfig, override
from dflite.data.extract import extract
from dflite.data.faces import haar_config, iou
from dflite.data.loader import CropDataset
from dflite.data.video import frame_count, sample_frame_indices
from dflite.engine.train import predict
from dflite.nets.models import create_model
from preprocess import make_videos, media_of, naive_faces, truth_boxes  # benchmarks/ is on sys.path here


def naive(videos: list, model, cfg: ExtractConfig) -> dict:
    """Decode every frame, detect at full resolution on dflite detect's sampled frames, score the biggest face."""
    haar = override(haar_config(cfg), max_side=0)
    t = time.perf_counter()
    hits = faces = 0
    for v in videos:
        wanted = set(sample_frame_indices(frame_count(v), cfg.sampling, cfg.frames, 1, v.name, cfg.seed))  # as detect
        found = list(naive_faces(v, wanted, haar, cfg, truth_boxes(*media_of(v))))
        detect.classify(model, [crop for _, crop, _ in found])
        faces += len(found)
        hits += sum(true for *_, true in found)
    return {"seconds": time.perf_counter() - t, "faces": faces, "hits": hits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", default="720p", choices=["480p", "720p", "1080p"])
    ap.add_argument("--videos", type=int, default=4, help="real videos (as many fakes)")
    ap.add_argument("--frames", type=int, default=450, help="frames per video (two 250-frame GOPs)")
    ap.add_argument("--sampled", type=int, default=16, help="frames sampled per video (dflite detect's default)")
    ap.add_argument("--run", help="a finished run folder (default: an untrained CNN-5 at 64 px)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    # The paper profile's detector settings at full resolution would time Haar, not dflite; use quick's.
    cfg = ExtractConfig(frames=args.sampled)
    if args.run:
        det = detect.load_detector(run=args.run)
        model, cfg = det.model, override(det.extract, frames=args.sampled)
    else:
        model = create_model("cnn5", input_size=64).eval()
    with tempfile.TemporaryDirectory(prefix="dflite-bench-detect-") as tmp:
        root = make_videos(Path(tmp) / args.resolution, args.resolution, args.videos, args.frames)
        videos = sorted(root.rglob("*.mp4"))

        # dflite detect: sampled frames -> faces -> scores, all in memory (no annotated video).
        stages = dict.fromkeys(detect.STAGES, 0.0)
        frames = faces = hits = 0
        t = time.perf_counter()
        for v in videos:
            report = detect.detect_media(v, model, cfg)
            frames += report["frames_sampled"]
            faces += len(report["faces"])
            truth = truth_boxes(*media_of(v))
            hits += sum(iou(f["box"], truth[f["frame"]]) >= 0.4 for f in report["faces"])
            for k, s in report["seconds"].items():
                stages[k] += s
        detect_s = time.perf_counter() - t
        plain = naive(videos, model, cfg)

        # extract (PNG crops on disk, index) then predict over the store, one worker.
        t = time.perf_counter()
        store = extract("ffpp", root, Path(tmp) / "store", cfg, workers=1, progress=False)
        extract_s = time.perf_counter() - t
        t = time.perf_counter()
        scores = predict(model, CropDataset(store, "train", model.dflite_spec["input_size"]), 64, torch.device("cpu"))
        predict_s = time.perf_counter() - t
        assert len(scores) == len(store.index) == faces, (len(scores), faces)  # same frames, same faces

        # the annotated mp4 on top (what `dflite detect` also writes per video)
        t = time.perf_counter()
        for v in videos:
            detect.detect_media(v, model, cfg, video_out=Path(tmp) / "annotated" / f"{v.stem}.mp4")
        annotated_s = time.perf_counter() - t

    rows = [{"path": "naive: decode all, full-res Haar", "seconds": plain["seconds"], "recall": plain["hits"] / frames},
            {"path": "dflite detect (report only)", "seconds": detect_s, "recall": hits / frames},
            {"path": "dflite detect + annotated mp4", "seconds": annotated_s, "recall": hits / frames},
            {"path": "extract + predict", "seconds": extract_s + predict_s, "recall": hits / frames}]
    table = pd.DataFrame(rows).assign(frames_per_s=lambda d: frames / d.seconds,
                                      speed_vs_naive=lambda d: plain["seconds"] / d.seconds,
                                      speed_vs_extract_predict=lambda d: (extract_s + predict_s) / d.seconds)
    split = pd.Series({k: v for k, v in stages.items() if k != "annotate"}).rename("seconds").to_frame()
    split["share"] = split.seconds / split.seconds.sum()
    split["frames_per_s"] = frames / split.seconds.where(split.seconds > 0)
    pd.set_option("display.width", 160)
    print(f"\n{len(videos)} videos at {args.resolution}, {frames} sampled frames, {faces} faces, "
          f"{model.dflite_spec['name']} at {model.dflite_spec['input_size']} px, 1 thread")
    print(table.round(3).to_string(index=False))
    print("\ndflite detect, time per stage:")
    print(split.round(3).to_string())
    print(f"\nextract {extract_s:.2f} s + predict {predict_s:.2f} s")


if __name__ == "__main__":
    main()
