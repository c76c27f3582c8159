"""Notebook 03's study: lottery tickets against one-shot pruning and random controls, with verdicts.

`run(p)` trains what is missing (each model's ticket study on each crop store and seed: dense, then every
arm at every level, `p.workers` runs at a time) and returns one row per run; `summary` gives mean and sd
over seeds; `verdicts` turns the lottery-ticket study's claims into holds / does not hold / inconclusive on
this data (analysis.stats).
"""
from __future__ import annotations

import pandas as pd

from .. import paths
from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, cells, judge, over_seeds, paired, per_seed, unlearned
from ..compress.deploy import size_mb, timed_together, torch_call
from ..compress.masks import Mask, schedule, sparse_size_mb
from ..config import Profile, override
from ..engine.jobs import run_jobs
from ..engine.runs import results_path, write_results
from ..engine.train import input_size
from ..experiments import lottery
from ..nets.checkpoint import load_model
from . import crop_store, dataset_roots, read_results

__all__ = ["control_levels", "ffpp_train_images", "findings", "layer_sparsity", "levels_table", "mean_sd",
           "params_left", "recipes", "results_file", "run", "sparse_cost", "summary", "ticket", "tickets", "verdicts"]


def recipes(p: Profile) -> pd.DataFrame:
    """One row per model: the lottery runs' input size, budget, batch, learning rate and seeds."""
    study = p.lottery
    rows = []
    for model in study.models:
        cfg = p.lottery_recipe(model)
        rows.append({"model": model, "input_px": input_size(cfg, model), "epochs": cfg.epochs,
                     "epoch_size": cfg.epoch_size or "split", "batch": cfg.batch_size, "lr": cfg.lr,
                     "rewind_epoch": study.rewind_epoch, "seeds": len(study.seeds)})
    return pd.DataFrame(rows).set_index("model")


def results_file(p: Profile):
    return results_path(p.name, "tickets")


def params_left(table: pd.DataFrame) -> pd.DataFrame:
    """Parameters left per model (and dataset) at each sparsity; 0 % is the dense net."""
    kept = table[table.arm.isin(["dense", "imp"])]
    wide = kept.pivot_table(index=["model", "dataset"], columns="sparsity", values="params_left", aggfunc="first",
                            sort=False)
    wide.columns = [f"{c:.0%}" for c in wide.columns]
    return wide.astype(int)


def levels_table(p: Profile) -> pd.DataFrame:
    """Each level's sparsity and the share of the remaining weights it prunes."""
    study = p.lottery
    sparsities = schedule(study.schedule, study.levels)
    before = (0.0, *sparsities[:-1])
    return pd.DataFrame({"level": range(1, len(sparsities) + 1), "sparsity": sparsities,
                         "prunes_of_remaining": [round((s - b) / (1 - b), 4) for s, b in zip(sparsities, before)],
                         "weights_left": [round(1 - s, 4) for s in sparsities]}).set_index("level")


def label(dataset: str, kind: str) -> str:
    """The dataset as ticket runs and tables name it: the real dataset, or synthetic-<kind>."""
    return kind if dataset == kind else f"{dataset}-{kind}"


def control_levels(p: Profile):
    """The levels the arms other than IMP run at: every level, or (controls = "claims") only those whose sparsity a
    claim names (`at`): the runs between decide nothing, and their time buys seeds."""
    study = p.lottery
    if study.controls == "all":
        return None
    sparsities = schedule(study.schedule, study.levels)
    levels = [i + 1 for i, s in enumerate(sparsities) if any(abs(s - a) < 1e-9 for a in study.at)]
    if len(levels) != len(study.at):
        raise ValueError(f"lottery.at {study.at} names sparsities the {study.schedule!r} schedule does not reach "
                         f"({', '.join(f'{s:g}' for s in sparsities)})")
    return tuple(levels)


def ticket(p: Profile, model: str, kind: str, store, seed: int) -> lottery.Ticket:
    """The profile's ticket study of `model` on `store` (of `kind`) at `seed` (notebooks 03 and 05 share it)."""
    study = p.lottery
    cfg = p.lottery_recipe(model)
    if kind != "ffpp" and not cfg.epoch_size:
        cfg = override(cfg, epoch_size=ffpp_train_images(p))
    return lottery.Ticket(p.name, model, label(p.dataset, kind), store.ref(), cfg, seed,
                          schedule(study.schedule, study.levels), study.scope, study.prune_classifier,
                          study.rewind_epoch, study.schedule)


def ffpp_train_images(p: Profile) -> int:
    """Images per epoch of a ticket study on another dataset: FF++'s train split, so that a ticket carried
    between the datasets (notebook 05) and the target's own are trained on the same budget. An epoch of the
    recipe is one pass over the train split; OpenForensics' split is the smaller one (synthetic: about a fifth),
    and its dense CNN-5 did not learn on a quarter of FF++'s images. 0 (the own split) when there is no FF++."""
    if dataset_roots(p).get("ffpp") is None:
        return 0
    return int((crop_store(p, kind="ffpp").index["split"] == "train").sum())


def tickets(p: Profile) -> list:
    """Every ticket study of the profile: each model on each crop store (kind) the dataset has, at each seed."""
    study = p.lottery
    roots = dataset_roots(p)
    out = []
    for kind in (k for k in study.kinds if roots.get(k) is not None):
        store = crop_store(p, kind=kind)
        out += [ticket(p, model, kind, store, s) for model in study.models for s in study.seeds]
    return out


def run(p: Profile, progress: bool = True) -> pd.DataFrame:
    """Train what is missing, then one row per run: model, dataset, arm, level, sparsity, seed, run, params_left,
    acc, bacc, auc, video_auc (test split). Writes results/tickets.csv."""
    studies, at = tickets(p), control_levels(p)
    run_jobs([job for t in studies for job in t.jobs(p.lottery.arms, at)], p.workers, progress, "lottery runs")
    rows = []
    for t in studies:
        wanted = [lottery.Dense(t)] + [lottery.Level(t, arm, level) for level in range(1, len(t.sparsities) + 1)
                                       for arm in p.lottery.arms if level in t.levels(arm, at)]
        rows += [job.row() for job in wanted]
    table = pd.DataFrame(rows)
    write_results(p.name, "tickets", table.set_index("model"))
    return table


def summary(table: pd.DataFrame, metrics=("auc", "acc", "bacc")) -> pd.DataFrame:
    """Mean and sd over seeds per model, dataset, arm and sparsity (sd: sample sd, nan with one seed)."""
    out = over_seeds(table, ["model", "dataset", "arm", "sparsity"], metrics, keep=["params_left"])
    out["params_left"] = out["params_left"].round().astype(int)
    return out[[*metrics, *(f"{m}_sd" for m in metrics), "params_left", "seeds"]]


def mean_sd(summ: pd.DataFrame, metric: str = "auc", digits: int = 3) -> pd.DataFrame:
    """model x dataset x arm rows, one 'mean ± sd' column per sparsity (dense in its own column)."""
    wide = summ.assign(cell=cells(summ, metric, digits)).reset_index().pivot_table(
        index=["model", "dataset", "arm"], columns="sparsity", values="cell", aggfunc="first", sort=False)
    wide.columns = [f"{c:.0%}" for c in wide.columns]
    return wide.fillna("")


CONTROLS = (("oneshot", "(a) IMP beats one-shot pruning"), ("random_reinit", "(b) the ticket beats random reinit"),
            ("random_mask", "(b) the ticket beats a random mask"))


def verdicts(p: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The lottery-ticket study's claims on this data, one row per claim, model, dataset and sparsity, decided by
    analysis.stats on the paired per-seed statistic (Holm over the table):

    (a) IMP beats one-shot pruning and (b) the ticket beats random reinit and a random mask, on test AUC at the
    sparsities `at`; (c) ResNet-18 at 80 % loses at most `within` AUC against its dense net; (d) MesoNet at
    80 % keeps at least `keeps` of its dense net's balanced accuracy (balanced: the test split holds five fakes
    per real video, where plain accuracy rewards calling everything fake). A claim whose dense net did not
    learn on some seed is not testable.
    """
    study, floor = p.lottery, p.evidence.learned_auc
    rows = []
    for (model, dataset), part in table.groupby(["model", "dataset"], sort=False):
        def arm(name, sparsity, metric="auc", part=part):
            return per_seed(part, {"arm": name, "sparsity": sparsity}, metric)
        dense = arm("dense", 0.0)
        why = unlearned(dense, floor, f"dense {model}")
        ids = {"model": model, "dataset": dataset}
        for s in study.at:
            imp = arm("imp", s)
            for other, text in CONTROLS:
                if other in set(part.arm):
                    b = arm(other, s)
                    rows.append({"claim": Claim(text), **ids, "sparsity": s, "a": imp.mean(), "b": b.mean(),
                                 "values": paired(imp, b), "untestable": why})
        if model == "resnet18":
            imp = arm("imp", 0.8)
            rows.append({"claim": Claim(f"(c) ResNet-18 at 80 % loses at most {study.within:g} AUC", -study.within),
                         **ids, "sparsity": 0.8, "a": imp.mean(), "b": dense.mean(), "values": paired(imp, dense),
                         "untestable": why})
        if model == "meso4":
            imp, base = arm("imp", 0.8, "bacc"), arm("dense", 0.0, "bacc")
            kept = (imp / base).dropna()
            rows.append({"claim": Claim(f"(d) MesoNet at 80 % keeps >= {study.keeps:.0%} of dense balanced accuracy",
                                        study.keeps, "bacc ratio"), **ids, "sparsity": 0.8, "a": imp.mean(),
                         "b": base.mean(), "values": kept.to_numpy(), "untestable": why})
    if "resnet18" not in set(table["model"]):
        rows.append({"claim": Claim(f"(c) ResNet-18 at 80 % loses at most {study.within:g} AUC", -study.within),
                     "model": "resnet18", "values": [], "untestable": "ResNet-18 is not in this profile's study "
                                                                       "(the standard profile runs it)"})
    if "meso4" not in set(table["model"]):
        rows.append({"claim": Claim(f"(d) MesoNet at 80 % keeps >= {study.keeps:.0%} of dense balanced accuracy",
                                    study.keeps, "bacc ratio"), "model": "meso4", "values": [],
                     "untestable": "MesoNet is not in this profile's study (the standard profile runs it)"})
    out = judge(rows, p.evidence.alpha)
    write_results(p.name, "tickets_verdicts", out.set_index("claim"))
    return out


def findings(p: Profile, folder=None) -> Markdown:
    """The lottery study in words: test AUC per arm and sparsity (mean over seeds), and each claim's verdict."""
    table, verdicts = read_results(p, "tickets", folder), read_results(p, "tickets_verdicts", folder)
    summ = summary(table)
    wide = summ["auc"].round(3).unstack("sparsity")
    wide.columns = [f"{c:.0%}" for c in wide.columns]
    seeds = int(summ["seeds"].max())
    lines = [f"**Lottery tickets** (notebook 03): test AUC, mean over {seeds} seeds "
             f"(0 % is the dense net). Claims: {counts(verdicts)}.", "", mdtable(wide), "",
             *verdict_lines(verdicts, ["model", "dataset", "sparsity"])]
    return Markdown("\n".join(lines))


def layer_sparsity(p: Profile, table: pd.DataFrame, model: str, seed: int = 0, sparsity: float = 0.8) -> pd.DataFrame:
    """Per-layer share of weights pruned by each arm's mask at one level (global pruning is uneven),
    layers in the model's order."""
    cols, order = {}, []
    for arm in ("imp", "oneshot", "random_mask"):
        rows = table[(table.model == model) & (table.seed == seed) & (table.arm == arm) & (table.sparsity == sparsity)]
        if rows.empty:
            continue
        folder = _run_dir(p, rows.iloc[0])
        cols[arm] = Mask.load(folder / lottery.MASK).report()["sparsity"]
        order = order or [k for k in load_model(folder / "best.safetensors")[0].state_dict() if k in cols[arm].index]
    return pd.DataFrame(cols).reindex([*order, "total"]).round(3)


def _run_dir(p: Profile, row):
    return paths.runs_dir(p.name) / row["run"]


def sparse_cost(p: Profile, table: pd.DataFrame, repeats: int = 50, sparsity: float = 0.8,
                seed: int = 0, rounds: int = 5) -> pd.DataFrame:
    """Dense against `sparsity` IMP, per model: CPU latency at batch 1 (1 thread; `rounds` alternating rounds
    of `repeats` passes of each net, timed_together),
    the weights file as stored (dense zeros) and sparse-stored (kept values plus a 1-bit mask)."""
    rows = []
    for model in table["model"].unique():
        pick = table[(table.model == model) & (table.seed == seed)]
        dense_row = pick[pick.arm == "dense"].iloc[0]
        imp_row = pick[(pick.arm == "imp") & (pick.sparsity == sparsity)].iloc[0]
        dense, _ = load_model(_run_dir(p, dense_row) / "best.safetensors")
        sparse, _ = load_model(_run_dir(p, imp_row) / "best.safetensors")
        mask = Mask.load(_run_dir(p, imp_row) / lottery.MASK)
        px = dense.dflite_spec["input_size"]
        # Time the two nets in alternating rounds: a shared CPU drifts by 20 % between back-to-back medians,
        # which would read as a speed-up or slow-down of one of them.
        ms = timed_together({"dense": torch_call(dense, px), "sparse": torch_call(sparse, px)}, 1,
                            repeats * rounds, rounds)
        rows.append({"model": model, "input_px": px, "sparsity": sparsity,
                     "dense_ms": round(ms["dense"], 3), "sparse_ms": round(ms["sparse"], 3),
                     "dense_mb": round(size_mb(dense), 4), "masked_dense_mb": round(size_mb(sparse), 4),
                     "sparse_stored_mb": round(sparse_size_mb(sparse, mask), 4)})
    out = pd.DataFrame(rows).set_index("model")
    out["speedup"] = (out["dense_ms"] / out["sparse_ms"]).round(2)
    out["size_ratio"] = (out["dense_mb"] / out["sparse_stored_mb"]).round(2)
    return out
