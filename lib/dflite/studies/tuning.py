"""Choosing a profile's recipes on validation: candidate recipes of a model trained over seeds and ranked by
validation AUC (the epoch `fit` keeps), never by test.

A search covers the recipes the notebooks train with: each baseline model's (`Profile.recipe`) and each lottery
model's (`Profile.lottery_recipe`). Per recipe the candidates are the profile's own and its peak learning rate
halved and doubled (the budget, images seen, is fixed by the profile's time); where the recipe trains under bf16
autocast on the CPU, an fp32 twin of the profile's recipe checks that the faster arithmetic learns as well.
Candidates run as stage `tune` (folders of their own beside the baselines, reused when finished). A candidate's
score is its best validation AUC, mean over seeds; the chosen one has the highest mean. Test predictions exist in
the runs' folders (fit writes them) but nothing here reads them.

    .venv/bin/python benchmarks/recipe_search.py --profile quick    # writes results/recipe_search.csv
"""
from __future__ import annotations

import pandas as pd

from ..analysis.report import table as mdtable
from ..analysis.stats import cell, t_interval
from ..config import Profile, TrainConfig, override
from ..engine.jobs import run_jobs
from ..engine.runs import write_results
from ..experiments.dense import Dense
from . import crop_store

__all__ = ["candidates", "choices", "disagreements", "findings", "profile_recipe", "recipes", "run",
           "search_jobs"]

LR_STEPS = {"lr x0.5": 0.5, "lr x2": 2.0}
# A candidate replaces the profile's recipe only when its mean best validation AUC is higher by more than this: near
# the ceiling (Lite0 from ImageNet: 0.9996 +- 0.0003 over seeds) smaller differences are the seeds' noise, and
# following them would walk the learning rate down a step per search.
TIE = 0.001
RECIPE_COLUMNS = ["input_size", "epochs", "epoch_size", "batch_size", "lr", "pretrained", "cpu_bf16"]


def profile_recipe(p: Profile, kind: str, model: str) -> TrainConfig:
    """The recipe a notebook trains `model` with: kind 'baseline' (notebook 02) or 'lottery' (notebooks 03, 05)."""
    return p.recipe(model) if kind == "baseline" else p.lottery_recipe(model)


def recipes(p: Profile) -> list:
    """(kind, model) of every recipe the profile's notebooks train with: notebook 02's per model, and the lottery's
    where it is not notebook 02's own (then the baseline search covers it)."""
    return [("baseline", m) for m in p.baselines.models] + [
        ("lottery", m) for m in p.lottery.models
        if m not in p.baselines.models or p.lottery_recipe(m) != p.recipe(m)]


def candidates(p: Profile, kind: str, model: str) -> dict:
    """{candidate name: TrainConfig}: the profile's recipe, its lr halved and doubled, and its fp32 twin where
    the recipe trains in bf16 on the CPU."""
    base = profile_recipe(p, kind, model)
    out = {"profile": base, **{name: override(base, lr=base.lr * f) for name, f in LR_STEPS.items()}}
    if base.cpu_bf16:
        out["profile, fp32"] = override(base, cpu_bf16=False)
    return out


def search_jobs(p: Profile, seeds=(0, 1, 2)) -> dict:
    """{(kind, model, candidate): [Dense job per seed]} for every recipe the profile's notebooks train with."""
    store = crop_store(p).ref()
    out = {}
    for kind, model in recipes(p):
        for name, cfg in candidates(p, kind, model).items():
            out[(kind, model, name)] = [Dense(p.name, model, p.dataset, store, cfg, seed, "tune") for seed in seeds]
    return out


def run(p: Profile, seeds=(0, 1, 2), progress: bool = True) -> pd.DataFrame:
    """Train every candidate over `seeds` (what is missing), and write results/recipe_search.csv: one row per
    candidate with its recipe, best validation AUC (mean, sd, worst seed), training seconds and `chosen`."""
    planned = search_jobs(p, seeds)
    run_jobs([job for jobs in planned.values() for job in jobs], p.workers, progress, "candidates")
    rows = []
    for (kind, model, name), jobs in planned.items():
        val = pd.Series([job.result().history["val_auc"].max() for job in jobs])
        secs = pd.Series([job.result().history["seconds"].sum() for job in jobs])
        cfg = jobs[0].cfg
        rows.append({"recipe": kind, "model": model, "candidate": name,
                     **{c: getattr(cfg, c) for c in RECIPE_COLUMNS}, "seeds": len(jobs),
                     "val_auc": val.mean(), "val_auc_sd": val.std(), "val_auc_min": val.min(),
                     "val_auc_ci_low": t_interval(val, 0.95)[0],
                     "train_seconds": secs.mean()})
    table = choices(pd.DataFrame(rows))
    write_results(p.name, "recipe_search", table)
    return table


def choices(table: pd.DataFrame) -> pd.DataFrame:
    """`chosen`: per recipe and model, the candidate with the highest mean validation AUC (the first listed on a
    tie), unless it beats the profile's own recipe by no more than `TIE`: then the profile's is kept. An fp32 twin
    is a check of the precision, not a candidate: it is never chosen."""
    table = table.copy()
    table["chosen"] = False
    eligible = table[~table["candidate"].str.endswith("fp32")]
    for _, group in eligible.groupby(["recipe", "model"], sort=False):
        best = group["val_auc"].idxmax()
        own = group.index[group["candidate"] == "profile"]
        if len(own) and group.loc[best, "val_auc"] - group.loc[own[0], "val_auc"] <= TIE:
            best = own[0]
        table.loc[best, "chosen"] = True
    table["within_fp32_ci"] = [precision_check(table, r) for r in table.itertuples()]
    return table


def precision_check(table: pd.DataFrame, row) -> object:
    """For a bf16 candidate with an fp32 twin: its mean validation AUC lies at or above the low end of the twin's
    95 % t interval over seeds (bf16 is kept only where it learns as well); "" where there is no twin."""
    twin = table[(table["recipe"] == row.recipe) & (table["model"] == row.model)
                 & (table["candidate"] == f"{row.candidate}, fp32")]
    if not row.cpu_bf16 or twin.empty:
        return ""
    return bool(row.val_auc >= twin.iloc[0].val_auc_ci_low)


def disagreements(table: pd.DataFrame) -> list:
    """'kind model: candidate' for each recipe whose chosen candidate is not the profile's own."""
    chosen = table[table["chosen"]]
    off = [f"{r.recipe} {r.model}: {r.candidate}" for r in chosen.itertuples() if r.candidate != "profile"]
    slow = table[(table["candidate"] == "profile") & (table["within_fp32_ci"].astype(str) == "False")]
    return off + [f"{r.recipe} {r.model}: bf16 below the fp32 twin's CI" for r in slow.itertuples()]


def findings(table: pd.DataFrame) -> str:
    """The search in words: per recipe, each candidate's mean ± sd best validation AUC, the chosen one marked."""
    table = table.assign(cell=[cell(m, s) + (" (chosen)" if str(c) == "True" else "")
                               for m, s, c in zip(table.val_auc, table.val_auc_sd, table.chosen)])
    shown = table.pivot(index=["recipe", "model"], columns="candidate", values="cell").fillna("")
    shown = shown[[c for c in ("profile", *LR_STEPS, "profile, fp32") if c in shown.columns]]
    seeds = int(table.seeds.max())
    return ("Recipes are chosen on validation (`benchmarks/recipe_search.py`): best-epoch validation AUC, mean ± sd "
            f"over {seeds} seeds, of each recipe the notebooks train with against its peak learning rate halved and "
            "doubled, and, where it trains in bf16 on the CPU, its fp32 twin (kept only if bf16's mean lies in the "
            "twin's 95 % CI):\n\n" + mdtable(shown.reset_index().set_index("recipe")))
