"""The web demo through its HTTP API (gradio_client against a launched app): a real upload, the verdict checked."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dflite import detect
from dflite.config import ExtractConfig, override, to_dict
from dflite.data.video import read_frames
from dflite.nets.checkpoint import save_model
from dflite.nets.models import create_model

pytest.importorskip("gradio", reason="the demo extra is not installed (make test installs it)")
from gradio_client import Client, handle_file  # noqa: E402

CFG = ExtractConfig(frames=4, size=32)


def biased_run(folder, bias: float):
    """A run folder whose CNN-5 says `bias` through its output bias alone: the verdict is known beforehand."""
    torch.manual_seed(0)
    model = create_model("cnn5", input_size=32)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.fill_(bias)
    folder.mkdir(parents=True)
    save_model(model, folder / "best.safetensors")
    data = {"dataset": "synthetic", "kind": "ffpp", "synthetic": True, "extract": to_dict(CFG)}
    (folder / "config.json").write_text(json.dumps({"model": "cnn5", "data": data}))
    (folder / "test_metrics.json").write_text(json.dumps({"auc": 0.5, "acc": 0.5}))
    return str(folder)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from dflite.detect import demo

    root = tmp_path_factory.mktemp("runs")
    runs = {"fake": biased_run(root / "always_fake" / "seed_0", 8.0),
            "real": biased_run(root / "always_real" / "seed_0", -8.0)}
    server = demo.launch(runs["fake"], port=None, max_mb=1, block=False)
    yield Client(server.local_url, verbose=False), runs
    server.close()


def test_an_uploaded_video_gets_the_verdict_detect_gives(app, tiny_set):
    client, runs = app
    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    for want, run in (("FAKE", runs["fake"]), ("REAL", runs["real"])):
        text, annotated, frame, plot, cam, report = client.predict(handle_file(str(video)), run, api_name="/detect")
        assert report["verdict"] == want and f"### {want}" in text
        assert report["score"] == (1.0 if want == "FAKE" else 0.0)
        assert report["detector"]["trained_on"]["synthetic"] is True
        # the same file through `dflite detect`'s own function gives the same faces and scores
        direct = detect.detect_media(video, detect.load_detector(run=run).model,
                                     override(CFG, frames=16, face_choice=detect.FACE_CHOICE))
        assert [f["box"] for f in direct["faces"]] == [f["box"] for f in report["faces"]]
        shown = read_frames(annotated)
        assert len(shown) == report["frames_sampled"] and shown.shape[1] % 2 == 0
        assert plot is not None and cam is not None and frame is not None


def test_the_page_names_the_model_and_warns_about_synthetic_data(app):
    client, runs = app
    card = client.predict(runs["fake"], api_name="/on_run")
    assert "cnn5" in card and "not a detector for real-world videos" in card


def test_non_media_and_oversize_uploads_are_refused_with_a_message(app, tmp_path, capfd):
    client, runs = app
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(Exception, match="(?i)file type|not a video"):
        client.predict(handle_file(str(tmp_path / "notes.txt")), runs["fake"], api_name="/detect")
    log = capfd.readouterr().err
    assert "dflite demo: refused an upload: notes.txt: not a video" in log  # named, not located
    assert "Traceback" not in log  # one line per user error
    big = tmp_path / "big.mp4"
    big.write_bytes(np.random.default_rng(0).bytes(3 * 2**20))  # over the 1 MB limit of this app
    with pytest.raises(Exception, match="(?i)MB|too large|exceeds"):
        client.predict(handle_file(str(big)), runs["fake"], api_name="/detect")


def test_a_video_without_a_face_gets_a_clear_answer(app, tmp_path):
    from dflite.data.video import write_mp4

    client, runs = app
    write_mp4(tmp_path / "grey.mp4", np.full((4, 240, 320, 3), 128, np.uint8), fps=8)
    text, annotated, *_, report = client.predict(handle_file(str(tmp_path / "grey.mp4")), runs["fake"],
                                                 api_name="/detect")
    assert report["verdict"] == "no face found" and "No face found" in text and annotated is None


def test_an_image_scores_its_face_without_a_plot_and_a_broken_file_is_named_not_located(app, tiny_set, tmp_path):
    import cv2

    client, runs = app
    frame = read_frames(next((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4")))[0]
    cv2.imwrite(str(tmp_path / "face.png"), cv2.resize(frame, (320, 320)))
    text, annotated, shown, plot, cam, report = client.predict(handle_file(str(tmp_path / "face.png")), runs["fake"],
                                                               api_name="/detect")
    assert report["kind"] == "image" and annotated is None and plot is None
    assert report["score"] == max(f["score"] for f in report["faces"]) and "face's fake probability" in text
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(tmp_path / "broken.mp4")), runs["fake"], api_name="/detect")
    assert "broken.mp4: undecodable" in str(err.value) and "/tmp" not in str(err.value)
