"""The web demo (`dflite demo`, `make demo`): upload a video or an image, get the verdict with its score, the
annotated video, a per-frame score plot and the Grad-CAM of the most-fake face.

Everything it shows comes from `detect.media` (the `dflite detect` path) and `analysis.explain`
(notebook 06's Grad-CAM); this module only lays it out. Gradio is imported when the app is built, so the
package works without the `demo` extra.
"""
from __future__ import annotations

import json
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import paths
from ..analysis.explain import gradcams
from ..config import ExtractConfig, Profile, TrainConfig, from_dict, override, resolve
from . import media as detect

MAX_MB = 100  # uploads above this are refused (the server refuses them too, before they reach the model)
WARNING = ("**Trained on synthetic data: this is not a detector for real-world videos.** It shows the pipeline; "
           "its scores mean something only on dflite's synthetic faces.")


def finished_runs(root: Path | None = None) -> list:
    """Finished run folders under data/runs, newest first (absolute paths)."""
    root = Path(root or paths.data_dir() / "runs")
    found = sorted(root.glob("*/*/seed_*/best.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [str(p.parent) for p in found]


def default_run(p: Profile, model: str = "cnn5") -> str | None:
    """The profile's own baseline run of `model` at seed 0 (CNN-5: the quick study's best and fastest detector):
    the newest finished run made with exactly the profile's recipe and crops; else the newest finished run."""
    want = ("baseline", model, 0, p.recipe(model), p.extract)
    runs = finished_runs()
    for run in runs:
        try:  # older runs store fewer fields: compare as configs, missing fields at their defaults
            conf = json.loads((Path(run) / "config.json").read_text())
            have = (conf["stage"], conf["model"], conf["seed"], from_dict(TrainConfig, conf["train"]),
                    from_dict(ExtractConfig, conf["data"]["extract"]))
        except (OSError, KeyError, ValueError):
            continue
        if have == want:
            return run
    return (runs or [None])[0]


@lru_cache(maxsize=4)
def _detector(run: str) -> detect.Detector:
    return detect.load_detector(run=str(Path(run).resolve()))


def model_card(run: str) -> str:
    """Markdown: which model runs, what it was trained on, its test AUC, and the synthetic-data warning."""
    det = _detector(run)
    on = det.trained_on
    params = sum(p.numel() for p in det.model.parameters())
    lines = [f"**Model:** `{det.name}` ({params / 1e6:.2f} M parameters, {det.model.dflite_spec['input_size']} px "
             f"input) from `{det.source}`, weights `{det.digest}`",
             f"**Trained on:** {on.get('dataset')} ({on.get('kind')}, {on.get('compression')})"]
    metrics = Path(run) / "test_metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        lines.append(f"**Its test split:** AUC {m['auc']:.3f}, accuracy {m['acc']:.3f} (face crops)")
    if det.synthetic:
        lines.append(WARNING)
    return "\n\n".join(lines)


def check_upload(path, max_mb: float = MAX_MB) -> Path:
    """The uploaded file, or a ValueError that says what is wrong with it."""
    if not path:
        raise ValueError("Upload a video or an image first.")
    path = Path(path)
    try:
        kind = detect.media_kind(path)  # NotMediaError (a ValueError) names the accepted types
    except ValueError as e:  # named by the file's own name, not the server's temporary folder
        raise ValueError(str(e).replace(str(path), path.name)) from None
    size = path.stat().st_size / 2**20
    if size > max_mb:
        raise ValueError(f"{path.name} is {size:.0f} MB; the demo takes {kind}s up to {max_mb:.0f} MB")
    return path


def score_plot(report: dict, threshold: float):
    """Per sampled frame: its most-fake face's probability, with the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
    xs, ys = zip(*report["frame_scores"]) if report["frame_scores"] else ((), ())
    ax.plot(xs, ys, "o-", color="#c0392b")
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set(ylim=(-0.03, 1.05), xlabel="frame", ylabel="fake probability", title="most-fake face per sampled frame")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def cam_overlay(model, crop: np.ndarray, side: int = 224) -> np.ndarray:
    """RGB image: the Grad-CAM of the fake logit over one BGR face crop."""
    import cv2
    import torch

    size = model.dflite_spec["input_size"]
    rgb = cv2.cvtColor(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    cam = gradcams(model, torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous())[0]
    heat = cv2.applyColorMap(np.uint8(255 * cam), cv2.COLORMAP_JET)[..., ::-1]
    blend = (0.55 * rgb + 0.45 * heat).astype(np.uint8)
    return cv2.resize(blend, (side, side), interpolation=cv2.INTER_NEAREST)


_SCRATCH: list = []


def _scratch() -> Path:
    """A fresh folder for one request's annotated video, inside one temporary folder per process that is removed
    when the process ends (Gradio copies what it serves into its own cache; nothing is left in /tmp)."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="dflite-demo-"))
    return Path(tempfile.mkdtemp(dir=_SCRATCH[0].name))


def analyse(upload, run: str, frames: int, rule: detect.Rule = detect.Rule(), max_mb: float = MAX_MB) -> tuple:
    """(verdict markdown, annotated video path or None, annotated most-fake frame (RGB), score plot,
    Grad-CAM overlay (RGB) or None, report) for one uploaded file, `frames` sampled per video."""
    path = check_upload(upload, max_mb)
    if not run:
        raise ValueError("Pick a run folder (data/runs/<profile>/<run>/seed_N) first.")
    det = _detector(run)
    out = _scratch()
    keep = {}
    cfg = override(det.extract, frames=frames, face_choice=detect.FACE_CHOICE)  # as `dflite detect`
    video = out / f"{path.stem}.annotated.mp4" if detect.media_kind(path) == "video" else None
    try:
        report = detect.detect_media(path, det.model, cfg, rule, video_out=video, keep=keep)
    except detect.VideoError as e:  # named by the file's own name: the server's temporary folder is nobody's business
        raise ValueError(f"{path.name}: {e.reason}" + (f" ({e.detail})" if e.detail else "")) from None
    report = {**report, "detector": {"source": det.source, "trained_on": det.trained_on}}
    if report["verdict"] == "no face found":
        why = report.get("reason") or f"no face in its {report['frames_sampled']} sampled frame(s)"
        text = f"### No face found\n`{path.name}`: {why}, so there is no verdict."
        return text, None, None, None, None, report
    what = ("the face's fake probability" if report["kind"] == "image" else
            "share of face frames scored fake" if rule.kind == "frames" else "mean frame score")
    text = (f"### {report['verdict']} — score {report['score']:.2f}\n"
            f"{what}; {report['frames_with_face']} of {report['frames_sampled']} sampled frames had a face "
            f"(`{det.name}`, threshold {rule.threshold:g}" +
            (f", FAKE at a share ≥ {rule.share:g})" if rule.kind == "frames" else ")"))
    worst = int(np.argmax([f["score"] for f in report["faces"]]))
    frame = keep["annotated"][report["faces"][worst]["frame"]][..., ::-1]
    cam = cam_overlay(det.model, keep["crops"][worst])
    plot = score_plot(report, rule.threshold) if report["kind"] == "video" else None  # one point says nothing
    return text, str(video) if video else None, frame, plot, cam, report


def build_app(run: str | None = None, max_mb: float = MAX_MB, profile="quick"):
    """The Gradio Blocks app; its API endpoint `/detect` takes (file, run folder). The profile gives the default
    run and the frames sampled per video (as `dflite detect`)."""
    import gradio as gr

    p = resolve(profile)
    frames = p.video.frames
    runs = finished_runs()
    run = run or default_run(p)

    def on_detect(upload, chosen):
        try:
            return analyse(upload, chosen, frames, max_mb=max_mb)
        except (ValueError, FileNotFoundError) as e:
            # A user's bad upload is one line in the server's log, not a traceback; the page shows the message.
            print(f"dflite demo: refused an upload: {e}", file=sys.stderr, flush=True)
            raise gr.Error(str(e), print_exception=False) from None

    def on_run(chosen):
        try:
            return model_card(chosen) if chosen else "No finished run found: run `make reproduce` first."
        except (ValueError, FileNotFoundError) as e:
            return f"**Cannot load this run:** {e}"

    with gr.Blocks(title="dflite: deepfake detection demo") as app:
        gr.Markdown("## dflite: is this face video a deepfake?\nUpload a video or an image: dflite samples "
                    f"{frames} frames, finds the face (OpenCV Haar: the most confident box with a pair of eyes), "
                    "scores it with the chosen detector and gives a verdict.")
        with gr.Row():
            with gr.Column(scale=1):
                chosen = gr.Dropdown([(paths.show(r), r) for r in runs], value=run, label="Run folder",
                                     allow_custom_value=True,
                                     info="any finished run folder (…/seed_N); type a path to use another")
                card = gr.Markdown(on_run(run))
                # No file_types: Gradio's own type check logs a traceback per refused file; check_upload's
                # message names the file and the accepted types instead.
                upload = gr.File(label=f"Video or image (up to {max_mb:.0f} MB)", type="filepath")
                go = gr.Button("Detect", variant="primary")
            with gr.Column(scale=2):
                verdict = gr.Markdown(label="Verdict", elem_id="verdict")
                with gr.Row():
                    video = gr.Video(label="Annotated video", height=260)
                    frame = gr.Image(label="Most-fake frame", height=260)
                with gr.Row():
                    plot = gr.Plot(label="Score per frame")
                    cam = gr.Image(label="Grad-CAM of the most-fake face", height=240)
                report = gr.JSON(label="Report (as `dflite detect` writes it)", open=False)
        chosen.change(on_run, chosen, card)
        go.click(on_detect, [upload, chosen], [verdict, video, frame, plot, cam, report], api_name="detect")
    return app


def launch(run: str | None = None, host: str = "127.0.0.1", port: int | None = 7860, max_mb: float = MAX_MB,
           block: bool = True, profile="quick"):
    """Start the demo; returns the app (its `local_url` is set) when `block` is False."""
    app = build_app(run, max_mb, profile)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_mb:g}mb", prevent_thread_lock=not block,
               show_error=True, quiet=not block)
    return app
