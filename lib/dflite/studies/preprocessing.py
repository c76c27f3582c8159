"""Notebook 01's study: the crop stores of a dataset, what was found, and where the time went."""
from __future__ import annotations

import pandas as pd

from ..config import Profile
from ..data.faces import haar_config
from ..data.synth import sizes
from ..data.synth.check import store_recall
from . import crop_store
from .datasets import dataset_roots

RESOLUTIONS = tuple(sizes.RESOLUTIONS)
SUMMARY_KEYS = ("media", "failed", "sampled", "with_face", "crops", "detection_rate")
TIME_KEYS = ("stage_seconds", "wall_seconds", "crops_per_second")


def run(p: Profile, progress: bool = True) -> dict:
    """{kind: CropStore} for every kind of data the dataset has (the synthetic set has two)."""
    return {kind: crop_store(p, kind=kind, progress=progress) for kind in dataset_roots(p)}


def summary(store) -> dict:
    return {k: store.summary[k] for k in SUMMARY_KEYS}


def timings(found: dict) -> dict:
    return {kind: {k: s.summary[k] for k in TIME_KEYS} for kind, s in found.items()}


def recall(p: Profile, store, roots: dict) -> pd.DataFrame | None:
    """The store's detector against the synthetic ground truth (None for real data)."""
    return store_recall(store, roots["ffpp"]) if p.dataset == "synthetic" else None


def recall_by_size(p: Profile, faces: int = 6) -> pd.DataFrame:
    """The profile's detector settings on faces rendered at 40-300 px into 480p, 720p and 1080p frames:
    what a real video of those sizes would give (the synthetic videos' faces are all large)."""
    return sizes.recall_by_size(haar_config(p.extract), faces=faces, seed=p.data_seed)
