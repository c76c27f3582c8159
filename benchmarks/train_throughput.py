"""Training and inference throughput (images per second) per model on the current device.

Random inputs, batch 32, BCE with logits and AdamW: the cost of dflite.train's inner step without
data loading. On CUDA it uses bf16 autocast and channels_last, as training does. Ratios are against
EfficientNet-B0 at the same input size, measured in the same run.

    .venv/bin/python benchmarks/train_throughput.py [--sizes 64,112] [--models meso4,cnn5,...] [--steps 5]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from dflite.config import BASELINE_MODELS
from dflite.models import create_model
from dflite.train import select_device


def throughput(name: str, size: int, device: torch.device, steps: int, batch: int = 32) -> tuple:
    model = create_model(name, input_size=size).to(device)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    y = torch.rand(batch, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float().squeeze(1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    train_step()  # warm-up: allocation, kernel selection
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    train = steps * batch / (time.perf_counter() - t)
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        model(x)
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync()
    infer = steps * batch / (time.perf_counter() - t)
    return train, infer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,112")
    ap.add_argument("--models", default=",".join(BASELINE_MODELS))
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    device = select_device()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for name in args.models.split(","):
            train, infer = throughput(name, size, device, args.steps)
            rows.append({"model": name, "px": size, "train img/s": train, "infer img/s": infer})
    df = pd.DataFrame(rows)
    ref = df[df["model"] == "efficientnet_b0"].set_index("px")["train img/s"]
    if len(ref):
        df["train vs B0"] = df["train img/s"] / df["px"].map(ref)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\ndevice: {name}, batch 32, {args.steps} timed steps")
    print(df.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
