"""Detection on media: the verdict rule, reports for videos and images, real sizes, and bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from dflite.analysis import detect
from dflite.config import ExtractConfig
from dflite.data.video import read_frames, write_mp4
from dflite.nets.checkpoint import save_model
from dflite.nets.models import create_model

CFG = ExtractConfig(frames=4, size=48)


def test_the_verdict_rule():
    assert detect.verdict([])["verdict"] == "no face found"
    assert detect.verdict([0.9, 0.8, 0.1, 0.2]) == {"verdict": "FAKE", "score": 0.5}     # half the frames: fake
    assert detect.verdict([0.9, 0.1, 0.1, 0.2])["verdict"] == "REAL"
    assert detect.verdict([0.9, 0.1, 0.1, 0.2], detect.Rule("mean"))["score"] == pytest.approx(0.325)
    with pytest.raises(ValueError, match="unknown verdict rule"):
        detect.Rule("vote")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "cnn5.safetensors"
    save_model(create_model("cnn5", input_size=48), path)
    return path


def test_a_video_gets_a_report_and_a_browser_playable_annotated_video(tiny_set, weights, tmp_path):
    model, _ = detect.load_detector(weights=str(weights))
    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    report = detect.detect_media(video, model, CFG, video_out=tmp_path / "out.mp4")
    assert report["kind"] == "video" and report["frames_sampled"] == 4 and report["frames_with_face"] >= 1
    assert report["verdict"] in ("FAKE", "REAL") and 0 <= report["score"] <= 1
    assert all(0 <= f["score"] <= 1 and len(f["box"]) == 4 for f in report["faces"])
    frames = read_frames(tmp_path / "out.mp4")
    assert len(frames) == 4 and frames.shape[1] % 2 == 0


def test_real_sizes_and_no_face(weights, tiny_set, tmp_path):
    model, _ = detect.load_detector(weights=str(weights))
    frame = read_frames(next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4")))[0]
    big = cv2.resize(frame, (1280, 1280))[280:1000]               # 1280 x 720 with a ~600 px face
    write_mp4(tmp_path / "720p.mp4", np.stack([big] * 3), fps=8)
    report = detect.detect_media(tmp_path / "720p.mp4", model, CFG)
    assert report["frames_with_face"] == 3 and report["faces"][0]["box"][2] > 300
    write_mp4(tmp_path / "grey.mp4", np.full((3, 240, 320, 3), 128, np.uint8), fps=8)
    assert detect.detect_media(tmp_path / "grey.mp4", model, CFG)["verdict"] == "no face found"
    cv2.imwrite(str(tmp_path / "face.png"), frame)
    assert detect.detect_media(tmp_path / "face.png", model, CFG)["kind"] == "image"


def test_bad_input_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(detect.NotMediaError, match="notes.txt"):
        detect.expand_inputs([tmp_path / "notes.txt"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        detect.expand_inputs([tmp_path / "missing.mp4"])
    with pytest.raises(ValueError, match="exactly one"):
        detect.load_detector()
