"""Checks of a generated synthetic set against its own ground truth (e.g. Haar detector recall)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..faces import HaarConfig, detect_faces, iou
from ..sources.ffpp import fake_dir, real_dir
from ..video import read_frames


def ground_truth(ffpp_root, method: str, stem: str) -> dict:
    """The sidecar of one synthetic video: per-frame boxes and (fakes) the mask file name."""
    return json.loads((Path(ffpp_root) / "ground_truth" / method / f"{stem}.json").read_text())


def haar_recall(ffpp_root, compression: str = "c23", cfg: HaarConfig = HaarConfig(), frames_per_video: int = 8,
                min_iou: float = 0.4, methods=None) -> pd.DataFrame:
    """Share of ground-truth faces the cascade finds (a detection with IoU >= min_iou), per method."""
    root = Path(ffpp_root)
    rows = []
    gt_dirs = sorted(p for p in (root / "ground_truth").iterdir() if p.is_dir())
    for gt_dir in gt_dirs:
        method = gt_dir.name
        if methods is not None and method not in methods:
            continue
        for side in sorted(gt_dir.glob("*.json")):
            gt = json.loads(side.read_text())
            idx = np.linspace(0, gt["frames"] - 1, frames_per_video).round().astype(int)
            folder = real_dir(root, compression) if method == "original" else fake_dir(root, method, compression)
            video = folder / f"{side.stem}.mp4"
            frames = read_frames(video, idx)
            for f, frame in zip(idx, frames):
                dets = detect_faces(frame, cfg)
                best = max((iou(d, gt["boxes"][f]) for d in dets), default=0.0)
                rows.append({"method": method, "found": best >= min_iou, "iou": best, "detections": len(dets)})
    df = pd.DataFrame(rows)
    out = df.groupby("method").agg(faces=("found", "size"), found=("found", "sum"), mean_iou=("iou", "mean"),
                                   false_or_extra=("detections", lambda d: int((d > 1).sum())))
    out["recall"] = out["found"] / out["faces"]
    total = pd.DataFrame({"faces": [out["faces"].sum()], "found": [out["found"].sum()],
                          "mean_iou": [df["iou"].mean()], "false_or_extra": [out["false_or_extra"].sum()],
                          "recall": [out["found"].sum() / out["faces"].sum()]}, index=["all"])
    return pd.concat([out, total]).round(3)


def store_recall(store, ffpp_root, min_iou: float = 0.4) -> pd.DataFrame:
    """A crop store's detector against the synthetic ground truth, per method.

    recall: sampled frames whose biggest detected face is the true face (IoU >= min_iou), over all
    sampled frames (a frame with no detection is a miss); precision: the same over frames with a crop.
    """
    root = Path(ffpp_root)
    rows = []
    for media_id, group in store.index[store.index["face"] == 0].groupby("media_id"):
        kind, stem = media_id.split("/")
        gt = json.loads((root / "ground_truth" / kind / f"{stem}.json").read_text())
        for r in group.itertuples():
            rows.append({"method": r.method, "iou": iou((r.x, r.y, r.w, r.h), gt["boxes"][r.frame])})
    df = pd.DataFrame(rows, columns=["method", "iou"])
    df["hit"] = df["iou"] >= min_iou
    out = df.groupby("method").agg(crops=("hit", "size"), correct=("hit", "sum"), mean_iou=("iou", "mean"))
    out["sampled"] = store.media.groupby("method")["sampled"].sum()
    out.loc["all"] = [len(df), int(df["hit"].sum()), df["iou"].mean(), int(store.media["sampled"].sum())]
    out["recall"] = out["correct"] / out["sampled"]
    out["precision"] = out["correct"] / out["crops"]
    return out[["sampled", "crops", "correct", "recall", "precision", "mean_iou"]].astype(
        {"sampled": int, "crops": int, "correct": int}).round(3)
