"""What the notebooks call: one module per notebook, all with the same shape.

Every study takes the resolved profile `p` (`config.resolve(profile, dataset=..., data_root=..., ...)`, made
once at the notebook or command) and exposes the same verbs:

- `run(p)`: build or read back what is missing (data, crops, runs, scores), write its results file
  `data/runs/<profile>/results/<name>.csv`, and return a tidy table, one row per run or score, with id
  columns (model, arm, sparsity, ratio, alpha, seed, ...) and the measured values;
- `summary(table)`: mean and sd over seeds per group (`analysis.stats.over_seeds`), for display;
- `verdicts(p, table)` where the studies make claims: one row per claim, decided by `analysis.stats`,
  written to `results/<name>_verdicts.csv`;
- `findings(p)`: the study's results in words and small tables, generated from its results files (the same
  text in the notebook and, through `dflite results`, in the README).

`crop_store(p)` gives a notebook its crop store, generating the synthetic set and extracting the crops when
they are missing (both steps reuse finished work), so no notebook retypes the data setup.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .. import paths
from ..config import Profile, override
from ..data.extract import extract
from ..data.store import CropStore, store_dir
from ..engine.runs import versions
from ..folders import remake_advice
from .datasets import dataset_roots, primary_kind

__all__ = ["crop_store", "dataset_roots", "elapsed", "environment", "primary_kind", "read_results", "results_dir"]

_STARTED = time.perf_counter()  # a notebook's first cell imports this package: its clock starts here


def environment() -> dict:
    """The versions and the CPU a notebook's numbers were made with (every run's env.json records them too).
    Notebooks 02-08 call it first; it also lets their tables show whole texts (a claim, a verdict's reason), which
    pandas otherwise cuts at 50 characters."""
    pd.set_option("display.max_colwidth", None)
    return versions()


def elapsed() -> str:
    """How long this notebook (this process) has run since its first cell: the last cell of every notebook says it."""
    minutes = (time.perf_counter() - _STARTED) / 60
    return (f"This notebook ran for {minutes:.1f} min in this execution (runs already on disk were read back, not "
            "retrained; the README's run times are those of the `make reproduce` behind the published results).")


def results_dir(p: Profile) -> Path:
    """Where the profile's studies write their results files (data/runs/<profile>/results)."""
    return paths.runs_dir(p.name) / "results"


def read_results(p: Profile, name: str, folder=None) -> pd.DataFrame:
    """results/<name>.csv of the profile (or of `folder`, e.g. the published results/<profile>/), ids kept as
    written ("" stays "", not NaN); a clear error naming the notebook to run when it is missing."""
    path = Path(folder or results_dir(p)) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{paths.show(path)} is missing: run the notebook that writes it first")
    return pd.read_csv(path, keep_default_na=False, na_values=["nan"])


def crop_store(p: Profile, kind: str | None = None, progress: bool = False, **extract_changes) -> CropStore:
    """The crop store of `kind` (default: the dataset's video kind, FF++ for the synthetic set), built when
    missing. `extract_changes` override the profile's extraction settings (e.g. split_mode="leaky" for the
    leakage ablation); each setting gets its own store."""
    kind = kind or primary_kind(p)
    roots = dataset_roots(p)
    if roots.get(kind) is None:
        raise ValueError(f"dataset {p.dataset!r} has no {kind} data; use dataset='synthetic' or '{kind}'")
    cfg = override(p.extract, **extract_changes)
    out = store_dir(p.name, kind, cfg, synthetic=p.dataset == "synthetic")
    return extract(kind, roots[kind], out, cfg, workers=p.workers, progress=progress, way_out=remake_advice(out))
