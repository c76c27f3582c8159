"""Detection on one file: sampled frames -> faces (extraction's own in-memory step) -> fake probability per
face -> a verdict per video or image, its report, and for videos an annotated H.264 mp4.

The verdict rule (`Rule`): per sampled frame with a face, the frame's score is its most-fake face's
probability. `frames` (default): the video is FAKE when at least `share` of those frames score at or
above `threshold`, and its score is that share. `mean`: the score is the mean frame score, FAKE at or
above `threshold`. A video needs `min_frames` frames with a face (or all it sampled, if fewer) for a verdict;
with fewer it gets "no face found" and the reason. An image is one frame: its score is its most-fake face's
probability under either rule (a share of one frame could only be 0 or 1).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ..config import ATTRIBUTION_CLASSES, ExtractConfig, from_dict
from ..data.faces import faces_in_frames
from ..data.loader import bgr_batch, normalise
from ..data.sources import VIDEO_EXTS
from ..data.video import VideoError, captured_stderr, decoder_said, read_sampled, sample_frame_indices, write_mp4
from ..nets.checkpoint import load_model
from ..nets.models import fake_probability, output_probabilities

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
STAGES = ("decode", "detect", "crop", "classify", "annotate")
REAL, FAKE = (60, 170, 60), (40, 40, 220)  # BGR box colours
# Detection's face rule: on real footage the biggest Haar box is often background clutter (benchmarks/face_choice.py)
FACE_CHOICE = "evidence"


@dataclass(frozen=True)
class Rule:
    kind: str = "frames"       # frames: share of face frames at or above threshold | mean: mean frame score
    threshold: float = 0.5     # a face (and, for `mean`, a video) is fake at or above this probability
    share: float = 0.5         # frames: the video is fake when at least this share of its face frames are
    min_frames: int = 4        # a video's verdict needs this many face frames (all it sampled, if fewer)

    def __post_init__(self):
        if self.kind not in ("frames", "mean"):
            raise ValueError(f"unknown verdict rule {self.kind!r}; expected frames or mean")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold {self.threshold}: a probability, expected 0 to 1")
        if not 0 < self.share <= 1:
            raise ValueError(f"share {self.share}: a share of frames, expected above 0 and at most 1")
        if self.min_frames < 1:
            raise ValueError(f"min_frames {self.min_frames}: expected at least 1")


class NotMediaError(ValueError):
    """A path that is neither a video, an image nor a folder holding them."""


def media_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTS:
        return "video"
    if suffix in IMAGE_EXTS:
        return "image"
    raise NotMediaError(f"{path}: not a video ({' '.join(VIDEO_EXTS)}) or image ({' '.join(IMAGE_EXTS)})")


def expand_inputs(paths, skip=None) -> list:
    """Files to score: each path itself, or the videos and images under a folder (sorted, recursive), leaving out
    what lies in the folder `skip` (detect's own output: a second run must not score its annotated videos)."""
    out = []
    skip = Path(skip).resolve() if skip is not None else None
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXTS + IMAGE_EXTS
                          and not (skip and q.resolve().is_relative_to(skip)))
        elif p.is_file():
            media_kind(p)  # raises for a file that is not media
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


@dataclass
class Detector:
    """A trained model with what a report must say about it: where it came from, a digest of its weights,
    what it was trained on, and the face settings of its training crops (detection crops faces the same way)."""

    model: torch.nn.Module
    source: str                # the run folder's name (…/seed_N) or the weights file's name; never an absolute path
    digest: str                # sha256 of the weights file, 12 hex digits: reports are keyed by it
    trained_on: dict           # {"dataset", "kind", "synthetic", "compression"} from the run's config, or {}
    extract: ExtractConfig     # the run's extraction settings (the profile's for a bare weights file)

    @property
    def name(self) -> str:
        return self.model.dflite_spec["name"]

    @property
    def synthetic(self) -> bool:
        """True unless the run says it was trained on real data: a bare weights file gets the warning too."""
        return self.trained_on.get("synthetic", True)


def load_detector(run: str | None = None, weights: str | None = None,
                  extract: ExtractConfig = ExtractConfig()) -> Detector:
    """A Detector from a finished run folder (its best weights and config.json) or a weights file saved by
    dflite (`extract` then gives the face settings)."""
    if bool(run) == bool(weights):
        raise ValueError("give exactly one of --run RUN_DIR or --weights FILE")
    path = Path(run) / "best.safetensors" if run else Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights there" + (" (is the run finished?)" if run else ""))
    model, _ = load_model(path)
    trained_on, source = {}, path.name
    if run:
        conf = Path(run) / "config.json"
        if not conf.is_file():
            raise FileNotFoundError(f"{conf}: a run folder holds config.json beside its weights")
        data = json.loads(conf.read_text()).get("data", {})
        known = {f for f in ExtractConfig.__dataclass_fields__}
        extract = from_dict(ExtractConfig, {k: v for k, v in data.get("extract", {}).items() if k in known})
        trained_on = {"dataset": data.get("dataset"), "kind": data.get("kind"), "synthetic": data.get("synthetic"),
                      "compression": extract.compression}
        source = "/".join(Path(run).resolve().parts[-2:])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Detector(model.float().eval(), source, digest, trained_on, extract)


def probabilities(model, crops: list, batch_size: int = 64) -> np.ndarray:
    """Per BGR uint8 crop (each resized to the model's input size): the fake probability (N,) of a detector, or the
    class probabilities (N, K) of an attribution head (config.ATTRIBUTION_CLASSES, real first)."""
    size, k = model.dflite_spec["input_size"], model.dflite_spec.get("num_classes", 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            out.append(output_probabilities(model(normalise(bgr_batch(crops[start:start + batch_size], size)))))
    if not out:
        return np.zeros((0,) if k == 1 else (0, k), dtype=np.float32)
    return torch.cat(out).numpy()


def classify(model, crops: list, batch_size: int = 64) -> np.ndarray:
    """Fake probability per BGR uint8 crop: an attribution head's is 1 - p(real)."""
    return fake_probability(probabilities(model, crops, batch_size))


def is_attribution_head(model) -> bool:
    return model.dflite_spec.get("num_classes", 1) == len(ATTRIBUTION_CLASSES)


def verdict_faces(faces: list) -> list:
    """Indices of the faces a verdict rests on: each frame's most-fake face (the frame's score), frames in order."""
    best: dict = {}
    for i, f in enumerate(faces):
        if f["frame"] not in best or f["score"] > faces[best[f["frame"]]]["score"]:
            best[f["frame"]] = i
    return [best[frame] for frame in sorted(best)]


def attribution(probs: np.ndarray) -> dict:
    """Which method most likely made the fake, from the class probabilities of the faces a verdict used: the mean
    over faces of each class's probability; `method` is the likeliest of the methods (whatever the verdict says:
    what the head would name if the input is fake), with its mean probability and its share of the fake
    probability (p(method) / (1 - p(real)))."""
    if len(probs) == 0:
        return {"method": None, "probability": None, "given_fake": None, "classes": {}}
    mean = probs.mean(0)
    best = 1 + int(mean[1:].argmax())
    fake = 1 - mean[0]
    return {"method": ATTRIBUTION_CLASSES[best], "probability": round(float(mean[best]), 4),
            "given_fake": round(float(mean[best] / fake), 4) if fake > 0 else None,
            "classes": {c: round(float(v), 4) for c, v in zip(ATTRIBUTION_CLASSES, mean)}}


def verdict(frame_scores, rule: Rule = Rule()) -> dict:
    """{"verdict": FAKE | REAL | no face found, "score": ...} from per-frame scores (every frame given counts;
    `media_verdict` applies the minimum number of face frames)."""
    s = np.asarray(frame_scores, dtype=float)
    if s.size == 0:
        return {"verdict": "no face found", "score": None}
    score = float((s >= rule.threshold).mean()) if rule.kind == "frames" else float(s.mean())
    cut = rule.share if rule.kind == "frames" else rule.threshold
    return {"verdict": "FAKE" if score >= cut else "REAL", "score": round(score, 4)}


def media_verdict(kind: str, frame_scores: list, sampled: int, rule: Rule = Rule()) -> dict:
    """A report's verdict: an image scores its face probability; a video with fewer than `rule.min_frames` face
    frames (or all it sampled, if fewer) gets "no face found" with the reason, not a verdict from a few frames."""
    if kind == "image":
        return verdict(frame_scores, replace(rule, kind="mean"))
    need = min(rule.min_frames, sampled)
    if 0 < len(frame_scores) < need:
        return {"verdict": "no face found", "score": None,
                "reason": f"{len(frame_scores)} of {sampled} sampled frames hold a face; a verdict needs {need}"}
    return verdict(frame_scores, rule)


def running(kind: str, seen: list, sampled: int, rule: Rule) -> dict:
    """The verdict drawn on a frame: the report's rule over the face frames so far; before a video has the face
    frames a verdict needs, how many it has (never a verdict the report would not give)."""
    need = 1 if kind == "image" else min(rule.min_frames, sampled)
    if seen and len(seen) < need:
        return {"verdict": f"{len(seen)} of {need} face frames", "score": None}
    return media_verdict(kind, seen, sampled, rule)


def annotate(frame: np.ndarray, faces: list, running: dict) -> np.ndarray:
    """A copy of a BGR frame with each face's box and score in its label's colour, the running verdict bottom-left."""
    out = frame.copy()
    thick = max(1, round(frame.shape[0] / 240))
    # A face's label is white on a box of its colour (legible over any background), at least 0.4 high: at 0.35 on a
    # 160 px frame it was a few unreadable pixels.
    scale = max(0.4, 0.35 * thick)
    for box, score, fake in faces:
        x, y, w, h = (int(round(v)) for v in box)
        colour = FAKE if fake else REAL
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        label = f"{'fake' if fake else 'real'} {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y - th - base - 2)  # above the box, or inside its top edge at the frame's top
        cv2.rectangle(out, (x, top), (x + tw + 2, top + th + base + 2), colour, cv2.FILLED)
        cv2.putText(out, label, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    # The running verdict bottom-left, white on black: the top-left is where faces' labels and the demo's own
    # component labels sit.
    text = f"{running['verdict']} {running['score']:.2f}" if running["score"] is not None else running["verdict"]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, thick)
    bottom = out.shape[0] - 4 * thick
    cv2.rectangle(out, (0, bottom - th - base - 4 * thick), (tw + 10 * thick, out.shape[0]), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, text, (5 * thick, bottom - base), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * thick, (255, 255, 255),
                thick, cv2.LINE_AA)
    return out


def media_faces(path: Path, cfg: ExtractConfig, times: dict, rejected: list | None = None,
                notes: dict | None = None, degraded: tuple | None = None) -> tuple:
    """(kind, frame indices, frames, faces) of one video (its sampled frames) or image; faces as
    `faces_in_frames` gives them (frames whose boxes the face rule rejected go to `rejected`). Adds seconds to
    times["decode"], ["detect"] and ["crop"]; what the decoder printed goes to notes["decoder"].
    `degraded` = (family, strength, seed) degrades the whole sampled frames before the face step (data.degrade;
    h264 re-encodes a video's sampled frames as one clip): the boxes then come from the degraded frames too."""
    path = Path(path)
    kind = media_kind(path)
    t = time.perf_counter()
    # FFmpeg's and libjpeg's warnings go into the report, not onto the terminal; on a failure, into its error.
    with captured_stderr() as err:
        try:
            if kind == "video":
                got, frames = read_sampled(path, lambda n: sample_frame_indices(n, cfg.sampling, cfg.frames, 1,
                                                                                path.name, cfg.seed))
            else:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                got, frames = ([0], [image]) if image is not None else ([], [])
        except VideoError as e:
            failed = e
        else:
            failed = None
    said = decoder_said(err["text"])
    if failed is not None:
        raise VideoError(path, failed.reason, failed.detail + (f"; decoder said: {said}" if said else ""))
    if said and notes is not None:
        notes["decoder"] = said
    if not frames:
        reason = "no frames" if kind == "video" else "undecodable"
        what = "the container holds no decodable frame" if kind == "video" else "not an image OpenCV can read"
        raise VideoError(path, reason, what + (f"; decoder said: {said}" if said else ""))
    if degraded is not None:
        from ..data.degrade import degrade

        family, strength, seed = degraded
        frames = list(degrade(np.stack(frames), family, strength, seed))
    times["decode"] += time.perf_counter() - t
    return kind, got, frames, faces_in_frames(got, frames, cfg, times, rejected)


def detect_media(path, model, cfg: ExtractConfig = ExtractConfig(), rule: Rule = Rule(), video_out=None,
                 fps: int = 8, keep: dict | None = None, attribute: bool = False) -> dict:
    """Score one video or image; writes the annotated mp4 to `video_out` for a video when given. Returns its
    report; `keep` (a dict), when given, receives the face crops and the annotated frames (the demo shows them).
    `attribute` (an attribution head only) adds `attribution`: the likeliest method over the faces the verdict used."""
    if attribute and not is_attribution_head(model):
        raise ValueError(f"attribution needs an attribution head ({len(ATTRIBUTION_CLASSES)} outputs: a run trained "
                         f"with target 'method', notebook 08); {model.dflite_spec['name']} here has "
                         f"{model.dflite_spec.get('num_classes', 1)} output")
    path = Path(path)
    times = dict.fromkeys(STAGES, 0.0)
    rejected, notes = [], {}
    kind, got, frames, hits = media_faces(path, cfg, times, rejected, notes)
    t = time.perf_counter()
    probs = probabilities(model, [crop for *_, crop in hits])
    scores = fake_probability(probs)
    times["classify"] = time.perf_counter() - t
    faces = [{"frame": int(idx), "face": int(k), "box": [int(round(v)) for v in box], "score": round(float(s), 4)}
             for (idx, k, box, _), s in zip(hits, scores)]
    per_frame = {}
    for f in faces:
        per_frame[f["frame"]] = max(per_frame.get(f["frame"], 0.0), f["score"])
    result = media_verdict(kind, list(per_frame.values()), len(frames), rule)
    if not per_frame and rejected:  # boxes there were, but the face rule took none of them
        result["reason"] = (f"{len(rejected)} of {len(frames)} sampled frames had face boxes, none of them "
                            f"plausible ({cfg.face_choice} rule: {rejected[0][1]})")
    said = notes.get("decoder", "")
    report = {"input": path.name, "kind": kind, **result, "rule": asdict(rule),
              "mean_face_score": round(float(np.mean([f["score"] for f in faces])), 4) if faces else None,
              "model": model.dflite_spec["name"], "input_size": model.dflite_spec["input_size"],
              "frames_sampled": len(frames), "frames_with_face": len(per_frame), "frames_used": sorted(per_frame),
              "frame_scores": [[i, per_frame[i]] for i in sorted(per_frame)],
              "face_choice": cfg.face_choice, "frames_rejected": [[int(i), why] for i, why in rejected],
              "faces": faces, **({"detail": f"decoder said: {said}"} if said else {})}
    if attribute:  # none without a verdict
        report["attribution"] = attribution(probs[verdict_faces(faces) if result["score"] is not None else []])
    if keep is not None:
        keep["crops"] = [crop for *_, crop in hits]
    if (video_out is not None and kind == "video") or keep is not None:
        t = time.perf_counter()
        shown, seen = [], []
        for idx, frame in zip(got, frames):
            if idx in per_frame:
                seen.append(per_frame[idx])
            mine = [(f["box"], f["score"], f["score"] >= rule.threshold) for f in faces if f["frame"] == idx]
            shown.append(annotate(frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), mine,
                                  running(kind, seen, len(frames), rule)))
        h, w = shown[0].shape[:2]
        # yuv420p needs even sides; browsers play H.264 yuv420p mp4.
        shown = [np.ascontiguousarray(f[: h - h % 2, : w - w % 2]) for f in shown]
        if keep is not None:
            keep["annotated"] = dict(zip((int(i) for i in got), shown))
        if video_out is not None and kind == "video":
            write_mp4(video_out, np.stack(shown), fps=fps, faststart=True)
            report["video"] = Path(video_out).name
        times["annotate"] = time.perf_counter() - t
    report["seconds"] = {k: round(v, 4) for k, v in times.items()}
    return report
