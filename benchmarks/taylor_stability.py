"""How many calibration batches make the Taylor ranking stable? Channels chosen from two disjoint draws of
class-balanced training crops, on the trained dense student of notebook 02 (quick: Lite0 at 80 px).

For each batch count, the dense student's channels to remove at the profile's final ratio (global, rounded as
the study prunes) are chosen twice, from two disjoint sets of that many batches; the table prints the overlap
of the two choices (Jaccard index of the removed channels), the share of removed channels the two choices put
in different layers (the architecture: what speed and size depend on), and the seconds one choice takes. The
study's `calib_batches` should sit where these stop improving.

    .venv/bin/python benchmarks/taylor_stability.py [--profile quick] [--counts 1,2,4,8,16,24]
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

import pandas as pd
import torch
from dflite.compress.structured import calibration_batches, dense_widths, dependency_groups, plan, taylor_gradients
from dflite.config import resolve
from dflite.data.loader import split_dataset
from dflite.nets.checkpoint import load_model
from dflite.studies import baselines, crop_store


def chosen(model, batches, target: float, round_to: int, max_layer_ratio: float) -> set:
    """{(layer, channel)} the study's rule removes, ranked on `batches` (the model is left as it was)."""
    import torch_pruning as tp

    taylor_gradients(model, batches)
    model.eval()
    graph, groups = dependency_groups(model)
    importance = {n: tp.importance.GroupTaylorImportance()(g).detach() for n, g in groups.items()}
    model.zero_grad(set_to_none=True)
    current = {n: graph.get_out_channels(groups[n][0].dep.target.module) for n in groups}
    picked = plan(importance, current, dense_widths(model.dflite_spec), target, "global", max_layer_ratio, round_to)
    return {(layer, int(i)) for layer, idxs in picked.items() for i in idxs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--counts", default="1,2,4,8,16,24")
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = resolve(args.profile)
    st = p.structured
    job = baselines.jobs(p, crop_store(p), models=[st.student], seeds=[st.seeds[0]])[0]
    if not job.done():
        raise SystemExit(f"no trained {st.student}: run notebook 02 first (make reproduce)")
    model = load_model(job.run().path("best.safetensors"))[0]
    data = split_dataset(crop_store(p), "train", model.dflite_spec["input_size"])
    batch = st.finetune.get("batch_size", p.recipe(st.student).batch_size)
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        both = calibration_batches(data, batch, 2 * count, seed=st.seeds[0])  # disjoint halves of one draw
        if len(both) < 2 * count:
            print(f"{count} batches: the training split has too few crops for two disjoint draws")
            break
        started = time.perf_counter()
        a = chosen(model, both[:count], st.final[-1][0], st.round_to, st.max_layer_ratio)
        seconds = time.perf_counter() - started
        b = chosen(model, both[count:], st.final[-1][0], st.round_to, st.max_layer_ratio)
        per_a, per_b = Counter(layer for layer, _ in a), Counter(layer for layer, _ in b)
        moved = sum(abs(per_a[k] - per_b[k]) for k in set(per_a) | set(per_b)) / 2
        rows.append({"batches": count, "crops": count * batch, "removed": len(a),
                     "overlap (Jaccard)": round(len(a & b) / len(a | b), 3),
                     "in other layers": round(moved / len(a), 3), "seconds": round(seconds, 1)})
    print(f"\n{st.student} (notebook 02's seed {st.seeds[0]}), global Taylor to {st.final[-1][0]:.0%} of its channels, "
          f"rounded to {st.round_to}; two disjoint class-balanced draws per row")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
