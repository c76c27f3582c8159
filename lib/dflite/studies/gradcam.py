"""Notebook 06's study: Grad-CAM of dense and pruned detectors, scored against the manipulation masks.

The models are the finished runs of notebooks 03 (the ticket study's dense nets, IMP tickets at every
level and the random-mask control at the last) and 04 (B0, Lite0 and the final structured variants).
Every model explains the same test fake crops (`per_method` per manipulation method, drawn with the
study's seed); scores per crop come from `analysis.explain`, and `results/gradcam.csv` holds their
means per model, variant, sparsity, seed and method.
"""
from __future__ import annotations

import math
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from .. import paths
from ..analysis import explain
from ..config import get_profile
from ..engine.metrics import verdict
from ..engine.runs import results_path, write_results
from ..nets.checkpoint import load_model
from . import crop_store, mean_sd_cell
from .lottery import results_file as tickets_file
from .structured import final_models
from .structured import results_file as structured_file

__all__ = ["crops", "models", "results_file", "scores", "settings", "summary", "verdicts"]

SCORES = ("energy_ratio", "pointing", "road")


def settings(profile: str):
    return get_profile(profile).gradcam


def results_file(profile: str):
    return results_path(profile, "gradcam")


def crops(profile: str, store) -> pd.DataFrame:
    """The test fake crops every model explains: `per_method` per method, with their mask crops, and a
    `road` flag on the first `road_per_method` of each method."""
    study = settings(profile)
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


def models(profile: str) -> list:
    """[(model, variant, sparsity, seed, run folder)] of notebooks 03 and 04's finished runs."""
    out = []
    lottery = _read(tickets_file(profile), "03")
    last = lottery["sparsity"].max()
    pick = lottery[(lottery.arm.isin(["dense", "imp"])) | ((lottery.arm == "random_mask") & (lottery.sparsity == last))]
    names = {"dense": "dense", "imp": "IMP ticket", "random_mask": "random mask"}
    for r in pick.itertuples():
        out.append((r.model, names[r.arm], float(r.sparsity), int(r.seed), r.run))
    structured = _read(structured_file(profile), "04")
    for label, row in final_models(profile, structured):
        if "KD" in label and row["ratio"] == 0:
            continue  # the unpruned distilled student: not a compression of the dense net
        variant = "dense" if row["variant"] == "dense" else f"structured {row['variant']}"
        out.append((row["model"], variant, float(row["ratio"]), int(row["seed"]), row["run"]))
    return out


def models_table(profile: str) -> pd.DataFrame:
    """The models notebook 06 explains: model, variant, sparsity (or share of channels pruned), seed, run."""
    return pd.DataFrame(models(profile), columns=["model", "variant", "sparsity", "seed", "run"])


def grid_columns(profile: str) -> dict:
    """The figure's columns: the ticket study's CNN-5 (or its first model) dense and at its last IMP level,
    and the structured study's student dense and its last final variant, at the first seed."""
    found = models_table(profile)
    first = found.groupby(["model", "variant"], sort=False).first().reset_index()
    lottery = first[first.variant == "IMP ticket"]
    model = "cnn5" if "cnn5" in set(lottery.model) else lottery.model.iloc[0]
    last = found[(found.model == model) & (found.variant == "IMP ticket")]["sparsity"].max()
    st = get_profile(profile).structured
    final = found[(found.model == st.student) & found.variant.str.startswith("structured")].iloc[-1]
    seed, short = int(found.seed.min()), st.student.replace("efficientnet_", "")
    pruned = f"{short} {final.sparsity:.0%}" + (" + KD" if "KD" in final.variant else "")
    return {f"{model} dense": (model, "dense", 0.0, seed),
            f"{model} IMP {last:.0%}": (model, "IMP ticket", float(last), seed),
            f"{short} dense": (st.student, "dense", 0.0, int(final.seed)),
            pruned: (st.student, final.variant, float(final.sparsity), int(final.seed))}


def _explain(args) -> pd.DataFrame:
    """Worker entry: one model's scores on the picked crops (ROAD rows first, so `road_rows` covers them)."""
    profile, root, picked, (model, variant, sparsity, seed, run), with_road = args
    torch.set_num_threads(1)  # one model per process; ROAD's sparse solves are single-threaded anyway
    net, _ = load_model(paths.runs_dir(profile) / run / "best.safetensors")
    ordered = pd.concat([picked[picked.road], picked[~picked.road]])
    road_rows = int(picked.road.sum()) if with_road else 0
    table = explain.explain(net, Path(root), ordered, road_rows=road_rows, seed=seed)
    return table.assign(model=model, variant=variant, sparsity=sparsity, seed=seed)


def scores(profile: str, dataset: str = "synthetic", data_root: str = "", seed: int = 0, workers: int = 2,
           progress: bool = False) -> pd.DataFrame:
    """Per crop and model: energy_ratio, pointing and road, `workers` models at a time.

    ROAD (a sparse solve per crop and percentile) runs on the ROAD crops of the dense nets, the last
    IMP level, the random-mask control and the structured variants; the IMP levels between get the
    mask scores only."""
    store = crop_store(profile, dataset, data_root, kind="ffpp", seed=seed, workers=workers)
    picked = crops(profile, store)
    found = models(profile)
    last = max((s for _, v, s, _, _ in found if v == "IMP ticket"), default=1.0)
    args = [(profile, str(store.root), picked, m, m[1] != "IMP ticket" or math.isclose(m[2], last)) for m in found]
    if workers > 1 and len(args) > 1:
        with get_context("spawn").Pool(min(workers, len(args))) as pool:  # spawn: see data/extract.py
            out = list(tqdm(pool.imap(_explain, args), total=len(args), desc="grad-cam", disable=not progress))
    else:
        out = [_explain(a) for a in tqdm(args, desc="grad-cam", disable=not progress)]
    return pd.concat(out, ignore_index=True)


def summary(per_crop: pd.DataFrame, profile: str | None = None) -> pd.DataFrame:
    """results/gradcam.csv: mean scores per model, variant, sparsity, seed and method, with n crops
    (written when `profile` is given)."""
    keys = ["model", "variant", "sparsity", "seed", "method"]
    g = per_crop.groupby(keys, sort=False)
    table = g[list(SCORES)].mean().round(4)
    table["n"] = g["energy_ratio"].count()
    table["road_n"] = g["road"].count()
    table = table.reset_index()
    if profile:
        write_results(profile, "gradcam", table.set_index("model"))
    return table


def by_model(table: pd.DataFrame, score: str = "energy_ratio") -> pd.DataFrame:
    """Mean ± sd over seeds (of the mean over methods) per model, variant and sparsity."""
    per_seed = table.groupby(["model", "variant", "sparsity", "seed"], sort=False)[score].mean()
    g = per_seed.groupby(["model", "variant", "sparsity"], sort=False)
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(), "seeds": g.count()})
    out[score] = [mean_sd_cell(m, s) for m, s in zip(out["mean"], out["sd"])]
    return out


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model variant: each score as mean ± sd over seeds."""
    cols = {s: by_model(table, s)[s] for s in SCORES}
    out = pd.DataFrame(cols)
    out["seeds"] = by_model(table, SCORES[0])["seeds"]
    out.index = out.index.set_levels([f"{v:.0%}" for v in out.index.levels[2]], level=2)
    return out


def per_method(table: pd.DataFrame, score: str = "energy_ratio") -> pd.DataFrame:
    """model variant x method, the mean over seeds (for a heatmap)."""
    wide = table.groupby(["model", "variant", "sparsity", "method"], sort=False)[score].mean().unstack("method")
    wide.index = [f"{m} {v}" + (f" {s:.0%}" if s else "") for m, v, s in wide.index]
    return wide.round(2)


def verdicts(profile: str, table: pd.DataFrame) -> pd.DataFrame:
    """"Pruned nets keep their focus on the manipulated region", per pruned variant: its energy ratio
    (mean over methods, then over seeds) is at least `keep` x its dense net's. Margin: pruned / dense - keep;
    spread: the larger sd over seeds of the two, over the dense mean. Beside it, whether the dense net
    looks at the manipulated region at all (energy ratio above 1, the uniform map's)."""
    keep = settings(profile).keep
    stats = by_model(table)
    rows = []
    for model in stats.index.get_level_values("model").unique():
        part = stats.loc[model]
        if "dense" not in part.index.get_level_values("variant"):
            continue
        dense = part.loc["dense"].iloc[0]
        rows.append({"claim": "the dense net focuses on the mask (energy ratio > 1)", "model": model,
                     "variant": "dense", "sparsity": 0.0, "pruned": math.nan, "dense": dense["mean"],
                     "margin": dense["mean"] - 1, "spread": dense["sd"], "verdict": verdict(dense["mean"] - 1,
                                                                                            dense["sd"])})
        for (variant, sparsity), r in part.iterrows():
            if variant == "dense":
                continue
            margin = r["mean"] / dense["mean"] - keep
            spread = max(r["sd"], dense["sd"]) / dense["mean"]
            rows.append({"claim": f"keeps >= {keep:.0%} of the dense net's focus", "model": model, "variant": variant,
                         "sparsity": sparsity, "pruned": r["mean"], "dense": dense["mean"], "margin": margin,
                         "spread": spread, "verdict": verdict(margin, spread)})
    return pd.DataFrame(rows).round({"pruned": 3, "dense": 3, "margin": 3, "spread": 3})


def grid(profile: str, columns: dict, dataset: str = "synthetic", data_root: str = "", seed: int = 0) -> tuple:
    """The figure's data: the first picked crop of each method, its mask, and the CAM of each of `columns`
    ({label: (model, variant, sparsity, seed)}), at the store's crop size:
    (images uint8 (M, S, S, 3), masks bool (M, S, S), {label: CAMs (M, S, S)}, methods)."""
    store = crop_store(profile, dataset, data_root, kind="ffpp", seed=seed)
    first = crops(profile, store).drop_duplicates("method")
    size = int(store.config["size"])
    images, masks = explain.read_pairs(store.root, first, size)
    runs = {(m, v, round(s, 4), sd): run for m, v, s, sd, run in models(profile)}
    cams = {}
    for label, (model, variant, sparsity, s) in columns.items():
        run = runs.get((model, variant, round(sparsity, 4), s))
        if run is None:
            raise KeyError(f"no finished run of {model} {variant} at {sparsity:.0%}, seed {s}")
        net, _ = load_model(paths.runs_dir(profile) / run / "best.safetensors")
        small, _ = explain.read_pairs(store.root, first, net.dflite_spec["input_size"])
        cams[label] = explain.resize(explain.gradcams(net, small), size)
    return images.permute(0, 2, 3, 1).numpy(), masks, cams, list(first["method"])
