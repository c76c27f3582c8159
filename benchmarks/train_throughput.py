"""Training throughput (images per second) of every recipe a profile trains with, fp32 against bf16 autocast.

`model` is the cost of one optimizer step on random inputs already in memory (the recipe's batch, BCE with
logits, AdamW); `loop` is dflite.engine.train.train_epoch over the crop store's train split (batch assembly,
batched augmentation, step). Each is timed in fp32 (channels_last, today's CPU step) and under bf16 autocast
(TrainConfig.cpu_bf16; the loop only where the CPU has bf16, as training), in this one process, one thread
as a training run has it; `bf16/fp32` is the ratio. On a GPU the engine always uses bf16, so there the two
loop columns time the same setting twice.
A recipe trains in bf16 on the CPU only where this ratio is above 1 and the bf16 runs learn as well on
validation (benchmarks/recipe_search.py compares the profile's recipe with its fp32 twin over seeds).

    .venv/bin/python benchmarks/train_throughput.py [--profile quick] [--steps 30] [--pairs] [--compile]

On a GPU (benchmarks/gpu_check.sh) `--identities N` builds the crop store from a synthetic set of N identities with
the profile's other settings (a profile of its own name, so it never mixes with the full set): the rates do not
depend on the store's size, and the store's build time, printed, scales with it. `--csv` writes the table.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from dflite import studies
from dflite.config import TrainConfig, override, resolve
from dflite.data.loader import CropDataset
from dflite.engine.train import bf16_step, build_optimizer, select_device, steps_per_epoch, train_epoch
from dflite.nets.models import create_model
from dflite.parallel import spawn_pool
from dflite.studies import tuning


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_only(name: str, size: int, device: torch.device, steps: int, batch: int, bf16: bool) -> float:
    torch.manual_seed(0)
    model = create_model(name, input_size=size).to(device)
    fmt = torch.channels_last  # as dflite.engine.train uses it, on the CPU too
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
    y = torch.rand(batch, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float().squeeze(1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return best_rate(step, steps, batch, device)


def best_rate(step, steps: int, batch: int, device) -> float:
    """Images per second of the fastest of three timed blocks after two warm-up steps (allocation, kernel
    choice): the least disturbed by whatever else the machine is doing."""
    for _ in range(2):
        step()
    block, best = max(steps // 3, 1), float("inf")
    for _ in range(3):
        sync(device)
        t = time.perf_counter()
        for _ in range(block):
            step()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return block * batch / best


def whole_loop(name: str, data: CropDataset, cfg: TrainConfig, device: torch.device, steps: int) -> float:
    torch.manual_seed(0)
    model = create_model(name, input_size=data.size).to(device).to(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    draws = torch.Generator().manual_seed(0)

    def step():
        order = torch.randint(len(data), (cfg.batch_size,), generator=draws)
        train_epoch(model, data, order, cfg, opt, sched, loss_fn, device, draws)
    return best_rate(step, steps, cfg.batch_size, device)


def compiled(name: str, cfg: TrainConfig, steps: int, run_steps: int) -> dict:
    """torch.compile (inductor) of the model step against eager, in the recipe's precision: the first compiled
    steps' extra seconds (the compile), the steady images/s ratio, and the steps a run needs before the compile has
    paid for itself, against the steps one run of the recipe takes. A fresh process compiles again (the studies
    train each run in a pool worker), so this is the price per run unless the compiled graph is cached."""
    device = torch.device("cpu")
    bf16 = bf16_step(cfg, device)
    eager = model_only(name, cfg.input_size, device, steps, cfg.batch_size, bf16)
    torch.manual_seed(0)
    model = create_model(name, input_size=cfg.input_size).to(memory_format=torch.channels_last).train()
    fast = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(cfg.batch_size, 3, cfg.input_size, cfg.input_size).to(memory_format=torch.channels_last)
    y = torch.rand(cfg.batch_size)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(fast(x).float().squeeze(1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t = time.perf_counter()
    step()
    first = time.perf_counter() - t
    rate = best_rate(step, steps, cfg.batch_size, device)
    saved = cfg.batch_size / eager - cfg.batch_size / rate  # seconds saved per step
    compile_s = first - cfg.batch_size / rate
    return {"model": name, "precision": "bf16" if bf16 else "fp32", "eager img/s": eager, "compiled img/s": rate,
            "compiled/eager": rate / eager, "compile s": compile_s,
            "break-even steps": compile_s / saved if saved > 0 else float("inf"), "steps per run": run_steps}


def _pair_worker(args) -> float:
    """One of two concurrent runs (a spawned process, one thread): images/s of the model step."""
    name, size, steps, batch, bf16 = args
    torch.set_num_threads(1)
    return model_only(name, size, torch.device("cpu"), steps, batch, bf16)


def two_runs_or_two_threads(name: str, cfg: TrainConfig, steps: int) -> dict:
    """The CPU's two ways to use 2 cores: two one-thread runs at once (what the studies do) against one run on two
    threads; images/s summed over the runs."""
    torch.set_num_threads(2)
    bf16 = bf16_step(cfg, torch.device("cpu"))
    one = model_only(name, cfg.input_size, torch.device("cpu"), steps, cfg.batch_size, bf16)
    torch.set_num_threads(cfg.cpu_threads)
    with spawn_pool(2) as pool:
        two = sum(pool.map(_pair_worker, [(name, cfg.input_size, steps, cfg.batch_size, bf16)] * 2))
    return {"model": name, "one run, 2 threads": one, "two runs, 1 thread each": two, "two runs / one run": two / one}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    ap.add_argument("--pairs", action="store_true", help="also: two one-thread runs at once against one two-thread run")
    ap.add_argument("--compile", action="store_true", help="also: torch.compile against eager, with the compile time")
    ap.add_argument("--identities", type=int, default=0, help="a synthetic set of this many identities (0: the "
                    "profile's own)")
    ap.add_argument("--workers", type=int, default=0, help="extraction processes (0: the profile's)")
    ap.add_argument("--csv", default="", help="also write the table to this CSV file")
    args = ap.parse_args()
    device = select_device()
    p = resolve(args.profile, **({"workers": args.workers} if args.workers else {}))
    if args.identities:
        p = override(p, name=f"{p.name}-ids{args.identities}", synth=override(p.synth, identities=args.identities))
    t = time.perf_counter()
    store = studies.crop_store(p, progress=True)
    print(f"crop store ({p.name}, {p.synth.identities} identities, {p.workers} extraction workers): "
          f"{len(store.index)} crops, {time.perf_counter() - t:.0f} s (data and extraction, or reused)")
    rows = []
    for kind, name in tuning.recipes(p):
        cfg = tuning.profile_recipe(p, kind, name)
        torch.set_num_threads(cfg.cpu_threads)  # as a training run has it
        data = CropDataset(store, "train", cfg.input_size)
        rate = {}
        for bf16 in (False, True):
            rate["model", bf16] = model_only(name, cfg.input_size, device, args.steps, cfg.batch_size, bf16)
            rate["loop", bf16] = whole_loop(name, data, override(cfg, cpu_bf16=bf16), device, args.steps)
        rows.append({"recipe": kind, "model": name, "px": cfg.input_size, "batch": cfg.batch_size,
                     "model fp32": rate["model", False], "model bf16": rate["model", True],
                     "model bf16/fp32": rate["model", True] / rate["model", False],
                     "loop fp32": rate["loop", False], "loop bf16": rate["loop", True],
                     "loop bf16/fp32": rate["loop", True] / rate["loop", False],
                     "profile uses": "bf16" if bf16_step(cfg, device) else "fp32"})
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\nimages/s, {where}, each recipe's batch, best of 3 blocks of {args.steps // 3} steps")
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).round(2).to_string(index=False))
    if args.csv:
        pd.DataFrame(rows).assign(device=where).round(2).to_csv(args.csv, index=False)
    if device.type == "cpu" and args.pairs:
        pairs = [two_runs_or_two_threads(name, p.recipe(name), args.steps) for name in p.baselines.models]
        print("\nimages/s of the model step on 2 cores, the profile's precision per recipe")
        print(pd.DataFrame(pairs).round(2).to_string(index=False))
    if device.type == "cpu" and args.compile:
        rows = []
        for name in p.baselines.models:
            cfg = p.recipe(name)
            torch.set_num_threads(cfg.cpu_threads)
            rows.append(compiled(name, cfg, args.steps, steps_per_epoch(cfg, store) * cfg.epochs))
        print("\ntorch.compile of the model step, one thread, the profile's precision per recipe")
        print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
