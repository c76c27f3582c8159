"""The attribution head (which method made the fake): its targets, training, metrics, confusion, verdicts, pruning
and `dflite detect --attribute`."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from dflite import detect
from dflite.config import ATTRIBUTION_CLASSES, METHODS, ExtractConfig, TrainConfig, get_profile, override
from dflite.data.extract import CropStore
from dflite.data.loader import CropDataset, epoch_indices, method_classes
from dflite.data.video import write_mp4
from dflite.engine.metrics import attribution_metrics, confusion
from dflite.engine.runs import train_run
from dflite.engine.train import fit, input_size, seeded_model
from dflite.nets.checkpoint import load_model, save_model
from dflite.nets.models import create_model
from dflite.studies import attribution

CFG = TrainConfig(input_size=32, epochs=6, warmup_epochs=1, batch_size=16, lr=3e-3, target="method")


def class_store(root, per_class: int = 30, size: int = 32) -> CropStore:
    """Real crops are plain noise; each method's fakes carry an 8 px square of its own colour at a random place (a
    trivially learnable class), so a working head names them and a broken target (real/fake only) cannot."""
    rng = np.random.default_rng(0)
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (250, 0, 250)]  # BGR
    rows, i = [], 0
    (root / "crops").mkdir(parents=True)
    for c, name in enumerate(ATTRIBUTION_CLASSES):
        for k in range(per_class):
            img = rng.integers(40, 160, (size, size, 3), dtype=np.uint8)
            if c:
                y, x = rng.integers(0, size - 8, 2)
                img[y:y + 8, x:x + 8] = colours[c - 1]
            cv2.imwrite(str(root / "crops" / f"{i}.png"), img)
            rows.append({"media_id": f"{name}/{k // 3}", "frame": k, "face": 0, "label": int(c > 0), "method": name,
                         "split": ("train", "train", "train", "val", "test")[k % 5], "crop": f"crops/{i}.png"})
            i += 1
    index = pd.DataFrame(rows)
    index.to_csv(root / "index.csv", index=False)
    return CropStore(root, index, pd.DataFrame(), pd.DataFrame(), {}, {"size": size})


def test_targets_are_class_indices_real_first_and_an_unknown_method_is_named(tmp_path):
    rows = pd.DataFrame({"label": [0, 1, 1, 0], "method": ["original", "FaceSwap", "Deepfakes", "youtube"]})
    assert method_classes(rows, tmp_path).tolist() == [0, 1 + METHODS.index("FaceSwap"), 1, 0]  # a real is real
    with pytest.raises(ValueError, match=r"store .*FaceMorph.*does not know"):
        method_classes(pd.DataFrame({"label": [1], "method": ["FaceMorph"]}), tmp_path)
    with pytest.raises(ValueError, match="unknown training target"):
        seeded_model("cnn5", override(CFG, target="age"), 0)


def test_balanced_draws_balance_every_class(tmp_path):
    store = class_store(tmp_path / "s")
    idx = store.index
    skewed = dataclasses.replace(store, index=idx[(idx.method != "FaceSwap") | (idx.frame < 6)])  # few FaceSwap
    data = CropDataset(skewed, "train", 32, "method")
    order = epoch_indices(data, "sampler", torch.Generator().manual_seed(0), size=6000)
    shares = np.bincount(data.targets.numpy()[order], minlength=6) / 6000
    assert np.abs(shares - 1 / 6).max() < 0.03


def test_a_head_learns_the_classes_and_its_run_says_so(tmp_path):
    store = class_store(tmp_path / "s")
    run = train_run("quick", "test", "cnn5", "synthetic", CFG, store, 0, input_size(CFG, "cnn5"), folder=tmp_path / "r")
    r = fit(seeded_model("cnn5", CFG, 0), store, CFG, run, progress=False)
    assert r.metrics["attr_bacc"] > 0.9 and r.metrics["auc"] > 0.95
    assert {f"recall_{c}" for c in ATTRIBUTION_CLASSES} <= set(r.metrics)
    probs = r.predictions[[f"p_{c}" for c in ATTRIBUTION_CLASSES]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert np.allclose(r.predictions["score"], 1 - probs[:, 0], atol=1e-5)  # the fake score is 1 - p(real)
    assert "val_attr_bacc" in r.history and r.history["val_attr_bacc"].iloc[-1] > 0.8
    # selected on validation balanced accuracy over the classes (first best epoch), not on the fake score's AUC
    best = int(load_model(r.run_dir / "best.safetensors")[1]["epoch"])
    assert best == int(r.history["val_attr_bacc"].to_numpy().argmax()) + 1
    truth = method_classes(r.predictions, tmp_path)
    table = confusion(truth, probs.argmax(1), ATTRIBUTION_CLASSES)
    assert np.diag(table.to_numpy()).min() > 0.8 and np.allclose(table.sum(axis=1), 1)


def test_attribution_metrics_and_confusion_on_known_answers():
    truth = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    named = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    probs = np.eye(6)[named]
    m = attribution_metrics(truth, probs, ATTRIBUTION_CLASSES)
    assert m["attr_acc"] == pytest.approx(5 / 8)
    assert m["attr_bacc"] == pytest.approx((0.5 + 1 + 0.5) / 3)  # mean recall over the classes present
    assert m["recall_Deepfakes"] == 1 and "recall_FaceSwap" not in m
    table = confusion(truth, named, ATTRIBUTION_CLASSES)
    assert table.shape == (6, 6) and table.loc["Face2Face", "original"] == 0.5
    assert table.loc["original", "Deepfakes"] == 0.5


def test_a_pruning_step_ranks_a_heads_channels_with_its_own_loss(tmp_path):
    from dflite.compress.structured import calibration_batches, prune_step
    from dflite.nets.models import count_parameters

    store = class_store(tmp_path / "s")
    torch.manual_seed(0)
    head = create_model("cnn5", num_classes=6, input_size=32)
    batches = calibration_batches(CropDataset(store, "train", 32, "method"), 12, 2)
    before = count_parameters(head)
    prune_step(head, batches, 0.5, "global", 0.9, 8)
    assert count_parameters(head) < 0.6 * before and head(torch.zeros(2, 3, 32, 32)).shape == (2, 6)


def _table(ticket_drop=0.0, structured_drop=-0.1, dense_bacc=0.95, seeds=6):
    rng = np.random.default_rng(1)
    rows = []
    for s in range(seeds):
        noise = rng.normal(0, 0.004)
        rows += [{"arm": "dense", "seed": s, "auc": 0.99, "attr_bacc": dense_bacc + noise},
                 {"arm": "ticket", "seed": s, "auc": 0.99 + noise, "attr_bacc": dense_bacc + ticket_drop + noise / 2},
                 {"arm": "structured", "seed": s, "auc": 0.985 + noise,
                  "attr_bacc": dense_bacc + structured_drop + noise}]
    return pd.DataFrame(rows)


def test_verdicts_tell_a_kept_attribution_from_a_lost_one():
    p = get_profile("quick")
    detectors = pd.Series([0.99] * 6, index=range(6))
    v = attribution.verdicts(p, _table(), detectors).set_index(["arm", "metric"])["verdict"]
    assert v[("ticket", "auc")] == "holds" and v[("ticket", "attr_bacc")] == "holds"
    assert v[("structured", "auc")] == "holds" and v[("structured", "attr_bacc")] == "does not hold"
    assert v[("dense", "auc")] == "holds"
    unlearned = attribution.verdicts(p, _table(dense_bacc=0.3), detectors).set_index(["arm", "metric"])["verdict"]
    assert unlearned[("ticket", "attr_bacc")].startswith("not testable: the dense head's attribution did not learn")
    assert unlearned[("ticket", "auc")] == "holds"  # its detection did learn
    assert "seed 0 balanced accuracy 0.3" in unlearned[("ticket", "attr_bacc")]
    none = attribution.verdicts(p, _table(), pd.Series(dtype=float)).set_index("arm")["verdict"]
    assert none["dense"] == "not testable: notebook 03's results are missing"


def test_the_study_is_one_job_graph_that_spawned_workers_can_take(train_store):
    import pickle

    p = get_profile("quick")
    planned = attribution.arms(p, train_store)
    keys = [job.key for _, _, job in planned]
    assert len(set(keys)) == len(keys) == 3 * len(p.attribution.seeds)
    assert all(need in keys for _, _, job in planned for need in job.needs)  # each arm after its dense head
    assert [arm for arm, seed, _ in planned if seed == 0] == ["dense", "ticket", "structured"]
    for _, _, job in planned:
        again = pickle.loads(pickle.dumps(job))
        assert again == job and again.key == job.key
    # notebook 03's binary runs of the same net and seed are other jobs
    from dflite.studies import lottery as lottery_study

    binary = lottery_study.ticket(p, "cnn5", "ffpp", train_store, 0).jobs(("imp",))
    assert not {job.key for job in binary} & set(keys)
    with pytest.raises(ValueError, match="balance 'sampler'"):
        fit(seeded_model("cnn5", CFG, 0), train_store, override(CFG, balance="weights"),
            train_run("quick", "test", "cnn5", "synthetic", override(CFG, balance="weights"), train_store, 0, 32))


# --- dflite detect --attribute ---------------------------------------------------------------------------

def test_the_method_rests_on_the_faces_the_verdict_used():
    faces = [{"frame": 4, "score": 0.2}, {"frame": 4, "score": 0.9}, {"frame": 0, "score": 0.1},
             {"frame": 7, "score": 0.6}, {"frame": 7, "score": 0.6}]
    assert detect.verdict_faces(faces) == [2, 1, 3]  # frames in order, each frame's most-fake face (first of a tie)
    assert detect.verdict_faces([]) == []


def test_the_likeliest_method_and_its_share_of_the_fake():
    probs = np.array([[0.2, 0.1, 0.6, 0.05, 0.05, 0.0], [0.4, 0.1, 0.4, 0.0, 0.1, 0.0]])
    a = detect.attribution(probs)
    assert a["method"] == "Face2Face" and a["probability"] == pytest.approx(0.5)
    assert a["given_fake"] == pytest.approx(0.5 / 0.7, abs=1e-4) and a["classes"]["original"] == pytest.approx(0.3)
    assert detect.attribution(np.zeros((0, 6)))["method"] is None


@pytest.fixture(scope="module")
def head_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "head.safetensors"
    save_model(create_model("cnn5", num_classes=len(ATTRIBUTION_CLASSES), input_size=48), path)
    return path


def test_detect_names_the_method_with_a_head_and_refuses_a_plain_detector(tiny_set, head_weights, tmp_path, capsys):
    from dflite.cli import main

    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    head = detect.load_detector(weights=str(head_weights), extract=ExtractConfig(frames=4, size=48)).model
    report = detect.detect_media(video, head, ExtractConfig(frames=4, size=48), attribute=True)
    a = report["attribution"]
    assert a["method"] in METHODS and sum(a["classes"].values()) == pytest.approx(1, abs=1e-3)
    assert 0 <= report["score"] <= 1  # the verdict is the fake score 1 - p(real)
    torch.manual_seed(0)
    plain = create_model("cnn5", input_size=48)
    with pytest.raises(ValueError, match="attribution head"):
        detect.detect_media(video, plain, ExtractConfig(frames=4, size=48), attribute=True)
    code = main(["detect", str(video), "--weights", str(head_weights), "--out", str(tmp_path / "out"), "--attribute",
                 "--quiet", "--frames", "4", "--min-frames", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "likeliest method" in out
    # the same folder without --attribute was made with other settings: refused, not reused
    assert main(["detect", str(video), "--weights", str(head_weights), "--out", str(tmp_path / "out"),
                 "--quiet", "--frames", "4", "--min-frames", "1"]) == 2
    # no verdict (no face): no method named either
    write_mp4(tmp_path / "grey.mp4", np.full((3, 240, 320, 3), 128, np.uint8), fps=8)
    grey = detect.detect_media(tmp_path / "grey.mp4", head, ExtractConfig(frames=4, size=48), attribute=True)
    assert grey["score"] is None and grey["attribution"]["method"] is None


def test_the_cli_trains_a_head(train_store, tmp_path, capsys):
    from dflite.cli import main

    code = main(["train", "--store", str(train_store.root), "--model", "cnn5", "--epochs", "1", "--input-size", "32",
                 "--target", "method", "--out", str(tmp_path / "head")])
    out = capsys.readouterr().out
    assert code == 0 and "attr_bacc" in out and "recall_original" in out
    assert load_model(tmp_path / "head" / "best.safetensors")[0].dflite_spec["num_classes"] == 6
