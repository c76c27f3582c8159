"""Detection on media: the verdict rule, reports for videos and images, real sizes, and bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from dflite import detect
from dflite.config import ExtractConfig, override
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


def test_the_rule_refuses_values_outside_their_range():
    for bad in ({"threshold": 1.5}, {"threshold": -0.1}, {"share": 2}, {"share": 0}, {"min_frames": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            detect.Rule(**bad)


def test_an_image_scores_its_face_and_a_video_needs_enough_face_frames():
    image = detect.media_verdict("image", [0.52], 1)
    assert image == {"verdict": "FAKE", "score": 0.52}                # not a share of one frame (0 or 1)
    assert detect.media_verdict("image", [0.3], 1)["score"] == 0.3
    few = detect.media_verdict("video", [0.9, 0.9], 16)               # 2 face frames of 16: no verdict
    assert few["verdict"] == "no face found" and few["score"] is None and "2 of 16" in few["reason"]
    assert detect.media_verdict("video", [0.9, 0.9], 16, detect.Rule(min_frames=2))["verdict"] == "FAKE"
    assert detect.media_verdict("video", [0.9, 0.1, 0.9], 3)["verdict"] == "FAKE"   # all it sampled is enough


def test_the_drawn_verdict_never_says_what_the_report_would_not():
    rule = detect.Rule()
    assert detect.running("video", [0.9], 16, rule) == {"verdict": "1 of 4 face frames", "score": None}
    assert detect.running("video", [0.9] * 4, 16, rule)["verdict"] == "FAKE"
    assert detect.running("image", [0.7], 1, rule) == {"verdict": "FAKE", "score": 0.7}
    assert detect.running("video", [], 16, rule)["verdict"] == "no face found"


def test_the_drawn_verdict_sits_bottom_left_and_face_labels_stay_legible():
    from dflite.detect.media import FAKE, annotate

    frame = np.full((160, 160, 3), 128, np.uint8)
    out = annotate(frame, [((40, 0, 80, 80), 0.91, True)], {"verdict": "FAKE", "score": 0.96})
    corner = out[-16:, :60].reshape(-1, 3)
    assert (corner == 0).all(axis=1).mean() > 0.6 and (corner > 200).all(axis=1).any()  # bottom-left: white on black
    assert (out[:30, :35] == 128).all()                        # the top-left is left to the face's label ...
    label = out[:12, 40:100].reshape(-1, 3)
    assert (label == FAKE).all(axis=1).mean() > 0.4            # ... a filled box of the face's colour at the top
    assert (label > 200).all(axis=1).sum() > 20                # with white text in it


def test_a_picture_of_clutter_gets_no_verdict_and_the_reason(weights, tmp_path):
    from dflite.data.synth.sizes import face_scene

    rng = np.random.default_rng(5)
    model = detect.load_detector(weights=str(weights)).model
    cfg = ExtractConfig(size=48, min_size=40)
    for _ in range(6):                               # the first frame of clutter where the cascade fires
        cv2.imwrite(str(tmp_path / "crowd.png"), face_scene(rng, (480, 854), 0, busy=True)[0])
        fooled = detect.detect_media(tmp_path / "crowd.png", model, cfg)
        if fooled["faces"]:
            break
    assert fooled["faces"] and fooled["verdict"] in ("FAKE", "REAL")       # biggest: a verdict on clutter
    report = detect.detect_media(tmp_path / "crowd.png", model, override(cfg, face_choice="evidence"))
    assert report["verdict"] == "no face found" and report["faces"] == []
    assert "none of them plausible" in report["reason"] and report["frames_rejected"]


def _folder_of_copies(tiny_set, folder, n=2):
    video = next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4")).read_bytes()
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i:03d}.mp4").write_bytes(video)
    return folder


def test_reports_inside_the_input_folder_are_never_scored_and_force_overwrites(weights, tiny_set, tmp_path):
    src = _folder_of_copies(tiny_set, tmp_path / "in")
    detector = detect.load_detector(weights=str(weights), extract=CFG)
    first = detect.detect_all([src], detector, src / "reports", progress=False)
    again = detect.detect_all([src], detector, src / "reports", progress=False)   # its annotated mp4s lie in src
    assert [r["input"] for r in first] == [r["input"] for r in again] == ["000.mp4", "001.mp4"]
    with pytest.raises(ValueError, match="--force"):
        detect.detect_all([src], detector, src / "reports", rule=detect.Rule(threshold=0.3), progress=False)
    redone = detect.detect_all([src], detector, src / "reports", rule=detect.Rule(threshold=0.3), progress=False,
                               force=True)
    assert all(r["rule"]["threshold"] == 0.3 and r["settings"]["rule"]["threshold"] == 0.3 for r in redone)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no videos .* or images"):
        detect.detect_all([tmp_path / "empty"], detector, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_report_is_named_by_the_path_given_not_a_symlinks_target(weights, tiny_set, tmp_path):
    src = _folder_of_copies(tiny_set, tmp_path / "store", n=1)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.mp4").symlink_to(src / "000.mp4")
    (tmp_path / "mine" / "other.mp4").symlink_to(src / "000.mp4")
    detector = detect.load_detector(weights=str(weights), extract=CFG)
    reports = detect.detect_all([tmp_path / "mine"], detector, tmp_path / "out", progress=False, videos=False)
    assert [r["input"] for r in reports] == ["holiday.mp4", "other.mp4"]
    assert reports[0]["face_choice"] == reports[0]["settings"]["extract"]["face_choice"] == "evidence"
    biggest = detect.detect_all([tmp_path / "mine"], detector, tmp_path / "out2", progress=False, videos=False,
                                faces="biggest")
    assert biggest[0]["face_choice"] == "biggest" and biggest[0]["frames_rejected"] == []


def test_frames_are_refused_where_the_detectors_sampling_takes_no_count(weights, tiny_set, tmp_path):
    src = _folder_of_copies(tiny_set, tmp_path / "in", n=1)
    capstone = detect.load_detector(weights=str(weights), extract=ExtractConfig(sampling="capstone", size=48))
    with pytest.raises(ValueError, match="--frames 16.*capstone"):
        detect.detect_all([src], capstone, tmp_path / "out", frames=16, progress=False)
    assert detect.detect_all([src], capstone, tmp_path / "out", progress=False)[0]["frames_sampled"] <= 10


def test_the_annotated_mp4_starts_with_its_index(weights, tiny_set, tmp_path):
    src = _folder_of_copies(tiny_set, tmp_path / "in", n=1)
    detect.detect_all([src], detect.load_detector(weights=str(weights), extract=CFG), tmp_path / "out",
                      progress=False)
    data = (tmp_path / "out" / "000.mp4.annotated.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")       # faststart: a browser plays it while it loads


def test_the_cli_checks_numbers_and_keeps_decoder_noise_in_the_report(weights, tiny_set, tmp_path, capfd):
    import json

    from dflite.cli import main

    frame = read_frames(next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4")))[0]
    frame = cv2.resize(frame, (480, 480))
    ok, data = cv2.imencode(".jpg", frame)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.jpg").write_bytes(data.tobytes()[: int(len(data) * 0.9)])   # truncated: libjpeg warns
    base = ["detect", str(tmp_path / "in"), "--weights", str(weights), "--quiet"]
    for option, value in (("--threshold", "1.5"), ("--share", "2"), ("--frames", "-3"), ("--frames", "0"),
                          ("--min-frames", "0")):
        with pytest.raises(SystemExit) as exit_:
            main([*base, "--out", str(tmp_path / "bad"), option, value])
        assert exit_.value.code == 2 and f"argument {option}" in capfd.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main([*base, "--out", str(tmp_path / "out")]) == 0
    out, err = capfd.readouterr()
    assert "JPEG" not in err and "(face probability)" in out
    report = json.loads((tmp_path / "out" / "cut.jpg.json").read_text())
    assert "JPEG" in report["detail"] and report["score"] == max(f["score"] for f in report["faces"])
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty"), "--weights", str(weights), "--quiet",
                 "--out", str(tmp_path / "o2")]) == 2
    assert "no videos" in capfd.readouterr().err
