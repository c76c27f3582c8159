"""The demo in a real browser (tests/browser_demo.py), where Chromium and Playwright are installed."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("gradio", reason="the demo extra is not installed")
pytest.importorskip("playwright", reason="the browser extra is not installed (make browser-test installs it)")
if not shutil.which("chromium"):
    pytest.skip("no chromium on PATH (apt-get install -y chromium)", allow_module_level=True)


def test_an_upload_in_chromium_shows_a_verdict_and_a_playable_video(tiny_set, tmp_path):
    from tests import browser_demo
    from tests.test_demo import biased_run

    run = biased_run(tmp_path / "always_fake" / "seed_0", 8.0)
    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    assert browser_demo.main(["--run", run, "--video", str(video), "--expect", "FAKE",
                              "--out", str(tmp_path / "shot.png")]) == 0
    assert (tmp_path / "shot.png").stat().st_size > 10_000
