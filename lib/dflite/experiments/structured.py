"""Structured pruning and distillation as jobs: the runs of notebook 04's study.

A `Variant` is one way to slim the student: a channel-pruning ratio (0: none; a share of the dense net's
channels), its scope (global or local), its steps (1-shot or K-step), a distillation alpha (0: no teacher),
and optionally `match`: prune globally to the parameter count of the same ratio pruned with that scope
(global against local at equal size). Each step of a variant is an engine run (stage `structured`): it
loads the net the step starts from (the dense student's best weights, or the previous step's), prunes it to
the step's cumulative target (k/K of the ratio) with fresh Taylor gradients on class-balanced calibration
batches, and fine-tunes it with the variant's loss. The pruned net is saved before fine-tuning
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
from ..compress.deploy import count_macs, size_mb
from ..compress.distill import Distiller
from ..compress.structured import (
    SCOPES,
    calibration_batches,
    dense_reference,
    prune_step,
    removed,
    step_targets,
    thinnest,
)
from ..config import TrainConfig, config_hash, override
from ..data.loader import split_dataset
from ..data.store import StoreRef
from ..engine.runs import FINISHED, Run, train_run
from ..engine.train import Hooks, RunResult, fit, input_size, read_result, seeded_model
from ..nets.checkpoint import load_model, save_model
from ..nets.models import count_parameters
from .dense import Dense, relative

PRUNED = "pruned.safetensors"
METRICS = ("acc", "bacc", "auc", "video_auc")


@dataclass(frozen=True)
class Variant:
    """How the student is slimmed: pruned `ratio` of its channels (scope, steps), distilled with `alpha`."""

    ratio: float = 0.0
    scope: str = "global"
    steps: int = 1
    alpha: float = 0.0
    match: str = ""             # "local": global pruning to the parameters of Variant(ratio, "local") (1-shot)

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"unknown pruning scope {self.scope!r}; expected {' or '.join(SCOPES)}")
        if not 0 <= self.ratio < 1 or self.steps < 1 or not 0 <= self.alpha <= 1:
            raise ValueError(f"bad variant {self}: ratio in [0, 1), steps >= 1, alpha in [0, 1]")
        if self.match and (self.match not in SCOPES or self.scope != "global" or self.steps != 1 or not self.ratio):
            raise ValueError(f"bad variant {self}: match prunes a 1-shot global variant to another scope's size")
        if self.ratio == 0:  # nothing to prune: scope and steps mean nothing, so they do not tell runs apart
            object.__setattr__(self, "scope", "global")
            object.__setattr__(self, "steps", 1)

    def settings(self) -> dict:
        """The variant's id columns (and its run settings): ratio, scope, steps, alpha, match."""
        return {"ratio": self.ratio, "scope": self.scope, "steps": self.steps, "alpha": self.alpha, "match": self.match}

    @property
    def matched(self) -> Variant:
        """The variant whose size this one matches."""
        return Variant(self.ratio, self.match, 1, self.alpha)


@dataclass(frozen=True)
class Slimming:
    """One study: a student, its teacher and a reference on a crop store at a seed (picklable)."""

    profile: str
    dataset: str
    store: StoreRef
    seed: int
    student: str
    recipes: dict               # model -> its dense TrainConfig (student, teacher, reference)
    finetune: TrainConfig       # each pruning step's fine-tuning (a K-step variant splits its images)
    teacher: str = "efficientnet_b0"
    temperature: float = 4.0
    calib_batches: int = 16
    max_layer_ratio: float = 0.9
    round_to: int = 8           # channel counts kept as multiples of this (0: any): aligned widths run faster
    kd_from: str = "dense"      # dense: a ratio-0 variant fine-tunes the dense student; init: trains from scratch

    def dense(self, model: str) -> Dense:
        """The baselines' run of `model` (notebook 02 made it with the same recipe: read back, not retrained)."""
        return Dense(self.profile, model, self.dataset, self.store, self.recipes[model], self.seed)

    def jobs(self, variants) -> list:
        """The dense runs (reference, student, teacher), then every step of every variant."""
        out = [self.dense(m) for m in dict.fromkeys(sorted({self.student, self.teacher, *self.recipes}))]
        return out + [Step(self, v, k) for v in dict.fromkeys(variants) for k in range(1, v.steps + 1)]


def step_config(s: Slimming, v: Variant) -> TrainConfig:
    """The training of one step: the fine-tuning recipe with its images split over the steps (the same
    budget for 1-shot and K-step), or the student's whole recipe when a ratio-0 variant starts from scratch."""
    if v.ratio == 0 and s.kd_from == "init":
        return s.recipes[s.student]
    cfg = override(s.finetune, input_size=input_size(s.recipes[s.student], s.student))
    if v.steps > 1 and cfg.epoch_size:
        cfg = override(cfg, epoch_size=max(cfg.batch_size, math.ceil(cfg.epoch_size / v.steps)))
    return cfg


def _best(run: Run, what: str):
    if not run.finished:
        raise RuntimeError(f"{what} needs the finished run {paths.show(run.dir)} first (run the study's jobs in order)")
    return load_model(run.path("best.safetensors"))[0]


def cost(model, macs: int) -> dict:
    """What a slimmed net costs: parameters, MB, MMACs (`macs`, counted by the caller) and the layer pruning cut
    hardest."""
    spec = model.dflite_spec
    thin = thinnest(model, dense_reference(spec["name"], spec.get("num_classes", 1), spec["input_size"])[0])
    return {"params": count_parameters(model), "size_mb": round(size_mb(model), 3),
            "mmacs": round(macs / 1e6, 2), "thinnest_layer": thin["layer"], "thinnest_share": thin["share"]}


def row(s: Slimming, model: str, arm: str, v: Variant, run: Run) -> dict:
    """One row of the structured table: ids (model, arm, the variant's ratio/scope/steps/alpha/match, seed), test
    metrics, per-method accuracy, cost, and the shares of channels, parameters and MACs pruning removed."""
    result = read_result(run)
    net = load_model(run.path("best.safetensors"))[0]
    per_method = {k: v for k, v in result.metrics.items() if k.startswith("acc_")}
    macs = count_macs(net, result.input_size)
    return {"model": model, "arm": arm, **v.settings(), "seed": s.seed, "input_px": result.input_size,
            "run": relative(s.profile, run), **{k: result.metrics[k] for k in METRICS}, **per_method,
            **cost(net, macs), **removed(net, result.input_size, macs)}


def dense_row(s: Slimming, model: str) -> dict:
    return row(s, model, "dense", Variant(), s.dense(model).run())


@dataclass(frozen=True)
class Step:
    """Step `step` (1..steps) of a variant: prune the net the step starts from, then fine-tune (and distil)."""

    study: Slimming
    variant: Variant
    step: int

    @property
    def key(self) -> tuple:
        s, v = self.study, self.variant
        # the recipe and data too: two studies' steps of one student (notebooks 04 and 08) are never one job
        return ("structured", s.student, s.dataset, config_hash(s.finetune), s.store.fingerprint, s.seed, v.ratio,
                v.scope, v.steps, v.alpha, v.match, self.step)

    @property
    def needs(self) -> tuple:
        s, v = self.study, self.variant
        before = Step(s, v, self.step - 1).key if self.step > 1 else s.dense(s.student).key
        matched = (Step(s, v.matched, 1).key,) if v.match else ()
        return (before,) + ((s.dense(s.teacher).key,) if v.alpha else ()) + matched

    def params_target(self) -> int | None:
        """The parameter count a `match` variant prunes to: the matched variant's pruned net's."""
        if not self.variant.match:
            return None
        other = Step(self.study, self.variant.matched, 1).run()
        if not other.path(PRUNED).is_file():
            raise RuntimeError(f"{self.variant} needs the pruned net of {self.variant.matched} first "
                               "(run the study's jobs in order)")
        return count_parameters(load_model(other.path(PRUNED))[0])

    def start_run(self) -> Run:
        s = self.study
        return s.dense(s.student).run() if self.step == 1 else Step(s, self.variant, self.step - 1).run()

    def run(self) -> Run:
        s, v = self.study, self.variant
        targets = step_targets(v.ratio, v.steps)
        settings = {**v.settings(), "step": self.step, "target": round(targets[self.step - 1], 6),
                    "from": "init" if v.ratio == 0 and s.kd_from == "init" else relative(s.profile, self.start_run()),
                    "calib_batches": s.calib_batches, "max_layer_ratio": s.max_layer_ratio, "round_to": s.round_to,
                    # how channels are chosen: dflite's own choice (cap and rounding against the dense net) on
                    # class-balanced calibration batches; runs made with Torch-Pruning's MetaPruner differ
                    "chooser": "dflite", "calibration": "balanced"}
        if v.match:
            settings["params"] = self.params_target()
        if v.alpha:
            settings.update(teacher=relative(s.profile, s.dense(s.teacher).run()), temperature=s.temperature)
        cfg = step_config(s, v)
        return train_run(s.profile, "structured", s.student, s.dataset, cfg, s.store, s.seed,
                         input_size(cfg, s.student), settings)

    def done(self) -> bool:
        if self.variant.match and not Step(self.study, self.variant.matched, 1).run().path(PRUNED).is_file():
            return False  # its identity holds the matched net's size, which does not exist yet
        return (self.run().dir / FINISHED).is_file()

    def start_model(self):
        """The net a step fine-tunes: the run it starts from, pruned to the step's target."""
        s, v = self.study, self.variant
        if v.ratio == 0 and s.kd_from == "init":
            return seeded_model(s.student, s.recipes[s.student], s.seed)
        model = _best(self.start_run(), f"variant {v} step {self.step}")
        if v.ratio:
            size = model.dflite_spec["input_size"]
            batches = calibration_batches(split_dataset(s.store.load(), "train", size, s.finetune.target),
                                          s.finetune.batch_size, s.calib_batches, seed=s.seed)
            prune_step(model, batches, step_targets(v.ratio, v.steps)[self.step - 1], v.scope, s.max_layer_ratio,
                       s.round_to or None, params=self.params_target())
        return model

    def train(self, progress: bool = False) -> RunResult:
        """Train this step (or read it back when finished)."""
        s = self.study
        cfg = step_config(s, self.variant)
        run = self.run()
        if run.finished:
            return read_result(run)
        previous = torch.get_num_threads()
        torch.set_num_threads(cfg.cpu_threads)  # the Taylor ranking too: same threads, same channels pruned
        try:
            model = load_model(run.path(PRUNED))[0] if run.path(PRUNED).is_file() else self.start_model()
        finally:
            torch.set_num_threads(previous)

        def save_pruned(net, step):
            save_model(net, run.path(PRUNED))
        loss = None
        if self.variant.alpha:
            loss = Distiller(_best(s.dense(s.teacher).run(), "distillation"), self.variant.alpha, s.temperature)
        return fit(model, s.store.load(), cfg, run, Hooks(loss=loss, at_step={0: save_pruned}), progress=progress)

    def row(self) -> dict:
        return row(self.study, self.study.student, "variant", self.variant, self.run())
