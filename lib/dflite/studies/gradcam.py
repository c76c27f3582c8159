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
from ..analysis.stats import cells, over_seeds, verdict
from ..config import Profile
from ..engine.runs import results_path, write_results
from ..experiments.structured import Variant
from ..nets.checkpoint import load_model
from ..parallel import imap
from . import crop_store
from .lottery import results_file as tickets_file
from .structured import final_models
from .structured import results_file as structured_file

__all__ = ["crops", "models", "results_file", "run", "scores", "summary", "verdicts"]

SCORES = ("energy_ratio", "pointing", "road")
IDS = ["study", "model", "arm", "sparsity", "ratio", "scope", "steps", "alpha"]  # a detector's id columns
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
    """Notebooks 03 and 04's finished runs this notebook explains: their ids, seed, run and a display label
    (`sparsity`: the share of weights pruned by a ticket; `ratio`: of channels by a structured variant)."""
    rows = []
    lottery = _read(tickets_file(p), "03")
    last = lottery["sparsity"].max()
    pick = lottery[(lottery.arm.isin(["dense", "imp"])) | ((lottery.arm == "random_mask") & (lottery.sparsity == last))]
    for r in pick.itertuples():
        rows.append({"study": "lottery", "model": r.model, "arm": r.arm, "sparsity": float(r.sparsity),
                     **Variant().settings(), "seed": int(r.seed), "run": r.run})
    for _, row in final_models(p, _read(structured_file(p), "04")):
        if row["arm"] != "dense" and row["ratio"] == 0:
            continue  # the unpruned distilled student: not a compression of the dense net
        rows.append({"study": "structured", "model": row["model"], "arm": row["arm"], "sparsity": 0.0,
                     **{k: row[k] for k in ("ratio", "scope", "steps", "alpha")}, "seed": int(row["seed"]),
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
    return table.assign(**{k: net[k] for k in NET})


def scores(p: Profile, progress: bool = False) -> pd.DataFrame:
    """Per crop and model: energy_ratio, pointing and road, `p.workers` models at a time.

    ROAD (a sparse solve per crop and percentile) runs on the ROAD crops of the dense nets, the last
    IMP level, the random-mask control and the structured variants; the IMP levels between get the
    mask scores only."""
    store = crop_store(p, kind="ffpp")
    picked = crops(p, store)
    found = models(p)
    last = found.loc[found.arm == "imp", "sparsity"].max()
    args = [(str(paths.runs_dir(p.name)), str(store.root), picked, net.to_dict(),
             net.arm != "imp" or math.isclose(net.sparsity, last)) for _, net in found.iterrows()]
    return pd.concat(imap(_explain, args, p.workers, progress=progress, desc="grad-cam"), ignore_index=True)


def run(p: Profile, progress: bool = False) -> tuple:
    """(per-crop scores, results/gradcam.csv's table: mean scores per model and method, written)."""
    per_crop = scores(p, progress)
    return per_crop, per_method_table(per_crop, p)


def per_method_table(per_crop: pd.DataFrame, p: Profile | None = None) -> pd.DataFrame:
    """Mean scores per model, seed and method, with n crops (results/gradcam.csv when `p` is given)."""
    g = per_crop.groupby([*NET, "method"], sort=False)
    table = g[list(SCORES)].mean().round(4)
    table["n"] = g["energy_ratio"].count()
    table["road_n"] = g["road"].count()
    table = table.reset_index()
    if p is not None:
        write_results(p.name, "gradcam", table.set_index("model"))
    return table


def summary(table: pd.DataFrame, score: str = "energy_ratio") -> pd.DataFrame:
    """Mean ± sd over seeds (of the mean over methods) per model: `<score>`, `<score>_sd`, seeds, label."""
    per_seed = table.groupby(NET, sort=False)[score].mean().reset_index()
    out = over_seeds(per_seed, IDS, [score])
    out["label"] = [labels.detector(dict(zip(IDS, key))) for key in out.index]
    return out


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model variant: each score as mean ± sd over seeds."""
    first = summary(table, SCORES[0])
    out = pd.DataFrame({"model": first.index.get_level_values("model"), "variant": first["label"].values})
    for s in SCORES:
        out[s] = cells(summary(table, s), s).values
    out["seeds"] = first["seeds"].values
    return out.set_index(["model", "variant"])


def per_method(table: pd.DataFrame, score: str = "energy_ratio") -> pd.DataFrame:
    """model variant x method, the mean over seeds (for a heatmap)."""
    wide = table.groupby([*IDS, "method"], sort=False)[score].mean().unstack("method")
    wide.index = [f"{key[1]} {labels.detector(dict(zip(IDS, key)))}" for key in wide.index]
    return wide.round(2)


def verdicts(p: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """"Pruned nets keep their focus on the manipulated region", per pruned variant: its energy ratio
    (mean over methods, then over seeds) is at least `keep` x its dense net's. Margin: pruned / dense - keep;
    spread: the larger sd over seeds of the two, over the dense mean. Beside it, whether the dense net
    looks at the manipulated region at all (energy ratio above 1, the uniform map's)."""
    keep = p.gradcam.keep
    stats = summary(table).reset_index()
    rows = []
    for (_, model), part in stats.groupby(["study", "model"], sort=False):
        dense = part[part.arm == "dense"]
        if dense.empty:
            continue
        dense = dense.iloc[0]
        rows.append({"claim": "the dense net focuses on the mask (energy ratio > 1)", "model": model,
                     "variant": dense.label, "pruned": math.nan, "dense": dense.energy_ratio,
                     "margin": dense.energy_ratio - 1, "spread": dense.energy_ratio_sd,
                     "verdict": verdict(dense.energy_ratio - 1, dense.energy_ratio_sd)})
        for r in part[part.arm != "dense"].itertuples():
            margin = r.energy_ratio / dense.energy_ratio - keep
            spread = max(r.energy_ratio_sd, dense.energy_ratio_sd) / dense.energy_ratio
            rows.append({"claim": f"keeps >= {keep:.0%} of the dense net's focus", "model": model,
                         "variant": r.label, "pruned": r.energy_ratio, "dense": dense.energy_ratio,
                         "margin": margin, "spread": spread, "verdict": verdict(margin, spread)})
    return pd.DataFrame(rows).round({"pruned": 3, "dense": 3, "margin": 3, "spread": 3})


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
