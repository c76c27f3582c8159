"""What the notebooks call: one module per notebook, all with the same shape.

Every study takes the resolved profile `p` (`config.resolve(profile, dataset=..., data_root=..., ...)`, made
once at the notebook or command) and exposes the same verbs:

- `run(p)`: build or read back what is missing (data, crops, runs, scores), write its results file
  `data/runs/<profile>/results/<name>.csv`, and return a tidy table, one row per run or score, with id
  columns (model, arm, sparsity, ratio, alpha, seed, ...) and the measured values;
- `summary(table)`: mean and sd over seeds per group (`analysis.stats.over_seeds`), for display;
- `verdicts(table)` where the studies make claims: one row per claim, decided by `analysis.stats`.

`crop_store(p)` gives a notebook its crop store, generating the synthetic set and extracting the crops when
they are missing (both steps reuse finished work), so no notebook retypes the data setup.
"""
from __future__ import annotations

from ..config import Profile, override
from ..data.extract import extract
from ..data.store import CropStore, store_dir
from .datasets import dataset_roots, primary_kind

__all__ = ["crop_store", "dataset_roots", "primary_kind"]


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
    return extract(kind, roots[kind], out, cfg, workers=p.workers, progress=progress)
