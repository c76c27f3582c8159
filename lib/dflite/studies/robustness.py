"""Notebook 08's study: do pruning, lottery tickets, distillation and int8 cost a small detector its robustness?

The models are the finished runs of notebooks 03 (CNN-5 dense, its IMP ticket and the random-mask control at the
last level) and 04 (the dense Lite0 student and its final structured variants), at every seed, scored in ONNX
Runtime fp32 (each export checked against torch), plus ONNX Runtime int8 (static QDQ, calibrated on training crops
as notebook 04 does) of the dense student and of its last final variant. Every model scores the same test crops
clean and under each degradation of `data.degrade` at each strength (the same pixels for every model: degraded
once at the store's crop size, then resized to each model's input). `results/robustness.csv` holds the AUC per
model, seed, degradation and strength, over all test crops (`method` "all") and per manipulation method (its fakes
against all reals).

The claims, one per compressed variant against its own reference (the dense net; for int8, the same net in fp32),
paired by seed: "compression costs robustness", i.e. the variant's AUC drop under degradation (clean minus
degraded, averaged over the families at the strength `claimed` picks) exceeds the reference's drop by more than
`margin`. A reference below the learned-AUC floor on clean crops makes its claims not testable.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import paths
from ..analysis import labels
from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, auc, cells, judge, over_seeds, paired, unlearned
from ..compress.deploy import export_onnx, ort_probabilities, quantize_int8, session
from ..config import VIDEO_DEGRADATIONS, Profile, to_dict
from ..data import degrade
from ..data.loader import bgr_batch, score_crops
from ..engine.runs import results_path, write_results
from ..engine.scorecache import array_digest, cached, file_digest
from ..nets.checkpoint import load_model
from ..progress import bar
from . import crop_store, read_results
from . import video as video_study
from .gradcam import models as finished_models
from .structured import int8_calibration

__all__ = ["conditions", "curves", "drops", "examples", "faces_found", "families", "findings", "models", "overview",
           "per_method", "results_file", "run", "run_videos", "test_crops", "verdicts", "video_conditions",
           "video_overview", "video_verdicts"]

IDS = ["study", "model", "arm", "sparsity", "ratio", "scope", "steps", "alpha", "runtime"]


def results_file(p: Profile):
    return results_path(p.name, "robustness")


def models(p: Profile) -> pd.DataFrame:
    """The nets this notebook degrades, one row per net and seed: ids, seed, run, input size, `label`, and
    `against` (the label of the reference its claim compares it with; "" for references)."""
    found = finished_models(p)
    found["runtime"] = "ort_fp32"
    tickets = found[found.study == "lottery"]  # found on FF++, as the test crops are (gradcam.models)
    last = tickets.loc[tickets.arm != "dense", "sparsity"].max()
    pruned = tickets.arm.isin(["imp", "random_mask"]) & (tickets.sparsity == last)
    tickets = tickets[(tickets.arm == "dense") | pruned]
    slim = found[(found.study == "structured") & (found.model == p.structured.student)]
    last_variant = slim[slim.arm != "dense"].drop_duplicates(["ratio", "alpha"]).iloc[-1]
    int8 = slim[(slim.arm == "dense") | ((slim.ratio == last_variant.ratio) & (slim.alpha == last_variant.alpha)
                                         & (slim.arm != "dense"))].assign(runtime="ort_int8")
    out = pd.concat([tickets, slim, int8], ignore_index=True)
    out["label"] = [labels.detector(r) + (" int8" if r.runtime == "ort_int8" else "") for _, r in out.iterrows()]
    # The reference of each claim, an fp32 net of the same model: int8 against the same net in fp32, the rest
    # against the dense net; "" for the references themselves.
    dense = out[out.arm == "dense"].drop_duplicates("model").set_index("model")["label"]
    out["against"] = np.where(out.runtime == "ort_int8", out.label.str.removesuffix(" int8"),
                              np.where(out.arm == "dense", "", out.model.map(dense)))
    return out.reset_index(drop=True)


def claimed(strengths) -> float:
    """The strength a family's claims use: the middle of three, the milder of two (standard's middle)."""
    return strengths[(len(strengths) - 1) // 2]


def conditions(p: Profile) -> list:
    """[(family, strength)]: clean first, then each family at each of its strengths."""
    return [("none", 0.0)] + [(f, float(s)) for f, strengths in p.robustness.families.items() for s in strengths]


def test_crops(p: Profile, store) -> pd.DataFrame:
    """The test crops every model scores, in video and frame order (H.264 re-encodes each video's crops as one
    clip): all of them, or `crops_per_video` evenly spaced crops of each fake video and as many per real video
    as balance the classes (FF++ has five fake videos per real one)."""
    test = store.index[store.index.split == "test"].sort_values(["media_id", "frame"], kind="stable")
    k = p.robustness.crops_per_video
    if k:
        videos = test.drop_duplicates("media_id").label.value_counts()
        per_real = math.ceil(k * videos.get(1, 0) / max(1, videos.get(0, 0)))
        rank = test.groupby("media_id").cumcount().to_numpy()
        size = test.groupby("media_id")["frame"].transform("size").to_numpy()
        want = np.where(test.label.to_numpy() == 1, k, per_real)
        keep = [r in set(np.linspace(0, n - 1, min(w, n)).round().astype(int)) for r, n, w in zip(rank, size, want)]
        test = test[keep]
    return test.reset_index(drop=True)


def _read(root: Path, rows: pd.DataFrame) -> np.ndarray:
    out = []
    for crop in rows.crop:
        image = cv2.imread(str(root / crop), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read crop {paths.show(root / crop)}: the crop store is damaged; re-run "
                             "`dflite extract --force`")
        out.append(image)
    return np.stack(out)


def examples(p: Profile) -> tuple:
    """The degradation figure's data: the first scored crop of the first fake test video (RGB) and, per family,
    [(setting, that crop degraded at each strength)], the video's scored crops degraded together as the run does."""
    store = crop_store(p)
    rows = test_crops(p, store)
    video = rows[rows.label == 1].media_id.iloc[0]
    clip = _read(store.root, rows[rows.media_id == video])
    shown = {family: [(degrade.describe(family, s, short=True),
                       degrade.degrade(clip, family, s, p.robustness.seed)[0][..., ::-1]) for s in strengths]
             for family, strengths in p.robustness.families.items()}
    return clip[0][..., ::-1], shown


def _scorer(p: Profile, net, store, tmp: Path, exported: dict):
    """(input size, a function uint8 (N, 3, S, S) -> fake probabilities) for one net in ONNX Runtime: fp32 (the
    export is checked against torch's outputs; about 3x torch's speed here), or int8 quantised from that export.
    `exported` maps a run to its fp32 file, shared by the run's two runtimes."""
    run = paths.runs_dir(p.name) / net.run / "best.safetensors"
    model, _ = load_model(run)
    px = int(model.dflite_spec["input_size"])
    if net.run not in exported:
        exported[net.run] = export_onnx(model, tmp / f"net{len(exported)}.fp32.onnx", px)
    path = exported[net.run]
    if net.runtime == "ort_int8":
        calib = int8_calibration(p, store, px)
        path = quantize_int8(path, path.with_name(path.name.replace(".fp32.", ".int8.")), calib)
    # No spinning: 33 sessions take turns, and one's spinning threads slow the next (compress.deploy.session).
    sess = session(path, p.workers, spin=False)
    return px, lambda x: ort_probabilities(sess, x)


def _aucs(rows: pd.DataFrame, scores: np.ndarray) -> dict:
    """{method: AUC}: "all" over every crop, and each manipulation method's fakes against all reals."""
    y = rows.label.to_numpy()
    out = {"all": auc(y, scores)}
    real = y == 0
    for method in sorted(rows.loc[y == 1, "method"].unique()):
        keep = real | (rows.method.to_numpy() == method)
        out[method] = auc(y[keep], scores[keep])
    return out


def run(p: Profile, progress: bool = True) -> pd.DataFrame:
    """results/robustness.csv: AUC per net, seed, degradation and strength and method (written). The scores are
    kept under the run's cache (engine.scorecache), keyed by the nets' weights, the crops and the settings."""
    store = crop_store(p)
    rows = test_crops(p, store)
    nets = models(p)
    clean = _read(store.root, rows)
    # int8 nets are calibrated on the store's training crops (int8_calibration)
    key = {"study": to_dict(p.robustness), "workers": p.workers, "crops": array_digest(clean),
           "calibration": (store.fingerprint, p.structured.int8_calib_batches),
           "ids": rows[["media_id", "label", "method"]].to_csv(index=False),
           "nets": [(net.run, net.runtime, file_digest(paths.runs_dir(p.name) / net.run / "best.safetensors"))
                    for net in nets.itertuples()]}
    scores = cached(p.name, "robustness", key, lambda: _scores(p, nets, store, rows, clean, progress))
    out = []
    for family, strength in conditions(p):
        for i, net in enumerate(nets.itertuples()):
            for method, value in _aucs(rows, scores[_name(i, family, strength)]).items():
                out.append({**{k: getattr(net, k) for k in IDS}, "label": net.label, "against": net.against,
                            "seed": net.seed, "family": family, "strength": strength,
                            "setting": degrade.describe(family, strength) if family != "none" else "clean",
                            "method": method, "auc": round(value, 4)})
    table = pd.DataFrame(out)
    write_results(p.name, "robustness", table.set_index("model"))
    return table


def _name(i: int, family: str, strength) -> str:
    return f"{i}/{family}/{strength}"


def _scores(p: Profile, nets: pd.DataFrame, store, rows: pd.DataFrame, clean: np.ndarray, progress: bool) -> dict:
    """{net index/family/strength: fake probabilities of the test crops}: every net under every condition."""
    clips = rows.media_id.to_numpy()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        exported: dict = {}
        scorers = [_scorer(p, net, store, Path(tmp), exported)
                   for net in bar(list(nets.itertuples()), desc="models", disable=not progress)]
        for family, strength in bar(conditions(p), desc="degradations", disable=not progress):
            images = clean if family == "none" else degrade.degrade(clean, family, strength, p.robustness.seed,
                                                                    clips=clips)
            sized = {px: bgr_batch(images, px) for px in {px for px, _ in scorers}}
            for i, (px, score) in enumerate(scorers):
                out[_name(i, family, strength)] = score(sized[px])
    return out


def drops(table: pd.DataFrame, p: Profile, video: bool = False) -> pd.DataFrame:
    """Per net and seed (method "all"): clean AUC, each family's AUC drop at its claimed strength, and their mean
    (`drop`); `video`: of the whole-video table (run_videos)."""
    t = table[table.method == "all"]
    middle = {f: float(claimed(s)) for f, s in families(p, video).items()}
    keys = ["label", "against", "model", "runtime", "seed"]
    clean = t[t.family == "none"].set_index(keys)["auc"].rename("clean")
    at = t[[middle.get(f) == s for f, s in zip(t.family, t.strength)]]
    wide = at.pivot_table(index=keys, columns="family", values="auc", sort=False)
    out = (-wide).add(clean, axis=0)[list(middle)]
    out["drop"] = out.mean(axis=1)
    return pd.concat([clean, out], axis=1).reset_index()


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """AUC (method "all") mean and sd over seeds per net, family and strength; the clean AUC at strength 0."""
    t = table[table.method == "all"]
    clean = t[t.family == "none"]
    rows = [t[t.family != "none"]] + [clean.assign(family=f) for f in t.family.unique() if f != "none"]
    return over_seeds(pd.concat(rows), ["model", "label", "family", "strength"], ["auc"])


def per_method(table: pd.DataFrame, label: str, model: str, stat: str = "mean") -> pd.DataFrame:
    """family (at its strongest) x manipulation method: the AUC drop from clean of one net (mean over seeds, or
    `stat`): which artifact families die first."""
    t = table[(table.label == label) & (table.model == model) & (table.method != "all")]
    clean = t[t.family == "none"].set_index(["seed", "method"])["auc"]
    hard = t[t.family != "none"]
    hard = hard[hard.strength == hard.groupby("family")["strength"].transform("max")]
    at = pd.MultiIndex.from_frame(hard[["seed", "method"]])
    hard = hard.assign(drop=clean.reindex(at).to_numpy() - hard["auc"].to_numpy())
    wide = hard.groupby(["setting", "method"], sort=False)["drop"].agg(stat).unstack("method")
    wide.index.name = None
    return wide.round(3)


def verdicts(p: Profile, table: pd.DataFrame, video: bool = False) -> pd.DataFrame:
    """"compression costs robustness" per compressed variant, paired by seed against its reference (see the
    module's docstring); results/robustness_verdicts.csv (`video`: of whole videos, robustness_video_verdicts.csv,
    on video AUC)."""
    d = drops(table, p, video)
    floor, margin = p.evidence.learned_auc, p.robustness.margin
    text = "compression costs robustness: a larger AUC drop under degradation" + (" of whole videos" if video else "")
    rows = []
    for (model, label, against), v in d[d.against != ""].groupby(["model", "label", "against"], sort=False):
        ref = d[(d.model == model) & (d.label == against) & (d.runtime == "ort_fp32")].set_index("seed")
        v = v.set_index("seed")
        rows.append({"claim": Claim(text, margin, "video AUC drop" if video else "AUC drop"),
                     "model": model, "variant": label, "against": against, "a": v["drop"].mean(),
                     "b": ref["drop"].mean(), "values": paired(v["drop"], ref["drop"]),
                     "untestable": unlearned(ref["clean"], floor, f"the reference ({model} {against})")})
    out = judge(rows, p.evidence.alpha)
    write_results(p.name, "robustness_video_verdicts" if video else "robustness_verdicts", out.set_index("claim"))
    return out


def overview(table: pd.DataFrame, p: Profile, video: bool = False) -> pd.DataFrame:
    """Per net: clean AUC and each family's AUC drop at its claimed strength, mean ± sd over seeds (`video`: video
    AUC of whole videos degraded before the face step)."""
    d = drops(table, p, video)
    chosen = families(p, video)
    cols = ["clean", *chosen, "drop"]
    s = over_seeds(d, ["model", "label"], cols)
    out = pd.DataFrame({c: cells(s, c, 3) for c in cols})
    out["seeds"] = s["seeds"]
    middle = {f: degrade.describe(f, claimed(st)) for f, st in chosen.items()}
    return out.rename(columns={**middle, "drop": "mean drop"})


def families(p: Profile, video: bool = False) -> dict:
    """The families (with their strengths) of the crop study, or of the whole-video one; those given no strength
    are left out."""
    return {f: s for f, s in (p.robustness.video_families if video else p.robustness.families).items() if len(s)}


def video_conditions(p: Profile) -> list:
    """[(family, strength)] of the whole-video study: clean first; [] when the profile degrades no video."""
    chosen = families(p, video=True)
    return [("none", 0.0)] + [(f, float(s)) for f, st in chosen.items() for s in st] if chosen else []


def run_videos(p: Profile, progress: bool = True) -> pd.DataFrame | None:
    """Whole test videos (the first compression notebook 07 reads) degraded before the face step, each condition's
    faces found by `dflite detect`'s own path (`video.face_crops`), scored by every net as `run` scores crops; one row
    per net, seed and condition: video AUC (a video's mean face score; one without a face scores 0, as in notebook
    07), the share of videos with a face and of sampled frames with one. results/robustness_video.csv (written);
    None when the profile names no video degradation (quick)."""
    chosen = video_conditions(p)
    if not chosen:
        return None
    store = crop_store(p)
    nets = models(p)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        exported: dict = {}
        scorers = [_scorer(p, net, store, Path(tmp), exported) for net in nets.itertuples()]
        for family, strength in bar(chosen, desc="video degradations", disable=not progress):
            videos = video_study.face_crops(p, progress=False, compressions=p.video.compressions[:1],
                                            degraded=None if family == "none" else (family, strength,
                                                                                   p.robustness.seed))
            counts = np.array([len(v.faces) for v in videos.itertuples()])
            crops = [crop for v in videos.itertuples() for _, crop in v.faces]
            owner = np.repeat(np.arange(len(videos)), counts)
            y = videos.label.to_numpy()
            frames = sum(len(v.sampled) for v in videos.itertuples())
            for net, (px, score) in zip(nets.itertuples(), scorers):
                scores = score_crops(score, crops, px)
                per_video = np.bincount(owner, scores, len(videos)) / np.maximum(counts, 1)  # no face: 0
                out.append({**{k: getattr(net, k) for k in IDS}, "label": net.label, "against": net.against,
                            "seed": net.seed, "family": family, "strength": strength,
                            "setting": degrade.describe(family, strength) if family != "none" else "clean",
                            "method": "all", "videos": len(videos),
                            "videos_with_face": round(float((counts > 0).mean()), 4),
                            "frames_with_face": round(len(crops) / max(frames, 1), 4),
                            "auc": round(auc(y, per_video), 4)})
    table = pd.DataFrame(out)
    write_results(p.name, "robustness_video", table.set_index("model"))
    return table


def video_overview(p: Profile, table: pd.DataFrame | None):
    """The whole-video study per net (overview of video AUC) beside the faces each condition left the face step; a
    line saying so where the profile degrades no video."""
    if table is None:
        return Markdown(f"Profile {p.name} degrades no whole video (`robustness.video_families` is empty): its time "
                        "budget has no room for a face step per condition. The standard and paper profiles run "
                        f"{', '.join(degrade.describe(f, s) for f, st in VIDEO_DEGRADATIONS.items() for s in st)}.")
    return Markdown("\n".join(["Faces the face step found in the degraded videos (shares of videos and of sampled "
                               "frames):", "", mdtable(faces_found(table)), "",
                               "Video AUC clean and its drop under each degradation at the strength the claims use, "
                               "mean ± sd over seeds:", "", mdtable(overview(table, p, video=True))]))


def video_verdicts(p: Profile, table: pd.DataFrame | None) -> pd.DataFrame:
    """verdicts(video=True), or an empty verdict table where the profile degrades no video."""
    if table is None:
        return judge([], p.evidence.alpha)
    return verdicts(p, table, video=True)


def faces_found(table: pd.DataFrame) -> pd.DataFrame:
    """Per condition: the share of test videos with a face and of sampled frames with one (the face step's part)."""
    first = table.drop_duplicates(["family", "strength"])
    return first.set_index("setting")[["videos", "videos_with_face", "frames_with_face"]]


def findings(p: Profile, folder=None) -> Markdown:
    """Robustness in words: each net's clean AUC and mean drop, and each claim's verdict (and the same of whole videos
    where the profile degrades them)."""
    table, verdicts = read_results(p, "robustness", folder), read_results(p, "robustness_verdicts", folder)
    shown = overview(table, p)[["clean", "mean drop", "seeds"]]
    families = ", ".join(degrade.describe(f, claimed(s)) for f, s in p.robustness.families.items())
    lines = ["**Robustness under degradation** (notebook 08): test AUC clean, and its drop averaged over the "
             f"degradations at the strength the claims use ({families}); mean ± sd over seeds. Claims: "
             f"{counts(verdicts)}.", "", mdtable(shown), "", *verdict_lines(verdicts, ["variant", "against"])]
    if video_conditions(p):
        try:
            whole, decided = read_results(p, "robustness_video", folder), read_results(p, "robustness_video_verdicts",
                                                                                       folder)
        except FileNotFoundError:
            whole = None
        if whole is not None:
            lines += ["", "Whole test videos degraded before the face step: video AUC clean and its drop, mean ± sd "
                      f"over seeds. Claims: {counts(decided)}.", "",
                      mdtable(overview(whole, p, video=True)[["clean", "mean drop", "seeds"]]), "",
                      *verdict_lines(decided, ["variant", "against"])]
    return Markdown("\n".join(lines))
