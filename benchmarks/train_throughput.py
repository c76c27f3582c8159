"""Training throughput (images per second): the model's step alone, and dflite's whole training loop.

`model` is the cost of one optimizer step on random inputs already in memory (batch 32, BCE with
logits, AdamW); `loop` is dflite.engine.train.train_epoch over the quick crop store's train split (batch
assembly, batched augmentation, step): the ratio loop/model says how much the data path costs.
Both use channels_last, and bf16 autocast on CUDA, as training does.

    .venv/bin/python benchmarks/train_throughput.py [--models cnn5,resnet18] [--size 64] [--steps 20]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from dflite import studies
from dflite.config import TrainConfig, resolve
from dflite.data.loader import CropDataset
from dflite.engine.train import build_optimizer, select_device, train_epoch
from dflite.nets.models import create_model


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_only(name: str, size: int, device: torch.device, steps: int, batch: int) -> float:
    model = create_model(name, input_size=size).to(device)
    fmt = torch.channels_last  # as dflite.engine.train uses it, on the CPU too
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    y = torch.rand(batch, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float().squeeze(1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocation, kernel selection
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - t)


def whole_loop(name: str, data: CropDataset, cfg: TrainConfig, device: torch.device, steps: int) -> float:
    model = create_model(name, input_size=data.size).to(device).to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    draws = torch.Generator().manual_seed(0)
    order = torch.randint(len(data), ((steps + 1) * cfg.batch_size,), generator=draws)
    train_epoch(model, data, order[:cfg.batch_size], cfg, opt, sched, loss_fn, device, draws)  # warm-up
    sync(device)
    t = time.perf_counter()
    train_epoch(model, data, order[cfg.batch_size:], cfg, opt, sched, loss_fn, device, draws)
    sync(device)
    return steps * cfg.batch_size / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--models", default="cnn5,resnet18")
    ap.add_argument("--size", type=int, default=0, help="input px (0: each model's size in the profile)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    device = select_device()
    p = resolve(args.profile)
    store = studies.crop_store(p, progress=True)
    rows = []
    for name in args.models.split(","):
        cfg = p.recipe(name)
        torch.set_num_threads(cfg.cpu_threads)  # as a training run has it
        size = args.size or cfg.input_size
        data = CropDataset(store, "train", size)
        model = model_only(name, size, device, args.steps, cfg.batch_size)
        loop = whole_loop(name, data, cfg, device, args.steps)
        rows.append({"model": name, "px": size, "batch": cfg.batch_size, "model img/s": model, "loop img/s": loop,
                     "loop/model": loop / model})
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\ndevice: {where}, each model's own batch size, {args.steps} timed steps each")
    print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
