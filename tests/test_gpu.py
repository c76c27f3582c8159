"""On a CUDA GPU (marker `gpu`; skipped elsewhere, run by benchmarks/gpu_check.sh): the engine's GPU branch trains,
records the device, and gives the same numbers twice. The CPU twins of these branches (bf16 autocast, channels_last,
DDP over gloo) are tested in test_train.py on every machine."""
import json

import pandas as pd
import pytest
import torch
from dflite.config import TrainConfig
from dflite.engine.runs import train_run
from dflite.engine.train import fit, input_size, seeded_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")]

CFG = TrainConfig(input_size=32, epochs=2, warmup_epochs=1, batch_size=16)


def _train(store, folder, name="cnn5"):
    run = train_run("quick", "test", name, "synthetic", CFG, store, 0, input_size(CFG, name), folder=folder)
    return fit(seeded_model(name, CFG, 0), store, CFG, run, progress=False)


@pytest.mark.parametrize("name", ["cnn5", "efficientnet_lite0"])
def test_a_run_trains_on_the_gpu_and_says_so(train_store, tmp_path, name):
    result = _train(train_store, tmp_path / "a", name)
    env = json.loads((tmp_path / "a" / "env.json").read_text())
    assert env["device"] != "cpu"
    history = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert len(history) == CFG.epochs and history.train_loss.notna().all()
    assert 0.0 <= result.metrics["auc"] <= 1.0
