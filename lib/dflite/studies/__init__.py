"""What the notebooks call: each study's inputs through one cached call, one module per notebook.

`crop_store(profile, dataset, data_root)` gives a notebook its crop store, generating the synthetic
set and extracting the crops when they are missing (both steps reuse finished work), so no notebook
retypes the data setup. `train_config(profile, model)` is the profile's recipe for one model.
"""
from __future__ import annotations

from ..config import TrainConfig, get_profile, override
from ..data.extract import CropStore, extract, store_dir
from .datasets import DATASETS, dataset_roots

__all__ = ["DATASETS", "crop_store", "dataset_roots", "mean_sd_cell", "train_config"]


def crop_store(profile: str, dataset: str = "synthetic", data_root: str = "", kind: str = "ffpp", seed: int = 0,
               workers: int = 2, progress: bool = False, **extract_changes) -> CropStore:
    """The crop store of `kind` (ffpp | openforensics) for a notebook, built when missing.

    `extract_changes` override the profile's extraction settings (e.g. split_mode="leaky" for the
    leakage ablation); each setting gets its own store.
    """
    roots = dataset_roots(dataset, data_root, profile, seed)
    if roots.get(kind) is None:
        raise ValueError(f"dataset {dataset!r} has no {kind} data; use dataset='synthetic' or '{kind}'")
    cfg = override(get_profile(profile).extract, **extract_changes)
    out = store_dir(profile, kind, cfg, synthetic=dataset == "synthetic")
    return extract(kind, roots[kind], out, cfg, workers=workers, progress=progress)


def train_config(profile, model: str) -> TrainConfig:
    """The profile's training recipe for `model`: its TrainConfig with the model's own changes."""
    p = get_profile(profile) if isinstance(profile, str) else profile
    return override(p.train, **dict(p.recipes).get(model, {}))


def mean_sd_cell(mean: float, sd: float, digits: int = 3) -> str:
    """'mean ± sd' for a table cell; just the mean where there is no sd (one seed)."""
    import math

    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None and not math.isnan(sd) else "")

