"""The training engine: schedule, determinism, resume, finished runs, checkpoints, DDP."""
import json
import math
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch
from dflite.config import TrainConfig, override
from dflite.data.loader import CropDataset, augment, epoch_indices
from dflite.engine import train as train_module
from dflite.engine.runs import RunMismatchError, train_run
from dflite.engine.train import fit, input_size, lr_factor, seeded_model, steps_per_epoch
from dflite.nets.checkpoint import load_weights, save_weights
from dflite.nets.models import create_model

CFG = TrainConfig(input_size=32, epochs=3, warmup_epochs=1, batch_size=16)


def dense(name, store, cfg, folder, seed=0, **kw):
    """Train a dense registry model into `folder` (the engine's plain use)."""
    run = train_run("quick", "test", name, "synthetic", cfg, store, seed, input_size(cfg, name), folder=folder)
    return fit(seeded_model(name, cfg, seed), store, cfg, run, progress=False, **kw)


def test_warmup_then_cosine_and_constant():
    f = lr_factor(override(CFG, epochs=10, warmup_epochs=2), steps_per_epoch=10)
    assert f(0) == pytest.approx(1 / 20) and f(19) == pytest.approx(1.0)  # 2 warm-up epochs x 10 steps
    assert f(20) == pytest.approx(1.0) and f(60) == pytest.approx(0.5) and f(99) < 0.01
    assert all(f(s) >= f(s + 1) for s in range(20, 99))
    g = lr_factor(override(CFG, schedule="constant"), 10)
    assert g(0) == g(29) == 1.0
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        lr_factor(override(CFG, schedule="step"), 10)


def test_fit_writes_a_complete_run_and_reuses_it(train_store, tmp_path):
    r = dense("cnn5", train_store, CFG, tmp_path / "run", seed=0)
    assert list(r.history["epoch"]) == [1, 2, 3]
    for name in ("config.json", "env.json", "metrics.csv", "best.safetensors", "last.safetensors",
                 "last_state.safetensors", "predictions_test.csv", "test_metrics.json"):
        assert (tmp_path / "run" / name).is_file(), name
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["device"] == "cpu" and "host" not in json.dumps(env)  # versions and device, no host names
    assert set(r.predictions["method"]) >= {"original", "Deepfakes"}
    assert "acc_FaceSwap" in r.metrics and "auc_FaceSwap" in r.metrics and "video_auc" in r.metrics
    stamp = (tmp_path / "run" / "metrics.csv").stat().st_mtime_ns
    again = dense("cnn5", train_store, CFG, tmp_path / "run", seed=0)
    assert again.metrics == r.metrics and (tmp_path / "run" / "metrics.csv").stat().st_mtime_ns == stamp


def test_same_seed_same_numbers_and_resume_is_exact(train_store, tmp_path):
    a = dense("meso4", train_store, CFG, tmp_path / "a", seed=1)
    b = dense("meso4", train_store, CFG, tmp_path / "b", seed=1)
    cols = ["train_loss", "val_loss", "val_auc"]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols])
    assert dense("meso4", train_store, CFG, tmp_path / "c", seed=1, stop_after=1) is None
    assert len(pd.read_csv(tmp_path / "c" / "metrics.csv")) == 1
    c = dense("meso4", train_store, CFG, tmp_path / "c", seed=1)
    pd.testing.assert_frame_equal(a.history[cols], c.history[cols])
    assert a.metrics == c.metrics


def test_bf16_step_on_the_cpu_is_deterministic_resumes_exactly_and_is_not_fp32(train_store, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)  # as on a CPU with AVX-512 BF16 or AMX
    bf16 = override(CFG, cpu_bf16=True, epochs=2)
    seen = []
    real = torch.autocast

    def spy(*args, **kw):  # record what the training step asks for
        seen.append(kw.get("enabled"))
        return real(*args, **kw)
    monkeypatch.setattr(torch, "autocast", spy)
    a = dense("cnn5", train_store, bf16, tmp_path / "a", seed=1)
    steps = 2 * steps_per_epoch(bf16, train_store)
    n = train_store.index["split"].value_counts()
    val, test = (math.ceil(n[split] / (2 * bf16.batch_size)) for split in ("val", "test"))
    # every step and both epochs' validation (which picks the best epoch) in bf16; the test scores in fp32
    assert seen.count(True) == steps + 2 * val and seen.count(False) == test
    monkeypatch.setattr(torch, "autocast", real)
    b = dense("cnn5", train_store, bf16, tmp_path / "b", seed=1)
    cols = ["train_loss", "val_loss", "val_auc"]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols])
    assert dense("cnn5", train_store, bf16, tmp_path / "c", seed=1, stop_after=1) is None
    c = dense("cnn5", train_store, bf16, tmp_path / "c", seed=1)
    pd.testing.assert_frame_equal(a.history[cols], c.history[cols])
    fp32 = dense("cnn5", train_store, override(bf16, cpu_bf16=False), tmp_path / "d", seed=1)
    assert not a.history["train_loss"].equals(fp32.history["train_loss"])  # the arithmetic did change
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train"]["cpu_bf16"] is True
    assert json.loads((tmp_path / "a" / "env.json").read_text())["bf16_step"] is True


def test_a_cpu_without_bf16_trains_a_bf16_recipe_in_fp32_and_says_so(train_store, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: False)
    cfg = override(CFG, cpu_bf16=True, epochs=1)
    a = dense("cnn5", train_store, cfg, tmp_path / "a", seed=1)
    fp32 = dense("cnn5", train_store, override(cfg, cpu_bf16=False), tmp_path / "b", seed=1)
    assert a.history["train_loss"].equals(fp32.history["train_loss"])  # emulated bf16 would be slower than fp32
    assert json.loads((tmp_path / "a" / "env.json").read_text())["bf16_step"] is False


def test_early_stopping(train_store, tmp_path):
    r = dense("cnn5", train_store, override(CFG, epochs=8, patience=1, lr=0.0), tmp_path / "es")
    assert len(r.history) < 8  # with lr 0 validation AUC never improves after epoch 1


def test_store_with_small_crops_is_refused(train_store):
    with pytest.raises(ValueError, match="holds 32 px crops but the model input is 64 px.*--size 64"):
        CropDataset(train_store, "train", 64)


def test_checkpoint_errors_name_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(create_model("cnn5"), path, "cnn5")
    load_weights(create_model("cnn5"), path, "cnn5")
    with pytest.raises(ValueError, match="holds cnn5 weights, not meso4"):
        load_weights(create_model("meso4"), path, "meso4")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="w.safetensors is not a readable safetensors checkpoint"):
        load_weights(create_model("cnn5"), path, "cnn5")
    unnamed = tmp_path / "u.safetensors"
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in create_model("meso4").state_dict().items()}, str(unnamed))
    with pytest.raises(ValueError, match="does not fit cnn5"):
        load_weights(create_model("cnn5"), unnamed, "cnn5")


def test_ddp_two_cpu_processes(train_store, tmp_path):
    """torchrun with 2 gloo processes: one run folder, written once, with world_size 2."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "-m", "dflite",
           "train", "--store", str(train_store.root), "--model", "cnn5", "--epochs", "2", "--input-size", "32",
           "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    assert re.search(r"test split: .*\bauc \d\.\d{4}", res.stdout)          # metrics in words, not a raw dict
    assert json.loads((out / "env.json").read_text())["world_size"] == 2
    assert len(pd.read_csv(out / "metrics.csv")) == 2
    assert torch.isfinite(torch.tensor(json.loads((out / "test_metrics.json").read_text())["auc"]))


def test_validation_split_with_one_class_still_selects_an_epoch(train_store, tmp_path):
    import dataclasses

    idx = train_store.index
    fakes_only = dataclasses.replace(train_store, index=idx[~((idx["split"] == "val") & (idx["label"] == 0))])
    r = dense("cnn5", fakes_only, override(CFG, epochs=2), tmp_path / "one")
    assert r.history["val_auc"].isna().all() and (tmp_path / "one" / "best.safetensors").is_file()


# --- learning, sampling, augmentation, run identity --------------------------------------------------

def toy_store(root, n: int = 96, size: int = 32):
    """A crop store whose fakes carry a bright 8 px square at a random place: trivially learnable."""
    import cv2
    import numpy as np
    from dflite.data.extract import CropStore

    rng = np.random.default_rng(0)
    rows = []
    (root / "crops").mkdir(parents=True)
    for i in range(n):
        label, split = i % 2, ("train", "train", "train", "val", "test")[i % 5]
        img = rng.integers(40, 160, (size, size, 3), dtype=np.uint8)
        if label:
            y, x = rng.integers(0, size - 8, 2)
            img[y:y + 8, x:x + 8] = 250
        cv2.imwrite(str(root / "crops" / f"{i}.png"), img)
        rows.append({"media_id": f"{'fake' if label else 'real'}/{i // 4}", "frame": i, "face": 0, "label": label,
                     "method": "Deepfakes" if label else "original", "split": split, "crop": f"crops/{i}.png"})
    index = pd.DataFrame(rows)
    index.to_csv(root / "index.csv", index=False)
    return CropStore(root, index, pd.DataFrame(), pd.DataFrame(), {}, {"size": size})


def test_training_learns_a_learnable_toy_set(tmp_path):
    """A broken loop (no step, wrong labels, frozen weights) fails this; a working one separates the toy."""
    store = toy_store(tmp_path / "toy")
    r = dense("cnn5", store, override(CFG, epochs=6, lr=3e-3), tmp_path / "run")
    assert r.history["train_loss"].iloc[-1] < 0.6 * r.history["train_loss"].iloc[0]
    assert r.metrics["auc"] > 0.95


def test_balanced_sampler_draws_real_and_fake_equally(train_store):
    data = CropDataset(train_store, "train", 32)
    assert data.labels.mean() > 0.75  # five fakes per real video
    order = epoch_indices(data, "sampler", torch.Generator().manual_seed(0), size=4000)
    assert len(order) == 4000 and abs(data.labels[order].mean() - 0.5) < 0.03
    plain = epoch_indices(data, "none", torch.Generator().manual_seed(0))
    assert sorted(plain) == list(range(len(data)))  # one shuffled pass
    sharded = [epoch_indices(data, "sampler", torch.Generator().manual_seed(0), rank=r, world=2) for r in (0, 1)]
    assert sorted(sharded[0] + sharded[1]) == sorted(epoch_indices(data, "sampler", torch.Generator().manual_seed(0)))


def test_batched_augmentation_is_seeded_and_keeps_content(train_store):
    data = CropDataset(train_store, "train", 32)
    x, _ = data.batch(range(16))
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    c = augment(x, torch.Generator().manual_seed(6))
    assert a.shape == (16, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Flips and colour jitter keep the image: each augmented crop correlates with its original or its mirror.
    from dflite.data.loader import normalise

    plain = normalise(x)
    for i in range(16):
        pairs = (torch.stack([a[i].flatten(), p.flatten()]) for p in (plain[i], plain[i].flip(2)))
        corr = max(torch.corrcoef(pair)[0, 1] for pair in pairs)
        assert corr > 0.8


def test_a_run_folder_with_other_settings_or_data_is_refused(train_store, tmp_path):
    import dataclasses

    dense("meso4", train_store, override(CFG, epochs=1), tmp_path / "run")
    with pytest.raises(RunMismatchError, match="train.epochs: folder has 1, asked for 2"):
        dense("meso4", train_store, override(CFG, epochs=2), tmp_path / "run")
    other = tmp_path / "other"
    other.mkdir()
    train_store.index.head(50).to_csv(other / "index.csv", index=False)
    moved = dataclasses.replace(train_store, root=other)  # same settings, other crops
    with pytest.raises(RunMismatchError, match="data.fingerprint: folder has '[0-9a-f]{12}'"):
        dense("meso4", moved, override(CFG, epochs=1), tmp_path / "run")


def test_splits_too_large_to_hold_are_decoded_per_batch_to_the_same_pixels(train_store, monkeypatch):
    import dflite.data.loader

    held = CropDataset(train_store, "train", 32)
    monkeypatch.setattr(dflite.data.loader, "CACHE_BYTES", 0)
    streamed = CropDataset(train_store, "train", 32)
    assert held.images is not None and streamed.images is None
    xa, ya = held.batch([3, 0, 7])
    xb, yb = streamed.batch([3, 0, 7])
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.dtype == torch.uint8
