"""The demo in a real browser: headless Chromium (Debian's package) driven by Playwright uploads a synthetic test
video, waits for the verdict, checks that the annotated H.264 video decodes in the browser, and saves a
screenshot (figures/demo.png is made this way).

    apt-get install -y chromium && pip install -e '.[demo,browser]'
    python tests/browser_demo.py [--run RUN_DIR] [--video FILE] [--out figures/demo.png]

Exits 1 with the reason when a check fails; pytest runs it as tests/test_browser.py where Chromium is installed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from dflite import paths
from dflite.config import resolve
from dflite.detect import demo


def test_video(method: str = "FaceSwap") -> Path:
    """The first test-split fake video of the quick synthetic set (`make reproduce` writes it)."""
    root = paths.synth_dir("quick") / "ffpp"
    splits = root / "splits" / "test.json"
    if not splits.is_file():
        raise SystemExit(f"{splits}: no quick synthetic set; run `make reproduce` (or pass --video)")
    a, b = json.loads(splits.read_text())[0]
    return root / "manipulated_sequences" / method / "c23" / "videos" / f"{a}_{b}.mp4"


def check(url: str, video: Path, shot: Path | None, timeout_s: float = 120) -> dict:
    """Upload `video` in Chromium, wait for the verdict; returns what the page showed."""
    from playwright.sync_api import sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        raise SystemExit("no chromium on PATH: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.set_input_files("input[type=file]", str(video))
        page.get_by_role("button", name="Detect").click()
        page.wait_for_function("() => /### |FAKE|REAL|No face/.test(document.querySelector('#verdict')?.innerText)",
                               timeout=timeout_s * 1000)
        verdict = page.locator("#verdict").inner_text().strip().splitlines()[0]
        page.wait_for_selector("video", timeout=timeout_s * 1000)
        # The annotated mp4 must decode here: a browser that cannot play it never gets a frame size.
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2 "
                               "&& v.videoWidth > 0; }", timeout=timeout_s * 1000)
        size = page.evaluate("() => [document.querySelector('video').videoWidth, "
                             "document.querySelector('video').videoHeight]")
        page.wait_for_timeout(1000)  # let the plot and the images finish drawing
        if shot:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))  # the viewport: verdict, video, plot and Grad-CAM
        browser.close()
    return {"verdict": verdict, "video_size": size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="run folder (default: the newest quick CNN-5 baseline)")
    ap.add_argument("--video", help="video to upload (default: a FaceSwap test video of the quick set)")
    ap.add_argument("--out", help="screenshot path (e.g. figures/demo.png)")
    ap.add_argument("--expect", choices=["FAKE", "REAL"], help="fail unless the verdict is this")
    args = ap.parse_args(argv)
    run = args.run or demo.default_run(resolve("quick"))
    if not run:
        raise SystemExit("no finished run under data/runs: run `make reproduce` (or pass --run)")
    video = Path(args.video) if args.video else test_video()
    app = demo.launch(run, port=None, block=False)
    try:
        seen = check(app.local_url, video, Path(args.out) if args.out else None)
    finally:
        app.close()
    print(f"{video.name}: {seen['verdict']} (annotated video decoded in Chromium at {seen['video_size'][0]}x"
          f"{seen['video_size'][1]})" + (f"; screenshot {args.out}" if args.out else ""))
    if args.expect and args.expect not in seen["verdict"]:
        print(f"expected {args.expect}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
