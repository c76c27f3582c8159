"""Detection on media: sampled frames -> faces (extraction's own in-memory step) -> fake probability per
face -> a verdict per video or image, a JSON report, and for videos an annotated H.264 mp4.

The verdict rule (`Rule`): per sampled frame with a face, the frame's score is its most-fake face's
probability. `frames` (default): the video is FAKE when at least `share` of those frames score at or
above `threshold`, and its score is that share. `mean`: the score is the mean frame score, FAKE at or
above `threshold`. A video with no face gets the verdict "no face found".
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import ExtractConfig
from ..data.extract import faces_in_frames
from ..data.loader import normalise
from ..data.sources import VIDEO_EXTS
from ..data.video import VideoError, read_sampled, sample_frame_indices, write_mp4
from ..nets.checkpoint import load_model

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
STAGES = ("decode", "detect", "crop", "classify", "annotate")
REAL, FAKE = (60, 170, 60), (40, 40, 220)  # BGR box colours


@dataclass(frozen=True)
class Rule:
    kind: str = "frames"       # frames: share of face frames at or above threshold | mean: mean frame score
    threshold: float = 0.5     # a face (and, for `mean`, a video) is fake at or above this probability
    share: float = 0.5         # frames: the video is fake when at least this share of its face frames are

    def __post_init__(self):
        if self.kind not in ("frames", "mean"):
            raise ValueError(f"unknown verdict rule {self.kind!r}; expected frames or mean")


class NotMediaError(ValueError):
    """A path that is neither a video, an image nor a folder holding them."""


def media_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTS:
        return "video"
    if suffix in IMAGE_EXTS:
        return "image"
    raise NotMediaError(f"{path}: not a video ({' '.join(VIDEO_EXTS)}) or image ({' '.join(IMAGE_EXTS)})")


def expand_inputs(paths) -> list:
    """Files to score: each path itself, or the videos and images under a folder (sorted, recursive)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXTS + IMAGE_EXTS)
        elif p.is_file():
            media_kind(p)  # raises for a file that is not media
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def load_detector(run: str | None = None, weights: str | None = None):
    """(model, metadata) from a run folder (its best weights) or a weights file saved by dflite."""
    if bool(run) == bool(weights):
        raise ValueError("give exactly one of --run RUN_DIR or --weights FILE")
    path = Path(run) / "best.safetensors" if run else Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights there" + (" (is the run finished?)" if run else ""))
    model, meta = load_model(path)
    return model.float().eval(), meta


def classify(model, crops: list, batch_size: int = 64) -> np.ndarray:
    """Fake probability per BGR uint8 crop, each resized to the model's input size."""
    size = model.dflite_spec["input_size"]
    scores = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) if c.shape[0] != size else c
                     for c in crops[start:start + batch_size]]
            x = torch.from_numpy(np.stack(batch)[..., ::-1].copy()).permute(0, 3, 1, 2)
            scores.append(torch.sigmoid(model(normalise(x)).float().squeeze(1)))
    return torch.cat(scores).numpy() if scores else np.zeros(0, dtype=np.float32)


def verdict(frame_scores, rule: Rule = Rule()) -> dict:
    """{"verdict": FAKE | REAL | no face found, "score": ..., "rule": ...} from per-frame scores."""
    s = np.asarray(frame_scores, dtype=float)
    if s.size == 0:
        return {"verdict": "no face found", "score": None}
    score = float((s >= rule.threshold).mean()) if rule.kind == "frames" else float(s.mean())
    cut = rule.share if rule.kind == "frames" else rule.threshold
    return {"verdict": "FAKE" if score >= cut else "REAL", "score": round(score, 4)}


def annotate(frame: np.ndarray, faces: list, running: dict) -> np.ndarray:
    """A copy of a BGR frame with each face's box coloured by its label and score, the running verdict top-left."""
    out = frame.copy()
    thick = max(1, round(frame.shape[0] / 240))
    for box, score, fake in faces:
        x, y, w, h = (int(round(v)) for v in box)
        colour = FAKE if fake else REAL
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        cv2.putText(out, f"{'fake' if fake else 'real'} {score:.2f}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35 * thick, colour, thick, cv2.LINE_AA)
    text = f"{running['verdict']} {running['score']:.2f}" if running["score"] is not None else running["verdict"]
    cv2.putText(out, text, (6, 16 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, (255, 255, 255), thick + 1,
                cv2.LINE_AA)
    return out


def detect_media(path, model, cfg: ExtractConfig = ExtractConfig(), rule: Rule = Rule(), video_out=None,
                 fps: int = 8) -> dict:
    """Score one video or image; writes the annotated mp4 to `video_out` for a video when given. Returns its report."""
    path = Path(path)
    kind = media_kind(path)
    times = dict.fromkeys(STAGES, 0.0)
    t = time.perf_counter()
    if kind == "video":
        got, frames = read_sampled(path, lambda n: sample_frame_indices(n, cfg.sampling, cfg.frames, 1, path.name,
                                                                        cfg.seed))
        if not frames:
            raise VideoError(path, "no frames", "the container holds no decodable frame")
    else:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(path, "undecodable", "not an image OpenCV can read")
        got, frames = [0], [image]
    times["decode"] = time.perf_counter() - t
    hits = faces_in_frames(got, frames, cfg, times)
    t = time.perf_counter()
    scores = classify(model, [crop for *_, crop in hits])
    times["classify"] = time.perf_counter() - t
    faces = [{"frame": int(idx), "face": int(k), "box": [int(round(v)) for v in box], "score": round(float(s), 4)}
             for (idx, k, box, _), s in zip(hits, scores)]
    per_frame = {}
    for f in faces:
        per_frame[f["frame"]] = max(per_frame.get(f["frame"], 0.0), f["score"])
    result = verdict(list(per_frame.values()), rule)
    report = {"input": path.name, "kind": kind, **result, "rule": asdict(rule),
              "model": model.dflite_spec["name"], "input_size": model.dflite_spec["input_size"],
              "frames_sampled": len(frames), "frames_with_face": len(per_frame), "frames_used": sorted(per_frame),
              "faces": faces}
    if video_out is not None and kind == "video":
        t = time.perf_counter()
        shown, seen = [], []
        for idx, frame in zip(got, frames):
            if idx in per_frame:
                seen.append(per_frame[idx])
            mine = [(f["box"], f["score"], f["score"] >= rule.threshold) for f in faces if f["frame"] == idx]
            shown.append(annotate(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), mine,
                                  verdict(seen, rule)))
        h, w = shown[0].shape[:2]
        # yuv420p needs even sides; browsers play H.264 yuv420p mp4.
        shown = [np.ascontiguousarray(f[: h - h % 2, : w - w % 2]) for f in shown]
        write_mp4(video_out, np.stack(shown), fps=fps)
        times["annotate"] = time.perf_counter() - t
        report["video"] = Path(video_out).name
    report["seconds"] = {k: round(v, 4) for k, v in times.items()}
    return report


def detect_all(paths, model, out, cfg: ExtractConfig = ExtractConfig(), rule: Rule = Rule(), progress: bool = True,
               videos: bool = True) -> list:
    """Score every input (folders expanded); a JSON report per input in `out` (and an annotated mp4 per
    video); a file that fails is recorded with its reason in its report and in summary.json, the rest go on.
    An existing report is never overwritten: remove it (or choose another --out) to score again."""
    import json

    from tqdm import tqdm

    from ..folders import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for path in tqdm(expand_inputs(paths), desc="detect", unit="file", disable=not progress):
        target = out / f"{path.stem}.json"
        if target.exists():
            reports.append(json.loads(target.read_text()))
            continue
        try:
            report = detect_media(path, model, cfg, rule, video_out=out / f"{path.stem}.mp4" if videos else None)
        except (VideoError, OSError, RuntimeError) as e:
            reason = str(getattr(e, "reason", "")) or type(e).__name__
            report = {"input": path.name, "verdict": "error", "error": reason, "detail": str(e)[:400]}
        write_json(target, report)
        reports.append(report)
    write_json(out / "summary.json", {"inputs": len(reports), "rule": asdict(rule),
                                      "verdicts": {r["input"]: r["verdict"] for r in reports}})
    return reports
