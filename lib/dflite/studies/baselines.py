"""Notebook 02's study: train the profile's detectors over seeds, evaluate, measure cost, run the ablations."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, cells, judge, over_seeds, paired
from ..compress.deploy import cost
from ..config import Profile, override
from ..engine.jobs import run_jobs
from ..engine.runs import results_path, write_results
from ..experiments.dense import Dense
from ..folders import write_json
from ..nets.checkpoint import load_model
from . import crop_store, read_results, results_dir

__all__ = ["Ablation", "ablation_histories", "ablations", "findings", "histories", "imagenet_start", "jobs", "mean_sd",
           "model_seeds", "per_method", "recipes", "results_file", "results_table", "run", "summary"]

METRIC_COLUMNS = ["acc", "bacc", "auc", "ap", "eer", "video_auc", "video_acc"]
COST_COLUMNS = ["params", "size_mb", "mmacs", "cpu_ms"]
SPREAD_COLUMNS = ["bacc", "auc", "video_auc"]  # reported as mean and sd over seeds


def model_cost(job: Dense, repeats: int) -> dict:
    """Cost of a trained model, measured once and kept in its run folder (a cached run prints the same)."""
    run = job.run()
    path = run.path("cost.json")
    if path.is_file():
        return json.loads(path.read_text())
    model, _ = load_model(run.path("best.safetensors"))  # the trained net, pruned or not
    row = cost(model, model.dflite_spec["input_size"], repeats)
    write_json(path, row)
    return row


def model_seeds(p: Profile, model: str) -> tuple:
    """Every seed for the models later studies compress, the first seed for the others."""
    study = p.baselines
    return study.seeds if model in study.seeded_models else study.seeds[:1]


def recipes(p: Profile) -> pd.DataFrame:
    """One row per model: input size, epochs, images per epoch, images seen in all, peak lr, seeds."""
    rows = []
    for model in p.baselines.models:
        cfg = p.recipe(model)
        rows.append({"model": model, "input_px": cfg.input_size, "epochs": cfg.epochs,
                     "epoch_size": cfg.epoch_size or "split", "images": cfg.epochs * cfg.epoch_size or "",
                     "batch": cfg.batch_size, "lr": cfg.lr, "seeds": len(model_seeds(p, model))})
    return pd.DataFrame(rows).set_index("model")


def jobs(p: Profile, store, models=None, seeds=None, changes=None, stage: str = "baseline",
         dataset: str | None = None) -> list:
    """A Dense job per model (the profile's recipe plus `changes`) and seed, on `store`; `dataset` labels the
    runs (default: the profile's dataset)."""
    out = []
    for model in models or p.baselines.models:
        cfg = override(p.recipe(model), **(changes or {}))
        for seed in seeds or model_seeds(p, model):
            out.append(Dense(p.name, model, dataset or p.dataset, store.ref(), cfg, seed, stage))
    return out


def train(p: Profile, planned: list, progress: bool = True) -> list:
    """Train what is missing of the jobs, `p.workers` runs at a time on the CPU (each run has one thread,
    TrainConfig.cpu_threads: two such runs use 2 cores about as well as one run on two threads, and a
    run's numbers do not depend on how runs are scheduled); returns the jobs."""
    run_jobs(planned, p.workers, progress, "train")
    return planned


def results_file(p: Profile, name: str = "baselines"):
    return results_path(p.name, name)


def run(p: Profile, progress: bool = True) -> tuple:
    """(results table, jobs): every model of the profile over its seeds, trained where missing; writes
    results/baselines.csv. The notebook's ablation runs train here too, in the same job graph: trained apart, three
    runs of one size on two workers left a core idle for a third of their time (`ablations` and `imagenet_start`
    then read them back)."""
    planned = jobs(p, crop_store(p))
    train(p, planned + [j for group in ablation_jobs(p).values() for j in group]
          + [j for group in imagenet_jobs(p) for j in group], progress)
    table = results_table(planned, p.baselines.latency_repeats)
    write_results(p.name, "baselines", table)
    return table, planned


def results_table(planned: list, repeats: int = 30, labels: dict | None = None) -> pd.DataFrame:
    """One row per label (the model, or `labels[job.key]`): test metrics as the mean over seeds (and
    `<metric>_sd` for the headline ones), per-method accuracy and AUC, and cost."""
    rows = [{**job.row(), "model": (labels or {}).get(job.key, job.model), **model_cost(job, repeats)}
            for job in planned]
    df = pd.DataFrame(rows)
    per_method = sorted(c for c in df.columns if c.startswith(("acc_", "auc_")))
    summ = over_seeds(df, ["model"], [*METRIC_COLUMNS, *per_method, *COST_COLUMNS], keep=["input_px"])
    table = summ[["input_px", *METRIC_COLUMNS, *per_method, *COST_COLUMNS]].copy()
    for c in SPREAD_COLUMNS:  # sample sd (ddof 1); nan with one seed
        table.insert(table.columns.get_loc(c) + 1, f"{c}_sd", summ[f"{c}_sd"])
    table.insert(0, "seeds", summ["seeds"])
    return table.astype({"input_px": int, "params": int})


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """The headline columns as 'mean ± sd' over seeds."""
    return mean_sd(table)


def findings(p: Profile, folder=None) -> Markdown:
    """The baselines in words: test AUC and balanced accuracy (mean ± sd over seeds), size and CPU latency, and
    the two ablations."""
    def load(name):
        return read_results(p, name, folder).set_index("model")
    table = load("baselines")
    shown = summary(table).join(table[["params", "mmacs", "cpu_ms"]])
    lines = ["**Baselines** (notebook 02): test AUC, balanced accuracy and video AUC (mean ± sd over seeds), "
             "parameters, MMACs and CPU latency (ms, batch 1, one thread):", "", mdtable(shown)]
    for name, what in (("schedule_ablation", "warm-up + cosine against a constant learning rate"),
                       ("leakage", "a frame-level (leaky) split against the video split"),
                       ("imagenet_start", "an ImageNet start against a random initialisation")):
        path = Path(folder or results_dir(p)) / f"{name}.csv"
        if path.is_file():
            lines += ["", f"Ablation, {what}:", "", mdtable(summary(load(name)))]
    path = Path(folder or results_dir(p)) / "imagenet_verdicts.csv"
    if path.is_file():
        verdicts = read_results(p, "imagenet_verdicts", folder)
        lines += ["", f"Transfer learning claims: {counts(verdicts)}.", "", *verdict_lines(verdicts, ["model"])]
    return Markdown("\n".join(lines))


def mean_sd(table: pd.DataFrame, columns=SPREAD_COLUMNS, digits: int = 3) -> pd.DataFrame:
    """The columns as 'mean ± sd' strings (just the mean where there is one seed), for display."""
    out = table[["seeds"]].copy()
    for c in columns:
        out[c] = cells(table, c, digits)
    return out


def per_method(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per-method scores as a model x method table (metric 'acc' adds the real frames' accuracy)."""
    cols = [c for c in table.columns if c.startswith(f"{metric}_") and not c.endswith("_sd")]
    return table[cols].rename(columns=lambda c: c[len(metric) + 1:])


def per_method_sd(planned: list, metric: str = "auc") -> pd.DataFrame:
    """The sample sd over seeds of per_method's cells (nan for a model with one seed), from the finished runs, for
    a heatmap that shows each mean with its spread."""
    rows = pd.DataFrame([{**job.row(), "model": job.model} for job in planned])
    cols = sorted(c for c in rows.columns if c.startswith(f"{metric}_"))
    return rows.groupby("model", sort=False)[cols].std().rename(columns=lambda c: c[len(metric) + 1:])


def histories(planned: list, labels: dict | None = None) -> pd.DataFrame:
    """All training curves in one long table (model or label, seed, epoch, ...)."""
    return pd.concat([job.result().history.assign(model=(labels or {}).get(job.key, job.model), seed=job.seed)
                      for job in planned], ignore_index=True)


@dataclass
class Ablation:
    """One ablation: its results table (a row per label), its jobs and their labels."""

    table: pd.DataFrame
    jobs: list
    labels: dict


def ablation_jobs(p: Profile) -> dict:
    """The ablation model's runs: the baseline ("honest"), a constant learning rate, and a frame-level split."""
    study = p.baselines
    store, leaky = crop_store(p), crop_store(p, split_mode="leaky")
    one = {"models": [study.ablation_model], "seeds": study.ablation_seeds}
    return {"honest": jobs(p, store, **one),
            "constant": jobs(p, store, changes={"schedule": "constant", "warmup_epochs": 0}, **one),
            "frame": jobs(p, leaky, **one)}


def ablations(p: Profile, progress: bool = True) -> dict:
    """The capstone's schedule ablation and the leakage ablation on the ablation model, trained together;
    writes results/schedule_ablation.csv and results/leakage.csv.

    Schedule: warm-up + cosine against a constant learning rate. Leakage: a frame-level split (frames of
    one video in train and test, as the capstone shuffled them) against the video/identity split. The
    cosine and video-split runs are the baseline runs themselves. Returns {name: Ablation}.
    """
    study = p.baselines
    planned = ablation_jobs(p)
    honest, constant, frame = planned["honest"], planned["constant"], planned["frame"]
    train(p, honest + constant + frame, progress)

    def label(planned, name):
        return {job.key: f"{job.model} {name}" for job in planned}
    out = {"schedule_ablation": (honest + constant, {**label(honest, "cosine"), **label(constant, "constant")}),
           "leakage": (honest + frame, {**label(honest, "video split"), **label(frame, "frame split (leaky)")})}
    found = {}
    for name, (planned, labels) in out.items():
        table = results_table(planned, study.latency_repeats, labels)
        write_results(p.name, name, table)
        found[name] = Ablation(table, planned, labels)
    return found


def imagenet_jobs(p: Profile) -> tuple:
    """(ImageNet-started runs, randomly initialised runs) of `imagenet_model` at its seeds; ((), ()) without one."""
    model = p.baselines.imagenet_model
    if not model:
        return (), ()
    store = crop_store(p)
    return (jobs(p, store, models=[model], changes={"pretrained": True}),
            jobs(p, store, models=[model], changes={"pretrained": False}))


def imagenet_start(p: Profile, progress: bool = True) -> Ablation | None:
    """The capstone's transfer-learning claim on this data: `imagenet_model` from ImageNet weights against the same
    recipe from a random initialisation, at every seed (one side is the baseline runs themselves: the profile's
    recipe says which). Writes results/imagenet_start.csv and results/imagenet_verdicts.csv; None where the profile
    names no model."""
    model = p.baselines.imagenet_model
    if not model:
        return None
    imagenet, scratch = imagenet_jobs(p)
    train(p, imagenet + scratch, progress)
    labels = {**{j.key: f"{model} ImageNet start" for j in imagenet},
              **{j.key: f"{model} random init" for j in scratch}}
    table = results_table(imagenet + scratch, p.baselines.latency_repeats, labels)
    write_results(p.name, "imagenet_start", table)
    write_results(p.name, "imagenet_verdicts", imagenet_verdicts(p, imagenet, scratch).set_index("claim"))
    return Ablation(table, imagenet + scratch, labels)


def imagenet_verdicts(p: Profile, imagenet: list, scratch: list) -> pd.DataFrame:
    """Two claims, paired over seeds (the same seed draws the same data order and head): the ImageNet start ends
    with a higher test AUC, and it converges faster (a higher validation AUC after the first epoch)."""
    def seeds(planned, what):
        return pd.Series({j.seed: what(j.result()) for j in planned}, dtype=float)
    model = imagenet[0].model
    rows = []
    for text, metric, what in (("an ImageNet start beats a random one", "auc", lambda r: r.metrics["auc"]),
                               ("an ImageNet start converges faster", "val auc after epoch 1",
                                lambda r: float(r.history["val_auc"].iloc[0]))):
        a, b = seeds(imagenet, what), seeds(scratch, what)
        rows.append({"claim": Claim(text, 0.0, metric), "model": model, "a": a.mean(), "b": b.mean(),
                     "values": paired(a, b), "untestable": ""})
    return judge(rows, p.evidence.alpha)


def ablation_histories(found: dict) -> pd.DataFrame:
    """The training curves of every ablation's runs, each run once: a run two ablations share (the baseline is
    both the cosine and the video-split run) is one line named by both, not two lines drawn on top of each other."""
    jobs, names = {}, {}
    for a in found.values():
        for job in a.jobs:
            jobs.setdefault(job.key, job)
            label = a.labels.get(job.key, job.model)
            shared = job.key in names
            names[job.key] = f"{names[job.key]} = {label.removeprefix(job.model).strip()}" if shared else label
    return histories(list(jobs.values()), names)
