"""Notebook 08, part 2: which method made the fake, and does compression keep it?

An attribution head (config.AttributionStudy) is the ticket study's net trained on the same FF++ crops to name
the class of each crop: real, or one of the five manipulation methods. Its fake score is 1 - p(real), so the same
head is also a binary detector. Three arms at every seed: the dense head, its one-shot lottery ticket (global
magnitude pruning of the trained head, rewound as notebook 03 rewinds, retrained under the mask) and Taylor channel
pruning fine-tuned (notebook 04's machinery). The structured arm prunes the ticket study's own dense head, so the
dense head is trained once for both arms.

The question: does sparsity keep the binary decision but lose the attribution? Claims, paired by seed against the
dense head, each with the margin stated in `AttributionStudy.margin`: every compressed arm "keeps the binary
decision" (test AUC loses at most the margin) and "keeps the attribution" (balanced accuracy over the six classes
loses at most the margin); and the head "detects as well as the binary detector" (its AUC against notebook 03's
dense net of the same seed). A dense head below the AUC floor (or, for attribution, below `learned_bacc`) makes the
claims on it not testable.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import paths
from ..analysis.report import Markdown, counts, verdict_lines
from ..analysis.report import table as mdtable
from ..analysis.stats import Claim, cells, judge, over_seeds, paired, per_seed, unlearned
from ..compress.masks import Mask
from ..config import ATTRIBUTION_CLASSES, Profile, override
from ..data.loader import method_classes
from ..engine.jobs import run_jobs
from ..engine.metrics import confusion as confusion_table
from ..engine.runs import Run, results_path, write_results
from ..engine.train import read_result
from ..experiments import lottery
from ..experiments.structured import Slimming, Step, Variant
from ..nets.checkpoint import load_model
from ..nets.models import count_parameters
from . import crop_store, read_results
from .lottery import label

__all__ = ["arms", "binary_detectors", "confusion", "confusions", "findings", "jobs", "recalls", "results_file", "run",
           "summary", "verdicts"]

METRICS = ("auc", "bacc", "attr_bacc", "attr_acc")


def results_file(p: Profile):
    return results_path(p.name, "attribution")


def _cfg(p: Profile):
    return override(p.lottery_recipe(p.attribution.model), target="method")


def ticket(p: Profile, store, seed: int) -> lottery.Ticket:
    """The head's ticket study at `seed`: its dense run, and one level at the study's sparsity (one-shot)."""
    a = p.attribution
    return lottery.Ticket(p.name, a.model, label(p.dataset, "ffpp"), store.ref(), _cfg(p), seed, (a.sparsity,),
                          p.lottery.scope, p.lottery.prune_classifier, p.lottery.rewind_epoch, "oneshot")


@dataclass(frozen=True)
class HeadSlimming(Slimming):
    """The structured arm's study: its dense student is the ticket study's dense head (trained once for both)."""

    ticket: lottery.Ticket | None = None

    def dense(self, model: str):
        return lottery.Dense(self.ticket)


def slimming(p: Profile, t: lottery.Ticket) -> HeadSlimming:
    """Notebook 04's pruning settings on the head; fine-tuned with the head's recipe and the study's `finetune`.
    Its channels are ranked on notebook 04's calibration batches, half real and half fake (the fakes of every method
    as drawn), with the head's own cross-entropy over the six classes."""
    st = p.structured
    return HeadSlimming(p.name, t.dataset, t.store, t.seed, t.model, {t.model: t.cfg},
                        override(t.cfg, **p.attribution.finetune), teacher=t.model, calib_batches=st.calib_batches,
                        max_layer_ratio=st.max_layer_ratio, round_to=st.round_to, ticket=t)


def arms(p: Profile, store) -> list:
    """(arm, seed, job) for every run of the study: dense, the one-shot ticket, the structured arm."""
    out = []
    for seed in p.attribution.seeds:
        t = ticket(p, store, seed)
        out += [("dense", seed, lottery.Dense(t)), ("ticket", seed, lottery.Level(t, "imp", 1)),
                ("structured", seed, Step(slimming(p, t), Variant(p.attribution.ratio), 1))]
    return out


def jobs(p: Profile, store) -> list:
    return [job for _, _, job in arms(p, store)]


def _folder(job):
    return job.run().dir if isinstance(job, (lottery.Dense, Step)) else job.folder


def run(p: Profile, progress: bool = True) -> pd.DataFrame:
    """Train what is missing; one row per arm and seed: params, the fake score's acc, bacc, auc and video AUC,
    and the head's attribution metrics (attr_acc, attr_bacc, recall_<class>). Writes results/attribution.csv."""
    store = crop_store(p)
    found = arms(p, store)
    run_jobs([job for _, _, job in found], p.workers, progress, "attribution runs")
    rows = []
    for arm, seed, job in found:
        folder = _folder(job)
        r = read_result(Run(folder, {}))
        rows.append({"model": p.attribution.model, "arm": arm, "seed": seed,
                     "sparsity": p.attribution.sparsity if arm == "ticket" else 0.0,
                     "ratio": p.attribution.ratio if arm == "structured" else 0.0,
                     "run": folder.relative_to(paths.runs_dir(p.name)).as_posix(),
                     "params": _params(arm, folder),
                     **{k: r.metrics[k] for k in ("acc", "bacc", "auc", "video_auc", "attr_acc", "attr_bacc")},
                     **{k: v for k, v in r.metrics.items() if k.startswith("recall_")}})
    table = pd.DataFrame(rows)
    write_results(p.name, "attribution", table.set_index("model"))
    return table


def _params(arm: str, folder) -> int:
    model = load_model(folder / "best.safetensors")[0]
    if arm == "ticket":
        return Mask.load(folder / lottery.MASK).params_left(model)
    return count_parameters(model)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm: parameters left, AUC, binary and attribution balanced accuracy, mean ± sd over seeds."""
    s = over_seeds(table, ["arm"], list(METRICS), keep=["params"])
    out = pd.DataFrame({m: cells(s, m, 3) for m in METRICS})
    out.insert(0, "params", s["params"].round().astype(int))
    out["seeds"] = s["seeds"]
    return out.rename(columns={"auc": "AUC (fake = 1 - p(real))", "bacc": "binary bacc",
                               "attr_bacc": "attribution bacc", "attr_acc": "attribution acc"})


def recalls(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm and class: the share of its test crops the head names right (mean over seeds)."""
    cols = [f"recall_{c}" for c in ATTRIBUTION_CLASSES if f"recall_{c}" in table]
    out = table.groupby("arm", sort=False)[cols].mean()
    out.columns = [c.removeprefix("recall_") for c in cols]
    return out.round(3)


def confusion(p: Profile, table: pd.DataFrame, arm: str = "dense") -> pd.DataFrame:
    """Row-normalised confusion (true x predicted class) of one arm over all its seeds' test crops."""
    true, predicted = [], []
    names = list(ATTRIBUTION_CLASSES)
    for folder in table.loc[table.arm == arm, "run"]:
        path = paths.runs_dir(p.name) / folder / "predictions_test.csv"
        preds = pd.read_csv(path, keep_default_na=False)
        true += method_classes(preds, path.parent).tolist()
        predicted += preds[[f"p_{c}" for c in names]].to_numpy().argmax(1).tolist()
    return confusion_table(true, predicted, names).round(3)


def confusions(p: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """`confusion` of every arm, stacked (arm, true class) x predicted class."""
    return pd.concat({arm: confusion(p, table, arm) for arm in table.arm.unique()}, names=["arm", "true"])


def binary_detectors(p: Profile, folder=None) -> pd.Series:
    """Notebook 03's dense binary detector of the same net, test AUC per seed (empty when 03 has not run)."""
    try:
        tickets = read_results(p, "tickets", folder)
    except FileNotFoundError:
        return pd.Series(dtype=float)
    part = tickets[(tickets.model == p.attribution.model) & (tickets.dataset == label(p.dataset, "ffpp"))]
    return per_seed(part, {"arm": "dense"}, "auc")


ARM_TEXT = {"ticket": "the one-shot ticket", "structured": "Taylor channel pruning"}


def verdicts(p: Profile, table: pd.DataFrame, detectors: pd.Series | None = None) -> pd.DataFrame:
    """The attribution claims (module docstring), judged with analysis.stats (Holm over the table); writes
    results/attribution_verdicts.csv. `detectors`: notebook 03's dense AUC per seed (binary_detectors)."""
    a, floor = p.attribution, p.evidence.learned_auc
    dense_auc = per_seed(table, {"arm": "dense"}, "auc")
    dense_attr = per_seed(table, {"arm": "dense"}, "attr_bacc")
    auc_why = unlearned(dense_auc, floor, "the dense head")
    attr_why = unlearned(dense_attr, a.learned_bacc, "the dense head's attribution", "balanced accuracy")
    rows = []
    for arm in ("ticket", "structured"):
        size = f"{a.sparsity:.0%} of weights" if arm == "ticket" else f"{a.ratio:.0%} of channels"
        ids = {"arm": arm, "pruned": size}
        auc = per_seed(table, {"arm": arm}, "auc")
        rows.append({"claim": Claim(f"{ARM_TEXT[arm]} keeps the binary decision (loses at most {a.margin:g} AUC)",
                                    -a.margin, "auc"), **ids, "a": auc.mean(), "b": dense_auc.mean(),
                     "values": paired(auc, dense_auc), "untestable": auc_why})
        attr = per_seed(table, {"arm": arm}, "attr_bacc")
        rows.append({"claim": Claim(f"{ARM_TEXT[arm]} keeps the attribution (loses at most {a.margin:g} balanced "
                                    "accuracy)", -a.margin, "attr_bacc"), **ids, "a": attr.mean(),
                     "b": dense_attr.mean(), "values": paired(attr, dense_attr), "untestable": attr_why})
    detectors = binary_detectors(p) if detectors is None else detectors
    why = (unlearned(detectors, floor, "the binary detector") if len(detectors)
           else "notebook 03's results are missing") or auc_why
    rows.append({"claim": Claim(f"the dense head detects as well as the binary detector (loses at most {a.margin:g} "
                                "AUC)", -a.margin, "auc"), "arm": "dense", "pruned": "",
                 "a": dense_auc.mean(), "b": detectors.mean() if len(detectors) else float("nan"),
                 "values": paired(dense_auc, detectors) if len(detectors) else [], "untestable": why})
    out = judge(rows, p.evidence.alpha)
    write_results(p.name, "attribution_verdicts", out.set_index("claim"))
    return out


def findings(p: Profile, folder=None) -> Markdown:
    """Attribution in words: each arm's detection and attribution, and each claim's verdict."""
    table, verdicts = read_results(p, "attribution", folder), read_results(p, "attribution_verdicts", folder)
    lines = [f"**Which method made the fake** (notebook 08): a {p.attribution.model} head over real + "
             f"{len(ATTRIBUTION_CLASSES) - 1} methods (chance balanced accuracy {1 / len(ATTRIBUTION_CLASSES):.3f}), "
             f"dense and compressed; mean ± sd over seeds. Claims: {counts(verdicts)}.", "",
             mdtable(summary(table)), "", *verdict_lines(verdicts, ["pruned"])]
    return Markdown("\n".join(lines))
