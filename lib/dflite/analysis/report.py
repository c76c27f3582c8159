"""Findings as text, generated from results files: the same words and numbers in a notebook and in the README.

Every number a reader sees in prose comes from here: a study's `findings(p)` reads its results CSVs (as
written, rounded to 4 decimals) and returns Markdown, so a notebook showing it and `dflite results` writing
the README's findings section give the same text from the same files.
"""
from __future__ import annotations

import math

import pandas as pd


class Markdown(str):
    """Text that Jupyter shows as Markdown (the last expression of a cell)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def num(x, digits: int = 3, sign: bool = False) -> str:
    """A number for prose: fixed decimals, '–' when missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def table(df: pd.DataFrame, index: bool = True, digits: int = 3) -> str:
    """A Markdown table of a small DataFrame, floats with `digits` decimals, missing values empty."""
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]

    def shown(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return str(v)
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(shown(v) for v in row) + " |")
    return "\n".join(lines)


MEASURED = ("a", "b", "stat", "ci_low", "ci_high", "p_holm")


def decisions(verdicts: pd.DataFrame) -> pd.DataFrame:
    """A verdict table without its measured numbers: each claim, its ids, margin, seeds and verdict. What must
    not change with the arithmetic (nbval compares it)."""
    return verdicts.drop(columns=[c for c in MEASURED if c in verdicts])


def verdict_lines(verdicts: pd.DataFrame, ids: list) -> list:
    """One bullet per claim: the claim and its ids, the verdict, the paired statistic with its CI and seeds."""
    out = []
    for _, r in verdicts.iterrows():
        where = ", ".join(_show(r[c]) for c in ids if c in r and _show(r[c]))
        head = f"- **{r['claim']}**" + (f" ({where})" if where else "") + f": {r['verdict']}"
        if not str(r["verdict"]).startswith("not testable"):
            head += (f"; {r['metric']} {num(r.get('a'))} vs {num(r.get('b'))}, paired {num(r['stat'], sign=True)} "
                     f"[{num(r['ci_low'], sign=True)}, {num(r['ci_high'], sign=True)}] against {num(r['margin'], 2)}, "
                     f"{int(r['seeds'])} seeds")
        out.append(head)
    return out


def counts(verdicts: pd.DataFrame) -> str:
    """'2 hold, 1 does not hold, 5 inconclusive, 3 not testable'."""
    kinds = verdicts["verdict"].str.replace(r"^not testable.*", "not testable", regex=True).value_counts()
    names = {"holds": "hold", "does not hold": "do not hold", "inconclusive": "inconclusive",
             "not testable": "not testable"}
    return ", ".join(f"{kinds[k]} {names[k] if kinds[k] != 1 else k}" for k in names if k in kinds)


def _show(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.0%}" if 0 < v < 1 else f"{v:g}"
    return "" if v is None else str(v)
