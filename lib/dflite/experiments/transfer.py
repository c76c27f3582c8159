"""Tickets carried to data they were not found on, and runs that never saw one manipulation method.

Ticket transfer (the lottery-ticket study's cross-dataset experiment): the IMP mask a ticket study found on
dataset A at some level is trained from A's rewind point on dataset B, against a random mask with the same
count per layer on the same weights; the dense net and the ticket IMP finds on B itself are B's own
references (notebook 03's runs, or runs of the same kind on B). With rewind epoch 0 the rewind point is the
seed's initialisation, which B's dense run starts from too.

Held-out methods: a dense run trained without one manipulation method (its fakes leave every split); the
transfer study scores it on that method's test fakes and the test reals.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .. import paths
from ..compress.masks import Mask, random_mask
from ..data.store import CropStore
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, read_result, seeded_model
from ..nets.checkpoint import load_weights
from .dense import Dense
from .lottery import MASK, REWIND, Level, Ticket

KINDS = ("ticket", "random_mask")


def _recipe(cfg):
    """A recipe apart from its images per epoch: the two datasets' ticket studies may draw different numbers
    (studies.lottery.ticket gives them the same budget), everything else must match."""
    return dataclasses.replace(cfg, epoch_size=0)


@dataclass(frozen=True)
class Carried:
    """A source ticket study's mask at `level` (or a random mask with its per-layer counts) trained on the
    target study's data from the source's rewind point; both studies at the same model, seed and recipe."""

    source: Ticket
    target: Ticket
    kind: str                   # ticket | random_mask
    level: int                  # the source's IMP level whose mask is carried

    def __post_init__(self):
        s, t = self.source, self.target
        if (s.model, s.seed, _recipe(s.cfg), s.rewind_epoch) != (t.model, t.seed, _recipe(t.cfg), t.rewind_epoch):
            raise ValueError("a ticket is carried between studies of the same model, seed, recipe (images per epoch "
                             "aside) and rewind epoch")
        if self.kind not in KINDS:
            raise ValueError(f"unknown carried kind {self.kind!r}; expected {' or '.join(KINDS)}")

    @property
    def key(self) -> tuple:
        s, t = self.source, self.target
        return ("transfer", s.model, s.dataset, t.dataset, s.seed, self.kind, self.level)

    @property
    def needs(self) -> tuple:
        return (Level(self.source, "imp", self.level).key,)

    def mask(self) -> Mask:
        """The carried mask: the source's IMP mask at the level, or a random one with its per-layer counts."""
        s = self.source
        folder = s.level_dir("imp", self.level)
        if not (folder / FINISHED).is_file():
            raise RuntimeError(f"carrying a {s.dataset} ticket needs its finished IMP run {paths.show(folder)} "
                               "first (run the ticket study on the source data)")
        mask = Mask.load(folder / MASK)
        if self.kind == "ticket":
            return mask
        # Another draw than the lottery study's random_mask arm on the source (offset 500): an independent control.
        return random_mask(mask, torch.Generator().manual_seed(s.seed * 1000 + self.level + 500))

    def run(self, mask: Mask) -> Run:
        """The run folder of the carried mask on the target data; its identity names the source run."""
        s, t = self.source, self.target
        settings = {"kind": self.kind, "source": s.dataset, "source_run": s.dense_run().dir.parent.name,
                    "level": self.level, "sparsity": s.sparsities[self.level - 1], "rewind_epoch": s.rewind_epoch,
                    "mask": mask.fingerprint()}
        return train_run(t.profile, "transfer", t.model, t.dataset, t.cfg, t.store, t.seed,
                         input_size(t.cfg, t.model), settings=settings)

    def done(self) -> bool:
        if not (self.source.level_dir("imp", self.level) / FINISHED).is_file():
            return False
        return self.run(self.mask()).finished

    def train(self, progress: bool = False) -> RunResult:
        """Train the carried mask on the target data from the source's rewind point (or read it back)."""
        s, t = self.source, self.target
        mask = self.mask()
        model = seeded_model(s.model, s.cfg, s.seed)
        load_weights(model, s.dense_run().path(REWIND), s.model)
        mask.check(model)
        mask.apply(model)
        run = self.run(mask)

        def save_mask(net, step):
            mask.save(run.path(MASK), {"kind": self.kind, "level": self.level, "sparsity": mask.sparsity})
        return fit(model, t.store.load(), t.cfg, run, Hooks(after_step=mask.after_step, at_step={0: save_mask}),
                   progress=progress, start_epoch=s.rewind_epoch)

    def result(self) -> RunResult:
        return read_result(self.run(self.mask()))


@dataclass(frozen=True)
class HeldOut(Dense):
    """A dense run trained on its store without one manipulation method (its fakes leave every split)."""

    stage: str = "heldout"
    method: str = ""            # the method left out of training (and validation)

    @property
    def key(self) -> tuple:
        return ("heldout", self.model, self.dataset, self.seed, self.method)

    def settings(self) -> dict:
        # The data identity is the full store's; the settings say which method training never saw.
        return {"held_out": self.method}

    def data(self) -> CropStore:
        return without_method(self.store.load(), self.method)


def without_method(store: CropStore, method: str) -> CropStore:
    """The store with one manipulation method's crops left out of every split (held-out training)."""
    if method not in set(store.index["method"]):
        raise ValueError(f"crop store {paths.show(store.root)} has no method {method!r}")
    return dataclasses.replace(store, index=store.index[store.index["method"] != method].reset_index(drop=True))
