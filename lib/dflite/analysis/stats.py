"""Statistics over seeds and the one rule every claim's verdict goes through.

A claim compares two arms that share their seeds (the same initialisation and data order), so it is judged
on the **paired** statistic per seed: the difference of the two arms' test metric at each seed (or a derived
per-seed value, such as the share of the dense accuracy a pruned net keeps). The claim holds when that
statistic exceeds a margin stated before any run (`Claim.margin`: 0 for "A beats B", -0.01 for "A loses at
most 1 pt against B", 0.9 for "keeps at least 90 %").

Test: a two-sided one-sample t over seeds of the paired values against the margin; the direction of the
mean decides between "holds" and "does not hold" when the test rejects. All testable claims of one verdict
table (a notebook) form one family, corrected with Holm's step-down procedure at `alpha` (5 %), so the
chance of any false "holds" in the table stays within 5 %; each claim's CI is the t interval at the level
Holm tested it at (95 % before correction). Why a t over seeds and not a bootstrap over test videos: the
claims are about training procedures, whose variability is the seed's; both arms are scored on the same
test crops, so most of the test split's sampling error cancels in the paired difference (it is not in the
CI: the claims speak of this test split).

Verdicts: **holds**, **does not hold**, **inconclusive** (the CI contains the margin), and **not testable**
with its reason (fewer than two seeds; a reference that did not learn).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

HOLDS, FAILS, UNSURE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    """A claim of the studies on a paired per-seed statistic: it holds when the statistic exceeds `margin`."""

    text: str                  # "(a) IMP beats one-shot"
    margin: float = 0.0        # stated in advance: 0 "beats", -0.01 "loses at most 1 pt", 0.9 "keeps >= 90 %"
    metric: str = "auc"        # what the per-seed statistic is made of (shown in the table)


def over_seeds(table: pd.DataFrame, by: list, metrics, keep=(), seed: str = "seed") -> pd.DataFrame:
    """Per group of `by`: each metric's mean and sample sd (`<metric>_sd`, nan with one seed), the mean of
    each `keep` column, and `seeds` (rows in the group)."""
    g = table.groupby(by, sort=False, dropna=False)  # an empty id (no match, no method) is a group too
    out = g[list(metrics)].mean()
    for m in metrics:
        out[f"{m}_sd"] = g[m].std()
    for c in keep:
        out[c] = g[c].mean()
    out["seeds"] = g[seed].count()
    return out


def cell(mean: float, sd: float | None, digits: int = 3) -> str:
    """'mean ± sd' for a table cell; just the mean where there is no sd (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None and not math.isnan(sd) else "")


def cells(summary: pd.DataFrame, metric: str, digits: int = 3) -> pd.Series:
    """over_seeds' `metric` and `<metric>_sd` as 'mean ± sd' display strings."""
    return pd.Series([cell(m, s, digits) for m, s in zip(summary[metric], summary[f"{metric}_sd"])],
                     index=summary.index, name=metric)


def per_seed(table: pd.DataFrame, where: dict, metric: str, seed: str = "seed") -> pd.Series:
    """{seed: metric} of the rows matching `where` (column -> value; floats compared to 6 decimals)."""
    keep = pd.Series(True, index=table.index)
    for col, value in where.items():
        keep &= (table[col].round(6) == round(value, 6)) if isinstance(value, float) else (table[col] == value)
    rows = table[keep]
    return pd.Series(rows[metric].to_numpy(dtype=float), index=rows[seed].to_numpy())


def paired(a: pd.Series, b: pd.Series | float) -> np.ndarray:
    """a - b at the seeds both have (b may be a constant): the per-seed paired differences."""
    if not isinstance(b, pd.Series):
        return (a - b).dropna().to_numpy()
    seeds = sorted(set(a.dropna().index) & set(b.dropna().index))
    return np.array([a[s] - b[s] for s in seeds], dtype=float)


def t_test(values, margin: float) -> dict:
    """Two-sided one-sample t of the per-seed values against `margin`: n, mean, sd, the t statistic and p."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": sd, "t": math.nan, "p": math.nan}
    if sd == 0:  # every seed gave the same value: no spread to judge against
        return {"n": n, "mean": mean, "sd": sd, "t": math.nan, "p": 1.0 if mean == margin else 0.0}
    t = (mean - margin) / (sd / math.sqrt(n))
    return {"n": n, "mean": mean, "sd": sd, "t": float(t), "p": float(2 * st.t.sf(abs(t), n - 1))}


def t_interval(values, level: float) -> tuple:
    """The two-sided t interval of the mean of `values` at confidence `level` (nan with fewer than 2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    half = st.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def holm(p_values, alpha: float = 0.05) -> tuple:
    """Holm's step-down procedure: (adjusted p-values, rejected, the level each was tested at), in input order.
    nan p-values (untestable claims) are left out of the family."""
    p = np.asarray(p_values, dtype=float)
    testable = np.flatnonzero(~np.isnan(p))
    adjusted, rejected = np.full(len(p), np.nan), np.zeros(len(p), dtype=bool)
    level = np.full(len(p), np.nan)
    k = len(testable)
    running = 0.0
    for rank, i in enumerate(testable[np.argsort(p[testable], kind="stable")]):
        running = max(running, min(1.0, (k - rank) * p[i]))  # monotone: never below an earlier step's
        adjusted[i], level[i] = running, alpha / (k - rank)
        rejected[i] = running < alpha
    return adjusted, rejected, level


def judge(rows: list, alpha: float = 0.05) -> pd.DataFrame:
    """The verdict table of one family of claims.

    Each row is a dict with `claim` (a Claim), `values` (the paired per-seed statistic), `untestable` (a
    reason, or "") and any id columns to show (model, dataset, sparsity, a and b: the two arms' means, ...).
    Adds: seeds, stat (the mean of the per-seed values), ci_low, ci_high (at the level Holm tested the claim
    at), margin, p_holm, verdict.
    """
    tests, p = [], []
    for r in rows:
        test = t_test(r["values"], r["claim"].margin)
        reason = r.get("untestable") or ("fewer than two seeds" if test["n"] < 2 else "")
        tests.append((test, reason))
        p.append(math.nan if reason else test["p"])
    adjusted, rejected, level = holm(p, alpha)
    out = []
    for r, (test, reason), p_adj, rej, lev in zip(rows, tests, adjusted, rejected, level):
        claim = r["claim"]
        shown = {k: v for k, v in r.items() if k not in ("claim", "values", "untestable")}
        lo, hi = (math.nan, math.nan) if reason else t_interval(r["values"], 1 - lev)
        if reason:
            verdict = f"not testable: {reason}"
        elif rej:
            verdict = HOLDS if test["mean"] > claim.margin else FAILS
        else:
            verdict = UNSURE
        out.append({"claim": claim.text, **shown, "metric": claim.metric, "seeds": test["n"], "stat": test["mean"],
                    "ci_low": lo, "ci_high": hi, "margin": claim.margin, "p_holm": p_adj, "verdict": verdict})
    table = pd.DataFrame(out, columns=None if out else ["claim", "metric", "seeds", "stat", "ci_low", "ci_high",
                                                         "margin", "p_holm", "verdict"])
    return table.round({c: 4 for c in ("a", "b", "stat", "ci_low", "ci_high", "p_holm") if c in table})


def unlearned(aucs: pd.Series, floor: float, what: str = "the reference", metric: str = "AUC") -> str:
    """A reason the claims on a reference are not testable when it did not learn on some seed, else "" (`aucs`: the
    reference's `metric` per seed)."""
    # three decimals, more where three would round up to the floor itself ("0.75 < 0.75" reads as a bug)
    low = {int(s): round(float(v), 3 if round(float(v), 3) < floor else 4) for s, v in aucs.items()
           if not v >= floor}
    if not low:
        return ""
    seeds = ", ".join(f"seed {s} {metric} {v}" for s, v in low.items())
    return f"{what} did not learn ({seeds} < {floor:g})"


def auc(labels, scores) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half): the same number as scikit-learn's, fast enough
    to bootstrap."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    pos, neg = labels.sum(), (~labels).sum()
    if not pos or not neg:
        return math.nan
    ranks = st.rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def auc_difference(labels, a, b, groups, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """AUC(a) - AUC(b) of two detectors scored on the same test crops, with a percentile bootstrap CI that
    resamples whole groups (identities: the crops of one person are not independent)."""
    labels, a, b, groups = (np.asarray(v) for v in (labels, a, b, groups))
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        diffs.append(auc(labels[idx], a[idx]) - auc(labels[idx], b[idx]))
    lo, hi = np.nanpercentile(diffs, [50 * (1 - level), 50 * (1 + level)])
    return {"diff": auc(labels, a) - auc(labels, b), "low": float(lo), "high": float(hi)}
