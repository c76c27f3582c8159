"""Multi-face scene images in the OpenForensics layout (COCO ``<Split>_poly.json``, per-face labels).

Its domain differs on purpose from the FF++-style videos: cluttered scenes, 1-4 faces of very
different sizes, per-face real/fake labels, JPEG instead of H.264, and another population of people.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from ...config import OF_SPLITS, SynthConfig
from ...folders import write_bytes, write_json, write_png
from .ffpp import strength
from .identity import Expression, face_regions, random_identity, render_face
from .manipulate import manipulate
from .scene import box_in_frame, camera, over, patch_to_frame, random_background, random_light, warp

OF_STREAM = 2
CATEGORIES = [{"id": 0, "name": "Real"}, {"id": 1, "name": "Fake"}]


def image_name(seed: int, split: str, i: int) -> str:
    """Hex names like the real dataset's (e.g. 9c541c578f), stable for a seed."""
    return hashlib.sha1(f"{seed}/{split}/{i}".encode()).hexdigest()[:10]


def outputs_for(root: Path, seed: int, split: str, i: int) -> list:
    name = image_name(seed, split, i)
    gt = root / "ground_truth" / split
    return [root / "Images" / split / f"{name}.jpg", gt / f"{name}.json", gt / f"{name}_mask.png"]


def _place_faces(rng, w, h, n, patch_size):
    """Up to n non-overlapping (cx, cy, side) placements with varied sizes."""
    placed = []
    for _ in range(n * 15):
        if len(placed) == n:
            break
        side = rng.uniform(0.3, 0.85) * min(w, h)  # patch side; the face is ~60% of it
        cx, cy = rng.uniform(side * 0.4, w - side * 0.4), rng.uniform(side * 0.4, h - side * 0.4)
        if all(np.hypot(cx - x, cy - y) > 0.55 * (side + s) for x, y, s in placed):
            placed.append((cx, cy, side))
    return placed


def _polygon(mask: np.ndarray) -> list:
    """Outline of a binary face mask as a flat COCO polygon [x1, y1, x2, y2, ...]."""
    contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    c = max(contours, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2)
    return [float(v) for xy in c for v in xy]


def render_image(root: Path, seed: int, split: str, i: int, cfg: SynthConfig) -> None:
    """Render and write one scene image with its ground truth (skips when already written)."""
    if all(p.exists() for p in outputs_for(root, seed, split, i)):
        return
    rng = np.random.default_rng([seed, OF_STREAM, OF_SPLITS.index(split), i])
    w, h = cfg.of_size
    img = random_background(rng, h, w)
    light = random_light(rng)
    P = cfg.patch_size
    n = int(rng.integers(cfg.of_faces[0], cfg.of_faces[1] + 1))
    faces, changed = [], np.zeros((h, w), np.float32)
    for cx, cy, side in _place_faces(rng, w, h, n, P):
        ident, source = random_identity(rng), random_identity(rng)
        expr = Expression(eye_open=1.0, mouth_open=float(rng.uniform(0, 0.6)), smile=float(rng.uniform(-0.5, 1)))
        m = patch_to_frame(P, cx, cy, side, float(rng.uniform(-8, 8)))
        rgb, alpha = render_face(ident, expr, light, P)
        wa = warp(alpha, m, (h, w))
        img = over(img, warp(rgb, m, (h, w)), wa)
        fake = bool(rng.random() < 0.5)
        method = str(rng.choice(cfg.methods)) if fake else None
        if fake:
            patch, mask = manipulate(method, ident, source, expr, expr, light, P, rng, strength(cfg))
            wm = warp(mask, m, (h, w)) * wa
            img = over(img, warp(patch, m, (h, w)), wm)
            changed = np.maximum(changed, wm)
        skin = warp(np.ascontiguousarray(face_regions(ident, P)["skin"]), m, (h, w))
        poly = _polygon(skin)
        faces.append({"bbox": box_in_frame(ident, P, m, (h, w)), "category_id": int(fake), "method": method,
                      "segmentation": [poly], "area": round(float((skin > 0.5).sum()), 1)})
    img = camera(img, rng, cfg.camera_noise * 1.5)
    quality = int(rng.integers(70, 96))  # web JPEGs, not H.264
    name = image_name(seed, split, i)
    ok, buf = cv2.imencode(".jpg", np.round(img * 255).astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    write_bytes(root / "Images" / split / f"{name}.jpg", buf.tobytes())
    gt = root / "ground_truth" / split
    write_png(gt / f"{name}_mask.png", np.round(changed * 255).astype(np.uint8))
    write_json(gt / f"{name}.json", {"file_name": f"Images/{split}/{name}.jpg", "width": w, "height": h,
                                      "jpeg_quality": quality, "mask": f"{name}_mask.png", "faces": faces})


def write_annotations(root: Path, seed: int, split: str, count: int) -> None:
    """Gather the per-image sidecars into the split's COCO file, in image order."""
    images, annotations = [], []
    for i in range(count):
        side = json.loads(outputs_for(root, seed, split, i)[1].read_text())
        images.append({"id": i, "file_name": side["file_name"], "width": side["width"], "height": side["height"]})
        for face in side["faces"]:
            annotations.append({"id": len(annotations), "image_id": i, "category_id": face["category_id"],
                                "bbox": face["bbox"], "segmentation": face["segmentation"],
                                "area": face["area"], "iscrowd": 0})
    write_json(root / f"{split}_poly.json", {"images": images, "annotations": annotations, "categories": CATEGORIES})
