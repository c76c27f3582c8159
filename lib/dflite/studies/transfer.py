"""Notebook 05's study: tickets and models carried across datasets, compressions and held-out methods.

`run(p)` trains what is missing in one job graph (ticket studies on both datasets, carried tickets and
random masks both ways, held-out-method runs) and returns one row per score: model, source, target, kind,
method, sparsity, seed, auc, acc, bacc, n, run. Kinds:

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
from ..analysis import transfer as scoring
from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, cell, cells, judge, over_seeds, paired, per_seed, unlearned
from ..config import Profile
from ..data.sources import DatasetLayoutError
from ..engine.jobs import run_jobs
from ..engine.runs import results_path, write_results
from ..experiments import lottery as tickets
from ..experiments import transfer
from . import baselines, crop_store, dataset_roots, read_results
from .lottery import label, ticket

__all__ = ["carried", "findings", "heldout_table", "missing", "model_table", "results_file", "run", "summary",
           "verdicts"]

KINDS = ("ffpp", "openforensics")
COLUMNS = ["model", "source", "target", "kind", "method", "sparsity", "seed", "auc", "acc", "bacc", "n", "run"]


def results_file(p: Profile):
    return results_path(p.name, "transfer")


def _stores(p: Profile) -> dict:
    """{kind: store} for the kinds the dataset has, and "c40" (FF++ at the other compression) when it has
    those videos. A real root is one dataset: the parts that need both are left out (`missing` says why)."""
    roots = dataset_roots(p)
    stores = {kind: crop_store(p, kind=kind) for kind in KINDS if roots.get(kind) is not None}
    if "ffpp" in stores:
        try:
            stores["c40"] = crop_store(p, kind="ffpp", compression=p.transfer.compression)
        except DatasetLayoutError:  # a real FF++ download without that compression
            pass
    return stores


def missing(p: Profile) -> list:
    """What this dataset cannot show, and why (empty for the synthetic set, which has everything)."""
    roots = dataset_roots(p)
    absent = [k for k in KINDS if roots.get(k) is None]
    return [f"ticket transfer: needs FF++ and OpenForensics, {p.dataset!r} has no {', '.join(absent)}"] if absent \
        else []


def _row(model, source, target, kind, seed, metrics, run_dir, method="", sparsity=0.0) -> dict:
    # The run as the other results tables show it: relative to data/runs/<profile>/.
    run = Path(*run_dir.relative_to(paths.data_dir() / "runs").parts[1:]).as_posix()
    return scoring.round_metrics({
        "model": model, "source": source, "target": target, "kind": kind, "method": method, "sparsity": sparsity,
        "seed": seed, "auc": metrics["auc"], "acc": metrics["acc"], "bacc": metrics["bacc"], "n": metrics.get("n", ""),
        "run": run})


def run(p: Profile, progress: bool = True) -> pd.DataFrame:
    """Train what is missing (one graph, `p.workers` at a time), then score everything; writes
    results/transfer.csv. Needs notebook 02's baselines for the model rows (it says so when missing)."""
    study = p.transfer
    stores = _stores(p)
    both = all(kind in stores for kind in KINDS)
    # Each dataset's ticket studies (notebook 03's, shared) whether or not the other dataset is there: a real
    # FF++-only root still gets its dense and ticket rows and the held-out runs' "seen" comparison.
    studies = {(kind, model, s): ticket(p, model, kind, stores[kind], s)
               for kind in KINDS if kind in stores for model in study.models for s in study.seeds}
    pairs = [(studies[(a, model, s)], studies[(b, model, s)])
             for a, b in (KINDS, KINDS[::-1]) for model in study.models for s in study.seeds] if both else []
    ffpp = label(p.dataset, "ffpp")
    held = [transfer.HeldOut(p.name, model, ffpp, stores["ffpp"].ref(), p.lottery_recipe(model), s, method=m)
            for model in study.models for s in study.heldout_seeds for m in _methods(stores["ffpp"])] \
        if "ffpp" in stores else []
    jobs = [job for t in studies.values() for job in t.jobs(("imp",))]
    jobs += [transfer.Carried(src, tgt, kind, level) for src, tgt in pairs for level in study.levels
             for kind in transfer.KINDS]
    run_jobs(jobs + held, p.workers, progress, "transfer runs")

    rows = []
    for (_, model, s), t in studies.items():
        dense = tickets.Dense(t).row()
        rows.append(_row(model, t.dataset, t.dataset, "dense", s, dense, paths.runs_dir(p.name) / dense["run"]))
        for level in study.levels:
            found = tickets.Level(t, "imp", level).row()
            rows.append(_row(model, t.dataset, t.dataset, "ticket", s, found, paths.runs_dir(p.name) / found["run"],
                             sparsity=t.sparsities[level - 1]))
    for src, tgt in pairs:
        for level in study.levels:
            for kind in transfer.KINDS:
                result = transfer.Carried(src, tgt, kind, level).result()
                rows.append(_row(src.model, src.dataset, tgt.dataset, kind, src.seed, result.metrics, result.run_dir,
                                 sparsity=src.sparsities[level - 1]))
    rows += _model_rows(p, stores, studies)
    rows += _heldout_rows(held, stores.get("ffpp"), studies)
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_results(p.name, "transfer", table.set_index("model"))
    return table


def _methods(store) -> list:
    return sorted(m for m in store.index["method"].unique() if m != "original")


def _model_rows(p: Profile, stores: dict, studies: dict) -> list:
    """Notebook 02's FF++ runs on FF++ c23 (their own test), c40 and OpenForensics; the OpenForensics
    ticket studies' dense runs on OpenForensics and both FF++ compressions."""
    ffpp, of = label(p.dataset, "ffpp"), label(p.dataset, "openforensics")
    c40 = f"{ffpp}-{p.transfer.compression}"
    rows = []
    targets = [(name, stores[kind]) for name, kind in ((ffpp, "ffpp"), (c40, "c40"), (of, "openforensics"))
               if kind in stores]
    for job in baselines.jobs(p, stores["ffpp"]) if "ffpp" in stores else []:
        run = job.run()
        if not run.finished:
            raise RuntimeError(f"the baseline run {paths.show(run.dir)} is missing: run notebook 02 first")
        for target, store in targets:  # on its own test split, the run's final evaluation is that score
            metrics = scoring.own_test(run.dir) if target == ffpp else scoring.score_run(run.dir, store)
            rows.append(_row(job.model, ffpp, target, "model", job.seed, metrics, run.dir))
    for (kind, model, s), t in studies.items():
        if kind != "openforensics":
            continue
        folder = t.dense_run().dir
        for target, store in targets:
            metrics = scoring.own_test(folder) if target == of else scoring.score_run(folder, store)
            rows.append(_row(model, of, target, "model", s, metrics, folder))
    return rows


def _heldout_rows(held: list, store, studies: dict) -> list:
    """Per held-out run: its score on the method it never saw, and the all-methods run's on the same crops."""
    rows = []
    for h in held:
        only = scoring.only_method(store, h.method)
        run_dir = h.run().dir
        rows.append(_row(h.model, f"{h.dataset} without {h.method}", h.dataset, "heldout", h.seed,
                         scoring.score_run(run_dir, only), run_dir, method=h.method))
        full = studies.get(("ffpp", h.model, h.seed))
        if full is not None:
            dense = full.dense_run().dir
            rows.append(_row(h.model, h.dataset, h.dataset, "seen", h.seed, scoring.score_run(dense, only), dense,
                             method=h.method))
    return rows


def summary(table: pd.DataFrame, metrics=("auc", "acc", "bacc")) -> pd.DataFrame:
    """Mean and sd over seeds per model, source, target, kind, method and sparsity."""
    return over_seeds(table, ["model", "source", "target", "kind", "method", "sparsity"], metrics)


def carried(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Ticket transfer: per model, source -> target and sparsity, mean ± sd over seeds of the carried
    ticket, the random mask, the ticket found on the target, and the target's dense net."""
    pruned = table[table.kind.isin(["ticket", "random_mask"])].copy()
    if not (pruned.source != pruned.target).any():  # one dataset: its own tickets, none carried
        return pd.DataFrame({"note": ["no ticket transfer on this dataset (see transfer.missing)"]})
    pruned["arm"] = pruned.kind.map({"ticket": "carried ticket", "random_mask": "random mask"})
    pruned.loc[pruned.source == pruned.target, "arm"] = "found on target"
    found = []
    for (model, target), part in pruned.groupby(["model", "target"], sort=False):
        dense = table[(table.kind == "dense") & (table.model == model) & (table.target == target)]
        for source in part.loc[part.source != target, "source"].unique():
            rows = part[(part.source == source) | (part.source == target)]
            stats = over_seeds(rows, ["arm", "sparsity"], [metric])
            for (arm, sparsity), shown in cells(stats, metric).items():
                found.append({"model": model, "source": source, "target": target, "arm": arm,
                              "sparsity": f"{sparsity:.0%}", "cell": shown})
            d = dense[metric]
            found.append({"model": model, "source": source, "target": target, "arm": "dense on target",
                          "sparsity": "0%", "cell": cell(d.mean(), d.std())})
    wide = pd.DataFrame(found).pivot_table(index=["model", "source", "target", "arm"], columns="sparsity",
                                           values="cell", aggfunc="first", sort=False)
    return wide.fillna("")


def verdicts(p: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The lottery-ticket study's transfer claim on this data, per direction and sparsity, decided by
    analysis.stats on the paired per-seed AUC on the target (Holm over the table): (t1) a carried ticket beats
    a random mask with the same per-layer counts; (t2) it loses at most `within` AUC against the ticket found
    on the target itself. Not testable where the target's or the source's dense net did not learn."""
    floor, within = p.evidence.learned_auc, p.transfer.within
    rows = []
    carried_ = table[(table.kind == "ticket") & (table.source != table.target)]
    for (model, source, target, sparsity), part in carried_.groupby(["model", "source", "target", "sparsity"],
                                                                   sort=False):
        def side(kind, src, m=model, tgt=target, s=sparsity):
            return per_seed(table, {"model": m, "kind": kind, "source": src, "target": tgt, "sparsity": s}, "auc")
        dense = {d: side("dense", d, s=0.0, tgt=d) for d in (source, target)}
        why = unlearned(dense[target], floor, f"dense {model} on {target}") or \
            unlearned(dense[source], floor, f"dense {model} on {source}")
        mine = part.set_index("seed")["auc"]
        for claim, other in ((Claim("(t1) a carried ticket beats a random mask"), side("random_mask", source)),
                             (Claim(f"(t2) a carried ticket loses at most {within:g} AUC against the target's own",
                                    -within), side("ticket", target))):
            rows.append({"claim": claim, "model": model, "source": source, "target": target, "sparsity": sparsity,
                         "a": mine.mean(), "b": other.mean(), "values": paired(mine, other), "untestable": why})
    out = judge(rows, p.evidence.alpha)
    write_results(p.name, "transfer_verdicts", out.set_index("claim"))
    return out


def findings(p: Profile, folder=None) -> Markdown:
    """Transfer in words: each claim's verdict, detectors across data (test AUC, mean over seeds), held-out
    methods."""
    table, verdicts = read_results(p, "transfer", folder), read_results(p, "transfer_verdicts", folder)
    if len(verdicts):
        lines = [f"**Transferability** (notebook 05). Claims: {counts(verdicts)}.",
                 *verdict_lines(verdicts, ["model", "source", "target", "sparsity"])]
    else:
        lines = ["**Transferability** (notebook 05): no ticket transfer on this dataset."]
    models = table[table.kind == "model"]
    if len(models):
        means = models.groupby(["model", "source", "target"], sort=False)["auc"].mean().round(3).unstack("target")
        lines += ["", "Detectors scored on other data (test AUC, mean over seeds; rows: trained on):", "",
                  mdtable(means)]
    held = heldout_table(table)
    if "gap" in held:
        lines += ["", "Each manipulation method held out of training (test AUC on its fakes against the reals):", "",
                  mdtable(held)]
    return Markdown("\n".join(lines))


def model_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Models across datasets and compressions: rows model and training data, columns the test data,
    mean ± sd over the seeds each model has."""
    part = table[table.kind == "model"]
    stats = over_seeds(part, ["model", "source", "target"], [metric])
    shown = stats.assign(cell=cells(stats, metric)).reset_index()
    return shown.pivot_table(index=["model", "source"], columns="target", values="cell", aggfunc="first",
                             sort=False).fillna("")


def heldout_table(table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Per model and method: AUC on that method's test fakes when training saw it and when it was held out."""
    part = table[table.kind.isin(["seen", "heldout"])]
    if part.empty:
        return pd.DataFrame({"note": ["no held-out-method runs on this dataset (they need FF++)"]})
    stats = part.groupby(["model", "method", "kind"], sort=False)[metric].mean().unstack("kind")
    stats = stats.reindex(columns=["seen", "heldout"])  # "seen" is absent where no FF++ ticket study ran
    stats["gap"] = stats["seen"] - stats["heldout"]
    stats["seeds"] = part[part.kind == "heldout"].groupby(["model", "method"])["seed"].nunique()
    return stats.round(3)
