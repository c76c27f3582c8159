"""Notebook 05's study: tickets and models carried across datasets, compressions and held-out methods.

`runs(profile)` trains what is missing in one job graph (ticket studies on both datasets, carried
tickets and random masks both ways, held-out-method runs) and returns one row per score:
model, source, target, kind, method, sparsity, seed, auc, acc, bacc, n, run. Kinds:

- ticket: an IMP mask trained on `target` (carried when source != target, found there when equal);
- random_mask: the carried mask's per-layer counts at random places, on the same weights;
- dense: the unpruned net trained on `target` (the ticket study's dense run);
- model: a finished run trained on `source`, scored on `target` (another dataset or compression);
- heldout: a run trained without `method`, scored on that method's test fakes and the test reals;
  `seen` is the same recipe trained on every method, scored on the same crops.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..analysis import transfer
from ..compress import lottery as tickets
from ..config import get_profile
from ..data.sources import DatasetLayoutError
from ..engine.jobs import run_missing
from ..engine.metrics import verdict
from ..engine.runs import results_path, write_results
from . import crop_store, dataset_roots, mean_sd_cell
from .baselines import plan_runs
from .lottery import label, lottery_config, ticket

__all__ = ["carried", "heldout_table", "missing", "model_table", "results_file", "runs", "settings", "verdicts"]

KINDS = ("ffpp", "openforensics")
COLUMNS = ["model", "source", "target", "kind", "method", "sparsity", "seed", "auc", "acc", "bacc", "n", "run"]


def settings(profile: str):
    return get_profile(profile).transfer


def results_file(profile: str):
    return results_path(profile, "transfer")


def _stores(profile: str, dataset: str, data_root: str, seed: int, workers: int) -> dict:
    """{kind: store} for the kinds the dataset has, and "c40" (FF++ at the other compression) when it has
    those videos. A real root is one dataset: the parts that need both are left out (`missing` says why)."""
    roots = dataset_roots(dataset, data_root, profile, seed)
    stores = {kind: crop_store(profile, dataset, data_root, kind=kind, seed=seed, workers=workers)
              for kind in KINDS if roots.get(kind) is not None}
    if "ffpp" in stores:
        try:
            stores["c40"] = crop_store(profile, dataset, data_root, kind="ffpp", seed=seed, workers=workers,
                                       compression=settings(profile).compression)
        except DatasetLayoutError:  # a real FF++ download without that compression
            pass
    return stores


def missing(profile: str, dataset: str = "synthetic", data_root: str = "", seed: int = 0) -> list:
    """What this dataset cannot show, and why (empty for the synthetic set, which has everything)."""
    roots = dataset_roots(dataset, data_root, profile, seed)
    absent = [k for k in KINDS if roots.get(k) is None]
    return [f"ticket transfer: needs FF++ and OpenForensics, {dataset!r} has no {', '.join(absent)}"] if absent else []


def _row(model, source, target, kind, seed, metrics, run_dir, method="", sparsity=0.0) -> dict:
    # The run as the other results tables show it: relative to data/runs/<profile>/.
    run = Path(*run_dir.relative_to(paths.data_dir() / "runs").parts[1:]).as_posix()
    return transfer.round_metrics({
        "model": model, "source": source, "target": target, "kind": kind, "method": method, "sparsity": sparsity,
        "seed": seed, "auc": metrics["auc"], "acc": metrics["acc"], "bacc": metrics["bacc"], "n": metrics.get("n", ""),
        "run": run})


def runs(profile: str, dataset: str = "synthetic", data_root: str = "", seed: int = 0, workers: int = 2,
         progress: bool = True) -> pd.DataFrame:
    """Train what is missing (one graph, `transfer.workers` at a time), then score everything; writes
    results/transfer.csv. Needs notebook 02's baselines for the model rows (it says so when missing)."""
    study = settings(profile)
    stores = _stores(profile, dataset, data_root, seed, workers)
    both = all(kind in stores for kind in KINDS)
    studies = {(kind, model, s): ticket(profile, model, dataset, kind, stores[kind], s)
               for kind in KINDS for model in study.models for s in study.seeds} if both else {}
    carries = [transfer.Carry(studies[(a, model, s)], studies[(b, model, s)])
               for a, b in (KINDS, KINDS[::-1]) for model in study.models for s in study.seeds] if both else []
    ffpp = label(dataset, "ffpp")
    held = [transfer.HeldOut(profile, model, ffpp, str(stores["ffpp"].root), lottery_config(profile, model), s, m)
            for model in study.models for s in study.heldout_seeds for m in _methods(stores["ffpp"])] \
        if "ffpp" in stores else []
    plans = [tickets.plan(t, ("imp",)) for t in studies.values()]
    plans += [transfer.plan(c, study.levels) for c in carries]
    plans.append(({h.key: h for h in held}, {h.key: set() for h in held}))
    store_of = {t: stores[k] for (k, _, _), t in studies.items()}

    def done(job) -> bool:
        if isinstance(job, transfer.Job):
            return transfer.finished(job)
        if isinstance(job, transfer.HeldOut):
            return job.run().finished
        return tickets.finished(job, store_of[job.ticket])
    run_missing(transfer.train_any, plans, done, study.workers, progress, "transfer runs")

    rows = []
    for (_, model, s), t in studies.items():
        dense = tickets.train_job(tickets.Job(t, "dense"))
        rows.append(_row(model, t.dataset, t.dataset, "dense", s, dense.metrics, dense.run_dir))
        for level in study.levels:
            found = tickets.train_job(tickets.Job(t, "imp", level))
            rows.append(_row(model, t.dataset, t.dataset, "ticket", s, found.metrics, found.run_dir,
                             sparsity=t.sparsities[level - 1]))
    for c in carries:
        for level in study.levels:
            for kind in transfer.KINDS:
                result = transfer.train_job(transfer.Job(c, kind, level))
                rows.append(_row(c.source.model, c.source.dataset, c.target.dataset, kind, c.source.seed,
                                 result.metrics, result.run_dir, sparsity=c.source.sparsities[level - 1]))
    rows += _model_rows(profile, dataset, stores, studies)
    rows += _heldout_rows(held, stores.get("ffpp"), studies)
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_results(profile, "transfer", table.set_index("model"))
    return table


def _methods(store) -> list:
    return sorted(m for m in store.index["method"].unique() if m != "original")


def _model_rows(profile: str, dataset: str, stores: dict, studies: dict) -> list:
    """Notebook 02's FF++ runs on FF++ c23 (their own test), c40 and OpenForensics; the OpenForensics
    ticket studies' dense runs on OpenForensics and both FF++ compressions."""
    ffpp, c40, of = label(dataset, "ffpp"), f"{label(dataset, 'ffpp')}-{settings(profile).compression}", \
        label(dataset, "openforensics")
    rows = []
    targets = [(name, stores[kind]) for name, kind in ((ffpp, "ffpp"), (c40, "c40"), (of, "openforensics"))
               if kind in stores]
    for model, s, _, run in plan_runs(profile, stores["ffpp"], dataset) if "ffpp" in stores else []:
        if not run.finished:
            raise RuntimeError(f"the baseline run {paths.show(run.dir)} is missing: run notebook 02 first")
        for target, store in targets:
            rows.append(_row(model, ffpp, target, "model", s, transfer.score_run(run.dir, store), run.dir))
    for (kind, model, s), t in studies.items():
        if kind != "openforensics":
            continue
        folder = tickets.dense_run(t, stores[kind]).dir
        for target, store in targets:
            rows.append(_row(model, of, target, "model", s, transfer.score_run(folder, store), folder))
    return rows


def _heldout_rows(held: list, store, studies: dict) -> list:
    """Per held-out run: its score on the method it never saw, and the all-methods run's on the same crops."""
    rows = []
    for h in held:
        only = transfer.only_method(store, h.method)
        run_dir = h.run().dir
        rows.append(_row(h.model, f"{h.dataset} without {h.method}", h.dataset, "heldout", h.seed,
                         transfer.score_run(run_dir, only), run_dir, method=h.method))
        full = studies.get(("ffpp", h.model, h.seed))
        if full is not None:
            dense = tickets.dense_run(full, store).dir
            rows.append(_row(h.model, h.dataset, h.dataset, "seen", h.seed, transfer.score_run(dense, only), dense,
                             method=h.method))
    return rows


def _mean_sd(table: pd.DataFrame, by: list, metric: str = "auc") -> pd.DataFrame:
    g = table.groupby(by, sort=False)[metric]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(), "seeds": g.count()})
    return out


def carried(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Ticket transfer: per model, source -> target and sparsity, mean ± sd over seeds of the carried
    ticket, the random mask, the ticket found on the target, and the target's dense net."""
    pruned = table[table.kind.isin(["ticket", "random_mask"])].copy()
    if pruned.empty:
        return pd.DataFrame({"note": ["no ticket transfer on this dataset (see transfer.missing)"]})
    pruned["arm"] = pruned.kind.map({"ticket": "carried ticket", "random_mask": "random mask"})
    pruned.loc[pruned.source == pruned.target, "arm"] = "found on target"
    cells = []
    for (model, target), part in pruned.groupby(["model", "target"], sort=False):
        dense = table[(table.kind == "dense") & (table.model == model) & (table.target == target)]
        for source in part.loc[part.source != target, "source"].unique():
            rows = part[(part.source == source) | (part.source == target)]
            stats = _mean_sd(rows, ["arm", "sparsity"], metric)
            for (arm, sparsity), r in stats.iterrows():
                cells.append({"model": model, "source": source, "target": target, "arm": arm,
                              "sparsity": f"{sparsity:.0%}", "cell": mean_sd_cell(r["mean"], r["sd"])})
            d = dense[metric]
            cells.append({"model": model, "source": source, "target": target, "arm": "dense on target",
                          "sparsity": "0%", "cell": mean_sd_cell(d.mean(), d.std())})
    wide = pd.DataFrame(cells).pivot_table(index=["model", "source", "target", "arm"], columns="sparsity",
                                           values="cell", aggfunc="first", sort=False)
    return wide.fillna("")


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The lottery-ticket study's transfer claim on this data, per direction and sparsity: (t1) a carried
    ticket beats a random mask of the same per-layer counts on the target; (t2) it comes within 1 pt
    of AUC of the ticket found on the target itself. Spread: the larger sd over seeds of the two sides."""
    rows = []
    carriedt = table[(table.kind == "ticket") & (table.source != table.target)]
    for (model, source, target, sparsity), part in carriedt.groupby(["model", "source", "target", "sparsity"],
                                                                    sort=False):
        def side(kind, src, m=model, tgt=target, s=sparsity):
            r = table[(table.model == m) & (table.kind == kind) & (table.source == src) & (table.target == tgt) &
                      (table.sparsity == s)]["auc"]
            return r.mean(), r.std()
        a, a_sd = part["auc"].mean(), part["auc"].std()
        for claim, (b, b_sd), slack in (("(t1) carried ticket beats a random mask", side("random_mask", source), 0.0),
                                        ("(t2) carried ticket within 1 pt of the target's own", side("ticket", target),
                                         0.01)):
            margin, spread = a - b + slack, max(a_sd, b_sd)
            rows.append({"claim": claim, "model": model, "source": source, "target": target, "sparsity": sparsity,
                         "carried": a, "other": b, "margin": margin, "spread": spread,
                         "verdict": verdict(margin, spread)})
    return pd.DataFrame(rows).round({"carried": 4, "other": 4, "margin": 4, "spread": 4})


def model_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Models across datasets and compressions: rows model and training data, columns the test data,
    mean ± sd over the seeds each model has."""
    part = table[table.kind == "model"]
    stats = _mean_sd(part, ["model", "source", "target"], metric)
    cells = stats.assign(cell=[mean_sd_cell(m, s) for m, s in zip(stats["mean"], stats["sd"])]).reset_index()
    return cells.pivot_table(index=["model", "source"], columns="target", values="cell", aggfunc="first",
                             sort=False).fillna("")


def heldout_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per model and method: AUC on that method's test fakes when training saw it and when it was held out."""
    part = table[table.kind.isin(["seen", "heldout"])]
    if part.empty:
        return pd.DataFrame({"note": ["no held-out-method runs on this dataset (they need FF++)"]})
    stats = part.groupby(["model", "method", "kind"], sort=False)[metric].mean().unstack("kind")
    stats = stats[["seen", "heldout"]]
    stats["gap"] = stats["seen"] - stats["heldout"]
    stats["seeds"] = part[part.kind == "heldout"].groupby(["model", "method"])["seed"].nunique()
    return stats.round(3)
