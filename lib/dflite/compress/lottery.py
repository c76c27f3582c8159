"""Lottery tickets as engine runs: IMP with rewinding, one-shot pruning, and two random controls.

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
from ..config import TrainConfig
from ..data.extract import load_store
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, seeded_model, steps_per_epoch
from ..nets.checkpoint import load_model, load_weights, save_model
from ..nets.models import count_parameters
from .masks import Mask, magnitude_prune, random_mask

ARMS = ("imp", "oneshot", "random_reinit", "random_mask")
MASK = "mask.safetensors"
REWIND = "rewind.safetensors"


@dataclass(frozen=True)
class Ticket:
    """One ticket study (a model on a store at a seed); picklable, so a spawned worker can run its jobs."""

    profile: str
    model: str
    dataset: str                # the label in run names and tables
    store_root: str
    cfg: TrainConfig
    seed: int
    sparsities: tuple           # after each level, e.g. (0.2, 0.4, 0.6, 0.8)
    scope: str = "global"       # global | layerwise
    classifier: bool = True     # prune the output layer too
    rewind_epoch: int = 0
    schedule: str = "study"     # the name of the sparsity schedule, recorded with each run


@dataclass(frozen=True)
class Job:
    ticket: Ticket
    arm: str                    # dense | imp | oneshot | random_reinit | random_mask
    level: int = 0              # 1.. for the pruned arms

    @property
    def key(self) -> tuple:
        t = self.ticket
        return (t.model, t.dataset, t.seed, self.arm, self.level)


def dense_run(t: Ticket, store) -> Run:
    return train_run(t.profile, "lottery", t.model, t.dataset, t.cfg, store, t.seed, input_size(t.cfg, t.model),
                     settings={"rewind_epoch": t.rewind_epoch})


def level_dir(dense: Run, arm: str, level: int):
    return dense.dir / f"level_{level}_{arm}"


def level_run(t: Ticket, dense: Run, arm: str, level: int, mask: Mask) -> Run:
    settings = {"arm": arm, "level": level, "sparsity": t.sparsities[level - 1], "schedule": t.schedule,
                "scope": t.scope, "prune_classifier": t.classifier, "rewind_epoch": t.rewind_epoch,
                "mask": mask.fingerprint()}
    return Run(level_dir(dense, arm, level), {**dense.identity, "settings": settings})


def shared(job: Job) -> Job:
    """The job whose run this one reads: one-shot at the first level is the first IMP level."""
    return Job(job.ticket, "imp", 1) if (job.arm, job.level) == ("oneshot", 1) else job


def plan(t: Ticket, arms=ARMS) -> tuple:
    """({key: Job}, {key: keys it needs}) for the dense run and every arm at every level."""
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arm(s) {', '.join(sorted(unknown))}; expected {', '.join(ARMS)}")
    dense = Job(t, "dense")
    jobs, needs = {dense.key: dense}, {dense.key: set()}
    wanted = set(arms) | ({"imp"} if set(arms) & {"random_reinit", "random_mask"} else set())
    for level in range(1, len(t.sparsities) + 1):
        for arm in ARMS:
            job = Job(t, arm, level)
            if arm not in wanted or shared(job) != job:
                continue
            parent = Job(t, "imp", level - 1) if arm == "imp" and level > 1 else \
                Job(t, "imp", level) if arm.startswith("random") else dense
            jobs[job.key], needs[job.key] = job, {parent.key}
    return jobs, needs


def finished(job: Job, store) -> bool:
    dense = dense_run(job.ticket, store)
    folder = dense.dir if job.arm == "dense" else level_dir(dense, job.arm, job.level)
    return (folder / FINISHED).is_file()


def _need(folder, what: str):
    if not (folder / FINISHED).is_file():
        raise RuntimeError(f"{what} needs the finished run {folder.name} first (run the study's jobs in order)")
    return folder


def _trained(folder, what: str) -> nn.Module:
    """The net a finished run ended with (its last weights: what open_lth prunes)."""
    return load_model(_need(folder, what) / "last.safetensors")[0]


def level_mask(job: Job, store) -> Mask:
    """The mask a level trains under, from the finished runs it builds on."""
    t, dense = job.ticket, dense_run(job.ticket, store)
    sparsity = t.sparsities[job.level - 1]
    if job.arm == "oneshot" or (job.arm == "imp" and job.level == 1):
        trained = _trained(dense.dir, f"{job.arm} level {job.level}")
        return magnitude_prune(trained, Mask.dense(trained, t.classifier), sparsity, t.scope)
    if job.arm == "imp":
        parent = level_dir(dense, "imp", job.level - 1)
        trained = _trained(parent, f"imp level {job.level}")
        return magnitude_prune(trained, Mask.load(parent / MASK), sparsity, t.scope)
    mask = Mask.load(_need(level_dir(dense, "imp", job.level), f"{job.arm} level {job.level}") / MASK)
    if job.arm == "random_reinit":
        return mask
    return random_mask(mask, torch.Generator().manual_seed(t.seed * 1000 + job.level))


def start_model(job: Job, mask: Mask, store) -> nn.Module:
    """The weights a level starts from: the dense run's rewind point (or a fresh initialisation for
    random_reinit), with the mask applied."""
    t = job.ticket
    if job.arm == "random_reinit":
        # A fresh draw that no other run uses: seeds past 10^6 are never a study's own seeds.
        model = seeded_model(t.model, t.cfg, 1_000_000 + t.seed * 1000 + job.level)
    else:
        model = seeded_model(t.model, t.cfg, t.seed)
        load_weights(model, dense_run(t, store).path(REWIND), t.model)
    mask.check(model)
    mask.apply(model)
    return model


def _rank0() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or \
        torch.distributed.get_rank() == 0


def train_job(job: Job, progress: bool = False, stop_after: int | None = None) -> RunResult | None:
    """Train one job (or read its finished run back); `stop_after` epochs ends the call early (tests)."""
    t = job.ticket
    store = load_store(t.store_root)
    dense = dense_run(t, store)
    if job.arm == "dense":
        rewind_step = t.rewind_epoch * steps_per_epoch(t.cfg, store)

        def save_rewind(model, step):
            if _rank0():
                save_model(model, dense.path(REWIND), step=step)
        return fit(seeded_model(t.model, t.cfg, t.seed), store, t.cfg, dense, Hooks(at_step={rewind_step: save_rewind}),
                   progress=progress, stop_after=stop_after)
    job = shared(job)
    mask = level_mask(job, store)
    run = level_run(t, dense, job.arm, job.level, mask)

    def save_mask(model, step):
        if _rank0():
            mask.save(run.path(MASK), {"arm": job.arm, "level": job.level, "sparsity": mask.sparsity})
    hooks = Hooks(after_step=mask.after_step, at_step={0: save_mask})
    return fit(start_model(job, mask, store), store, t.cfg, run, hooks, progress=progress, stop_after=stop_after,
               start_epoch=t.rewind_epoch)


def result_row(job: Job, result: RunResult, store) -> dict:
    """One row of the tickets table."""
    t = job.ticket
    row = {"model": t.model, "dataset": t.dataset, "arm": job.arm, "level": job.level,
           "sparsity": t.sparsities[job.level - 1] if job.level else 0.0, "seed": t.seed,
           "run": result.run_dir.relative_to(paths.runs_dir(t.profile)).as_posix()}
    model, _ = load_model(result.run_dir / "best.safetensors")
    if job.arm == "dense":
        row["params_left"] = count_parameters(model)
    else:
        row["params_left"] = Mask.load(result.run_dir / MASK).params_left(model)
    metrics = result.metrics
    return {**row, **{k: metrics[k] for k in ("acc", "bacc", "auc", "video_auc")}}
