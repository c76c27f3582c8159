"""Tickets carried to other data, and held-out-method runs: what they start from, what they keep, how they are named."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from dflite.analysis.transfer import only_method, own_test, score_run
from dflite.compress.masks import Mask
from dflite.config import TrainConfig
from dflite.engine.jobs import run_jobs
from dflite.experiments import lottery, transfer
from dflite.nets.checkpoint import load_model

CFG = TrainConfig(input_size=32, epochs=2, epoch_size=64, batch_size=16, warmup_epochs=1)


def _ticket(store, label, seed=0):
    return lottery.Ticket("quick", "cnn5", label, store.ref(), CFG, seed, (0.4, 0.8))


def test_a_carried_ticket_trains_the_source_mask_from_the_source_rewind_point(train_store):
    # Two ticket studies on differently labelled data (the same crops keep the test small).
    source, target = _ticket(train_store, "a"), _ticket(train_store, "b")
    carried_jobs = [transfer.Carried(source, target, kind, 2) for kind in transfer.KINDS]
    run_jobs(source.jobs(("imp",)) + target.jobs(("imp",)) + carried_jobs, workers=1, progress=False)
    found = Mask.load(source.level_dir("imp", 2) / lottery.MASK)
    ticket, rand = (job.result() for job in carried_jobs)
    carried = Mask.load(ticket.run_dir / lottery.MASK)
    assert carried == found and carried.sparsity == pytest.approx(0.8, abs=1e-3)
    control = Mask.load(rand.run_dir / lottery.MASK)
    assert control != found
    assert all(int(control.keep[k].sum()) == int(v.sum()) for k, v in found.keep.items())
    # Trained on the target's data, named after its source, pruned weights still 0.
    config = ticket.run_dir / "config.json"
    assert '"source": "a"' in config.read_text() and ticket.run_dir.parts[-2].startswith("transfer_cnn5_b_")
    params = dict(load_model(ticket.run_dir / "best.safetensors")[0].named_parameters())
    assert all(not params[k][~keep].any() for k, keep in found.keep.items())
    # Rewind epoch 0: the carried ticket starts from the seed's initialisation, the target dense run's start.
    rewind = load_model(source.dense_run().path(lottery.REWIND))[0].state_dict()
    target_init = load_model(target.dense_run().path(lottery.REWIND))[0].state_dict()
    assert all(torch.equal(rewind[k], target_init[k]) for k in rewind)
    # A carry between studies of other recipes is refused; other images per epoch are not another recipe
    # (studies.lottery.ticket gives the second dataset's study FF++'s budget).
    transfer.Carried(source, dataclasses.replace(target, cfg=dataclasses.replace(CFG, epoch_size=96)), "ticket", 2)
    other = dataclasses.replace(target, cfg=dataclasses.replace(CFG, lr=5e-3))
    with pytest.raises(ValueError, match="same model, seed, recipe"):
        transfer.Carried(source, other, "ticket", 2)


def test_held_out_method_leaves_training_and_is_scored_alone(train_store, monkeypatch):
    method = "Deepfakes"
    without = transfer.without_method(train_store, method)
    assert method not in set(without.index["method"]) and len(without.index) < len(train_store.index)
    only = only_method(train_store, method)
    assert set(only.index["method"]) == {"original", method}
    with pytest.raises(ValueError, match="no method 'Nope'"):
        transfer.without_method(train_store, "Nope")
    jobs = [transfer.HeldOut("quick", "cnn5", "tiny", train_store.ref(), CFG, 0, method=m)
            for m in (method, "FaceSwap")]
    assert jobs[0].run().dir != jobs[1].run().dir                 # one run per held-out method
    jobs[0].train()
    scored = score_run(jobs[0].run().dir, only)
    assert scored["n"] == int((only.index["split"] == "test").sum()) and 0 <= scored["auc"] <= 1
    # On the store it trained on, the run's own final evaluation is the score (notebook 05 reads it back); scoring
    # again agrees up to float rounding at another batch size, which can swap near-ties of this untrained net.
    own = own_test(jobs[0].run().dir)
    assert own["n"] == int((without.index["split"] == "test").sum())
    assert own == pytest.approx(score_run(jobs[0].run().dir, without), abs=0.01)
    # Scored once: the same weights on the same crops read the kept scores; other crops or weights score again.
    from dflite.analysis import transfer as scoring

    calls = []
    real_predict = scoring.predict
    monkeypatch.setattr(scoring, "predict", lambda *a: calls.append(1) or real_predict(*a))
    assert score_run(jobs[0].run().dir, only) == scored and calls == []
    everything = score_run(jobs[0].run().dir, train_store)
    assert len(calls) == 1 and everything["n"] > scored["n"]
    best = jobs[0].run().dir / "best.safetensors"
    best.write_bytes(best.read_bytes())  # the same bytes: still kept
    score_run(jobs[0].run().dir, only)
    assert len(calls) == 1
    model, _ = load_model(best)
    with torch.no_grad():
        next(model.parameters()).mul_(-1)
    from dflite.nets.checkpoint import save_model

    save_model(model, best)  # other weights in the run folder: scored again
    assert score_run(jobs[0].run().dir, only) != scored and len(calls) == 2


def test_one_dataset_tables_say_what_they_lack_instead_of_failing():
    """A real FF++-only root (the paper smoke run found it): its own tickets and held-out runs, nothing carried."""
    import pandas as pd
    from dflite.studies.transfer import COLUMNS, carried, heldout_table

    rows = [{"model": "cnn5", "source": "ffpp", "target": "ffpp", "kind": k, "method": m, "sparsity": sp, "seed": s,
             "auc": 0.9, "acc": 0.8, "bacc": 0.8, "n": 10, "run": "r"}
            for s in (0, 1) for k, m, sp in (("dense", "", 0.0), ("ticket", "", 0.8), ("heldout", "Deepfakes", 0.0))]
    table = pd.DataFrame(rows, columns=COLUMNS)
    assert "note" in carried(table)
    held = heldout_table(table)
    assert list(held.columns[:3]) == ["seen", "heldout", "gap"] and held["seen"].isna().all()
    assert held.loc[("cnn5", "Deepfakes"), "heldout"] == 0.9 and held.loc[("cnn5", "Deepfakes"), "seeds"] == 2
