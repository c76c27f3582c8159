"""Notebook 02's study: train the profile's detectors over seeds, evaluate, measure cost, run the ablations."""
from __future__ import annotations

import json
from multiprocessing import get_context

import pandas as pd
from tqdm import tqdm

from ..compress.deploy import cost
from ..config import TrainConfig, get_profile, override
from ..data.extract import load_store
from ..engine.runs import Run, train_run, write_results
from ..engine.train import RunResult, fit, input_size, seeded_model, select_device
from ..folders import write_json
from ..nets.checkpoint import load_model
from ..nets.models import count_parameters, create_model
from . import crop_store, mean_sd_cell, train_config

__all__ = ["ablations", "histories", "mean_sd", "per_method", "plan_runs", "recipes", "results_table",
           "run_all", "train_dense", "train_models", "write_results"]

METRIC_COLUMNS = ["acc", "bacc", "auc", "ap", "eer", "video_auc", "video_acc"]
COST_COLUMNS = ["params", "size_mb", "mmacs", "cpu_ms"]
SPREAD_COLUMNS = ["bacc", "auc", "video_auc"]  # reported as mean and sd over seeds


def model_cost(result: RunResult, repeats: int) -> dict:
    """Cost of a trained model, measured once and kept in its run folder (a cached run prints the same)."""
    path = result.run_dir / "cost.json"
    if path.is_file():
        return json.loads(path.read_text())
    model, _ = load_model(result.run_dir / "best.safetensors")  # the trained net, pruned or not
    row = cost(model, result.input_size, repeats)
    write_json(path, row)
    return row


def model_seeds(profile: str, model: str) -> tuple:
    """Every seed for the models later studies compress, the first seed for the others."""
    study = get_profile(profile).baselines
    return study.seeds if model in study.seeded_models else study.seeds[:1]


def recipes(profile: str) -> pd.DataFrame:
    """One row per model: input size, epochs, images per epoch, images seen in all, peak lr, seeds."""
    rows = []
    for model in get_profile(profile).baselines.models:
        cfg = train_config(profile, model)
        rows.append({"model": model, "input_px": cfg.input_size, "epochs": cfg.epochs,
                     "epoch_size": cfg.epoch_size or "split", "images": cfg.epochs * cfg.epoch_size or "",
                     "batch": cfg.batch_size, "lr": cfg.lr, "seeds": len(model_seeds(profile, model))})
    return pd.DataFrame(rows).set_index("model")


def plan_runs(profile: str, store, dataset: str, models=None, seeds=None, changes=None,
              stage: str = "baseline") -> list:
    """[(model, seed, TrainConfig, Run)] for each model with its profile recipe (plus `changes`)."""
    jobs = []
    for model in models or get_profile(profile).baselines.models:
        cfg = override(train_config(profile, model), **(changes or {}))
        for seed in seeds or model_seeds(profile, model):
            run = train_run(profile, stage, model, dataset, cfg, store, seed, input_size(cfg, model))
            jobs.append((model, seed, cfg, run))
    return jobs


def train_dense(model: str, store, cfg: TrainConfig, run: Run, progress: bool = True) -> RunResult:
    """A dense registry model trained from the run's seed (read back when the run is finished)."""
    return fit(seeded_model(model, cfg, run.identity["seed"]), store, cfg, run, progress=progress)


def run_all(profile: str, planned: list, progress: bool = True) -> list:
    """Train what is missing of [(store, jobs)], `baselines.workers` runs at a time on the CPU, then read
    every run back. Each run has one thread (TrainConfig.cpu_threads): two such runs use 2 cores about as
    well as one run on two threads, and a run's numbers do not depend on how runs are scheduled."""
    workers = 1 if select_device().type == "cuda" else get_profile(profile).baselines.workers
    pending = [(store, job) for store, jobs in planned for job in jobs if not job[3].finished]
    if workers > 1 and len(pending) > 1:
        pending.sort(key=lambda p: _train_cost(p[1]), reverse=True)  # longest first: the pool ends together
        args = [(str(store.root), m, c, run) for store, (m, _, c, run) in pending]
        with get_context("spawn").Pool(min(workers, len(args))) as pool:  # spawn: see extract.py
            for _ in tqdm(pool.imap_unordered(_fit_job, args), total=len(args), desc="train", disable=not progress):
                pass
    return [{(m, s): train_dense(m, store, c, run, progress) for m, s, c, run in jobs} for store, jobs in planned]


def train_models(profile: str, store, dataset: str, models=None, seeds=None, changes=None,
                 stage: str = "baseline", progress: bool = True) -> dict:
    """{(model, seed): RunResult} for each model with its profile recipe (plus `changes`); finished runs
    are read back, not retrained."""
    jobs = plan_runs(profile, store, dataset, models, seeds, changes, stage)
    return run_all(profile, [(store, jobs)], progress)[0]


def _fit_job(args) -> None:
    store_root, model, cfg, run = args
    train_dense(model, load_store(store_root), cfg, run, progress=False)


def _train_cost(job) -> float:
    """Rough relative training time of a job (parameters x images x pixels), to start the long ones first."""
    model, _, cfg, _ = job
    images, px = cfg.epochs * (cfg.epoch_size or 3000), cfg.input_size or 224
    return count_parameters(create_model(model, input_size=cfg.input_size or None)) ** 0.5 * images * px ** 2


def results_table(runs: dict, repeats: int = 30) -> pd.DataFrame:
    """One row per key (a model, or any label): test metrics as the mean over seeds (and `<metric>_sd`
    for the headline ones), per-method accuracy and AUC, and cost."""
    rows = [{"model": label, "seed": seed, "input_px": r.input_size, **r.metrics, **model_cost(r, repeats)}
            for (label, seed), r in runs.items()]
    df = pd.DataFrame(rows)
    per_method = sorted(c for c in df.columns if c.startswith(("acc_", "auc_")))
    by = df.groupby("model", sort=False)
    table = by[["input_px", *METRIC_COLUMNS, *per_method, *COST_COLUMNS]].mean()
    for c in SPREAD_COLUMNS:  # sample sd (ddof 1); nan with one seed
        table.insert(table.columns.get_loc(c) + 1, f"{c}_sd", by[c].std())
    table.insert(0, "seeds", by["seed"].count())
    return table.astype({"input_px": int, "params": int})


def mean_sd(table: pd.DataFrame, columns=SPREAD_COLUMNS, digits: int = 3) -> pd.DataFrame:
    """The columns as 'mean ± sd' strings (just the mean where there is one seed), for display."""
    out = table[["seeds"]].copy()
    for c in columns:
        sd = table[f"{c}_sd"]
        out[c] = [mean_sd_cell(m, s, digits) for m, s in zip(table[c], sd)]
    return out


def per_method(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per-method scores as a model x method table (metric 'acc' adds the real frames' accuracy)."""
    cols = [c for c in table.columns if c.startswith(f"{metric}_") and not c.endswith("_sd")]
    return table[cols].rename(columns=lambda c: c[len(metric) + 1:])


def histories(runs: dict) -> pd.DataFrame:
    """All training curves in one long table (model, seed, epoch, ...)."""
    return pd.concat([r.history.assign(model=m, seed=s) for (m, s), r in runs.items()], ignore_index=True)


def ablations(profile: str, store, dataset: str, data_root: str = "", seed: int = 0, workers: int = 2,
              progress: bool = True) -> tuple:
    """The capstone's schedule ablation and the leakage ablation on the ablation model, trained together.

    Schedule: warm-up + cosine against a constant learning rate. Leakage: a frame-level split (frames of
    one video in train and test, as the capstone shuffled them) against the video/identity split. The
    cosine and video-split runs are the baseline runs themselves. Returns two {(label, seed): RunResult}.
    """
    study = get_profile(profile).baselines
    leaky = crop_store(profile, dataset, data_root, seed=seed, workers=workers, split_mode="leaky")
    one = {"models": [study.ablation_model], "seeds": study.ablation_seeds}
    honest = plan_runs(profile, store, dataset, **one)
    constant = plan_runs(profile, store, dataset, changes={"schedule": "constant", "warmup_epochs": 0}, **one)
    frame = plan_runs(profile, leaky, dataset, **one)
    honest, constant, frame = run_all(profile, [(store, honest), (store, constant), (leaky, frame)], progress)

    def label(runs, name):
        return {(f"{model} {name}", s): r for (model, s), r in runs.items()}
    return ({**label(honest, "cosine"), **label(constant, "constant")},
            {**label(honest, "video split"), **label(frame, "frame split (leaky)")})
