"""Detectors scored on data they were not trained on: another dataset, another compression, a held-out
manipulation method (measurement only; the runs are `experiments.transfer`'s and the other studies')."""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import paths
from ..data.loader import check_input_size, split_dataset
from ..data.store import CropStore
from ..engine.metrics import binary_metrics
from ..engine.runs import FINISHED
from ..engine.train import predict, select_device
from ..nets.checkpoint import load_model


def only_method(store: CropStore, method: str) -> CropStore:
    """The store with the reals and one method's fakes (scoring a held-out method)."""
    keep = store.index["method"].isin(["original", method])
    return dataclasses.replace(store, index=store.index[keep].reset_index(drop=True))


def score(model, store: CropStore, split: str = "test", batch_size: int = 64) -> dict:
    """AUC, ACC and balanced ACC of a model on a store's split (the store's crops at the model's input size)."""
    size = model.dflite_spec["input_size"]
    check_input_size(store, size)
    data = split_dataset(store, split, size)
    scores = predict(model, data, batch_size, select_device())
    metrics = binary_metrics(data.labels, scores)
    return {"auc": metrics["auc"], "acc": metrics["acc"], "bacc": metrics["bacc"], "n": len(data)}


def score_run(run_dir, store: CropStore, split: str = "test") -> dict:
    """A finished run's best weights scored on another store's split."""
    if not (run_dir / FINISHED).is_file():
        raise RuntimeError(f"run {paths.show(run_dir)} is not finished")
    return score(load_model(run_dir / "best.safetensors")[0], store, split)


def round_metrics(row: dict, digits: int = 4) -> dict:
    return {k: round(float(v), digits) if isinstance(v, float | np.floating) else v for k, v in row.items()}


