"""Notebook 07's study: video-level verdicts of dense and compressed detectors on the FF++ test videos.

Every test video of each compression goes through `dflite detect`'s own path (`analysis.detect`): the
study's `frames` sampled frames, the biggest face per frame, each face scored. The face step runs once per
video and is shared by all models; only classification is per model. A video's score is its mean frame
score (video AUC), its verdict the default `detect.Rule` (video ACC); both also from fewer frames, evenly
spaced among the sampled ones, to show how many a reliable verdict needs. The models are notebook 06's:
the ticket study's dense nets and IMP tickets at the last level, and the structured study's final nets.
"""
from __future__ import annotations

from multiprocessing import get_context

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from .. import paths
from ..analysis import detect
from ..config import get_profile, override
from ..data.sources import ffpp_records
from ..engine.runs import results_path, write_results
from ..nets.checkpoint import load_model
from . import mean_sd_cell
from .baselines import plan_runs
from .datasets import dataset_roots
from .gradcam import models as explained_models

__all__ = ["evaluate", "example", "face_crops", "frames_table", "models", "results_file", "scores", "settings",
           "summary", "video_table"]


def settings(profile: str):
    return get_profile(profile).video


def results_file(profile: str):
    return results_path(profile, "video")


def models(profile: str, store=None, dataset: str = "synthetic") -> pd.DataFrame:
    """Notebook 02's baselines of the seeded models (with `store`: `dflite detect`'s default detector is
    one), then notebook 06's list: the ticket study's dense nets and IMP tickets at its last level, and
    the structured study's dense and final nets."""
    found = pd.DataFrame(explained_models(profile), columns=["model", "variant", "sparsity", "seed", "run"])
    last = found.loc[found.variant == "IMP ticket", "sparsity"].max()
    keep = (found.variant == "dense") | found.variant.str.startswith("structured") | (
        (found.variant == "IMP ticket") & (found.sparsity == last))
    found = found[keep].copy()
    ticket_dense = (found.variant == "dense") & found.model.isin(get_profile(profile).lottery.models)
    found.loc[ticket_dense, "variant"] = "ticket dense"  # the ticket study's own short recipe, not nb 02's
    base = []
    if store is not None:
        planned = plan_runs(profile, store, dataset, models=get_profile(profile).baselines.seeded_models)
        base = [(m, "baseline", 0.0, s, str(run.dir.relative_to(paths.runs_dir(profile))))
                for m, s, _, run in planned if run.finished]
    return pd.concat([pd.DataFrame(base, columns=found.columns), found], ignore_index=True)


def _faces(args) -> tuple:
    """Worker: (faces as [(frame, crop)], the sampled frame numbers) of one video, or the error's reason."""
    path, cfg = args
    torch.set_num_threads(1)
    times = dict.fromkeys(detect.STAGES, 0.0)
    try:
        _, got, _, hits = detect.media_faces(path, cfg, times)
    except (detect.VideoError, OSError) as e:
        return [], [], str(getattr(e, "reason", type(e).__name__))
    return [(int(idx), crop) for idx, _, _, crop in hits], [int(i) for i in got], ""


def face_crops(profile: str, dataset: str = "synthetic", data_root: str = "", seed: int = 0,
               progress: bool = True) -> pd.DataFrame:
    """One row per test video and compression: compression, media_id, label, method, sampled (frame
    numbers), error, faces ([(frame, BGR crop)]); the face step of `dflite detect`, once per video."""
    study = settings(profile)
    root = dataset_roots(dataset, data_root, profile, seed)["ffpp"]
    cfg = override(get_profile(profile).extract, frames=study.frames)
    records = [r for c in study.compressions for r in ffpp_records(root, cfg.methods, c) if r.split == "test"]
    args = [(r.path, cfg) for r in records]
    with get_context("spawn").Pool(study.workers) as pool:  # spawn: see data/extract.py
        found = list(tqdm(pool.imap(_faces, args, chunksize=4), total=len(args), desc="faces", disable=not progress))
    return pd.DataFrame([{"compression": r.compression, "media_id": r.media_id, "label": r.label, "method": r.method,
                          "sampled": got, "error": err, "faces": faces}
                         for r, (faces, got, err) in zip(records, found)])


def scores(profile: str, videos: pd.DataFrame, nets: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
    """One row per model, compression, video and sampled frame with a face: the face's fake probability."""
    rows = []
    faces = [(v.compression, v.media_id, v.label, v.method, frame, crop)
             for v in videos.itertuples() for frame, crop in v.faces]
    crops = [f[-1] for f in faces]
    for m in tqdm(list(nets.itertuples()), desc="models", disable=not progress):
        net, _ = load_model(paths.runs_dir(profile) / m.run / "best.safetensors")
        probs = detect.classify(net.float().eval(), crops)
        rows.append(pd.DataFrame({"model": m.model, "variant": m.variant, "sparsity": m.sparsity, "seed": m.seed,
                                  "compression": [f[0] for f in faces], "media_id": [f[1] for f in faces],
                                  "label": [f[2] for f in faces], "method": [f[3] for f in faces],
                                  "frame": [f[4] for f in faces], "score": probs}))
    return pd.concat(rows, ignore_index=True)


def evenly(sampled: list, k: int) -> list:
    """k of the sampled frame numbers, evenly spaced (all of them when k >= their count)."""
    if k >= len(sampled):
        return list(sampled)
    return [sampled[i] for i in np.unique(np.linspace(0, len(sampled) - 1, k).round().astype(int))]


def video_table(profile: str, per_frame: pd.DataFrame, videos: pd.DataFrame,
                rule: detect.Rule = detect.Rule()) -> pd.DataFrame:
    """Video AUC (mean frame score), ACC and balanced ACC (the rule's verdict) per model, seed, compression and frame
    count; a video without a face among the frames used scores 0 and is called REAL (counted in no_face)."""
    study = settings(profile)
    keys = ["model", "variant", "sparsity", "seed", "compression"]
    rows = []
    for key, group in per_frame.groupby(keys, sort=False):
        by_video = {m: dict(zip(g.frame, g.score)) for m, g in group.groupby("media_id")}
        vids = videos[videos.compression == key[-1]]
        labels = vids.label.to_numpy()
        for k in study.frame_counts:
            score, fake, none = [], [], 0
            for v in vids.itertuples():
                have = by_video.get(v.media_id, {})
                kept = [have[f] for f in evenly(v.sampled, k) if f in have]
                none += not kept
                score.append(float(np.mean(kept)) if kept else 0.0)
                fake.append(detect.verdict(kept, rule)["verdict"] == "FAKE")
            right = np.array(fake) == (labels == 1)
            rows.append({**dict(zip(keys, key)), "frames": k, "videos": len(vids),
                         "auc": roc_auc_score(labels, score) if len(set(labels)) == 2 else float("nan"),
                         "acc": float(right.mean()),
                         # 12 real against 60 fake test videos: calling everything FAKE scores ACC 0.83
                         "bacc": float(np.mean([right[labels == c].mean() for c in (0, 1) if (labels == c).any()])),
                         "no_face": none})
    return pd.DataFrame(rows)


def evaluate(profile: str, videos: pd.DataFrame, nets: pd.DataFrame, progress: bool = True) -> tuple:
    """(video table, per-frame scores): every detector scores every face; results/video.csv is written."""
    per_frame = scores(profile, videos, nets, progress)
    table = video_table(profile, per_frame, videos)
    write_results(profile, "video", table)
    return table, per_frame


def summary(table: pd.DataFrame, frames: int | None = None, metrics=("auc", "bacc")) -> pd.DataFrame:
    """mean ± sd over seeds per model, variant and sparsity; a column per compression and metric."""
    frames = frames or table.frames.max()
    t = table[table.frames == frames]
    g = t.groupby(["model", "variant", "sparsity", "compression"], sort=False)[list(metrics)]
    mean, sd, n = g.mean(), g.std(), g.size()
    cells = pd.DataFrame({m: [mean_sd_cell(a, b) for a, b in zip(mean[m], sd[m])] for m in metrics}, index=mean.index)
    cells["seeds"] = n
    wide = cells.unstack("compression")
    wide.columns = [f"{m} {c}" if m != "seeds" else f"seeds {c}" for m, c in wide.columns]
    seeds = wide.filter(like="seeds").iloc[:, 0].rename("seeds")
    return pd.concat([wide.drop(columns=wide.filter(like="seeds").columns), seeds], axis=1)


def frames_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Video `metric` (mean over seeds) per detector and compression, a column per frame count."""
    return table.pivot_table(index=["model", "variant", "compression"], columns="frames", values=metric,
                             sort=False).round(3)


def example(profile: str, run: str, dataset: str = "synthetic", data_root: str = "", seed: int = 0,
            method: str = "FaceSwap", frames: int = 4) -> dict:
    """{"real": (report, annotated RGB frames), "fake": ...}: a real and a fake c23 test video through
    `dflite detect`'s own function with one detector, `frames` annotated frames each."""
    root = dataset_roots(dataset, data_root, profile, seed)["ffpp"]
    cfg = override(get_profile(profile).extract, frames=settings(profile).frames)
    test = [r for r in ffpp_records(root, cfg.methods, "c23") if r.split == "test"]
    net, _ = load_model(paths.runs_dir(profile) / run / "best.safetensors")
    out = {}
    for name, pick in (("real", lambda r: r.label == 0), ("fake", lambda r: r.method == method)):
        record = next(r for r in test if pick(r))
        keep = {}
        report = detect.detect_media(record.path, net.float().eval(), cfg, keep=keep)
        shown = list(keep["annotated"].values())
        step = max(1, len(shown) // frames)
        out[name] = (report, [f[..., ::-1] for f in shown[::step][:frames]])
    return out
