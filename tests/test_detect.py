"""Detection on media: the verdict rule, reports for videos and images, real sizes, and bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from dflite import detect
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
    model = detect.load_detector(weights=str(weights)).model
    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    report = detect.detect_media(video, model, CFG, video_out=tmp_path / "out.mp4")
    assert report["kind"] == "video" and report["frames_sampled"] == 4 and report["frames_with_face"] >= 1
    assert report["verdict"] in ("FAKE", "REAL") and 0 <= report["score"] <= 1
    assert all(0 <= f["score"] <= 1 and len(f["box"]) == 4 for f in report["faces"])
    frames = read_frames(tmp_path / "out.mp4")
    assert len(frames) == 4 and frames.shape[1] % 2 == 0


def test_real_sizes_and_no_face(weights, tiny_set, tmp_path):
    model = detect.load_detector(weights=str(weights)).model
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


def test_a_folder_goes_on_past_a_bad_file_and_resumes_with_the_same_settings_only(weights, tiny_set, tmp_path):
    video = next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4")).read_bytes()
    for comp in ("c23", "c40"):                                    # same file names in two folders
        (tmp_path / "in" / comp).mkdir(parents=True)
        (tmp_path / "in" / comp / "000.mp4").write_bytes(video)
    (tmp_path / "in" / "broken.mp4").write_bytes(b"not a video at all")
    detector = detect.load_detector(weights=str(weights), extract=CFG)
    reports = detect.detect_all([tmp_path / "in"], detector, tmp_path / "out", progress=False)
    by = {r["input"]: r for r in reports}
    assert set(by) == {"c23__000.mp4", "c40__000.mp4", "broken.mp4"}
    assert by["broken.mp4"]["verdict"] == "error" and by["c23__000.mp4"]["verdict"] in ("FAKE", "REAL")
    assert (tmp_path / "out" / "c40__000.mp4.annotated.mp4").is_file()
    assert str(tmp_path) not in (tmp_path / "out" / "c23__000.mp4.json").read_text()
    again = detect.detect_all([tmp_path / "in"], detector, tmp_path / "out", progress=False)
    assert [r["faces"] for r in again[1:]] == [r["faces"] for r in reports[1:]]
    with pytest.raises(ValueError, match="other settings.*rule"):
        detect.detect_all([tmp_path / "in"], detector, tmp_path / "out", rule=detect.Rule("mean"), progress=False)


def test_the_cli_exit_codes(weights, tiny_set, tmp_path, capsys):
    from dflite.cli import main

    (tmp_path / "notes.txt").write_text("hello")
    assert main(["detect", str(tmp_path / "notes.txt"), "--weights", str(weights), "--quiet"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), read_frames(next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos")
                                             .glob("*.mp4")))[0])
    assert main(["detect", str(image), "--weights", str(weights), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "not a detector for real-world videos" in capsys.readouterr().err
