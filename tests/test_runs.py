"""The run layer (names, identity, refusal), the engine's hooks, and checkpoints of any architecture."""
import json
from types import SimpleNamespace

import pytest
import torch
from dflite import paths
from dflite.config import ExtractConfig, TrainConfig, override, to_dict
from dflite.engine.runs import Run, RunMismatchError, train_run, write_results
from dflite.engine.train import Hooks, fit, seeded_model
from dflite.nets.checkpoint import load_model, save_model
from dflite.nets.models import create_model, model_info

CFG = TrainConfig(input_size=32, epochs=2, warmup_epochs=1, batch_size=16)
STORE = SimpleNamespace(kind="ffpp", synthetic=True, fingerprint="0123456789ab", config=to_dict(ExtractConfig()))


def test_run_names_are_pinned():
    """As written to disk: renaming these orphans every existing run folder."""
    run = train_run("quick", "baseline", "cnn5", "synthetic", TrainConfig(), STORE, 0, 64)
    assert run.dir.relative_to(paths.runs_dir("quick")).as_posix() == "baseline_cnn5_synthetic_f744a414/seed_0"
    r18 = override(TrainConfig(), batch_size=16)
    recipe = train_run("quick", "baseline", "resnet18", "synthetic", r18, STORE, 2, 64)
    assert recipe.dir.parent.name == "baseline_resnet18_synthetic_c0f44c92" and recipe.dir.name == "seed_2"
    ticket = train_run("quick", "imp", "cnn5", "synthetic", TrainConfig(), STORE, 0, 64, settings={"rewind": 100})
    assert ticket.level(3).dir.relative_to(paths.runs_dir("quick")).as_posix() == \
        "imp_cnn5_synthetic_1cdcddee/seed_0/level_3"
    assert ticket.level(3).identity["level"] == 3


def test_run_identity_holds_the_data():
    real = SimpleNamespace(**{**vars(STORE), "synthetic": False})
    a = train_run("paper", "baseline", "cnn5", "ffpp", CFG, STORE, 0, 32)
    b = train_run("paper", "baseline", "cnn5", "ffpp", CFG, real, 0, 32)
    assert a.identity["data"] == {"dataset": "ffpp", "kind": "ffpp", "synthetic": True,
                                  "fingerprint": "0123456789ab", "extract": to_dict(ExtractConfig())}
    assert a.dir == b.dir  # same crops, same name; but the identity differs and the folder says so
    a.start({"device": "cpu"})
    with pytest.raises(RunMismatchError, match="data.synthetic: folder has True, asked for False"):
        b.claim()
    other = SimpleNamespace(**{**vars(STORE), "fingerprint": "ffffffffffff"})
    assert train_run("paper", "baseline", "cnn5", "ffpp", CFG, other, 0, 32).dir != a.dir


def test_a_run_made_before_a_setting_existed_is_still_its_run():
    run = train_run("paper", "baseline", "cnn5", "ffpp", CFG, STORE, 0, 32)
    run.start({"device": "cpu"})
    old = json.loads(run.path("config.json").read_text())
    del old["train"]["cpu_threads"], old["data"]["extract"]["dfdc_val_parts"]  # fields a later dflite added
    run.path("config.json").write_text(json.dumps(old))
    assert run.claim() == "resume"
    old["data"]["extract"]["size"] = 128  # a real difference is still one
    run.path("config.json").write_text(json.dumps(old))
    with pytest.raises(RunMismatchError, match="data.extract.size: folder has 128"):
        run.claim()


def test_foreign_or_broken_folders_are_refused(tmp_path):
    run = Run(tmp_path / "r", {"model": "cnn5"})
    assert run.claim() == "new"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(RunMismatchError, match="holds files but no config.json"):
        run.claim()
    (tmp_path / "r" / "config.json").write_text("{")
    with pytest.raises(RunMismatchError, match="not valid JSON"):
        run.claim()


def test_results_writer(tmp_path):
    import pandas as pd

    path = write_results("quick", "t", pd.DataFrame({"auc": [0.123456]}, index=["cnn5"]))
    assert path == paths.runs_dir("quick") / "results" / "t.csv"
    assert path.read_text().splitlines()[1] == "cnn5,0.1235"


def _run(store, tmp_path, name="cnn5", cfg=CFG, folder="run"):
    return train_run("quick", "test", name, "synthetic", cfg, store, 0, 32, folder=tmp_path / folder)


def test_hooks_see_every_step_and_can_stop(train_store, tmp_path):
    calls = {"loss": 0, "after": [], "at": [], "epochs": 0}

    def loss(logits, y, x, criterion):
        calls["loss"] += 1
        assert x.shape[1:] == (3, 32, 32)
        return criterion(logits, y)

    def after_epoch(model, row):
        calls["epochs"] += 1
        return row["epoch"] >= 1  # stop after the first epoch

    hooks = Hooks(loss=loss, after_step=lambda m, s: calls["after"].append(s),
                  at_step={0: lambda m, s: calls["at"].append(s), 2: lambda m, s: calls["at"].append(s)},
                  after_epoch=after_epoch)
    r = fit(seeded_model("cnn5", CFG, 0), train_store, CFG, _run(train_store, tmp_path), hooks, progress=False)
    steps = calls["loss"]
    assert steps > 2 and calls["after"] == list(range(1, steps + 1)) and calls["at"] == [0, 2]
    assert calls["epochs"] == 1 and len(r.history) == 1


def test_a_mask_reapplied_after_each_step_survives_training(train_store, tmp_path):
    """The lottery tickets' use of after_step: pruned weights stay exactly zero, in the checkpoint too."""
    model = seeded_model("cnn5", CFG, 0)
    masks = {n: (torch.rand_like(p) > 0.5).float() for n, p in model.named_parameters() if p.dim() == 4}

    def apply(m, step):
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n in masks:
                    p.mul_(masks[n])
    apply(model, 0)
    fit(model, train_store, CFG, _run(train_store, tmp_path), Hooks(after_step=apply), progress=False)
    back, _ = load_model(tmp_path / "run" / "best.safetensors")
    for n, p in back.named_parameters():
        if n in masks:
            assert torch.all(p[masks[n] == 0] == 0) and torch.any(p[masks[n] == 1] != 0), n


def _pruned(name, size, ratio=0.4):
    import torch_pruning as tp

    model = create_model(name, input_size=size).eval()
    head = dict(model.named_modules())[model_info(name).classifier]
    tp.pruner.MetaPruner(model, torch.zeros(1, 3, size, size), importance=tp.importance.MagnitudeImportance(p=1),
                         pruning_ratio=ratio, ignored_layers=[head]).step()
    return model


@pytest.mark.parametrize("kind", ["dense", "masked", "pruned"])
@pytest.mark.parametrize("name", ["meso4", "cnn5", "resnet18", "efficientnet_lite0"])
def test_checkpoint_round_trip_rebuilds_the_module(name, kind, tmp_path):
    size = 64
    torch.manual_seed(0)
    if kind == "pruned":
        model = _pruned(name, size)
        assert sum(p.numel() for p in model.parameters()) < 0.8 * sum(
            p.numel() for p in create_model(name, input_size=size).parameters())
    else:
        model = create_model(name, input_size=size).eval()
    if kind == "masked":
        with torch.no_grad():
            for p in model.parameters():
                p.mul_((torch.rand_like(p) > 0.6).float())
    x = torch.randn(2, 3, size, size)
    save_model(model, tmp_path / "m.safetensors", epoch=3)
    back, meta = load_model(tmp_path / "m.safetensors")
    back.eval()
    assert meta["epoch"] == "3" and json.loads(meta["spec"])["name"] == name
    _same_weights(model, back)
    # Same weights, same function; the outputs may differ in the last bits, as kernels pick their paths by
    # memory layout (a rebuilt module's tensors sit elsewhere).
    torch.testing.assert_close(model(x), back(x), rtol=1e-5, atol=1e-6)


def _same_weights(a, b):
    """Bit-identical state dicts: what a checkpoint round trip promises."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        assert v.shape == sb[k].shape and torch.equal(v, sb[k]), k


def test_a_pruned_net_trains_and_resumes_from_its_own_checkpoints(train_store, tmp_path):
    model = _pruned("cnn5", 32)
    assert fit(model, train_store, CFG, _run(train_store, tmp_path), progress=False, stop_after=1) is None
    again = _pruned("cnn5", 32)  # the caller rebuilds the same pruned net to resume
    r = fit(again, train_store, CFG, _run(train_store, tmp_path), progress=False)
    assert len(r.history) == 2
    back, _ = load_model(tmp_path / "run" / "best.safetensors")
    _same_weights(back, again)  # fit leaves the best weights in the model, bit for bit
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(back.eval()(x), again.eval()(x), rtol=1e-5, atol=1e-6)


def test_a_model_that_is_not_the_runs_is_refused(train_store, tmp_path):
    with pytest.raises(ValueError, match="model meso4 at 32 px does not match run cnn5 at 32 px"):
        fit(seeded_model("meso4", CFG, 0), train_store, CFG, _run(train_store, tmp_path), progress=False)


def test_fit_writes_the_named_folder_with_its_identity(train_store):
    run = train_run("quick", "baseline", "cnn5", "synthetic", CFG, train_store, 0, 32)
    fit(seeded_model("cnn5", CFG, 0), train_store, CFG, run, progress=False)
    assert run.dir.parent.parent == paths.runs_dir("quick") and run.finished
    written = json.loads((run.dir / "config.json").read_text())
    assert written == run.identity and written["data"]["synthetic"] and written["data"]["kind"] == "ffpp"
