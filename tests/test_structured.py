"""Structured pruning, distillation and deployment: Taylor pruning steps, the checkpoint round trip of a
pruned net, the KD loss, ONNX export and int8, and a tiny study of slimming runs that is killed and resumed."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from dflite.analysis import labels
from dflite.compress.deploy import export_onnx, ort_latency_ms, quantize_int8, session, timed_together
from dflite.compress.distill import Distiller, soft_loss
from dflite.compress.structured import (
    calibration_batches,
    channels_kept,
    prune_step,
    removed,
    step_targets,
    thinnest,
)
from dflite.config import TrainConfig
from dflite.engine.jobs import run_jobs
from dflite.experiments import structured as slimming
from dflite.experiments.structured import Slimming, Variant
from dflite.nets.checkpoint import load_model, save_model
from dflite.nets.models import count_parameters, create_model
from torch import nn


def _batches(size=32, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, size, size, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(n)]


def _net(name, size=32, seed=0):
    torch.manual_seed(seed)
    return create_model(name, input_size=size)


@pytest.mark.parametrize("name", ["cnn5", "efficientnet_lite0", "efficientnet_b0"])
@pytest.mark.parametrize("scope", ["global", "local"])
def test_pruning_narrows_the_net_keeps_the_output_and_round_trips(name, scope, tmp_path):
    model, dense = _net(name), _net(name)
    history = prune_step(model, _batches(), 0.3, scope)
    assert history and model.dflite_spec["pruning"] == history
    assert count_parameters(model) < 0.85 * count_parameters(dense)
    kept = channels_kept(model, dense)
    assert kept["kept"].min() >= 1 and (kept["kept"] < kept["dense"]).any()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1)  # the output layer keeps its one logit
    if scope == "local":  # every pruned layer loses about the same share
        pruned = kept[kept["kept"] < kept["dense"]]
        assert pruned["share"].between(0.5, 0.85).all(), pruned
    # A second step goes on from the narrower net, and the file rebuilds the net from its history alone.
    prune_step(model, _batches(seed=1), 0.4, scope)
    save_model(model, tmp_path / "p.safetensors")
    again, meta = load_model(tmp_path / "p.safetensors")
    x = torch.randn(3, 3, 32, 32)
    model.eval(), again.eval()
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    with torch.no_grad():  # same weights; outputs equal up to the kernels' layout-dependent last bits
        torch.testing.assert_close(model(x), again(x), rtol=1e-5, atol=1e-6)
    assert again.dflite_spec["pruning"] == model.dflite_spec["pruning"]
    assert thinnest(again, dense)["share"] < 1


def test_importance_uses_fresh_gradients_and_leaves_batch_norm_alone():
    a, b = _net("cnn5"), _net("cnn5")
    b.train()
    for p in b.parameters():  # stale gradients from some earlier pass must not steer the ranking
        p.grad = torch.randn_like(p) * 100
    stats = b.features[1].bn.running_mean.clone()
    assert prune_step(a, _batches(), 0.25, "global") == prune_step(b, _batches(), 0.25, "global")
    assert b.training and all(p.grad is None for p in b.parameters())
    kept = [i for i in range(32) if i not in dict((n, idx) for n, _, idx in b.dflite_spec["pruning"]).get(
        "features.1.conv", [])]
    assert torch.equal(b.features[1].bn.running_mean, stats[kept])  # tracing ran in eval mode


def test_rounded_widths_are_multiples():
    model, dense = _net("efficientnet_lite0"), _net("efficientnet_lite0")
    prune_step(model, _batches(), 0.35, "global", round_to=8)
    kept = channels_kept(model, dense)
    cut = kept[kept["kept"] < kept["dense"]]
    assert len(cut) > 5 and (cut["kept"] % 8 == 0).all(), cut[cut["kept"] % 8 != 0]


def test_step_schedule_and_its_errors():
    assert step_targets(0.2, 5) == pytest.approx([0.04, 0.08, 0.12, 0.16, 0.2])
    with pytest.raises(ValueError, match="scope"):
        prune_step(_net("cnn5"), _batches(), 0.2, "sideways")
    with pytest.raises(ValueError, match="target"):
        prune_step(_net("cnn5"), _batches(), 1.2)


def _roots_share(model, dense):
    """Each pruning-group root's width as a share of its dense width (what the cap is about)."""
    from dflite.compress.structured import dependency_groups

    kept = channels_kept(model, dense).loc[list(dependency_groups(_net(dense.dflite_spec["name"]))[1])]
    return kept["kept"] / kept["dense"]


@pytest.mark.parametrize("scope", ["global", "local"])
def test_k_steps_reach_the_nominal_share_never_beyond_it_and_keep_the_cap(scope):
    """Step k of K takes the net to k/K of the share, counted on the dense net: never past it, short of it by
    less than one rounding unit, and no layer below (1 - max_layer_ratio) of its dense width at any step."""
    model, dense = _net("efficientnet_lite0"), _net("efficientnet_lite0")
    total = sum(channels_kept(dense, dense).loc[list(_roots_share(dense, dense).index), "dense"])
    for k, target in enumerate(step_targets(0.4, 4), start=1):
        prune_step(model, _batches(seed=k), target, scope, max_layer_ratio=0.5, round_to=8)
        share = removed(model, 32)["channels_removed"]
        if scope == "global":
            assert target - 8 / total <= share <= target + 1e-9, (k, share)
        assert _roots_share(model, dense).min() >= 0.5 - 1e-9, k
    one = _net("efficientnet_lite0")
    prune_step(one, _batches(), 0.4, scope, max_layer_ratio=0.5, round_to=8)
    assert abs(removed(one, 32)["channels_removed"] - removed(model, 32)["channels_removed"]) < 16 / total


def test_local_rounding_goes_to_the_nearest_aligned_width():
    # 5 % of a 16-channel layer is 0.8 channels: the nearest multiple of 8 keeps all 16 (MetaPruner kept 8).
    model, dense = _net("cnn5"), _net("cnn5")
    prune_step(model, _batches(), 0.05, "local", round_to=8)
    kept = channels_kept(model, dense).drop(index="fc")  # the output layer keeps its one logit
    assert kept.loc["features.0.conv", "kept"] == 16
    assert (kept["kept"] % 8 == 0).all() and (kept["dense"] - kept["kept"] <= 0.05 * kept["dense"] + 4).all()


def test_taylor_importance_is_not_magnitude():
    """A channel with large weights that nothing downstream reads has no Taylor importance; a channel with tiny
    weights that the net uses has some. Taylor pruning removes the first; magnitude pruning would the second."""
    model = _net("cnn5")
    with torch.no_grad():
        first, second = model.features[0].conv.weight, model.features[1].conv.weight
        first[0] *= 100          # loud but ignored:
        second[:, 0] = 0         # the next layer reads nothing from channel 0
        first[1] *= 1e-3         # quiet but used
    history = prune_step(model, _batches(n=4), 1 / 16, "local")  # one channel of features.0.conv
    cut = dict((name, idx) for name, _, idx in history)["features.0.conv"]
    assert cut == [0]


def test_matching_parameters_prunes_globally_to_the_size_of_another_net():
    local = _net("efficientnet_lite0")
    prune_step(local, _batches(), 0.1, "local", round_to=8)
    matched = _net("efficientnet_lite0")
    prune_step(matched, _batches(), 0.1, "global", round_to=8, params=count_parameters(local))
    assert count_parameters(matched) <= count_parameters(local)
    assert count_parameters(matched) >= 0.98 * count_parameters(local)


def test_calibration_batches_are_balanced_and_repeatable(train_store):
    from dflite.data.loader import split_dataset

    data = split_dataset(train_store, "train", 32)
    batches = calibration_batches(data, 8, 2, seed=1)
    assert len(batches) == 2 and all(int(y.sum()) == 4 for _, y in batches)
    again = calibration_batches(data, 8, 2, seed=1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))


class _FewReals:
    """A split with 3 real and 9 fake crops (the crop dataset's interface: labels, root, batches)."""

    root = Path("crops/tiny")
    labels = np.array([0, 0, 0] + [1] * 9)

    def batches(self, batch_size, order):
        for start in range(0, len(order), batch_size):
            idx = torch.tensor(order[start:start + batch_size])
            yield torch.zeros(len(idx), 3, 8, 8, dtype=torch.uint8), torch.tensor(self.labels[idx]), idx


def test_a_split_with_fewer_reals_than_half_a_batch_still_calibrates_on_one_balanced_batch():
    # ONNX Runtime's int8 calibration fails on no batch ("No data is collected"): the paper smoke run found it.
    batches = calibration_batches(_FewReals(), 16, 4)
    assert len(batches) == 1 and batches[0][1].tolist() == [0, 0, 0, 1, 1, 1]
    none = _FewReals()
    none.labels = np.ones(12, dtype=int)
    with pytest.raises(ValueError, match="needs real and fake crops.*crops/tiny has 0 real and 12 fake"):
        calibration_batches(none, 16, 4)


def test_a_history_that_does_not_fit_is_refused(tmp_path):
    model = _net("cnn5")
    prune_step(model, _batches(), 0.3)
    save_model(model, tmp_path / "p.safetensors")
    spec = copy.deepcopy(model.dflite_spec)
    spec["pruning"][0][0] = "features.9.conv"
    from dflite.nets.checkpoint import build_model

    with pytest.raises(ValueError, match="pruning history"):
        build_model({**spec, "layers": {}})


# ---- distillation ----

class _Refuse(nn.Module):
    """A teacher that must not be asked."""

    def forward(self, x):
        raise AssertionError("alpha 0 needs no teacher pass")


def test_alpha_zero_is_the_plain_loss():
    logits, y = torch.randn(8, requires_grad=True), torch.randint(0, 2, (8,)).float()
    crit = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.0))
    teacher = _Refuse()
    teacher.register_parameter("w", nn.Parameter(torch.zeros(1)))
    assert torch.equal(Distiller(teacher, 0.0)(logits, y, torch.zeros(8, 3, 4, 4), crit), crit(logits, y))


def test_gradients_reach_only_the_student_and_the_soft_term_is_right():
    student, teacher = _net("cnn5"), _net("cnn5", seed=1)
    teacher.train()
    kd = Distiller(teacher, 0.5, temperature=2.0)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 2, (4,)).float()
    logits = student(x).squeeze(1)
    loss = kd(logits, y, x, nn.BCEWithLogitsLoss())
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters()) and not teacher.training
    assert all(p.grad is not None for p in student.parameters())
    with torch.no_grad():
        t = teacher(x).squeeze(1)
    want = 0.5 * 4 * nn.functional.binary_cross_entropy_with_logits(logits / 2, torch.sigmoid(t / 2)) + \
        0.5 * nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert torch.allclose(loss, want)
    # The soft term is smallest where the student says what the teacher says.
    s = t.clone().requires_grad_(True)
    soft_loss(s, t, 2.0).backward()
    assert s.grad.abs().max() < 1e-6


def test_a_teacher_of_another_size_sees_the_batch_resized():
    teacher = _net("cnn5", size=64)
    seen = []
    teacher.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    kd = Distiller(teacher, 1.0)
    kd(torch.zeros(2), torch.ones(2), torch.randn(2, 3, 32, 32), nn.BCEWithLogitsLoss())
    assert seen == [64]
    with pytest.raises(ValueError, match="alpha"):
        Distiller(teacher, 1.5)


# ---- deployment ----

def test_onnx_export_fp32_and_int8(tmp_path):
    model = _net("cnn5").eval()
    fp32 = export_onnx(model, tmp_path / "m.onnx", 32)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        want = model(x).numpy()
    got = session(fp32).run(None, {"input": x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-4  # and any batch size runs
    calib = [torch.randn(8, 3, 32, 32).numpy() for _ in range(4)]
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", calib)
    graph = onnx.load(str(int8)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weight_scales = [i for i in graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1]
    assert weight_scales  # per-channel weight scales
    zero_points = {i.data_type for i in graph.initializer if i.name.endswith("_zero_point")}
    assert onnx.TensorProto.UINT8 in zero_points and onnx.TensorProto.INT8 in zero_points
    q = session(int8).run(None, {"input": x.numpy()})[0]
    assert np.corrcoef(q.ravel(), want.ravel())[0, 1] > 0.9
    assert ort_latency_ms(int8, 32, threads=1, repeats=3, warmup=1) > 0
    assert not list(tmp_path.glob("*.pre.onnx")) and not list(tmp_path.glob("*.part.onnx"))


def test_timed_together_keeps_ratios_when_the_load_changes():
    """A load that grows tenfold halfway through the timing (a neighbour's job starting) leaves the ratio of two
    nets timed in interleaved rounds where it was; timed one after the other (one round) it reads 5x wrong."""
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()

    def net(cost):
        def call():
            clock.now += cost * (1 if clock.now < 100 else 10)
        return call

    calls = {"slow": net(2.0), "fast": net(1.0)}
    together = timed_together(calls, 1, repeats=60, rounds=6, warmup=5, clock=clock)
    assert together["slow"] / together["fast"] == pytest.approx(2.0, rel=0.05)
    clock.now = 0.0
    apart = timed_together(calls, 1, repeats=60, rounds=1, warmup=5, clock=clock)
    assert apart["slow"] / apart["fast"] == pytest.approx(0.2, rel=0.05)


# ---- slimming runs ----

CFG = TrainConfig(input_size=32, epochs=1, epoch_size=64, batch_size=16, warmup_epochs=0)
FINETUNE = TrainConfig(input_size=32, epochs=1, epoch_size=32, batch_size=16, warmup_epochs=0, lr=5e-4)
VARIANTS = [Variant(0.3, "global", 2), Variant(0.3, "local", 1, alpha=0.5), Variant(0.0, alpha=0.5),
            Variant(0.3, "global", alpha=0.5, match="local")]


def _slim(store) -> Slimming:
    return Slimming("quick", "tiny", store.ref(), 0, "efficientnet_lite0",
                    {"efficientnet_lite0": CFG, "cnn5": CFG}, FINETUNE, teacher="cnn5", calib_batches=1)


def _run_all(s):
    run_jobs(s.jobs(VARIANTS), workers=1, progress=False)
    return {labels.variant(**v.settings()): slimming.Step(s, v, v.steps).row() for v in VARIANTS}


def test_slimming_runs_prune_distil_and_resume_identically(train_store, tmp_path, monkeypatch):
    s = _slim(train_store)
    rows = _run_all(s)
    dense = create_model("efficientnet_lite0", input_size=32)
    for v, row in zip(VARIANTS, rows.values()):
        assert 0 <= row["auc"] <= 1 and row["arm"] == "variant" and {k: row[k] for k in v.settings()} == v.settings()
    assert rows["KD α=0.5"]["params"] == count_parameters(dense)
    two_step = rows["global 30% 2-step"]
    assert two_step["params"] < 0.8 * count_parameters(dense)
    # The 2-step variant's second step started from its first step's net, narrower still.
    first = slimming.Step(s, VARIANTS[0], 1).run()
    second = slimming.Step(s, VARIANTS[0], 2).run()
    assert second.identity["settings"]["from"].endswith(first.dir.relative_to(first.dir.parents[1]).as_posix())
    assert count_parameters(load_model(first.path("best.safetensors"))[0]) > two_step["params"]
    assert second.identity["train"]["epoch_size"] == 16  # K steps share the fine-tuning images
    # Step k of K prunes to k/K of the ratio, counted on the dense net.
    for k, run in ((1, first), (2, second)):
        share = removed(load_model(run.path(slimming.PRUNED))[0], 32)["channels_removed"]
        assert 0.15 * k - 0.02 <= share <= 0.15 * k + 1e-9, (k, share)
    # Global pruning matched to the local variant's size: no more parameters than it, and nearly as many.
    local, matched = rows["local 30% 1-shot + KD α=0.5"], rows["global at local 30%'s size + KD α=0.5"]
    assert 0.97 * local["params"] <= matched["params"] <= local["params"]
    # A study killed after its first pruning step resumes there and ends with the same numbers.
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "killed"))
    for job in s.jobs(VARIANTS[:1]):
        if not isinstance(job, slimming.Step) or job.step == 1:
            job.train()
    again = _run_all(s)
    for label in rows:
        assert again[label]["auc"] == pytest.approx(rows[label]["auc"], abs=1e-6), label
        assert again[label]["params"] == rows[label]["params"]


def test_the_recovery_curve_reads_each_fine_tuning_epoch_and_the_last_gain(tmp_path, monkeypatch):
    """structured.recovery: validation AUC after each fine-tuning epoch, mean over seeds, for the 1-shot pruned
    variants only (not K-step, not the unpruned alpha runs), and what the last epoch added."""
    import pandas as pd
    from dflite import paths
    from dflite.config import resolve
    from dflite.studies import structured as study

    monkeypatch.setenv("DFLITE_DATA", str(tmp_path))
    runs = paths.runs_dir("quick")
    rows = []
    for seed, base in ((0, 0.80), (1, 0.90)):
        for name, arm, ratio, steps, curve in (("d", "dense", 0.0, 1, [0.95, 0.97]),
                                               ("g", "variant", 0.2, 1, [base, base + 0.04, base + 0.05]),
                                               ("k", "variant", 0.2, 5, [0.1, 0.2, 0.3]),
                                               ("a", "variant", 0.0, 1, [0.5, 0.6, 0.7])):
            folder = runs / f"{name}{seed}"
            folder.mkdir(parents=True)
            pd.DataFrame({"epoch": range(1, len(curve) + 1), "images": [512 * (i + 1) for i in range(len(curve))],
                          "val_auc": curve}).to_csv(folder / "metrics.csv", index=False)
            rows.append({"model": "efficientnet_lite0", "arm": arm, "ratio": ratio, "scope": "global",
                         "steps": steps, "alpha": 0.0, "match": "", "seed": seed, "run": folder.name})
    out = study.recovery(resolve("quick"), pd.DataFrame(rows))
    assert list(out.index) == ["global 20% 1-shot"]
    row = out.loc["global 20% 1-shot"]
    assert row["512 images"] == pytest.approx(0.85) and row["1536 images"] == pytest.approx(0.90)
    assert row["last gain"] == pytest.approx(0.01) and row["dense student"] == pytest.approx(0.97)


def test_final_models_at_a_later_seed_leave_out_the_first_seed_only_reference():
    """Notebook 06 explains every seed of the student and its final variants; B0 trained at the first seed only."""
    import pandas as pd
    from dflite.config import resolve
    from dflite.studies.structured import final_models, variants

    p = resolve("quick")
    st = p.structured
    dense = Variant().settings()
    rows = [{"model": st.reference, "arm": "dense", **dense, "seed": st.seeds[0], "run": "b0"}]
    for s in st.seeds:
        rows.append({"model": st.student, "arm": "dense", **dense, "seed": s, "run": f"dense{s}"})
        rows += [{"model": st.student, "arm": "variant", **v.settings(), "seed": s, "run": f"{v.alpha}/{s}"}
                 for v in variants(p)["final"]]
    table = pd.DataFrame(rows)
    first = final_models(p, table)
    assert [r.run for _, r in first] == ["b0", "dense0", "0.0/0", "0.25/0"]
    later = final_models(p, table, seed=st.seeds[-1])
    assert [r.run for _, r in later] == [f"dense{st.seeds[-1]}", f"0.0/{st.seeds[-1]}", f"0.25/{st.seeds[-1]}"]
    with pytest.raises(IndexError):  # a student missing at a seed is an error, not a silent gap
        final_models(p, table[table.run != "dense1"], seed=1)


def _deployed(busy):
    from dflite import config

    p = config.resolve("quick")
    st = p.structured
    ms = {(st.reference, "torch"): 40.0, (st.reference, "ort_fp32"): 12.0, ("small", "ort_fp32"): 5.0,
          ("small", "ort_int8"): 3.0}
    deployed = pd.DataFrame([{"model": m, "runtime": r, "input_px": st.report_px, "threads": st.report_threads,
                              "ms": v, "others_cpu": busy} for (m, r), v in ms.items()])
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    score = np.clip(labels * 0.6 + rng.uniform(0, 0.4, 80), 0, 1)  # the same crops, the same scores: no loss
    scores = pd.concat([pd.DataFrame({"model": m, "runtime": r, "label": labels, "group": np.arange(80) // 2,
                                      "score": score}) for m, r in ms], ignore_index=True)
    return p, deployed, scores


def test_speed_goals_are_decided_on_a_quiet_cpu_only():
    from dflite.studies.structured import speed_goals

    p, deployed, scores = _deployed(busy=0.02)
    quiet = speed_goals(p, deployed, scores, write=False)
    assert quiet.loc["P1", "speed_up"] == 4.0 and quiet.loc["P1", "met"] == "yes"  # 12 ms against 3 ms
    assert quiet.loc["P2", "speed_up"] == pytest.approx(13.33, abs=0.01) and quiet.loc["P2", "met"] == "yes"
    near = deployed.assign(ms=np.where(deployed.runtime == "ort_int8", 12.0 / 3.1, deployed.ms))  # 3.1x: near 3x
    assert speed_goals(p, near, scores, write=False).loc["P1", "met"].startswith("inconclusive (within 10%")
    slow = deployed.assign(ms=np.where(deployed.runtime == "ort_int8", 12.0 / 2.69, deployed.ms))  # 2.69x
    assert speed_goals(p, slow, scores, write=False).loc["P1", "met"] == "no"
    edge = deployed.assign(ms=np.where(deployed.runtime == "ort_int8", 12.0 / 3.3, deployed.ms))  # 3.30x exactly
    assert speed_goals(p, edge, scores, write=False).loc["P1", "met"] == "yes"
    p, deployed, scores = _deployed(busy=0.35)
    busy = speed_goals(p, deployed, scores, write=False)
    assert busy["met"].str.startswith("not decided (other processes used 35%").all()
    p, deployed, scores = _deployed(busy=None)
    assert speed_goals(p, deployed, scores, write=False)["met"].str.startswith("not decided (the CPU's load").all()


def test_others_share_is_the_cpu_other_processes_used():
    import os

    from dflite.compress.deploy import cpu_reading, others_share

    # 3 CPU-seconds busy on the machine, 1 of them ours, over 2 s of wall time
    assert others_share((10.0, 1.0, 100.0), (13.0, 2.0, 102.0)) == round(2 / (2 * os.cpu_count()), 3)
    assert others_share(None, (1.0, 1.0, 1.0)) is None
    assert cpu_reading() is None or len(cpu_reading()) == 3
