"""Tickets and models carried to data they were not made on.

Ticket transfer (the lottery-ticket study's cross-dataset experiment): the IMP mask a ticket study
found on dataset A at some level is trained from A's rewind point on dataset B, against a random mask
with the same count per layer on the same weights; the dense net and the ticket IMP finds on B itself
are B's own references (notebook 03's runs, or runs of the same kind on B). With rewind epoch 0 the
rewind point is the seed's initialisation, which B's dense run starts from too.

Model transfer: a finished run's best weights scored on another crop store's test split (another
dataset, another compression). Held-out methods: a run trained without one manipulation method
(its fakes leave every split), scored on the test fakes of that method and the test reals.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .. import paths
from ..compress import lottery
from ..compress.masks import Mask, random_mask
from ..data.extract import CropStore, load_store
from ..data.loader import check_input_size, split_dataset
from ..engine.metrics import binary_metrics
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, predict, seeded_model, select_device
from ..nets.checkpoint import load_model, load_weights

KINDS = ("ticket", "random_mask")


@dataclass(frozen=True)
class Carry:
    """A model's tickets carried from one ticket study (source) to another on other data (target),
    both at the same seed and recipe; picklable for spawned workers."""

    source: lottery.Ticket
    target: lottery.Ticket


@dataclass(frozen=True)
class Job:
    carry: Carry
    kind: str                   # ticket | random_mask
    level: int                  # the source's IMP level whose mask is carried

    @property
    def key(self) -> tuple:
        s, t = self.carry.source, self.carry.target
        return ("transfer", s.model, s.dataset, t.dataset, s.seed, self.kind, self.level)


def source_mask(job: Job) -> Mask:
    """The carried mask: the source's IMP mask at the level, or a random one with its per-layer counts."""
    s = job.carry.source
    folder = lottery.level_dir(lottery.dense_run(s, load_store(s.store_root)), "imp", job.level)
    if not (folder / FINISHED).is_file():
        raise RuntimeError(f"carrying a {s.dataset} ticket needs its finished IMP run {paths.show(folder)} first "
                           "(run the ticket study on the source data)")
    mask = Mask.load(folder / lottery.MASK)
    if job.kind == "ticket":
        return mask
    # Another draw than the lottery study's random_mask arm on the source (offset 500): an independent control.
    return random_mask(mask, torch.Generator().manual_seed(s.seed * 1000 + job.level + 500))


def job_run(job: Job, mask: Mask, store: CropStore) -> Run:
    """The run folder of a carried mask trained on the target store; its identity names the source run."""
    s, t = job.carry.source, job.carry.target
    source_dense = lottery.dense_run(s, load_store(s.store_root))
    settings = {"kind": job.kind, "source": s.dataset, "source_run": source_dense.dir.parent.name,
                "level": job.level, "sparsity": s.sparsities[job.level - 1], "rewind_epoch": s.rewind_epoch,
                "mask": mask.fingerprint()}
    return train_run(t.profile, "transfer", t.model, t.dataset, t.cfg, store, t.seed, input_size(t.cfg, t.model),
                     settings=settings)


def finished(job: Job) -> bool:
    s = job.carry.source
    folder = lottery.level_dir(lottery.dense_run(s, load_store(s.store_root)), "imp", job.level)
    if not (folder / FINISHED).is_file():
        return False
    return job_run(job, source_mask(job), load_store(job.carry.target.store_root)).finished


def train_job(job: Job, progress: bool = False) -> RunResult:
    """Train a carried mask on the target data from the source's rewind point (or read it back)."""
    s, t = job.carry.source, job.carry.target
    if (s.model, s.seed, s.cfg, s.rewind_epoch) != (t.model, t.seed, t.cfg, t.rewind_epoch):
        raise ValueError("a ticket is carried between studies of the same model, seed, recipe and rewind epoch")
    store = load_store(t.store_root)
    mask = source_mask(job)
    model = seeded_model(s.model, s.cfg, s.seed)
    load_weights(model, lottery.dense_run(s, load_store(s.store_root)).path(lottery.REWIND), s.model)
    mask.check(model)
    mask.apply(model)
    run = job_run(job, mask, store)

    def save_mask(net, step):
        mask.save(run.path(lottery.MASK), {"kind": job.kind, "level": job.level, "sparsity": mask.sparsity})
    return fit(model, store, t.cfg, run, Hooks(after_step=mask.after_step, at_step={0: save_mask}),
               progress=progress, start_epoch=s.rewind_epoch)


def plan(carry: Carry, levels, kinds=KINDS) -> tuple:
    """({key: Job}, {key: keys it needs}): every kind at every level, each after the source's IMP level."""
    jobs, needs = {}, {}
    for level in levels:
        for kind in kinds:
            job = Job(carry, kind, level)
            jobs[job.key] = job
            needs[job.key] = {lottery.Job(carry.source, "imp", level).key}
    return jobs, needs


@dataclass(frozen=True)
class HeldOut:
    """A dense run trained on a store without one manipulation method; picklable for spawned workers."""

    profile: str
    model: str
    dataset: str                # the label in run names and tables
    store_root: str
    cfg: object                 # TrainConfig
    seed: int
    method: str                 # the method left out of training (and validation)

    @property
    def key(self) -> tuple:
        return ("heldout", self.model, self.dataset, self.seed, self.method)

    def run(self) -> Run:
        # The data identity is the full store's; the settings say which method training never saw.
        return train_run(self.profile, "heldout", self.model, self.dataset, self.cfg, load_store(self.store_root),
                         self.seed, input_size(self.cfg, self.model), settings={"held_out": self.method})


def train_heldout(job: HeldOut, progress: bool = False) -> RunResult:
    store = without_method(load_store(job.store_root), job.method)
    return fit(seeded_model(job.model, job.cfg, job.seed), store, job.cfg, job.run(), progress=progress)


def train_any(job) -> None:
    """Worker entry for a graph that mixes ticket-study, transfer and held-out jobs."""
    if isinstance(job, Job):
        train_job(job)
    elif isinstance(job, HeldOut):
        train_heldout(job)
    else:
        lottery.train_job(job)


def without_method(store: CropStore, method: str) -> CropStore:
    """The store with one manipulation method's crops left out of every split (held-out training)."""
    if method not in set(store.index["method"]):
        raise ValueError(f"crop store {paths.show(store.root)} has no method {method!r}")
    return dataclasses.replace(store, index=store.index[store.index["method"] != method].reset_index(drop=True))


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


