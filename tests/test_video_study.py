"""Notebook 07's arithmetic: frames kept per count, video AUC/ACC from frame scores, faceless videos."""
from __future__ import annotations

import pandas as pd
import pytest
from dflite.config import resolve
from dflite.studies import video


def test_evenly_spaced_frames():
    assert video.evenly([0, 10, 20, 30, 40], 2) == [0, 40]
    assert video.evenly([0, 10, 20, 30, 40], 3) == [0, 20, 40]
    assert video.evenly([0, 10], 8) == [0, 10]


def test_video_auc_and_acc_come_from_the_frames_used():
    videos = pd.DataFrame({"compression": "c23", "media_id": ["r1", "r2", "f1", "f2"], "label": [0, 0, 1, 1],
                           "sampled": [[0, 1, 2, 3]] * 4})
    scores = {"r1": [0.1, 0.2, 0.9, 0.1], "r2": [0.3, 0.1, 0.1, 0.1], "f1": [0.9, 0.8, 0.2, 0.7]}  # f2: no face
    ids = {"study": "baseline", "model": "m", "arm": "dense", "sparsity": 0.0, "ratio": 0.0, "scope": "global",
           "steps": 1, "alpha": 0.0, "match": "", "seed": 0, "compression": "c23"}
    per_frame = pd.DataFrame([{**ids, "media_id": m, "frame": f, "score": s}
                              for m, ss in scores.items() for f, s in enumerate(ss)])
    table = video.video_table(resolve("quick"), per_frame, videos).set_index("frames")
    assert table.loc[16, "no_face"] == 1 and table.loc[16, "videos"] == 4
    # means: r1 .325, r2 .15, f1 .65, f2 0 (no face) -> one of four pairs ordered right... 3 of 4
    assert table.loc[16, "auc"] == pytest.approx(0.5)
    assert table.loc[16, "acc"] == pytest.approx(0.75)  # f1 FAKE (3 of 4 frames), f2 REAL: wrong
    assert table.loc[16, "bacc"] == pytest.approx(0.75)  # reals 2/2, fakes 1/2
    assert table.loc[1, "auc"] == pytest.approx(0.5)    # frame 0 only: .1 .3 | .9 0


def test_onnx_runtime_scores_are_detects_own(monkeypatch):
    """The study scores faces in ONNX Runtime (3x torch here); they must be what `dflite detect` (torch) gives.
    A run listed twice (as two studies' net) is scored once and gets its scores under both."""
    import numpy as np
    import torch
    from dflite import detect, paths
    from dflite.nets.checkpoint import save_model
    from dflite.nets.models import create_model

    p = resolve("quick")
    torch.manual_seed(0)
    net = create_model("cnn5", input_size=64)
    save_model(net, paths.runs_dir(p.name) / "r" / "best.safetensors")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(600)]  # past one 512-crop chunk
    videos = pd.DataFrame({"compression": "c23", "media_id": ["a", "b"], "label": [0, 1], "method": ["original", "X"],
                           "faces": [list(enumerate(crops[:300])), list(enumerate(crops[300:]))]})
    nets = pd.DataFrame([{k: v for k, v in zip(video.IDS, ("baseline", "cnn5", "dense", 0.0, 0.0, "global", 1, 0.0,
                                                            ""))} | {"seed": 0, "run": "r"}])
    got = video.scores(p, videos, nets, progress=False)
    assert len(got) == 600 and list(got.media_id[:2]) == ["a", "a"]
    assert np.abs(got.score.to_numpy() - detect.classify(net.eval(), crops)).max() < 1e-5

    exports, export = [], video.export_onnx
    monkeypatch.setattr(video, "export_onnx", lambda *a, **k: exports.append(a[1]) or export(*a, **k))
    copy = paths.runs_dir(p.name) / "r2" / "best.safetensors"  # another run, the same weights bit for bit
    copy.parent.mkdir()
    copy.write_bytes((paths.runs_dir(p.name) / "r" / "best.safetensors").read_bytes())
    twice = pd.concat([nets, nets.assign(study="structured"), nets.assign(study="lottery", run="r2")],
                      ignore_index=True)
    both = video.scores(p, videos, twice, progress=False)
    assert len(exports) == 1 and len(both) == 1800
    assert (both.score[:600].to_numpy() == both.score[600:1200].to_numpy()).all()
    assert (both.score[:600].to_numpy() == both.score[1200:].to_numpy()).all()
    assert list(both.study[599:601]) == ["baseline", "structured"] and both.study.iloc[-1] == "lottery"
