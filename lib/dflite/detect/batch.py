"""`dflite detect` over many inputs: folders expanded, one JSON report per input, annotated mp4s, resume, and a
report made with other settings refused."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from ..config import ExtractConfig, non_defaults, override
from ..data.video import VideoError
from ..folders import refuse_other, write_json
from ..progress import bar
from .media import (
    FACE_CHOICE,
    IMAGE_EXTS,
    VIDEO_EXTS,
    Detector,
    Rule,
    detect_media,
    expand_inputs,
    is_attribution_head,
    media_kind,
)


def report_keys(files: list) -> list:
    """A unique report name per input: its path below the inputs' common folder, separators as `__`
    (c23/000.mp4 and c40/000.mp4 get c23__000.mp4 and c40__000.mp4). Named by the path given: a symlink keeps
    its own name, not its target's."""
    files = [Path(os.path.abspath(f)) for f in files]
    if not files:
        return []
    base = Path(os.path.commonpath([str(f.parent) for f in files]))
    return ["__".join(f.relative_to(base).parts) for f in files]


def run_settings(detector: Detector, cfg: ExtractConfig, rule: Rule, attribute: bool = False) -> dict:
    """What made a report: a report made with other settings is refused, never silently reused."""
    return {"model": detector.name, "weights": detector.digest, "rule": asdict(rule), "extract": non_defaults(cfg),
            **({"attribute": True} if attribute else {})}


def detect_all(paths, detector: Detector, out, frames: int | None = None, rule: Rule = Rule(), progress: bool = True,
               videos: bool = True, force: bool = False, faces: str = FACE_CHOICE, attribute: bool = False) -> list:
    """Score every input (folders expanded, `out` itself left out): a JSON report per input in `out` and an
    annotated mp4 per video.

    A file that fails is recorded with its reason in its report and in summary.json; the rest go on. The job
    resumes: a finished report made with the same settings is read back, one made with other settings is
    refused unless `force` (then it is made again), a failed one is tried again. `frames` applies to uniform
    sampling; a detector whose faces were sampled otherwise (the capstone's) refuses it. `faces` is the face rule
    (data/faces.py): `evidence` by default, as real footage's clutter fools the capstone's `biggest`. `attribute`
    (an attribution head, notebook 08) adds the likeliest manipulation method to each report."""
    if attribute and not is_attribution_head(detector.model):
        raise ValueError(f"--attribute needs an attribution head (a run trained with target 'method', notebook 08); "
                         f"{detector.source} is a {detector.model.dflite_spec.get('num_classes', 1)}-output detector")
    if frames is not None and detector.extract.sampling != "uniform":
        raise ValueError(f"--frames {frames}: {detector.source} samples frames as {detector.extract.sampling!r} "
                         "(as its training crops were), where a frame count does not apply")
    cfg = override(detector.extract, face_choice=faces, **({"frames": frames} if frames else {}))
    settings = run_settings(detector, cfg, rule, attribute)
    files = expand_inputs(paths, skip=out)
    if not files:
        raise ValueError(f"no videos ({' '.join(VIDEO_EXTS)}) or images ({' '.join(IMAGE_EXTS)}) in "
                         + ", ".join(map(str, paths)) + f" (files inside --out {out} are never inputs)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for path, key in bar(list(zip(files, report_keys(files))), desc="detect", unit="file", disable=not progress):
        target = out / f"{key}.json"
        if target.exists():
            old = json.loads(target.read_text())
            if old.get("verdict") != "error" and not (force and old.get("settings") != settings):
                refuse_other(old.get("settings") or {}, settings, f"{target} was",
                             "choose another --out, or pass --force to score it again", ValueError)
                reports.append(old)
                continue
        (out / f"{key}.annotated.mp4").unlink(missing_ok=True)  # a rescored input never keeps an old video
        try:
            report = detect_media(path, detector.model, cfg, rule,
                                  video_out=out / f"{key}.annotated.mp4" if videos else None, attribute=attribute)
        except (VideoError, OSError, RuntimeError) as e:
            reason = str(getattr(e, "reason", "")) or type(e).__name__
            report = {"input": path.name, "kind": media_kind(path), "verdict": "error", "error": reason,
                      "detail": str(e).replace(str(path.parent), "")[:400]}
        report = {"input": key, **{k: v for k, v in report.items() if k != "input"},
                  "detector": {"source": detector.source, "trained_on": detector.trained_on}, "settings": settings}
        write_json(target, report)
        reports.append(report)
    write_json(out / "summary.json", {"inputs": len(reports), "settings": settings,
                                      "verdicts": {r["input"]: r["verdict"] for r in reports}})
    return reports
