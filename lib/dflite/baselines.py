"""Notebook 02's study: train the profile's detectors, evaluate, measure their cost, run the ablation."""
from __future__ import annotations

import json

import pandas as pd

from . import paths
from .config import TrainConfig, override
from .deploy import cost
from .models import create_model
from .train import RunResult, fit, run_dir

METRIC_COLUMNS = ["acc", "bacc", "auc", "ap", "eer", "video_auc", "video_acc"]
COST_COLUMNS = ["params", "size_mb", "mmacs", "cpu_ms"]


def model_cost(result: RunResult, repeats: int) -> dict:
    """Cost of a trained model, measured once and kept in its run folder (a cached run prints the same)."""
    path = result.run_dir / "cost.json"
    if path.is_file():
        return json.loads(path.read_text())
    row = cost(create_model(result.model, input_size=result.input_size), result.input_size,
               result.run_dir / "best.safetensors", repeats)
    path.write_text(json.dumps(row, indent=1))
    return row


def train_models(profile: str, store, cfg: TrainConfig, dataset: str = "ffpp", models=None, seeds=None,
                 progress: bool = True) -> dict:
    """{(model, seed): RunResult} for every model and seed (finished runs are reused)."""
    runs = {}
    for model in models or cfg.models:
        for seed in seeds or cfg.seeds:
            out = run_dir(profile, "baseline", model, dataset, cfg, store.config, seed)
            runs[(model, seed)] = fit(model, store, cfg, out, seed=seed, progress=progress)
    return runs


def results_table(runs: dict, cfg: TrainConfig) -> pd.DataFrame:
    """One row per key (a model, or any label): test metrics (mean over seeds), per-method accuracy, cost."""
    rows = []
    for (label, seed), r in runs.items():
        rows.append({"model": label, "seed": seed, "input_px": r.input_size, **r.metrics,
                     **model_cost(r, cfg.latency_repeats)})
    df = pd.DataFrame(rows)
    method_cols = sorted(c for c in df.columns if c.startswith("acc_"))
    table = df.groupby("model", sort=False)[["input_px", *METRIC_COLUMNS, *method_cols, *COST_COLUMNS]].mean()
    table.insert(0, "seeds", df.groupby("model", sort=False)["seed"].count())
    return table.astype({"input_px": int, "params": int})


def write_results(profile: str, name: str, table: pd.DataFrame):
    """data/runs/<profile>/results/<name>.csv; returns the path."""
    path = paths.runs_dir(profile) / "results" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(path)
    return path


def histories(runs: dict) -> pd.DataFrame:
    """All training curves in one long table (model, seed, epoch, ...)."""
    return pd.concat([r.history.assign(model=m, seed=s) for (m, s), r in runs.items()], ignore_index=True)


def schedule_ablation(profile: str, store, cfg: TrainConfig, dataset: str = "ffpp", progress: bool = True) -> dict:
    """The capstone's ablation: warm-up + cosine against a constant learning rate, same model and seeds.

    Returns {("<model> <schedule>", seed): RunResult}; the cosine runs are the baseline runs themselves.
    """
    out = {}
    for schedule in ("cosine", "constant"):
        variant = override(cfg, schedule=schedule, warmup_epochs=cfg.warmup_epochs if schedule == "cosine" else 0)
        runs = train_models(profile, store, variant, dataset, models=[cfg.ablation_model], progress=progress)
        out.update({(f"{model} {schedule}", seed): r for (model, seed), r in runs.items()})
    return out
