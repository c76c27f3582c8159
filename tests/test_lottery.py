"""Lottery tickets: mask properties, schedules, the job graph, and a tiny study that is killed and resumed."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from dflite.compress.masks import (
    Mask,
    magnitude_prune,
    pack_sparse,
    prunable_weights,
    random_mask,
    schedule,
    sparse_size_mb,
    unpack_sparse,
)
from dflite.config import TrainConfig, resolve
from dflite.engine import train as train_module
from dflite.engine.jobs import JobError, run_graph, run_jobs
from dflite.experiments import lottery
from dflite.nets.checkpoint import load_model
from dflite.nets.models import count_parameters, create_model
from dflite.studies.lottery import summary, verdicts


def _model(name="cnn5", seed=0):
    torch.manual_seed(seed)
    return create_model(name, input_size=64)


@pytest.mark.parametrize("name", ["cnn5", "meso4", "resnet18"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_pruning_removes_an_exact_share_and_masks_only_shrink(name, scope):
    model = _model(name)
    mask = Mask.dense(model)
    for target in schedule("study"):
        new = magnitude_prune(model, mask, target, scope)
        assert new.within(mask)
        if scope == "global":
            assert new.total - new.kept == round(target * new.total)
        else:
            for k, keep in new.keep.items():
                assert keep.numel() - int(keep.sum()) == round(target * keep.numel()), k
        new.apply(model)
        with torch.no_grad():  # training moves the kept weights between levels; pruned ones stay 0
            for w in prunable_weights(model).values():
                w.add_(torch.randn_like(w) * 0.01).mul_(w != 0)
        mask = new
    assert mask.sparsity == pytest.approx(0.8, abs=1e-4)


def test_global_pruning_keeps_the_largest_magnitudes():
    model = _model("cnn5")
    mask = magnitude_prune(model, Mask.dense(model), 0.6)
    weights = prunable_weights(model)
    kept = torch.cat([weights[k].detach().abs().flatten()[m.flatten()] for k, m in mask.keep.items()])
    pruned = torch.cat([weights[k].detach().abs().flatten()[~m.flatten()] for k, m in mask.keep.items()])
    assert kept.min() >= pruned.max()
    assert len(set(weights)) == len(mask.keep)


def test_classifier_can_be_left_dense():
    model = _model("meso4")
    assert "head.fc2.weight" in Mask.dense(model).keep
    assert "head.fc2.weight" not in Mask.dense(model, classifier=False).keep


def test_random_mask_keeps_the_counts_per_layer_elsewhere():
    model = _model("cnn5")
    mask = magnitude_prune(model, Mask.dense(model), 0.8)
    rand = random_mask(mask, torch.Generator().manual_seed(0))
    assert rand != mask
    for k in mask.keep:
        assert int(rand.keep[k].sum()) == int(mask.keep[k].sum())
    assert random_mask(mask, torch.Generator().manual_seed(0)) == rand


def test_schedules():
    assert schedule("study") == (0.2, 0.4, 0.6, 0.8)
    # The study's levels prune 20 %, 25 %, 1/3 and 1/2 of what is left.
    left = [1.0] + [1 - s for s in schedule("study")]
    assert [round(1 - b / a, 4) for a, b in zip(left, left[1:])] == [0.2, 0.25, 0.3333, 0.5]
    assert schedule("classic", 3) == (0.2, 0.36, 0.488)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule("cubic")


def test_mask_files_round_trip_and_bad_files_are_named(tmp_path):
    model = _model("cnn5")
    mask = magnitude_prune(model, Mask.dense(model), 0.4)
    mask.save(tmp_path / "m.safetensors", {"sparsity": 0.4})
    again = Mask.load(tmp_path / "m.safetensors")
    assert again == mask and again.fingerprint() == mask.fingerprint()
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        Mask.load(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        mask.check(_model("meso4"))


def test_sparse_storage_round_trips_and_is_smaller():
    model = _model("cnn5")
    mask = magnitude_prune(model, Mask.dense(model), 0.8)
    mask.apply(model)
    state = unpack_sparse(pack_sparse(model, mask))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    from dflite.compress.deploy import size_mb
    assert sparse_size_mb(model, mask) < 0.3 * size_mb(model)
    assert mask.params_left(model) == count_parameters(model) - (mask.total - mask.kept)


def _record(key):  # a job for run_graph: spawned workers import it from this module
    if key == "bad":
        raise ValueError("broken job")
    return key


class _Job:
    """A job of the protocol that records its training in a shared list."""

    def __init__(self, key, needs, finished, log):
        self.key, self.needs, self.finished, self.log = key, needs, finished, log

    def done(self):
        return self.finished

    def train(self):
        self.log.append(self.key)


def test_run_jobs_trains_only_what_is_not_done_once_per_key_after_what_it_needs():
    log = []
    jobs = [_Job(("c",), (("b",),), False, log), _Job(("b",), (("a",),), False, log), _Job(("a",), (), True, log),
            _Job(("b",), (("a",),), False, log)]  # a second job of one run: trained once
    run_jobs(jobs, workers=1, progress=False)
    assert log == [("b",), ("c",)]


@pytest.mark.parametrize("workers", [1, 2])
def test_job_graph_runs_in_order_and_names_a_failure(tmp_path, workers):
    order = []
    jobs = {k: k for k in "abcd"}
    needs = {"b": {"a"}, "c": {"b"}, "d": {"a"}}
    if workers == 1:
        run_graph(order.append, jobs, needs, workers=1, progress=False)
        assert order.index("a") < order.index("b") < order.index("c") and order.index("a") < order.index("d")
    else:
        run_graph(_record, jobs, needs, workers=2, progress=False)
    with pytest.raises(JobError, match="job bad failed: ValueError: broken job"):
        run_graph(_record, {"a": "a", "bad": "bad", "c": "c"}, {"c": {"bad"}}, workers=workers, progress=False)


def test_verdicts_reach_every_kind_on_a_constructed_table():
    rows = []
    noise = [0.0, 0.004, -0.003, 0.002]  # what each seed does to every arm alike (shared init, data order)
    jitter = [0.01, -0.012, 0.008, -0.006]
    for model, dense_auc in (("meso4", 0.95), ("cnn5", 0.55)):  # cnn5's dense net did not learn
        for seed, (n, j) in enumerate(zip(noise, jitter)):
            for arm, auc in (("dense", dense_auc), ("imp", 0.9), ("oneshot", 0.8), ("random_reinit", 0.9 + j),
                             ("random_mask", 0.95)):
                rows.append({"model": model, "dataset": "ffpp", "arm": arm,
                             "sparsity": 0.0 if arm == "dense" else 0.8, "seed": seed, "auc": auc + n,
                             "acc": auc + n, "bacc": 0.85 if arm == "dense" else 0.84 + n, "params_left": 10})
    p = resolve("quick")
    p = dataclasses.replace(p, lottery=dataclasses.replace(p.lottery, at=(0.8,)))
    table = verdicts(p, pd.DataFrame(rows))
    meso = table[table.model == "meso4"].set_index("claim")["verdict"]
    assert meso["(a) IMP beats one-shot pruning"] == "holds"
    assert meso["(b) the ticket beats random reinit"] == "inconclusive"
    assert meso["(b) the ticket beats a random mask"] == "does not hold"
    assert meso["(d) MesoNet at 80 % keeps >= 90% of dense balanced accuracy"] == "holds"
    cnn = table[table.model == "cnn5"].verdict
    assert len(cnn) == 3 and cnn.str.startswith("not testable: dense cnn5 did not learn (seed 0 AUC 0.55").all()
    assert table[table.model == "resnet18"].verdict.iloc[0].startswith("not testable: ResNet-18 is not in")
    one = verdicts(p, pd.DataFrame([r for r in rows if r["seed"] == 0]))
    assert one[one.model == "meso4"].verdict.eq("not testable: fewer than two seeds").all()


CFG = TrainConfig(input_size=32, epochs=2, epoch_size=64, batch_size=16, warmup_epochs=1)


def _study(store, sparsities=(0.2, 0.4), rewind_epoch=0, arms=lottery.ARMS):
    ticket = lottery.Ticket("quick", "cnn5", "tiny", store.ref(), CFG, 0, sparsities, rewind_epoch=rewind_epoch)
    run_jobs(ticket.jobs(arms), workers=1, progress=False)
    wanted = [lottery.Dense(ticket)] + [lottery.Level(ticket, a, lv) for lv in range(1, len(sparsities) + 1)
                                        for a in arms]
    return ticket, pd.DataFrame([job.row() for job in wanted])


@pytest.fixture(scope="module")
def tiny_study(train_store, tmp_path_factory):
    """A tiny ticket study (CNN-5, 20 and 40 %, late rewinding to epoch 1), trained once for the tests below
    into its own data folder."""
    import os

    data, old = str(tmp_path_factory.mktemp("tiny_study") / "data"), os.environ.get("DFLITE_DATA")
    os.environ["DFLITE_DATA"] = data
    try:
        ticket, table = _study(train_store, rewind_epoch=1)
    finally:
        os.environ["DFLITE_DATA"] = old or ""
    return ticket, table, data


@pytest.fixture
def tiny(tiny_study, monkeypatch):
    """The tiny study, with the data folder it was trained into (run folders are found through it)."""
    ticket, table, data = tiny_study
    monkeypatch.setenv("DFLITE_DATA", data)
    return ticket, table


def test_a_tiny_study_keeps_its_promises(tiny, train_store):
    ticket, table = tiny
    assert set(table.arm) == {"dense", *lottery.ARMS} and len(table) == 9
    dense = ticket.dense_run()
    imp = [Mask.load(ticket.level_dir("imp", lv) / lottery.MASK) for lv in (1, 2)]
    assert imp[1].within(imp[0]) and imp[1].sparsity == pytest.approx(0.4, abs=1e-3)
    rand = Mask.load(ticket.level_dir("random_mask", 2) / lottery.MASK)
    assert all(int(rand.keep[k].sum()) == int(v.sum()) for k, v in imp[1].keep.items())
    # Pruned weights are still exactly 0 after training, in the best and last weights.
    for arm in ("imp", "oneshot", "random_reinit", "random_mask"):
        folder = ticket.level_dir(arm, 2)
        mask = Mask.load(folder / lottery.MASK)
        for name in ("best.safetensors", "last.safetensors"):
            params = dict(load_model(folder / name)[0].named_parameters())
            assert all(not params[k][~keep].any() for k, keep in mask.keep.items()), (arm, name)
    # Rewinding restores the saved weights bit for bit (masked where pruned).
    start = lottery.Level(ticket, "imp", 2).start_model(imp[1]).state_dict()
    rewind = load_model(dense.path(lottery.REWIND))[0].state_dict()
    for k, v in rewind.items():
        want = v * imp[1].keep[k] if k in imp[1].keep else v
        assert torch.equal(start[k], want), k
    # Rewound to epoch 1 of 2: each level retrains the second epoch only.
    history = pd.read_csv(ticket.level_dir("imp", 2) / "metrics.csv")
    assert list(history.epoch) == [2]
    # One-shot at the first level is the first IMP level.
    first = table[table.level == 1].set_index("arm")
    assert first.loc["oneshot", "auc"] == first.loc["imp", "auc"]
    assert table.params_left.max() == table[table.arm == "dense"].params_left.iloc[0]
    assert not summary(table).empty


def _trained(folder):
    return load_model(folder / "last.safetensors")[0]


def test_each_arm_is_what_it_claims_to_be(tiny):
    """The defining property of every arm, so that a wrong implementation of one fails here."""
    t, _ = tiny
    mask = {arm: {lv: Mask.load(t.level_dir(arm, lv) / lottery.MASK) for lv in (1, 2)}
            for arm in ("imp", "random_reinit", "random_mask")}
    mask["oneshot"] = {2: Mask.load(t.level_dir("oneshot", 2) / lottery.MASK)}
    dense = _trained(t.dense_run().dir)
    # IMP level 1 prunes the dense net's trained weights; level L prunes level L-1's trained weights under its mask.
    assert mask["imp"][1] == magnitude_prune(dense, Mask.dense(dense), 0.2)
    assert mask["imp"][2] == magnitude_prune(_trained(t.level_dir("imp", 1)), mask["imp"][1], 0.4)
    # One-shot at level L prunes the dense trained weights in one step, and is not IMP beyond the first level.
    assert mask["oneshot"][2] == magnitude_prune(dense, Mask.dense(dense), 0.4)
    assert mask["oneshot"][2] != mask["imp"][2]
    # Random reinit keeps IMP's mask but starts from a fresh draw: every kept weight tensor differs from the
    # rewind point's.
    assert mask["random_reinit"][2] == mask["imp"][2]
    start = lottery.Level(t, "random_reinit", 2).start_model(mask["imp"][2]).state_dict()
    rewind = load_model(t.dense_run().path(lottery.REWIND))[0].state_dict()
    for name, keep in mask["imp"][2].keep.items():
        assert not torch.equal(start[name][keep], rewind[name][keep]), name
    # ... also where the study starts from ImageNet: a reinitialisation never reloads the pretrained weights.
    asked = []
    real = train_module.create_model

    def spy(name, **kw):
        asked.append(kw.get("pretrained"))
        return real(name, **{**kw, "pretrained": False})
    imagenet = dataclasses.replace(t, cfg=dataclasses.replace(t.cfg, pretrained=True))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(train_module, "create_model", spy)
        lottery.Level(imagenet, "random_reinit", 2).start_model(mask["imp"][2])
    assert asked == [False]
    # The random mask keeps IMP's count per layer at other places.
    for lv in (1, 2):
        rand, imp = mask["random_mask"][lv], mask["imp"][lv]
        assert rand != imp and all(int(rand.keep[k].sum()) == int(v.sum()) for k, v in imp.keep.items())


def test_a_killed_study_resumes_at_its_level_and_ends_identical(train_store, tmp_path, monkeypatch):
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "whole"))
    _, whole = _study(train_store)
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "killed"))
    ticket, _ = _study(train_store, sparsities=(0.2,))  # stopped after the first level
    job = lottery.Level(dataclasses.replace(ticket, sparsities=(0.2, 0.4)), "imp", 2)
    assert job.train(stop_after=1) is None  # killed inside level 2 (rewound to epoch 0 of 2)
    _, resumed = _study(train_store)
    cols = ["arm", "level", "auc", "acc", "params_left"]
    pd.testing.assert_frame_equal(whole[cols], resumed[cols])


def test_the_rewind_point_counts_the_steps_of_every_process_under_torchrun(train_store, tmp_path):
    """2 gloo processes: each takes half an epoch's steps, so rewinding to epoch 1 saves after that many of them."""
    import os
    import subprocess
    import sys

    from dflite.engine.train import steps_per_epoch

    script = tmp_path / "ticket.py"
    script.write_text(
        "from dflite.config import TrainConfig\n"
        "from dflite.data.extract import load_store\n"
        "from dflite.experiments import lottery\n"
        f"store = load_store({str(train_store.root)!r})\n"
        f"cfg = TrainConfig(**{dataclasses.asdict(CFG)!r})\n"
        "t = lottery.Ticket('quick', 'cnn5', 'tiny', store.ref(), cfg, 0, (0.2,), rewind_epoch=1)\n"
        "lottery.Dense(t).train()\n"
        # One process prints: two printing at once interleaved their lines ("DENSE DENSE /tmp/...").
        "import os\n"
        "if os.environ['RANK'] == '0':\n"
        "    print('DENSE', t.dense_run().dir)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DFLITE_DATA": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519", str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, [line for line in res.stderr.splitlines() if "Error" in line][:5]
    dense = [line.split(" ", 1)[1] for line in res.stdout.splitlines() if line.startswith("DENSE ")][0]
    _, meta = load_model(os.path.join(dense, lottery.REWIND))
    per_process = steps_per_epoch(CFG, train_store, world=2)
    assert per_process == steps_per_epoch(CFG, train_store) // 2  # the case where the world size matters
    assert int(meta["step"]) == per_process


def test_quick_runs_the_controls_only_at_the_claimed_sparsities():
    """IMP needs every level (each prunes the one before); one-shot and the random controls run only where a claim
    is judged in quick, at every level in standard. Runs two arms share (one-shot at level 1 is IMP's) count once."""
    from dflite.studies import lottery as study

    def planned(p):
        t = lottery.Ticket(p.name, "cnn5", "synthetic-ffpp", None, p.lottery_recipe("cnn5"), 0, (0.2, 0.4, 0.6, 0.8))
        jobs = t.jobs(p.lottery.arms, study.control_levels(p))
        return {(j.runs_as, j.level) if isinstance(j, lottery.Level) else ("dense", 0) for j in jobs}

    quick, standard = resolve("quick"), resolve("standard")
    assert study.control_levels(quick) == (3, 4) and study.control_levels(standard) is None
    assert planned(quick) == {("dense", 0), *(("imp", lv) for lv in (1, 2, 3, 4)),
                              *((arm, lv) for arm in ("oneshot", "random_reinit", "random_mask") for lv in (3, 4))}
    assert len(planned(standard)) == 1 + 4 + 3 * 4 - 1
    wrong = dataclasses.replace(quick, lottery=dataclasses.replace(quick.lottery, at=(0.5,)))
    with pytest.raises(ValueError, match="does not reach"):
        study.control_levels(wrong)


@pytest.mark.parametrize("model", ["meso4", "mesoinception4", "cnn5", "resnet18", "xception", "efficientnet_b0",
                                   "efficientnet_lite0"])
def test_random_reinit_draws_every_weight_afresh_for_every_model(model):
    """For every registry model the random-reinit control's start differs from the dense run's start in every
    randomly initialised tensor (conv and linear weights; batch-norm's ones and zeros are the same in any draw),
    also for a study that starts from ImageNet (the pretrained weights are never reloaded)."""
    cfg = TrainConfig(input_size=64 if model not in ("meso4", "mesoinception4") else 96, pretrained=True)
    t = lottery.Ticket("quick", model, "synthetic-ffpp", None, cfg, 0, (0.2, 0.4))
    dense_start = train_module.seeded_model(model, dataclasses.replace(cfg, pretrained=False), 0).state_dict()
    mask = Mask.dense(create_model(model, input_size=cfg.input_size))
    start = lottery.Level(t, "random_reinit", 1).start_model(mask).state_dict()
    weights = [k for k, v in dense_start.items() if v.dim() >= 2]
    assert weights and dense_start.keys() == start.keys()
    same = [k for k in weights if torch.equal(start[k], dense_start[k])]
    assert not same, f"{model}: {len(same)} of {len(weights)} weight tensors equal the dense start: {same[:3]}"
