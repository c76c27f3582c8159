"""Structured pruning and distillation as engine runs: the jobs of notebook 04's study.

A `Variant` is one way to slim the student: a channel-pruning ratio (0: none), its scope (global or
local), its steps (1-shot or K-step) and a distillation alpha (0: no teacher). Each step of a
variant is an engine run (stage `structured`): it loads the net the step starts from (the dense
student's best weights, or the previous step's), prunes it to the step's target with fresh Taylor
gradients, and fine-tunes it with the variant's loss. The pruned net is saved before fine-tuning
(`pruned.safetensors`), so a killed run resumes on the same architecture; a variant resumes at the
step it stopped in. A run's identity names the run it starts from and the teacher's run, so a
retrained dense net or teacher gives new runs instead of reusing stale ones.

The dense runs are the baselines' own (stage `baseline`, the profile's recipe): notebook 02's runs are
read back, not retrained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import paths
from ..config import TrainConfig, override
from ..data.extract import load_store
from ..data.loader import split_dataset
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, seeded_model
from ..nets.checkpoint import load_model, save_model
from ..nets.models import count_parameters, create_model
from .deploy import count_macs, size_mb
from .distill import Distiller
from .structured import SCOPES, calibration_batches, prune_step, step_ratio, step_targets, thinnest

PRUNED = "pruned.safetensors"


@dataclass(frozen=True)
class Variant:
    """How the student is slimmed: pruned `ratio` of its channels (scope, steps), distilled with `alpha`."""

    ratio: float = 0.0
    scope: str = "global"
    steps: int = 1
    alpha: float = 0.0

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"unknown pruning scope {self.scope!r}; expected {' or '.join(SCOPES)}")
        if not 0 <= self.ratio < 1 or self.steps < 1 or not 0 <= self.alpha <= 1:
            raise ValueError(f"bad variant {self}: ratio in [0, 1), steps >= 1, alpha in [0, 1]")
        if self.ratio == 0:  # nothing to prune: scope and steps mean nothing, so they do not tell runs apart
            object.__setattr__(self, "scope", "global")
            object.__setattr__(self, "steps", 1)

    @property
    def label(self) -> str:
        kd = f"KD α={self.alpha:g}" if self.alpha else ""
        if not self.ratio:
            return kd or "fine-tuned"
        prune = f"{self.scope} {self.ratio:.0%} " + (f"{self.steps}-step" if self.steps > 1 else "1-shot")
        return f"{prune} + {kd}" if kd else prune

    def settings(self) -> dict:
        return {"ratio": self.ratio, "scope": self.scope, "steps": self.steps, "alpha": self.alpha}


@dataclass(frozen=True)
class Slimming:
    """One study: a student, its teacher and a reference on a crop store at a seed (picklable)."""

    profile: str
    dataset: str
    store_root: str
    seed: int
    student: str
    recipes: dict               # model -> its dense TrainConfig (student, teacher, reference)
    finetune: TrainConfig       # each pruning step's fine-tuning (a K-step variant splits its images)
    teacher: str = "efficientnet_b0"
    temperature: float = 4.0
    calib_batches: int = 4
    max_layer_ratio: float = 0.9
    round_to: int = 8           # channel counts kept as multiples of this (0: any): aligned widths run faster
    kd_from: str = "dense"      # dense: a ratio-0 variant fine-tunes the dense student; init: trains from scratch


@dataclass(frozen=True)
class Job:
    study: Slimming
    model: str = ""             # a dense run of this model, or
    variant: Variant | None = None
    step: int = 0               # step 1..steps of the variant

    @property
    def key(self) -> tuple:
        s = self.study
        return (s.seed, "dense", self.model) if self.variant is None else (s.seed, self.variant.label, self.step)


def dense_run(s: Slimming, model: str, store) -> Run:
    """The baselines' run of `model` (notebook 02 made it with the same recipe: read back, not retrained)."""
    cfg = s.recipes[model]
    return train_run(s.profile, "baseline", model, s.dataset, cfg, store, s.seed, input_size(cfg, model))


def _rel(s: Slimming, run: Run) -> str:
    """A run's folder relative to the profile's runs (no machine paths in identities)."""
    return run.dir.relative_to(paths.runs_dir(s.profile)).as_posix()


def step_config(s: Slimming, v: Variant) -> TrainConfig:
    """The training of one step: the fine-tuning recipe with its images split over the steps (the same
    budget for 1-shot and K-step), or the student's whole recipe when a ratio-0 variant starts from scratch."""
    if v.ratio == 0 and s.kd_from == "init":
        return s.recipes[s.student]
    cfg = override(s.finetune, input_size=input_size(s.recipes[s.student], s.student))
    if v.steps > 1 and cfg.epoch_size:
        cfg = override(cfg, epoch_size=max(cfg.batch_size, math.ceil(cfg.epoch_size / v.steps)))
    return cfg


def variant_run(s: Slimming, v: Variant, step: int, store) -> Run:
    targets = step_targets(v.ratio, v.steps)
    start = dense_run(s, s.student, store) if step == 1 else variant_run(s, v, step - 1, store)
    settings = {**v.settings(), "step": step, "target": round(targets[step - 1], 6),
                "from": "init" if v.ratio == 0 and s.kd_from == "init" else _rel(s, start),
                "calib_batches": s.calib_batches, "max_layer_ratio": s.max_layer_ratio, "round_to": s.round_to}
    if v.alpha:
        settings.update(teacher=_rel(s, dense_run(s, s.teacher, store)), temperature=s.temperature)
    cfg = step_config(s, v)
    return train_run(s.profile, "structured", s.student, s.dataset, cfg, store, s.seed,
                     input_size(cfg, s.student), settings)


def plan(s: Slimming, variants) -> tuple:
    """({key: Job}, {key: keys it needs}): the dense runs, then every step of every variant."""
    models = {s.student, s.teacher, *s.recipes}
    jobs = {Job(s, m).key: Job(s, m) for m in sorted(models)}
    needs = {k: set() for k in jobs}
    for v in dict.fromkeys(variants):
        for step in range(1, v.steps + 1):
            job = Job(s, variant=v, step=step)
            before = Job(s, variant=v, step=step - 1).key if step > 1 else Job(s, s.student).key
            jobs[job.key], needs[job.key] = job, {before} | ({Job(s, s.teacher).key} if v.alpha else set())
    return jobs, needs


def _run(job: Job, store) -> Run:
    s = job.study
    return dense_run(s, job.model, store) if job.variant is None else variant_run(s, job.variant, job.step, store)


def finished(job: Job, store) -> bool:
    return (_run(job, store).dir / FINISHED).is_file()


def _best(run: Run, what: str):
    if not run.finished:
        raise RuntimeError(f"{what} needs the finished run {paths.show(run.dir)} first (run the study's jobs in order)")
    return load_model(run.path("best.safetensors"))[0]


def start_model(job: Job, store):
    """The net a step fine-tunes: the run it starts from, pruned to the step's target."""
    s, v = job.study, job.variant
    if v.ratio == 0 and s.kd_from == "init":
        return seeded_model(s.student, s.recipes[s.student], s.seed)
    start = dense_run(s, s.student, store) if job.step == 1 else variant_run(s, v, job.step - 1, store)
    model = _best(start, f"{v.label} step {job.step}")
    if v.ratio:
        targets = [0.0, *step_targets(v.ratio, v.steps)]
        size = model.dflite_spec["input_size"]
        batches = calibration_batches(split_dataset(store, "train", size), s.finetune.batch_size, s.calib_batches,
                                      seed=s.seed)
        prune_step(model, batches, step_ratio(targets[job.step], targets[job.step - 1]), v.scope, s.max_layer_ratio,
                   s.round_to or None)
    return model


def train_job(job: Job, progress: bool = False) -> RunResult:
    """Train one job (or read its finished run back)."""
    s = job.study
    store = load_store(s.store_root)
    run = _run(job, store)
    if job.variant is None:
        cfg = s.recipes[job.model]
        return fit(seeded_model(job.model, cfg, s.seed), store, cfg, run, progress=progress)
    cfg = step_config(s, job.variant)
    if run.finished:  # read back: any net of the right name and size will do
        return fit(create_model(s.student, input_size=input_size(cfg, s.student)), store, cfg, run, progress=progress)
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.cpu_threads)  # the Taylor ranking too: same threads, same channels pruned
    try:
        model = load_model(run.path(PRUNED))[0] if run.path(PRUNED).is_file() else start_model(job, store)
    finally:
        torch.set_num_threads(previous)

    def save_pruned(net, step):
        save_model(net, run.path(PRUNED))
    loss = None
    if job.variant.alpha:
        loss = Distiller(_best(dense_run(s, s.teacher, store), "distillation"), job.variant.alpha, s.temperature)
    return fit(model, store, cfg, run, Hooks(loss=loss, at_step={0: save_pruned}), progress=progress)


def result_row(job: Job, result: RunResult) -> dict:
    """One row of the structured table: the variant, its test metrics and its cost."""
    s, v = job.study, job.variant or Variant()
    model = load_model(result.run_dir / "best.safetensors")[0]
    dense = create_model(s.student if job.variant else job.model, input_size=result.input_size)
    thin = thinnest(model, dense)
    row = {"model": s.student if job.variant else job.model, "variant": v.label if job.variant else "dense",
           **v.settings(), "seed": s.seed, "input_px": result.input_size,
           "run": result.run_dir.relative_to(paths.runs_dir(s.profile)).as_posix()}
    metrics = {k: result.metrics[k] for k in ("acc", "bacc", "auc", "video_auc")}
    per_method = {k: v for k, v in result.metrics.items() if k.startswith("acc_")}
    cost = {"params": count_parameters(model), "size_mb": round(size_mb(model), 3),
            "mmacs": round(count_macs(model, result.input_size) / 1e6, 2),
            "thinnest_layer": thin["layer"], "thinnest_share": thin["share"]}
    return {**row, **metrics, **per_method, **cost}
