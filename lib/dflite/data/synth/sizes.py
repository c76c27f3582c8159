"""Faces of known sizes in frames of real resolutions: the face detector's recall per face size.

The synthetic videos are 160-384 px, where every face is large; real videos are 480p-1080p with
faces of 60-300 px. This renders one synthetic face with a ground-truth box of a chosen side into
a frame of a chosen resolution, so recall can be measured per (resolution, face size).
"""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from ..faces import HaarConfig, detect_faces, iou
from .identity import Expression, random_identity, render_face
from .scene import (
    box_in_frame,
    busy_background,
    camera,
    over,
    patch_to_frame,
    random_background,
    random_light,
    to_uint8,
    warp,
)

RESOLUTIONS = {"480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}  # (height, width)
FACE_SIDES = (40, 50, 60, 80, 100, 130, 160, 200, 250, 300)
PATCH = 128  # canonical render side; the warp scales it to the face size asked for


def face_scene(rng: np.random.Generator, frame_hw: tuple, side: float, busy: bool = False) -> tuple:
    """(BGR uint8 frame, ground-truth [x, y, w, h]) with one face whose box side is `side` px; `busy`: before
    clutter that fires the cascade (`busy_background`) instead of a blurred room. side 0: no face (box None)."""
    h, w = frame_hw
    if busy:
        frame = to_uint8(busy_background(rng, h, w))
    else:  # the room at a quarter of the size, then enlarged: its blur is wide anyway, and 1080p stays cheap
        frame = cv2.resize(to_uint8(random_background(rng, max(h // 4, 8), max(w // 4, 8))), (w, h),
                           interpolation=cv2.INTER_LINEAR)
    if not side:
        return frame, None
    ident = random_identity(rng)
    expr = Expression(eye_open=1.0, mouth_open=float(rng.uniform(0, 0.4)), smile=float(rng.uniform(-0.3, 0.8)))
    rgb, alpha = render_face(ident, expr, random_light(rng), PATCH)
    # The patch side that makes the face box `side` frame pixels (face_box is 2.52 face_w of the patch).
    patch_px = side / (2 * 1.26 * ident.face_w)
    margin = 0.5 * patch_px
    cx = rng.uniform(min(margin, w / 2), max(w - margin, w / 2))
    cy = rng.uniform(min(margin, h / 2), max(h - margin, h / 2))
    angle = float(rng.uniform(-6, 6))
    # Composite and add sensor noise only in the square the patch covers (rotation included).
    x0, y0 = max(0, int(cx - 0.75 * patch_px)), max(0, int(cy - 0.75 * patch_px))
    x1, y1 = min(w, int(cx + 0.75 * patch_px) + 1), min(h, int(cy + 0.75 * patch_px) + 1)
    m = patch_to_frame(PATCH, cx - x0, cy - y0, patch_px, angle)
    roi = frame[y0:y1, x0:x1, ::-1].astype(np.float32) / 255
    hw = roi.shape[:2]
    roi = camera(over(roi, warp(rgb, m, hw), warp(alpha, m, hw)), rng, 0.01)
    frame[y0:y1, x0:x1] = to_uint8(roi)[..., ::-1]
    box = box_in_frame(ident, PATCH, patch_to_frame(PATCH, cx, cy, patch_px, angle), (h, w))
    return frame, box


def recall_by_size(cfg: HaarConfig, resolutions=tuple(RESOLUTIONS), sides=FACE_SIDES, faces: int = 12,
                   seed: int = 0, min_iou: float = 0.4) -> pd.DataFrame:
    """One row per (resolution, face side): faces rendered, found (a detection with IoU >= min_iou), recall.

    The same seed gives the same faces for every cfg, so settings can be compared face for face.
    """
    rows = []
    for r, res in enumerate(resolutions):
        for side in sides:
            rng = np.random.default_rng([seed, r, int(side)])
            found = 0
            for _ in range(faces):
                frame, box = face_scene(rng, RESOLUTIONS[res], side)
                found += any(iou(d, box) >= min_iou for d in detect_faces(frame, cfg))
            rows.append({"resolution": res, "face_px": int(side), "faces": faces, "found": found,
                         "recall": found / faces})
    return pd.DataFrame(rows)


def choice_by_size(cfg, resolutions=tuple(RESOLUTIONS), sides=FACE_SIDES, faces: int = 12, empty: int = 12,
                   seed: int = 0, min_iou: float = 0.4, rules=("biggest", "evidence"),
                   progress: bool = False) -> pd.DataFrame:
    """Which box each face rule chooses before clutter that fires the cascade: one row per (rule, resolution,
    face side) with the frames rendered and how many gave the true face (IoU >= min_iou), another box, or
    none; side 0 rows are frames without a face (any crop there is wrong). `cfg` is an ExtractConfig (its
    detector settings); every rule sees the same frames (same seed)."""
    from ...config import override
    from ...progress import bar
    from ..faces import choose_faces, haar_config

    rows = []
    cells = [(r, res, side) for r, res in enumerate(resolutions) for side in (0, *sides)]
    for r, res, side in bar(cells, desc="face choice", unit="cell", disable=not progress):
        rng = np.random.default_rng([seed, r, int(side), 1])
        scenes = [face_scene(rng, RESOLUTIONS[res], side, busy=True) for _ in range(faces if side else empty)]
        for rule in rules:
            rc = override(cfg, face_choice=rule, track=False)
            got = [choose_faces(frame, None, rc, haar_config(rc))[0] for frame, _ in scenes]
            right = sum(box is not None and len(b) > 0 and iou(b[0], box) >= min_iou
                        for (_, box), b in zip(scenes, got))
            chosen = sum(len(b) > 0 for b in got)
            rows.append({"rule": rule, "resolution": res, "face_px": int(side), "frames": len(scenes),
                         "true_face": right, "other_box": chosen - right, "no_box": len(scenes) - chosen})
    return pd.DataFrame(rows)
