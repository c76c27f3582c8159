"""Detection for users: `dflite detect` (score videos, images and folders with a trained detector, write reports
and annotated videos) and the web demo (`dflite demo`). Everything here goes through the same face step as
extraction (`data.faces.faces_in_frames`)."""
from .batch import detect_all, report_keys, run_settings
from .media import (
    FACE_CHOICE,
    IMAGE_EXTS,
    STAGES,
    VIDEO_EXTS,
    Detector,
    NotMediaError,
    Rule,
    VideoError,
    annotate,
    attribution,
    classify,
    detect_media,
    expand_inputs,
    is_attribution_head,
    load_detector,
    media_faces,
    media_kind,
    media_verdict,
    probabilities,
    running,
    verdict,
    verdict_faces,
)

__all__ = ["FACE_CHOICE", "IMAGE_EXTS", "STAGES", "VIDEO_EXTS", "Detector", "NotMediaError", "Rule", "VideoError",
           "annotate", "attribution", "classify", "detect_all", "detect_media", "expand_inputs", "is_attribution_head",
           "load_detector", "media_faces", "media_kind", "media_verdict", "probabilities", "report_keys",
           "run_settings", "running", "verdict", "verdict_faces"]
