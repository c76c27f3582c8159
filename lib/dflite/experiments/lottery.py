"""Lottery tickets as jobs: IMP with rewinding, one-shot pruning, and two random controls.

One ticket study is a model, a crop store and a seed. Its dense run trains the net once and saves
the weights it had after `rewind_epoch` epochs (0: the initialisation, the original lottery
ticket; a small number is "late rewinding"). Then, at every level of the schedule, four arms:

- imp: prune the previous IMP level's trained weights by magnitude to the level's sparsity (the
  first level prunes the dense net), rewind the survivors, retrain;
- oneshot: prune the trained dense net to the level's sparsity at once, rewind, retrain (at the
  first level this is the IMP run itself: the same procedure on the same net, so it is shared);
- random_reinit: the IMP mask of the level on a fresh random initialisation;
- random_mask: as many weights per layer as the IMP mask keeps, at random places, on the rewound weights.

Every retraining starts at the rewind epoch with the learning-rate schedule where it stood then
(open_lth), and the mask is re-applied after every optimizer step (`Hooks.after_step`), so pruned
weights stay exactly 0. Runs live under the dense run, `level_<L>_<arm>/`, each with its mask; the
mask's fingerprint is part of the run's identity. A level reads only finished runs of the levels
before it, so a killed study resumes where it stopped and ends with the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import paths
from ..compress.masks import Mask, magnitude_prune, random_mask
from ..config import TrainConfig, config_hash, override
from ..data.store import StoreRef
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, read_result, seeded_model, steps_per_epoch, world_size
from ..nets.checkpoint import load_model, load_weights, save_model
from ..nets.models import count_parameters

ARMS = ("imp", "oneshot", "random_reinit", "random_mask")
MASK = "mask.safetensors"
REWIND = "rewind.safetensors"
METRICS = ("acc", "bacc", "auc", "video_auc")


@dataclass(frozen=True)
class Ticket:
    """One ticket study (a model on a store at a seed); picklable, so a spawned worker can run its jobs."""

    profile: str
    model: str
    dataset: str                # the label in run names and tables
    store: StoreRef
    cfg: TrainConfig
    seed: int
    sparsities: tuple           # after each level, e.g. (0.2, 0.4, 0.6, 0.8)
    scope: str = "global"       # global | layerwise
    classifier: bool = True     # prune the output layer too
    rewind_epoch: int = 0
    schedule: str = "study"     # the name of the sparsity schedule, recorded with each run

    def dense_run(self) -> Run:
        return train_run(self.profile, "lottery", self.model, self.dataset, self.cfg, self.store, self.seed,
                         input_size(self.cfg, self.model), settings={"rewind_epoch": self.rewind_epoch})

    def level_dir(self, arm: str, level: int):
        return self.dense_run().dir / f"level_{level}_{arm}"

    def levels(self, arm: str, control_levels=None) -> list:
        """The levels `arm` runs at: IMP at every level (each prunes the one before), the other arms at
        `control_levels` (None: every level)."""
        every = range(1, len(self.sparsities) + 1)
        return list(every) if arm == "imp" or control_levels is None else [lv for lv in every if lv in control_levels]

    def jobs(self, arms=ARMS, control_levels=None) -> list:
        """The dense job, then every arm at its levels (the IMP runs included where a control needs them)."""
        unknown = set(arms) - set(ARMS)
        if unknown:
            raise ValueError(f"unknown arm(s) {', '.join(sorted(unknown))}; expected {', '.join(ARMS)}")
        wanted = set(arms) | ({"imp"} if set(arms) & {"random_reinit", "random_mask"} else set())
        return [Dense(self)] + [Level(self, arm, level) for level in range(1, len(self.sparsities) + 1)
                                for arm in ARMS if arm in wanted and level in self.levels(arm, control_levels)]


def _need(folder, what: str):
    if not (folder / FINISHED).is_file():
        raise RuntimeError(f"{what} needs the finished run {folder.name} first (run the study's jobs in order)")
    return folder


def _trained(folder, what: str) -> nn.Module:
    """The net a finished run ended with (its last weights: what open_lth prunes)."""
    return load_model(_need(folder, what) / "last.safetensors")[0]


def _rank0() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
        torch.distributed.get_rank() == 0


def _row(t: Ticket, arm: str, level: int, run_dir, params_left: int, metrics: dict) -> dict:
    return {"model": t.model, "dataset": t.dataset, "arm": arm, "level": level,
            "sparsity": t.sparsities[level - 1] if level else 0.0, "seed": t.seed,
            "run": run_dir.relative_to(paths.runs_dir(t.profile)).as_posix(), "params_left": params_left,
            **{k: metrics[k] for k in METRICS}}


@dataclass(frozen=True)
class Dense:
    """The ticket study's dense run: trained once, saving the weights it had after `rewind_epoch` epochs."""

    ticket: Ticket
    needs = ()

    @property
    def key(self) -> tuple:
        t = self.ticket
        return ("lottery", t.model, t.dataset, config_hash(t.cfg), t.seed, "dense", 0)

    def run(self) -> Run:
        return self.ticket.dense_run()

    def done(self) -> bool:
        return self.ticket.dense_run().finished

    def train(self, progress: bool = False, stop_after: int | None = None) -> RunResult | None:
        t, dense = self.ticket, self.ticket.dense_run()
        # The scheduler counts this process's steps: under torchrun an epoch is 1/world of the images per process.
        rewind_step = t.rewind_epoch * steps_per_epoch(t.cfg, t.store.load(), world_size())

        def save_rewind(model, step):
            if _rank0():
                save_model(model, dense.path(REWIND), step=step)
        return fit(seeded_model(t.model, t.cfg, t.seed), t.store.load(), t.cfg, dense,
                   Hooks(at_step={rewind_step: save_rewind}), progress=progress, stop_after=stop_after)

    def row(self) -> dict:
        run = self.ticket.dense_run()
        r = read_result(run)
        return _row(self.ticket, "dense", 0, run.dir, count_parameters(load_model(run.path("best.safetensors"))[0]),
                    r.metrics)


@dataclass(frozen=True)
class Level:
    """One arm at one level of a ticket study."""

    ticket: Ticket
    arm: str                    # imp | oneshot | random_reinit | random_mask
    level: int                  # 1.. (sparsity ticket.sparsities[level - 1])

    @property
    def runs_as(self) -> str:
        """The arm whose run this one is: one-shot at the first level is the first IMP level (the same
        procedure on the same net), so it is shared."""
        return "imp" if (self.arm, self.level) == ("oneshot", 1) else self.arm

    @property
    def key(self) -> tuple:
        t = self.ticket
        return ("lottery", t.model, t.dataset, config_hash(t.cfg), t.seed, self.runs_as, self.level)

    @property
    def needs(self) -> tuple:
        t, arm = self.ticket, self.runs_as
        if arm == "imp" and self.level > 1:
            return (Level(t, "imp", self.level - 1).key,)
        if arm.startswith("random"):
            return (Level(t, "imp", self.level).key,)
        return (Dense(t).key,)

    @property
    def folder(self):
        return self.ticket.level_dir(self.runs_as, self.level)

    def done(self) -> bool:
        return (self.folder / FINISHED).is_file()

    def mask(self) -> Mask:
        """The mask this level trains under, from the finished runs it builds on."""
        t, arm, level = self.ticket, self.runs_as, self.level
        sparsity = t.sparsities[level - 1]
        if arm == "oneshot" or (arm == "imp" and level == 1):
            trained = _trained(t.dense_run().dir, f"{arm} level {level}")
            return magnitude_prune(trained, Mask.dense(trained, t.classifier), sparsity, t.scope)
        if arm == "imp":
            parent = t.level_dir("imp", level - 1)
            trained = _trained(parent, f"imp level {level}")
            return magnitude_prune(trained, Mask.load(parent / MASK), sparsity, t.scope)
        mask = Mask.load(_need(t.level_dir("imp", level), f"{arm} level {level}") / MASK)
        if arm == "random_reinit":
            return mask
        return random_mask(mask, torch.Generator().manual_seed(t.seed * 1000 + level))

    def start_model(self, mask: Mask) -> nn.Module:
        """The weights a level starts from: the dense run's rewind point (or a fresh initialisation for
        random_reinit), with the mask applied."""
        t = self.ticket
        # Never an ImageNet start here: for an ImageNet-initialised study random reinit would otherwise reload the
        # very weights the dense run began from (a random *re*initialisation it would not be), and the other arms
        # overwrite every weight with the rewind point anyway.
        scratch = override(t.cfg, pretrained=False)
        if self.runs_as == "random_reinit":
            # A fresh draw that no other run uses: seeds past 10^6 are never a study's own seeds.
            model = seeded_model(t.model, scratch, 1_000_000 + t.seed * 1000 + self.level)
        else:
            model = seeded_model(t.model, scratch, t.seed)
            load_weights(model, t.dense_run().path(REWIND), t.model)
        mask.check(model)
        mask.apply(model)
        return model

    def run(self, mask: Mask) -> Run:
        t = self.ticket
        settings = {"arm": self.runs_as, "level": self.level, "sparsity": t.sparsities[self.level - 1],
                    "schedule": t.schedule, "scope": t.scope, "prune_classifier": t.classifier,
                    "rewind_epoch": t.rewind_epoch, "mask": mask.fingerprint()}
        dense = t.dense_run()
        return Run(self.folder, {**dense.identity, "settings": settings})

    def train(self, progress: bool = False, stop_after: int | None = None) -> RunResult | None:
        """Train this level (or read its finished run back); `stop_after` epochs ends the call early (tests)."""
        t = self.ticket
        mask = self.mask()
        run = self.run(mask)

        def save_mask(model, step):
            if _rank0():
                mask.save(run.path(MASK), {"arm": self.runs_as, "level": self.level, "sparsity": mask.sparsity})
        hooks = Hooks(after_step=mask.after_step, at_step={0: save_mask})
        return fit(self.start_model(mask), t.store.load(), t.cfg, run, hooks, progress=progress,
                   stop_after=stop_after, start_epoch=t.rewind_epoch)

    def row(self) -> dict:
        folder = self.folder
        r = read_result(Run(folder, {}))
        params_left = Mask.load(folder / MASK).params_left(load_model(folder / "best.safetensors")[0])
        return _row(self.ticket, self.arm, self.level, folder, params_left, r.metrics)
