"""Detectors scored on data they were not trained on: another dataset, another compression, a held-out
manipulation method (measurement only; the runs are `experiments.transfer`'s and the other studies')."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paths
from ..data.loader import check_input_size, split_dataset
from ..data.store import CropStore
from ..engine.metrics import binary_metrics
from ..engine.runs import FINISHED
from ..engine.scorecache import cached_at, file_digest, text_digest
from ..engine.train import predict, select_device
from ..nets.checkpoint import load_model


def only_method(store: CropStore, method: str) -> CropStore:
    """The store with the reals and one method's fakes (scoring a held-out method)."""
    keep = store.index["method"].isin(["original", method])
    return dataclasses.replace(store, index=store.index[keep].reset_index(drop=True))


def score(model, store: CropStore, split: str = "test", batch_size: int = 64) -> dict:
    """AUC, ACC and balanced ACC of a model on a store's split (the store's crops at the model's input size)."""
    data = _split(model, store, split)
    return _metrics(data.labels, predict(model, data, batch_size, select_device()))


def score_run(run_dir, store: CropStore, split: str = "test") -> dict:
    """A finished run's best weights scored on another store's split. The scores are kept under the profile's
    cache (engine.scorecache), keyed by the weights, the store and the crops scored, so a re-executed notebook 05
    scores nothing again."""
    run_dir = Path(run_dir)
    if not (run_dir / FINISHED).is_file():
        raise RuntimeError(f"run {paths.show(run_dir)} is not finished")
    weights = run_dir / "best.safetensors"
    rows = store.index.loc[store.index["split"] == split, ["crop", "label"]].to_csv(index=False)
    key = {"weights": file_digest(weights), "store": store.fingerprint, "split": split, "rows": rows}

    def compute() -> dict:
        model = load_model(weights)[0]
        data = _split(model, store, split)
        return {"labels": data.labels, "scores": predict(model, data, SCORE_BATCH, select_device())}

    try:  # runs/<profile>/<run...>: the cache goes beside the profile's runs, one file per run and crops scored
        profile, *run = run_dir.resolve().relative_to(paths.data_dir() / "runs").parts
    except ValueError:  # a run folder elsewhere: scored, not kept
        got = compute()
    else:
        name = text_digest(run, split, store.fingerprint, rows)
        got = cached_at(paths.runs_dir(profile) / "cache" / "scored" / f"{name}.safetensors", key, compute)
    return _metrics(got["labels"], got["scores"])


SCORE_BATCH = 64


def own_test(run_dir) -> dict:
    """A finished run's metrics on its own store's test split, as its final evaluation wrote them (what score_run
    would compute again from the same weights and crops)."""
    run_dir = Path(run_dir)
    if not (run_dir / FINISHED).is_file():
        raise RuntimeError(f"run {paths.show(run_dir)} is not finished")
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    n = len(pd.read_csv(run_dir / "predictions_test.csv"))
    return {"auc": metrics["auc"], "acc": metrics["acc"], "bacc": metrics["bacc"], "n": n}


def _split(model, store: CropStore, split: str):
    size = model.dflite_spec["input_size"]
    check_input_size(store, size)
    return split_dataset(store, split, size)


def _metrics(labels, scores) -> dict:
    metrics = binary_metrics(labels, scores)
    return {"auc": metrics["auc"], "acc": metrics["acc"], "bacc": metrics["bacc"], "n": len(labels)}


def round_metrics(row: dict, digits: int = 4) -> dict:
    return {k: round(float(v), digits) if isinstance(v, float | np.floating) else v for k, v in row.items()}


