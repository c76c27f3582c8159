"""Notebook 06's study: Grad-CAM of dense and pruned detectors, scored against the manipulation masks.

The models are the finished runs of notebooks 03 (the ticket study's dense nets, IMP tickets at every
level and the random-mask control at the last) and 04 (B0, Lite0 and the final structured variants),
named by their id columns (study, model, arm, sparsity, ratio, scope, steps, alpha, seed). Every model
explains the same test fake crops (`per_method` per manipulation method, drawn with the study's seed);
scores per crop come from `analysis.explain`, and `results/gradcam.csv` holds their means per model and
method.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from .. import paths
from ..analysis import explain, labels
from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, cells, judge, over_seeds, paired
from ..config import Profile, to_dict
from ..engine.runs import results_path, write_results
from ..engine.scorecache import cached_frame, file_digest
from ..experiments.structured import Variant
from ..nets.checkpoint import load_model
from ..parallel import imap
from . import crop_store, read_results
from .lottery import label as dataset_label
from .lottery import results_file as tickets_file
from .structured import final_models
from .structured import results_file as structured_file

__all__ = ["crops", "findings", "models", "results_file", "run", "scores", "summary", "verdicts"]

SCORES = ("energy_ratio", "pointing", "road")
IDS = ["study", "model", "arm", "sparsity", "ratio", "scope", "steps", "alpha", "match"]  # a detector's ids
NET = [*IDS, "seed"]


def results_file(p: Profile):
    return results_path(p.name, "gradcam")


def crops(p: Profile, store) -> pd.DataFrame:
    """The test fake crops every model explains: `per_method` per method, with their mask crops, and a
    `road` flag on the first `road_per_method` of each method."""
    study = p.gradcam
    test = store.index[(store.index["split"] == "test") & (store.index["label"] == 1)]
    rows = test.merge(store.masks, on="crop")  # fakes whose mask video gave a mask crop
    if rows.empty:
        raise ValueError(f"crop store {paths.show(store.root)} has no mask crops: Grad-CAM needs a dataset with "
                         "manipulation masks (the synthetic set, or FF++ with masks/videos)")
    picked = (rows.sample(frac=1.0, random_state=study.seed).groupby("method", sort=True).head(study.per_method)
              .sort_values(["method", "crop"], kind="stable"))
    picked["road"] = picked.groupby("method").cumcount() < study.road_per_method
    return picked[["media_id", "frame", "method", "crop", "mask", "road"]].reset_index(drop=True)


def _read(path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{paths.show(path)} is missing: run notebook {what} first")
    return pd.read_csv(path)


def models(p: Profile) -> pd.DataFrame:
    """Notebooks 03 (tickets found on FF++) and 04's finished runs this notebook explains: their ids, seed, run and
    a display label (`sparsity`: the share of weights pruned by a ticket; `ratio`: of channels by a structured
    variant)."""
    rows = []
    lottery = _read(tickets_file(p), "03")
    # The tickets found on FF++, whose crops (and masks) they are explained on: standard also finds tickets on
    # OpenForensics, and those have the same ids (model, arm, sparsity, seed), so they would be mixed in.
    lottery = lottery[lottery.dataset == dataset_label(p.dataset, "ffpp")]
    last = lottery["sparsity"].max()
    pick = lottery[(lottery.arm.isin(["dense", "imp"])) | ((lottery.arm == "random_mask") & (lottery.sparsity == last))]
    for r in pick.itertuples():
        rows.append({"study": "lottery", "model": r.model, "arm": r.arm, "sparsity": float(r.sparsity),
                     **Variant().settings(), "seed": int(r.seed), "run": r.run})
    structured = _read(structured_file(p), "04").fillna({"match": ""})
    # Every seed of the student and its final variants (the claims pair them per seed); the reference, first only.
    finals = [row for s in p.structured.seeds for _, row in final_models(p, structured, seed=s)]
    for row in finals:
        if row["arm"] != "dense" and row["ratio"] == 0:
            continue  # the unpruned distilled student: not a compression of the dense net
        rows.append({"study": "structured", "model": row["model"], "arm": row["arm"], "sparsity": 0.0,
                     **{k: row[k] for k in ("ratio", "scope", "steps", "alpha", "match")}, "seed": int(row["seed"]),
                     "run": row["run"]})
    out = pd.DataFrame(rows)
    out["label"] = [labels.detector(r) for _, r in out.iterrows()]
    return out


def grid_columns(p: Profile) -> dict:
    """The figure's columns: the ticket study's CNN-5 (or its first model) dense and at its last IMP level,
    and the structured study's student dense and its last final variant, at the first seed:
    {title: the model's row of `models`}."""
    found = models(p)
    tickets = found[found.study == "lottery"]
    model = "cnn5" if "cnn5" in set(tickets.model) else tickets.model.iloc[0]
    mine = tickets[tickets.model == model]
    seed = int(mine.seed.min())
    last = mine[mine.arm == "imp"]["sparsity"].max()
    slimmed = found[found.study == "structured"]
    slimmed = slimmed[slimmed.seed == slimmed.seed.min()]
    final = slimmed[slimmed.arm != "dense"].iloc[-1]
    short = final.model.replace("efficientnet_", "")
    pruned = f"{short} {final.ratio:.0%}" + (" + KD" if final.alpha else "")

    def one(frame):
        return frame.iloc[0]
    return {f"{model} dense": one(mine[(mine.arm == "dense") & (mine.seed == seed)]),
            f"{model} IMP {last:.0%}": one(mine[(mine.arm == "imp") & (mine.sparsity == last) & (mine.seed == seed)]),
            f"{short} dense": one(slimmed[(slimmed.arm == "dense") & (slimmed.seed == final.seed)]),
            pruned: final}


def _explain(args) -> pd.DataFrame:
    """Worker entry: one model's scores on the picked crops (ROAD rows first, so `road_rows` covers them)."""
    runs, root, picked, net, with_road = args
    torch.set_num_threads(1)  # one model per process; ROAD's sparse solves are single-threaded anyway
    model, _ = load_model(Path(runs) / net["run"] / "best.safetensors")
    ordered = pd.concat([picked[picked.road], picked[~picked.road]])
    road_rows = int(picked.road.sum()) if with_road else 0
    table = explain.explain(model, Path(root), ordered, road_rows=road_rows, seed=net["seed"])
    return table.assign(**{k: net[k] for k in NET}, input_px=model.dflite_spec["input_size"])


def scores(p: Profile, progress: bool = True) -> pd.DataFrame:
    """Per crop and model: energy_ratio and pointing against the crop's mask and against a shuffled mask, road,
    and the centre prior's energy_ratio and pointing on the same crop at the model's input size; `p.workers`
    models at a time.

    ROAD (a sparse solve per crop and percentile) runs on the ROAD crops of the dense nets, the last IMP level,
    the random-mask control and the structured variants; the IMP levels between get the mask scores only. The
    models' scores are kept under the run's cache (engine.scorecache), keyed by their weights, crops and settings."""
    store = crop_store(p, kind="ffpp")
    picked = crops(p, store)
    found = models(p)
    last = found.loc[found.arm == "imp", "sparsity"].max()
    args = [(str(paths.runs_dir(p.name)), str(store.root), picked, net.to_dict(),
             net.arm != "imp" or math.isclose(net.sparsity, last)) for _, net in found.iterrows()]
    key = {"study": to_dict(p.gradcam), "store": store.fingerprint, "crops": picked.to_csv(index=False),
           "nets": [(a[3]["run"], file_digest(paths.runs_dir(p.name) / a[3]["run"] / "best.safetensors"), a[4])
                    for a in args]}
    per_crop = cached_frame(p.name, "gradcam", key, lambda: pd.concat(
        imap(_explain, args, p.workers, progress=progress, desc="grad-cam"), ignore_index=True))
    prior = pd.concat([explain.prior_scores(store.root, picked, px).assign(input_px=px)
                       for px in sorted(per_crop.input_px.unique())], ignore_index=True)
    prior = prior.rename(columns={"energy_ratio": "prior_energy_ratio", "pointing": "prior_pointing"})
    return per_crop.merge(prior[["crop", "input_px", "prior_energy_ratio", "prior_pointing"]], on=["crop", "input_px"],
                          how="left")


def run(p: Profile, progress: bool = True) -> tuple:
    """(per-crop scores, results/gradcam.csv's table: mean scores per model, seed and method, written)."""
    per_crop = scores(p, progress)
    return per_crop, per_method_table(per_crop, p)


SCORED = ("energy_ratio", "shuffled_energy_ratio", "prior_energy_ratio", "pointing", "shuffled_pointing",
          "prior_pointing", "road")


def per_method_table(per_crop: pd.DataFrame, p: Profile | None = None) -> pd.DataFrame:
    """Mean scores (the model's, against shuffled masks, and the centre prior's) per model, seed and method, with
    n crops and the CAM layer (results/gradcam.csv when `p` is given)."""
    g = per_crop.groupby([*NET, "method"], sort=False)
    table = g[[c for c in SCORED if c in per_crop]].mean().round(4)
    table["n"] = g["energy_ratio"].count()
    table["road_n"] = g["road"].count()
    if "layer" in per_crop:
        table["layer"] = g["layer"].first()
    table = table.reset_index()
    if p is not None:
        write_results(p.name, "gradcam", table.set_index("model"))
    return table


def _per_seed(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and seed: each score's mean over methods, and the focus beyond the stronger baseline
    (`excess`: energy ratio minus the larger of the shuffled-mask and centre-prior energy ratios)."""
    cols = [c for c in SCORED if c in table]
    per_seed = table.groupby(NET, sort=False)[cols].mean().reset_index()
    per_seed["baseline"] = per_seed[["shuffled_energy_ratio", "prior_energy_ratio"]].max(axis=1)
    per_seed["excess"] = per_seed["energy_ratio"] - per_seed["baseline"]
    return per_seed


def summary(table: pd.DataFrame, score: str = "energy_ratio") -> pd.DataFrame:
    """Mean ± sd over seeds (of the mean over methods) per model: `<score>`, `<score>_sd`, seeds, label."""
    out = over_seeds(_per_seed(table), IDS, [score])
    out["label"] = [labels.detector(dict(zip(IDS, key))) for key in out.index]
    return out


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model variant: each score and both baselines as mean ± sd over seeds."""
    shown = ["energy_ratio", "shuffled_energy_ratio", "prior_energy_ratio", "excess", "pointing",
             "shuffled_pointing", "prior_pointing", "road"]
    first = summary(table, shown[0])
    out = pd.DataFrame({"model": first.index.get_level_values("model"), "variant": first["label"].values})
    for s in shown:
        out[s.replace("_energy_ratio", " ER").replace("energy_ratio", "ER")] = cells(summary(table, s), s, 2).values
    out["seeds"] = first["seeds"].values
    return out.set_index(["model", "variant"])


def per_method(table: pd.DataFrame, score: str = "energy_ratio", stat: str = "mean") -> pd.DataFrame:
    """model variant x method, the mean over seeds (or `stat`, e.g. "std": the sample sd, nan with one seed), for
    a heatmap."""
    wide = table.groupby([*IDS, "method"], sort=False)[score].agg(stat).unstack("method")
    wide.index = [f"{key[1]} {labels.detector(dict(zip(IDS, key)))}" for key in wide.index]
    return wide.round(2)


def verdicts(p: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """Two families of claims, each at half the profile's alpha (so any false "holds" in the table stays
    within alpha), decided by analysis.stats on per-seed values (mean over methods):

    1. "the dense net looks at the manipulated region": its energy ratio beats both baselines on the same crops
       (the paired excess over the larger of the shuffled-mask and centre-prior energy ratios is above 0);
    2. "keeps >= `keep` of the dense net's focus", per pruned variant: its excess is at least `keep` x the dense
       net's (per seed: pruned excess - keep x dense excess above 0); judged only where claim 1 holds for that
       dense net (a net with no focus has none to keep).
    """
    keep, alpha = p.gradcam.keep, p.evidence.alpha
    per_seed = _per_seed(table)
    dense_rows, keep_rows = [], []
    for (study, model), part in per_seed.groupby(["study", "model"], sort=False):
        dense = part[part.arm == "dense"].set_index("seed")
        if dense.empty:
            continue
        label = labels.detector(dense.iloc[0])
        dense_rows.append({"claim": Claim("the dense net looks at the manipulated region (beyond both baselines)",
                                          0.0, "energy ratio excess"), "study": study, "model": model,
                           "variant": label, "a": dense.energy_ratio.mean(), "b": dense.baseline.mean(),
                           "values": dense.excess.to_numpy()})
        for key, variant in part[part.arm != "dense"].groupby(IDS, sort=False):
            v = variant.set_index("seed")
            keep_rows.append({"claim": Claim(f"keeps >= {keep:.0%} of the dense net's focus", 0.0, "excess"),
                              "study": study, "model": model, "variant": labels.detector(dict(zip(IDS, key))),
                              "a": v.excess.mean(), "b": dense.excess.mean(),
                              "values": paired(v.excess, keep * dense.excess)})
    first = judge(dense_rows, alpha / 2)
    gate = {(s, m): v for s, m, v in first[["study", "model", "verdict"]].itertuples(index=False)}
    for r in keep_rows:
        found = gate.get((r["study"], r["model"]), "not testable: no dense net")
        if found.startswith("not testable: "):
            r["untestable"] = found.removeprefix("not testable: ")
        elif found == "does not hold":
            r["untestable"] = "its dense net does not look at the manipulated region beyond the baselines"
        elif found != "holds":  # inconclusive: no focus shown, so none to keep (and no claim that there is none)
            r["untestable"] = "its dense net is not shown to look at the manipulated region beyond the baselines"
    out = pd.concat([first, judge(keep_rows, alpha / 2)], ignore_index=True)
    write_results(p.name, "gradcam_verdicts", out.set_index("claim"))
    return out


def findings(p: Profile, folder=None) -> Markdown:
    """Grad-CAM in words: each model's energy ratio beside both baselines (mean over seeds and methods), and
    each claim's verdict."""
    table, verdicts = read_results(p, "gradcam", folder), read_results(p, "gradcam_verdicts", folder)
    shown = overview(table)[["ER", "shuffled ER", "prior ER", "excess", "pointing", "road", "seeds"]]
    lines = ["**Grad-CAM against the manipulation masks** (notebook 06): energy ratio of each model's CAM on its "
             "crops' masks, on shuffled masks and of a centred Gaussian (mean ± sd over seeds; `excess`: above the "
             f"stronger baseline). Claims: {counts(verdicts)}.", "", mdtable(shown), "",
             *verdict_lines(verdicts, ["model", "variant"])]
    return Markdown("\n".join(lines))


def grid(p: Profile, columns: dict) -> tuple:
    """The figure's data: the first picked crop of each method, its mask, and the CAM of each of `columns`
    ({title: a row of `models`}), at the store's crop size:
    (images uint8 (M, S, S, 3), masks bool (M, S, S), {title: CAMs (M, S, S)}, methods)."""
    store = crop_store(p, kind="ffpp")
    first = crops(p, store).drop_duplicates("method")
    size = int(store.config["size"])
    images, masks = explain.read_pairs(store.root, first, size)
    cams = {}
    for title, net in columns.items():
        model, _ = load_model(paths.runs_dir(p.name) / net["run"] / "best.safetensors")
        small, _ = explain.read_pairs(store.root, first, model.dflite_spec["input_size"])
        cams[title] = explain.resize(explain.gradcams(model, small), size)
    return images.permute(0, 2, 3, 1).numpy(), masks, cams, list(first["method"])
