"""The training engine: `fit(model, data, cfg, run, hooks)` trains a model the caller built.

BCE with logits, warm-up + cosine, selection on validation AUC, test predictions, checkpoints,
resume and DDP. The caller builds the model (dense, masked, structurally pruned, a student) and
may pass `Hooks`: a loss (distillation adds a teacher term), a call after every optimizer step
(re-apply pruning masks), calls at chosen steps (save the rewind point of a lottery ticket) and
after every epoch. A run folder (engine.runs) carries config.json, env.json, metrics.csv (one row
per epoch), best and last weights with the spec that rebuilds the module, the state to resume
from, and the test predictions. A finished run returns exactly what it returned when it ran.
Every epoch reseeds its sampler and the global RNG from (seed, epoch), so a resumed run is
bit-identical to an uninterrupted one on the CPU.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import paths
from ..config import ATTRIBUTION_CLASSES, TrainConfig
from ..data.loader import CropDataset, augment, epoch_indices, normalise, split_dataset
from ..folders import write_json
from ..nets.checkpoint import load_state, load_weights, save_model, save_state
from ..nets.fold import eval_net
from ..nets.models import create_model, fake_probability, model_info, output_probabilities
from ..progress import bar
from .metrics import attribution_metrics, binary_metrics, evaluate_predictions
from .runs import Run, cpu_has_bf16, env_info


@dataclass
class RunResult:
    model: str
    run_dir: Path
    history: pd.DataFrame      # one row per epoch
    predictions: pd.DataFrame  # test split: media_id, frame, face, label, method, score
    metrics: dict              # evaluate_predictions on the test split
    input_size: int


@dataclass
class Hooks:
    """Optional calls into `fit`; each costs nothing when absent.

    loss(logits, targets, inputs, criterion) -> loss: replaces `criterion(logits, targets)` (BCE);
        `inputs` are the augmented, normalised batch (a teacher sees what the student sees).
    after_step(model, step): after every optimizer step, `step` counted from 1 (re-apply masks).
    at_step: {step: fn(model, step)} called once the run has taken that many steps; 0 is before
        the first (the rewind point of a lottery ticket). Only steps this call passes are called.
    after_epoch(model, row) -> stop?: after each epoch's validation with its history row; True ends
        training early (as patience does).
    Under DDP every process calls its hooks (masks must be re-applied on each); a hook that writes
    files should do so only where torch.distributed's rank is 0.
    """

    loss: Callable | None = None
    after_step: Callable | None = None
    at_step: dict = field(default_factory=dict)
    after_epoch: Callable | None = None


def input_size(cfg: TrainConfig, model_name: str) -> int:
    """The side a model trains at: the recipe's, or the architecture's own when the recipe says 0."""
    return cfg.input_size or model_info(model_name).input_size


def outputs(cfg: TrainConfig) -> int:
    """The model's outputs for the recipe's target: one fake logit, or one logit per attribution class."""
    if cfg.target not in ("label", "method"):
        raise ValueError(f"unknown training target {cfg.target!r}; expected label or method")
    return len(ATTRIBUTION_CLASSES) if cfg.target == "method" else 1


def seeded_model(model_name: str, cfg: TrainConfig, seed: int) -> nn.Module:
    """A dense registry model initialised from `seed` at the recipe's input size, with the target's outputs."""
    torch.manual_seed(seed)
    return create_model(model_name, num_classes=outputs(cfg), pretrained=cfg.pretrained,
                        input_size=input_size(cfg, model_name))


def steps_per_epoch(cfg: TrainConfig, store, world: int = 1) -> int:
    """Optimizer steps in one epoch of `cfg` on `store`'s train split with `world` processes."""
    images = cfg.epoch_size or int((store.index["split"] == "train").sum())
    return math.ceil(math.ceil(images / world) / cfg.batch_size)  # as epoch_indices shards an epoch


def select_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def lr_factor(cfg: TrainConfig, steps_per_epoch: int):
    """Step -> multiplier of cfg.lr: linear warm-up, then cosine to zero (or constant)."""
    warm = cfg.warmup_epochs * steps_per_epoch
    total = max(cfg.epochs * steps_per_epoch, warm + 1)

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
    if cfg.schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown schedule {cfg.schedule!r}; expected cosine or constant")
    return factor


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected sgd, adam or adamw")


def predict(model: nn.Module, dataset: CropDataset, batch_size: int, device: torch.device,
            bf16: bool = False) -> np.ndarray:
    """Fake-probability per crop, in dataset order: (N,) for a one-output detector; (N, K) class probabilities
    (softmax) for an attribution head. Under bf16 autocast on a GPU, and on the CPU where `bf16` says."""
    model.eval()
    out, net = [], None
    half = device.type == "cuda" or bf16
    with torch.inference_mode():
        for x, _, _ in dataset.batches(batch_size):
            x = normalise(x.to(device)).to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=half):
                logits = (net or model)(x)
            if net is None:  # fp32: batch norms folded into their convolutions where that gives the same outputs
                net = model if half else eval_net(model, x, logits)
            out.append(output_probabilities(logits).cpu())
    return torch.cat(out).numpy()


def validation(cfg: TrainConfig, data: CropDataset, scores: np.ndarray) -> dict:
    """val_loss, val_auc and val_acc of the fake score (an attribution head's: 1 - p(real)), and for an attribution
    head val_attr_bacc; `select` is what the run is selected on (AUC, or the head's balanced accuracy)."""
    if cfg.target == "method":
        probs = torch.tensor(scores).clamp_min(1e-6)
        loss = float(nn.functional.nll_loss(probs.log(), data.targets))
        binary = binary_metrics(data.labels, fake_probability(scores))
        attr = attribution_metrics(data.targets.numpy(), scores, ATTRIBUTION_CLASSES)
        return {"val_loss": loss, "val_auc": binary["auc"], "val_acc": binary["acc"],
                "val_attr_bacc": attr["attr_bacc"], "select": attr["attr_bacc"]}
    loss = float(nn.functional.binary_cross_entropy(torch.tensor(scores).clamp(1e-6, 1 - 1e-6),
                                                    torch.tensor(data.labels, dtype=torch.float32)))
    binary = binary_metrics(data.labels, scores)
    # Select on validation AUC; a split with one class has none, so fall back to (minus) its loss.
    return {"val_loss": loss, "val_auc": binary["auc"], "val_acc": binary["acc"],
            "select": binary["auc"] if not math.isnan(binary["auc"]) else -loss}


def bf16_step(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the training step runs under bf16 autocast: always on a GPU; on the CPU where the recipe says and the
    CPU has bf16 (oneDNN's bf16 kernels make small convnets ~1.4x faster there, depthwise-heavy EfficientNets
    slower); a run's env.json records which. Validation, which only picks the run's best epoch, runs in the
    step's precision (a CNN-5 pass over quick's 1,121 validation crops: 0.93 s fp32, 0.33 s bf16 on one thread; on
    24 lottery nets bf16 moved a test AUC by at most 0.0005, far below the gap between epochs); test scores stay fp32
    on the CPU: the study's numbers carry no bf16 rounding."""
    return device.type == "cuda" or (cfg.cpu_bf16 and cpu_has_bf16())


def train_epoch(net: nn.Module, data: CropDataset, order, cfg: TrainConfig, optimizer, scheduler, loss_fn,
                device: torch.device, draws: torch.Generator, desc: str = "train", progress: bool = False,
                hooks: Hooks | None = None, model: nn.Module | None = None) -> float:
    """One pass over `order` (indices into data): augment, forward, step, hooks. Returns the mean loss.

    `model` is the module the hooks see (`net` unwrapped from DDP); the scheduler counts the steps.
    """
    hooks, model = hooks or Hooks(), model or net
    net.train()
    total, seen = 0.0, 0
    for x, y, _ in bar(data.batches(cfg.batch_size, order), desc=desc, total=math.ceil(len(order) / cfg.batch_size),
                        leave=False, disable=not progress):
        x, y = x.to(device), y.to(device)
        x = (augment(x, draws) if cfg.augment else normalise(x)).to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_step(cfg, device)):
            logits = net(x).float().squeeze(1)
            loss = hooks.loss(logits, y, x, loss_fn) if hooks.loss else loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step = scheduler.last_epoch  # optimizer steps taken by the run so far
        if hooks.after_step:
            hooks.after_step(model, step)
        if step in hooks.at_step:
            hooks.at_step[step](model, step)
        total += float(loss.detach()) * len(y)
        seen += len(y)
    return total / max(seen, 1)


def world_size() -> int:
    """Processes training one run together (torchrun sets WORLD_SIZE; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _distributed(device: torch.device) -> tuple:
    """(rank, world size); initialises the process group under torchrun."""
    world = world_size()
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def read_result(run: Run) -> RunResult:
    """What a finished run returned when it ran: its history, test predictions and metrics, from its folder."""
    if not run.finished:
        raise RuntimeError(f"run {paths.show(run.dir)} is not finished")
    config = json.loads(run.path("config.json").read_text())
    metrics = json.loads(run.path("test_metrics.json").read_text())
    return RunResult(config["model"], run.dir, pd.read_csv(run.path("metrics.csv")),
                     pd.read_csv(run.path("predictions_test.csv")), metrics, config["input_size"])


def fit(model: nn.Module, data, cfg: TrainConfig, run: Run, hooks: Hooks | None = None,
        device: torch.device | None = None, progress: bool = True, stop_after: int | None = None,
        start_epoch: int = 0) -> RunResult | None:
    """Train `model` on the crop store `data`'s train split, select on val AUC, evaluate on test.

    `run` (engine.runs) names the folder and the identity it must hold (its seed seeds every epoch);
    a finished run is read back, a partial one resumes from its last checkpoint. `stop_after` ends
    this call after that many epochs in total (time-boxed runs and tests): it returns None then,
    and a later call resumes. `start_epoch` starts a fresh run at that epoch with the learning-rate
    schedule where it stood then (a lottery ticket rewound to epoch e retrains the rest of the schedule,
    as open_lth does); the epochs before it are not trained.
    """
    if not 0 <= start_epoch < cfg.epochs:
        raise ValueError(f"start_epoch {start_epoch} is outside the recipe's {cfg.epochs} epochs")
    spec = getattr(model, "dflite_spec", {})
    if spec.get("name") != run.identity["model"] or spec.get("input_size") != run.identity["input_size"]:
        raise ValueError(f"model {spec.get('name')} at {spec.get('input_size')} px does not match run "
                         f"{run.identity['model']} at {run.identity['input_size']} px")
    if run.claim() == "finished":
        return read_result(run)
    device = device or select_device()
    if device.type != "cpu":
        return _fit(model, data, cfg, run, hooks or Hooks(), device, progress, stop_after, start_epoch)
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.cpu_threads)  # a run's numbers depend on its thread count: fix it
    try:
        return _fit(model, data, cfg, run, hooks or Hooks(), device, progress, stop_after, start_epoch)
    finally:
        torch.set_num_threads(previous)


def _fit(model, store, cfg, run, hooks, device, progress, stop_after, start_epoch):
    name, size, seed = run.identity["model"], run.identity["input_size"], run.identity["seed"]
    rank, world = _distributed(device)
    train_ds, val_ds, test_ds = (split_dataset(store, split, size, cfg.target) for split in ("train", "val", "test"))
    # channels_last on the CPU too: CNN-5 trains 1.7x faster with oneDNN (2 threads), others no slower.
    model = model.to(device).to(memory_format=torch.channels_last)
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    steps = steps_per_epoch(cfg, store, world)
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps))
    if cfg.target == "method" and cfg.balance == "weights":
        raise ValueError("balance 'weights' weighs real against fake in the BCE loss; an attribution head (target "
                         "'method') balances its classes with balance 'sampler'")
    n_real, n_fake = np.bincount(train_ds.labels, minlength=2)
    pos_weight = torch.tensor(n_real / max(n_fake, 1), device=device) if cfg.balance == "weights" else None
    loss_fn = nn.CrossEntropyLoss() if cfg.target == "method" else nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    writer = rank == 0
    if writer:
        run.start({**env_info(device, world), "bf16_step": bf16_step(cfg, device)})

    start, history, best = 0, [], {"auc": -1.0, "epoch": -1}
    if run.path("last_state.safetensors").is_file():
        load_weights(model, run.path("last.safetensors"), name)
        start, _, extra = load_state(run.path("last_state.safetensors"), optimizer, scheduler)
        history, best = extra["history"], extra["best"]
    else:
        if start_epoch:
            start = start_epoch
            with warnings.catch_warnings():  # stepping the schedule alone is the point here
                warnings.simplefilter("ignore")
                for _ in range(start_epoch * steps):
                    scheduler.step()
        if 0 in hooks.at_step:
            hooks.at_step[0](model, 0)
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and epoch >= stop_after:
            return None
        started = time.perf_counter()
        torch.manual_seed(seed * 1000 + epoch)  # dropout draws of this epoch
        draws = torch.Generator().manual_seed(seed * 1000 + epoch)  # sample order, then augmentation
        order = epoch_indices(train_ds, cfg.balance, draws, rank, world, cfg.epoch_size)
        loss = train_epoch(net, train_ds, order, cfg, optimizer, scheduler, loss_fn, device, draws,
                           desc=f"{name} epoch {epoch + 1}", progress=progress and writer, hooks=hooks, model=model)
        val = validation(cfg, val_ds, predict(model, val_ds, cfg.batch_size * 2, device, bf16_step(cfg, device)))
        score = val.pop("select")
        row = {"epoch": epoch + 1, "images": (epoch + 1) * len(order) * world, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": loss, **val, "seconds": round(time.perf_counter() - started, 2)}
        history.append(row)
        improved = best["epoch"] < 0 or score > best["auc"]
        if improved:
            best = {"auc": score, "epoch": epoch + 1}
        if writer:
            if improved:
                save_model(model, run.path("best.safetensors"), epoch=epoch + 1)
            save_model(model, run.path("last.safetensors"), epoch=epoch + 1)
            save_state(run.path("last_state.safetensors"), optimizer, scheduler, epoch + 1, {},
                       {"history": history, "best": best})
            pd.DataFrame(history).to_csv(run.path("metrics.csv"), index=False)
        stop = bool(hooks.after_epoch(model, row)) if hooks.after_epoch else False
        if stop or (cfg.patience and epoch + 1 - best["epoch"] >= cfg.patience):
            break  # early stopping: validation AUC flat for `patience` epochs, or a hook said so
    if world > 1:
        torch.distributed.barrier()
    load_weights(model, run.path("best.safetensors"), name)
    preds = test_ds.rows[["media_id", "frame", "face", "label", "method"]].copy()
    scores = predict(model, test_ds, cfg.batch_size * 2, device)
    preds["score"] = fake_probability(scores).round(6)
    if cfg.target == "method":  # each class's probability beside the fake score
        for k, cls in enumerate(ATTRIBUTION_CLASSES):
            preds[f"p_{cls}"] = scores[:, k].round(6)
    metrics = evaluate_predictions(preds)
    if cfg.target == "method":
        metrics.update(attribution_metrics(test_ds.targets.numpy(), scores, ATTRIBUTION_CLASSES))
    if writer:
        preds.to_csv(run.path("predictions_test.csv"), index=False)
        write_json(run.path("test_metrics.json"), metrics)  # last: its presence marks the run finished
    return read_result(run) if writer else None
