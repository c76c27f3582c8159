"""Do the quick verdicts survive other arithmetic? The studies that judge claims, run again with another torch
thread count per run (a stand-in for another CPU: a run's float sums change with its thread count), then their
verdict tables compared with the ones this machine's `make reproduce` wrote.

    DFLITE_DATA=/tmp/threads2 .venv/bin/python benchmarks/verdict_stability.py --threads 2
    .venv/bin/python benchmarks/verdict_stability.py --compare data/runs/quick/results /tmp/threads2/runs/quick/results

The first command trains the quick studies of notebooks 02-06 at `--threads` torch threads per run (one run at
a time) into its own data folder and writes their verdict tables; the second prints, claim by claim, where two
folders' verdicts differ (and where a "not testable" gives another reason), and exits 1 if a verdict differs.
The data folder needs the same synthetic set and crop stores (copy or hard-link `synth/` and `crops/`; a symlink
is refused, since a store records where its videos are): only the training arithmetic differs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from dflite.config import override, resolve
from dflite.studies import baselines, gradcam, lottery, structured, transfer

VERDICTS = ("tickets_verdicts", "structured_verdicts", "transfer_verdicts", "gradcam_verdicts")


def run(threads: int, workers: int) -> None:
    p = resolve("quick", workers=workers)
    p = override(p, train=override(p.train, cpu_threads=threads))
    started = time.perf_counter()
    baselines.run(p, progress=True)
    lottery.verdicts(p, lottery.run(p, progress=True))
    structured.verdicts(p, structured.run(p, progress=True))
    transfer.verdicts(p, transfer.run(p, progress=True))
    gradcam.verdicts(p, gradcam.run(p, progress=True)[1])
    print(f"quick studies at {threads} thread(s) per run: {time.perf_counter() - started:.0f} s")


TABLES = {"tickets": ["model", "dataset", "arm", "sparsity", "seed"],
          "structured": ["model", "arm", "ratio", "scope", "steps", "alpha", "match", "seed"],
          "transfer": ["model", "source", "target", "kind", "method", "sparsity", "seed"]}


def moved(a: Path, b: Path) -> None:
    """How far single runs' test AUC moved between the two folders (the arithmetic, not the verdicts)."""
    for name, on in TABLES.items():
        left, right = (pd.read_csv(Path(f) / f"{name}.csv", keep_default_na=False, na_values=["nan"])
                       for f in (a, b))
        both = left.merge(right, on=[c for c in on if c in left], suffixes=("_a", "_b"))
        d = (both.auc_a - both.auc_b).abs()
        print(f"{name}: {len(both)} runs, test AUC moved by median {d.median():.4f}, max {d.max():.4f}")


def compare(a: Path, b: Path) -> int:
    """Claim by claim: the verdict (holds / does not hold / inconclusive / not testable) must be the same; the
    reason a "not testable" gives may quote another AUC. Exit status 1 when a verdict differs."""
    moved(a, b)
    flipped = 0
    keys = ["claim", "model", "dataset", "sparsity", "source", "target", "variant", "against"]
    for name in VERDICTS:
        left, right = (pd.read_csv(Path(f) / f"{name}.csv", keep_default_na=False) for f in (a, b))
        on = [k for k in keys if k in left]
        both = left.merge(right, on=on, suffixes=("_a", "_b"), how="outer", indicator=True)
        kind_a, kind_b = (both[f"verdict_{s}"].astype(str).str.split(":").str[0] for s in "ab")
        flips = both[(both._merge != "both") | (kind_a != kind_b)]
        reasons = both[(both._merge == "both") & (kind_a == kind_b) & (both.verdict_a != both.verdict_b)]
        print(f"{name}: {len(both)} claims, {len(flips)} verdicts differ, {len(reasons)} give another reason")
        for r in pd.concat([flips, reasons]).itertuples():
            print("  ", " / ".join(str(getattr(r, k)) for k in on), ":", r.verdict_a, "->", r.verdict_b)
        flipped += len(flips)
    return 1 if flipped else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--workers", type=int, default=1, help="runs at a time (threads x workers <= cores)")
    ap.add_argument("--compare", nargs=2, metavar="RESULTS_DIR", help="compare the verdicts of two results folders")
    args = ap.parse_args()
    if args.compare:
        sys.exit(compare(*map(Path, args.compare)))
    run(args.threads, args.workers)


if __name__ == "__main__":
    main()
