"""Notebook 07's study: video-level verdicts of dense and compressed detectors on the test videos.

Every test video of each compression goes through `dflite detect`'s own path (`detect.media`): the profile's
`video.frames` sampled frames, the biggest face per frame, each face scored. The face step runs once per
video and is shared by all models; only classification is per model. A video's score is its mean frame
score (video AUC), its verdict the default `detect.Rule` (video ACC); both also from fewer frames, evenly
spaced among the sampled ones, to show how many a reliable verdict needs. Faces are scored in ONNX Runtime
fp32 (`scores`): `detect.classify`'s probabilities to within 1e-5 (tests/test_video_study.py) at three times its
speed. The detectors are notebook 02's baselines of the seeded models and notebook 06's list (the ticket study's
dense nets and IMP tickets at the last level, the structured study's dense and final nets), named by their id
columns.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from .. import detect, paths
from ..analysis import labels
from ..analysis.report import Markdown
from ..analysis.report import table as mdtable
from ..analysis.stats import cells, over_seeds
from ..compress.deploy import export_onnx, ort_probabilities, session
from ..config import Profile, override
from ..data.loader import score_crops
from ..data.sources import get_adapter
from ..engine.runs import results_path, write_results
from ..engine.scorecache import array_digest, cached, file_digest
from ..experiments.structured import Variant
from ..nets.checkpoint import load_model
from ..parallel import imap
from ..progress import bar
from . import baselines, crop_store, dataset_roots, primary_kind, read_results
from .gradcam import IDS
from .gradcam import models as explained_models

__all__ = ["evaluate", "example", "face_crops", "findings", "frames_table", "models", "results_file", "run", "scores",
           "summary", "video_table"]


def results_file(p: Profile):
    return results_path(p.name, "video")


def models(p: Profile) -> pd.DataFrame:
    """Notebook 02's baselines of the seeded models (`dflite detect`'s default detector is one), then notebook
    06's list: the ticket study's dense nets and IMP tickets at its last level, and the structured study's dense
    and final nets. Columns: the ids, seed, run, label."""
    found = explained_models(p)
    last = found.loc[found.arm == "imp", "sparsity"].max()
    found = found[(found.arm != "imp") | (found.sparsity == last)]
    found = found[found.arm != "random_mask"]
    base = []
    for job in baselines.jobs(p, crop_store(p), models=p.baselines.seeded_models):
        run = job.run()
        if run.finished:
            base.append({"study": "baseline", "model": job.model, "arm": "dense", "sparsity": 0.0,
                         **Variant().settings(), "seed": job.seed,
                         "run": str(run.dir.relative_to(paths.runs_dir(p.name)))})
    out = pd.concat([pd.DataFrame(base, columns=found.columns[:-1]), found.drop(columns="label")], ignore_index=True)
    out["label"] = [labels.detector(r) for _, r in out.iterrows()]
    return out


def _faces(args) -> tuple:
    """Worker: (faces as [(frame, crop)], the sampled frame numbers) of one video, or the error's reason."""
    path, cfg, degraded = args
    torch.set_num_threads(1)
    times = dict.fromkeys(detect.STAGES, 0.0)
    try:
        _, got, _, hits = detect.media_faces(path, cfg, times, degraded=degraded)
    except (detect.VideoError, OSError) as e:
        return [], [], str(getattr(e, "reason", type(e).__name__))
    return [(int(idx), crop) for idx, _, _, crop in hits], [int(i) for i in got], ""


def test_records(p: Profile, compressions=None) -> list:
    """The test videos of the profile's video dataset, at every compression the study reads (FF++; or those given)
    or as they are."""
    kind = primary_kind(p)
    root = dataset_roots(p)[kind]
    adapter = get_adapter(kind)
    comps = (compressions or p.video.compressions) if adapter.compressions else ("",)
    out = []
    for c in comps:
        cfg = override(p.extract, compression=c) if c else p.extract
        out += [r for r in adapter.records(root, cfg) if r.split == "test"]
    return out


def face_crops(p: Profile, progress: bool = True, compressions=None, degraded: tuple | None = None) -> pd.DataFrame:
    """One row per test video and compression: compression, media_id, label, method, sampled (frame
    numbers), error, faces ([(frame, BGR crop)]); the face step of `dflite detect`, once per video. `degraded`
    (family, strength, seed) degrades the sampled frames before the face step (notebook 08)."""
    records = test_records(p, compressions)
    cfg = override(p.extract, frames=p.video.frames)
    found = list(imap(_faces, [(r.path, cfg, degraded) for r in records], p.workers, chunksize=4,
                      progress=progress, desc="faces"))
    return pd.DataFrame([{"compression": r.compression, "media_id": r.media_id, "label": r.label, "method": r.method,
                          "sampled": got, "error": err, "faces": faces}
                         for r, (faces, got, err) in zip(records, found)])


def scores(p: Profile, videos: pd.DataFrame, nets: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
    """One row per model, compression, video and sampled frame with a face: the face's fake probability.

    Scored in ONNX Runtime fp32, `dflite detect`'s classification to within the export check (each export is checked
    against torch's outputs): about 3x torch's speed on the CPU for 28 nets over some 4,400 faces. The scores are
    kept under the run's cache (engine.scorecache), keyed by the nets' weights and the face crops' pixels."""
    faces = [(v.compression, v.media_id, v.label, v.method, frame, crop)
             for v in videos.itertuples() for frame, crop in v.faces]
    crops = [f[-1] for f in faces]
    weights = [paths.runs_dir(p.name) / m.run / "best.safetensors" for m in nets.itertuples()]
    digests = [file_digest(w) for w in weights]
    key = {"workers": p.workers, "crops": array_digest(*crops), "ids": [f[:5] for f in faces],
           "nets": [(m.run, d) for m, d in zip(nets.itertuples(), digests)]}
    # Weights listed twice are scored once: notebook 02's dense Lite0 is also the structured study's dense student,
    # and a ticket study's dense CNN-5 is, bit for bit, notebook 02's run of the same seed and recipe.
    first = {d: w for d, w in reversed(list(zip(digests, weights)))}
    distinct = list(dict.fromkeys(digests))

    def score_all() -> dict:
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for i, digest in enumerate(bar(distinct, desc="models", disable=not progress)):
                net, _ = load_model(first[digest])
                px = int(net.dflite_spec["input_size"])
                sess = session(export_onnx(net.float().eval(), Path(tmp) / f"net{i}.onnx", px), p.workers,
                               spin=False)
                out[str(i)] = score_crops(lambda x, sess=sess: ort_probabilities(sess, x), crops, px)
        return out

    probs = cached(p.name, "video", key, score_all)
    return pd.concat([pd.DataFrame({**{k: m[k] for k in IDS}, "seed": m.seed,
                                    "compression": [f[0] for f in faces], "media_id": [f[1] for f in faces],
                                    "label": [f[2] for f in faces], "method": [f[3] for f in faces],
                                    "frame": [f[4] for f in faces], "score": probs[str(distinct.index(d))]})
                      for d, (_, m) in zip(digests, nets.iterrows())], ignore_index=True)


def evenly(sampled: list, k: int) -> list:
    """k of the sampled frame numbers, evenly spaced (all of them when k >= their count)."""
    if k >= len(sampled):
        return list(sampled)
    return [sampled[i] for i in np.unique(np.linspace(0, len(sampled) - 1, k).round().astype(int))]


def video_table(p: Profile, per_frame: pd.DataFrame, videos: pd.DataFrame,
                rule: detect.Rule = detect.Rule()) -> pd.DataFrame:
    """Video AUC (mean frame score), ACC and balanced ACC (the rule's verdict) per model, seed, compression and frame
    count; a video without a face among the frames used scores 0 and is called REAL (counted in no_face)."""
    keys = [*IDS, "seed", "compression"]
    rows = []
    for key, group in per_frame.groupby(keys, sort=False):
        by_video = {m: dict(zip(g.frame, g.score)) for m, g in group.groupby("media_id")}
        vids = videos[videos.compression == key[-1]]
        labels_ = vids.label.to_numpy()
        for k in p.video.frame_counts:
            score, fake, none = [], [], 0
            for v in vids.itertuples():
                have = by_video.get(v.media_id, {})
                kept = [have[f] for f in evenly(v.sampled, k) if f in have]
                none += not kept
                score.append(float(np.mean(kept)) if kept else 0.0)
                fake.append(detect.verdict(kept, rule)["verdict"] == "FAKE")
            right = np.array(fake) == (labels_ == 1)
            rows.append({**dict(zip(keys, key)), "frames": k, "videos": len(vids),
                         "auc": roc_auc_score(labels_, score) if len(set(labels_)) == 2 else float("nan"),
                         "acc": float(right.mean()),
                         # 12 real against 60 fake test videos: calling everything FAKE scores ACC 0.83
                         "bacc": float(np.mean([right[labels_ == c].mean() for c in (0, 1) if (labels_ == c).any()])),
                         "no_face": none})
    return pd.DataFrame(rows)


def evaluate(p: Profile, videos: pd.DataFrame, nets: pd.DataFrame, progress: bool = True) -> tuple:
    """(video table, per-frame scores): every detector scores every face; results/video.csv is written."""
    per_frame = scores(p, videos, nets, progress)
    table = video_table(p, per_frame, videos)
    write_results(p.name, "video", table.set_index("model"))
    return table, per_frame


def run(p: Profile, progress: bool = True) -> tuple:
    """(video table, per-frame scores, videos, detectors): the whole study."""
    nets = models(p)
    videos = face_crops(p, progress)
    table, per_frame = evaluate(p, videos, nets, progress)
    return table, per_frame, videos, nets


def summary(table: pd.DataFrame, frames: int | None = None, metrics=("auc", "bacc")) -> pd.DataFrame:
    """mean ± sd over seeds per detector; a column per compression and metric."""
    frames = frames or table.frames.max()
    stats = over_seeds(table[table.frames == frames], [*IDS, "compression"], metrics)
    shown = pd.DataFrame({m: cells(stats, m) for m in metrics})
    shown["seeds"] = stats["seeds"]
    shown = shown.reset_index()
    shown["detector"] = [labels.detector(r) for _, r in shown.iterrows()]
    wide = shown.pivot_table(index=["model", "detector"], columns="compression", values=[*metrics, "seeds"],
                             aggfunc="first", sort=False)
    wide.columns = [f"{m} {c}" for m, c in wide.columns]
    seeds = wide.filter(like="seeds").iloc[:, 0].rename("seeds")
    return pd.concat([wide.drop(columns=wide.filter(like="seeds").columns), seeds], axis=1)


def findings(p: Profile, folder=None) -> Markdown:
    """Video verdicts in words: video AUC and balanced accuracy per detector and compression from all sampled
    frames, and the AUC from fewer frames (mean over seeds)."""
    table = read_results(p, "video", folder)
    full = summary(table)
    counts_ = frames_table(table).round(3)
    return Markdown("\n".join([
        f"**Video detection** (notebook 07): every test video through `dflite detect`'s face step, video AUC "
        f"(mean frame score) and balanced accuracy (the default verdict rule) from {table.frames.max()} frames, "
        "mean ± sd over seeds:", "", mdtable(full), "", "Video AUC against the frames used per video:", "",
        mdtable(counts_)]))


def frames_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Video `metric` (mean over seeds) per detector and compression, a column per frame count."""
    t = table.assign(detector=[labels.detector(r) for _, r in table.iterrows()])
    return t.pivot_table(index=["model", "detector", "compression"], columns="frames", values=metric,
                         sort=False).round(3)


def example(p: Profile, run: str, method: str = "FaceSwap", frames: int = 4) -> dict:
    """{"real": (report, annotated RGB frames), "fake": ...}: a real and a fake test video (the first
    compression) through `dflite detect`'s own function with one detector, `frames` annotated frames each."""
    cfg = override(p.extract, frames=p.video.frames)
    test = [r for r in test_records(p) if r.compression in ("", p.video.compressions[0])]
    net, _ = load_model(paths.runs_dir(p.name) / run / "best.safetensors")
    out = {}
    for name, pick in (("real", lambda r: r.label == 0), ("fake", lambda r: r.method == method)):
        record = next((r for r in test if pick(r)), None) or next(r for r in test if r.label == int(name == "fake"))
        keep = {}
        report = detect.detect_media(record.path, net.float().eval(), cfg, keep=keep)
        shown = list(keep["annotated"].values())
        step = max(1, len(shown) // frames)
        out[name] = (report, [f[..., ::-1] for f in shown[::step][:frames]])
    return out
