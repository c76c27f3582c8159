"""Training and evaluation of one detector: BCE with logits, warm-up + cosine, checkpoints, resume, DDP.

A run folder carries its own config.json, env.json, metrics.csv (one row per epoch), best and last
weights, the state to resume from, and the test predictions. A finished run is skipped and returns
exactly what it returned when it ran. Every epoch reseeds its sampler and the global RNG from
(seed, epoch), so a resumed run is bit-identical to an uninterrupted one on the CPU.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from . import paths
from .checkpoint import load_state, load_weights, save_state, save_weights
from .config import ExtractConfig, TrainConfig, from_dict, run_name, to_dict
from .loader import CropDataset, augment, epoch_indices, normalise
from .metrics import binary_metrics, evaluate_predictions
from .models import create_model, model_info


@dataclass
class RunResult:
    model: str
    run_dir: Path
    history: pd.DataFrame      # one row per epoch
    predictions: pd.DataFrame  # test split: media_id, frame, face, label, method, score
    metrics: dict              # evaluate_predictions on the test split
    input_size: int


def run_dir(profile: str, stage: str, model: str, dataset: str, cfg: TrainConfig, store, seed: int) -> Path:
    """data/runs/<profile>/<stage>_<model>_<dataset>_<hash8>/seed_<s>: the hash covers the training and
    extraction settings and the fingerprint of the crop store, so other data never shares a folder."""
    extract_cfg = from_dict(ExtractConfig, store.config)
    name = run_name(stage, model, dataset, cfg, extract_cfg, data=store.fingerprint)
    return paths.runs_dir(profile) / name / f"seed_{seed}"


class RunMismatchError(ValueError):
    """A run folder holds a run made with other settings or other data."""


def check_run(out: Path, want: dict) -> None:
    """Refuse a run folder whose config.json differs from `want`, naming what differs."""
    path = out / "config.json"
    if not path.is_file():
        return
    have = json.loads(path.read_text())
    differ = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if differ:
        detail = "; ".join(f"{k}: folder has {have.get(k)!r}, asked for {want.get(k)!r}" for k in differ)
        raise RunMismatchError(f"run folder {paths.show(out)} was made with other settings or data ({detail}); "
                               "delete it or choose another folder")


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


def env_info(device: torch.device, world: int) -> dict:
    """Versions, commit and device (no host names or paths)."""
    import cv2
    import timm
    import torchvision

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "opencv": cv2.__version__, "numpy": np.__version__, "git_commit": commit,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch_threads": torch.get_num_threads(), "world_size": world}


def predict(model: nn.Module, dataset: CropDataset, batch_size: int, device: torch.device) -> np.ndarray:
    """Fake-probability per crop, in dataset order."""
    model.eval()
    out = []
    with torch.inference_mode():
        for x, _, _ in dataset.batches(batch_size):
            x = normalise(x.to(device)).to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x)
            out.append(torch.sigmoid(logits.float().squeeze(1)).cpu())
    return torch.cat(out).numpy()


def train_epoch(net: nn.Module, data: CropDataset, order, cfg: TrainConfig, optimizer, scheduler, loss_fn,
                device: torch.device, draws: torch.Generator, desc: str = "train", progress: bool = False) -> float:
    """One pass over `order` (indices into data): augment, forward, step. Returns the mean loss."""
    net.train()
    total, seen = 0.0, 0
    for x, y, _ in tqdm(data.batches(cfg.batch_size, order), desc=desc, total=math.ceil(len(order) / cfg.batch_size),
                        leave=False, disable=not progress):
        x, y = x.to(device), y.to(device)
        x = (augment(x, draws) if cfg.augment else normalise(x)).to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(net(x).float().squeeze(1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += float(loss.detach()) * len(y)
        seen += len(y)
    return total / max(seen, 1)


def _distributed(device: torch.device) -> tuple:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def _finished(out: Path) -> RunResult:
    config = json.loads((out / "config.json").read_text())
    return RunResult(config["model"], out, pd.read_csv(out / "metrics.csv"), pd.read_csv(out / "predictions_test.csv"),
                     json.loads((out / "test_metrics.json").read_text()), config["input_size"])


def fit(model_name: str, store, cfg: TrainConfig, out, seed: int = 0, device: torch.device | None = None,
        progress: bool = True, stop_after: int | None = None) -> RunResult | None:
    """Train `model_name` on the store's train split, select on val AUC, evaluate on test.

    Resumes from the run folder's last checkpoint; `stop_after` ends this call after that many
    epochs in total (time-boxed runs and tests); it returns None then, and a later call resumes.
    """
    out = Path(out)
    info = model_info(model_name)
    size = cfg.input_size or info.input_size
    device = device or select_device()
    if device.type == "cpu":
        previous = torch.get_num_threads()
        torch.set_num_threads(cfg.cpu_threads)  # a run's numbers depend on its thread count: fix it
        try:
            return _fit(model_name, store, cfg, out, seed, device, progress, stop_after, size)
        finally:
            torch.set_num_threads(previous)
    return _fit(model_name, store, cfg, out, seed, device, progress, stop_after, size)


def _fit(model_name, store, cfg, out, seed, device, progress, stop_after, size):
    want = {"model": model_name, "input_size": size, "seed": seed, "train": to_dict(cfg), "extract": store.config,
            "store": paths.show(store.root), "store_fingerprint": store.fingerprint}
    check_run(out, want)
    if (out / "test_metrics.json").is_file():
        return _finished(out)
    rank, world = _distributed(device)
    train_ds = CropDataset(store, "train", size)
    val_ds, test_ds = CropDataset(store, "val", size), CropDataset(store, "test", size)
    torch.manual_seed(seed)
    model = create_model(model_name, pretrained=cfg.pretrained, input_size=size).to(device)
    # channels_last on the CPU too: CNN-5 trains 1.7x faster with oneDNN (2 threads), others no slower.
    model = model.to(memory_format=torch.channels_last)
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    steps = math.ceil((cfg.epoch_size or len(train_ds)) / (cfg.batch_size * world))
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps))
    n_real, n_fake = np.bincount(train_ds.labels, minlength=2)
    pos_weight = torch.tensor(n_real / max(n_fake, 1), device=device) if cfg.balance == "weights" else None
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    writer = rank == 0
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(want, indent=1))
        (out / "env.json").write_text(json.dumps(env_info(device, world), indent=1))

    start, history, best = 0, [], {"auc": -1.0, "epoch": -1}
    if (out / "last_state.safetensors").is_file():
        load_weights(model, out / "last.safetensors", model_name)
        start, _, extra = load_state(out / "last_state.safetensors", optimizer, scheduler)
        history, best = extra["history"], extra["best"]
    for epoch in range(start, cfg.epochs):
        if stop_after is not None and epoch >= stop_after:
            return None
        started = time.perf_counter()
        torch.manual_seed(seed * 1000 + epoch)  # dropout draws of this epoch
        draws = torch.Generator().manual_seed(seed * 1000 + epoch)  # sample order, then augmentation
        order = epoch_indices(train_ds, cfg.balance, draws, rank, world, cfg.epoch_size)
        loss = train_epoch(net, train_ds, order, cfg, optimizer, scheduler, loss_fn, device, draws,
                           desc=f"{model_name} epoch {epoch + 1}", progress=progress and writer)
        scores = predict(model, val_ds, cfg.batch_size * 2, device)
        val = binary_metrics(val_ds.labels, scores)
        val_loss = float(nn.functional.binary_cross_entropy(torch.tensor(scores).clamp(1e-6, 1 - 1e-6),
                                                            torch.tensor(val_ds.labels, dtype=torch.float32)))
        history.append({"epoch": epoch + 1, "images": (epoch + 1) * len(order) * world,
                        "lr": optimizer.param_groups[0]["lr"], "train_loss": loss,
                        "val_loss": val_loss, "val_auc": val["auc"], "val_acc": val["acc"],
                        "seconds": round(time.perf_counter() - started, 2)})
        # Select on validation AUC; a split with one class has none, so fall back to (minus) its loss.
        score = val["auc"] if not math.isnan(val["auc"]) else -val_loss
        improved = best["epoch"] < 0 or score > best["auc"]
        if improved:
            best = {"auc": score, "epoch": epoch + 1}
        if writer:
            if improved:
                save_weights(model, out / "best.safetensors", model_name, input_size=size, epoch=epoch + 1)
            save_weights(model, out / "last.safetensors", model_name, input_size=size, epoch=epoch + 1)
            save_state(out / "last_state.safetensors", optimizer, scheduler, epoch + 1, {},
                       {"history": history, "best": best})
            pd.DataFrame(history).to_csv(out / "metrics.csv", index=False)
        if cfg.patience and epoch + 1 - best["epoch"] >= cfg.patience:
            break  # early stopping: validation AUC flat for `patience` epochs
    if world > 1:
        torch.distributed.barrier()
    load_weights(model, out / "best.safetensors", model_name)
    preds = test_ds.rows[["media_id", "frame", "face", "label", "method"]].copy()
    preds["score"] = predict(model, test_ds, cfg.batch_size * 2, device).round(6)
    metrics = evaluate_predictions(preds)
    if writer:
        preds.to_csv(out / "predictions_test.csv", index=False)
        (out / "test_metrics.json").write_text(json.dumps(metrics, indent=1))
    return _finished(out) if writer else None
