"""Statistics over seeds: one summary of a results table (mean and sd per group), the display cell
"mean ± sd", and the verdict rule every study's claims go through."""
from __future__ import annotations

import math

import pandas as pd


def over_seeds(table: pd.DataFrame, by: list, metrics, keep=(), seed: str = "seed") -> pd.DataFrame:
    """Per group of `by`: each metric's mean and sample sd (`<metric>_sd`, nan with one seed), the mean of
    each `keep` column, and `seeds` (rows in the group)."""
    g = table.groupby(by, sort=False)
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


def verdict(margin: float, spread: float) -> str:
    """A study claim judged against the seeds' spread: holds when the margin beyond the claim's
    threshold exceeds the spread, does not hold when the shortfall does, inconclusive in between (or
    with a single seed, where there is no spread to judge against)."""
    if math.isnan(spread) or math.isnan(margin):
        return "inconclusive (one seed)" if math.isnan(spread) else "not measured"
    return "holds" if margin > spread else "does not hold" if margin < -spread else "inconclusive"
