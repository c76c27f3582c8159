"""Talking-head videos and their five fakes, written in the FaceForensics++ layout.

One job renders one target identity: its real video and, for each method, the fake made with its
pair partner as source (FF++ names it ``<target>_<source>.mp4``). Fakes reuse the target's frames, so
background and motion match the real video and only the manipulation differs, as in FF++.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import SynthConfig
from ...folders import write_json, write_png
from ..sources import ffpp as layout
from ..video import CRF, write_mp4
from .identity import Identity, Light, random_identity, render_face
from .manipulate import manipulate
from .scene import (
    Track,
    box_in_frame,
    camera,
    over,
    patch_to_frame,
    random_background,
    random_light,
    random_track,
    to_uint8,
    warp,
)

FFPP_STREAM = 1  # rng stream ids keep the FF++ and OpenForensics populations independent


@dataclass
class VideoPlan:
    ident: Identity
    background: np.ndarray
    track: Track
    light: Light


def video_id(i: int) -> str:
    return f"{i:03d}"


def plan_video(seed: int, i: int, cfg: SynthConfig) -> VideoPlan:
    """Everything random about identity i's video, from its own seeded stream."""
    rng = np.random.default_rng([seed, FFPP_STREAM, i])
    ident = random_identity(rng)
    size = cfg.frame_size
    return VideoPlan(
        ident=ident,
        background=random_background(rng, size, size),
        track=random_track(rng, cfg.frames, (size, size), cfg.face_frac, cfg.fps),
        light=random_light(rng),
    )


def pair_partner(i: int) -> int:
    """Identities are paired (0, 1), (2, 3), ...: each is the other's source."""
    return i ^ 1


def strength(cfg: SynthConfig) -> float:
    return float(np.clip(1.0 - cfg.difficulty, 0.05, 1.0))


def outputs_for(root: Path, t: int, cfg: SynthConfig) -> list:
    """Every file the job for target t writes (the job is done when all exist)."""
    vid, stem = video_id(t), f"{video_id(t)}_{video_id(pair_partner(t))}"
    files = [root / "ground_truth" / "original" / f"{vid}.json"]
    files += [layout.real_dir(root, c) / f"{vid}.mp4" for c in cfg.compressions]
    for m in cfg.methods:
        files += [layout.fake_dir(root, m, c) / f"{stem}.mp4" for c in cfg.compressions]
        files += [layout.mask_dir(root, m) / f"{stem}.mp4",
                  root / "ground_truth" / m / f"{stem}.json", root / "ground_truth" / m / f"{stem}_mask.png"]
    return files


@dataclass
class TargetFrames:
    """One target's rendered frames before encoding: uint8 BGR (N, H, W, 3) and uint8 masks (N, H, W)."""

    real: np.ndarray
    fakes: dict   # method -> frames
    masks: dict   # method -> masks (0 = untouched, 255 = fully replaced)
    boxes: list   # per-frame ground-truth face box [x, y, w, h]


def render_frames(seed: int, t: int, cfg: SynthConfig) -> TargetFrames:
    """Render target t's real frames and its fakes, exactly as they go to the encoder.

    A fake frame is composited over the real one through its uint8 mask, so outside the mask it is
    the real frame to the bit, and every changed pixel has a non-zero mask value.
    """
    s = pair_partner(t)
    tp, sp = plan_video(seed, t, cfg), plan_video(seed, s, cfg)
    P, hw = cfg.patch_size, (cfg.frame_size, cfg.frame_size)
    noise_rng = np.random.default_rng([seed, FFPP_STREAM, t, 1])
    affines, alphas, real, boxes = [], [], [], []
    for f in range(cfg.frames):
        tr = tp.track
        m = patch_to_frame(P, tr.cx[f], tr.cy[f], tr.scale[f] * cfg.frame_size, tr.angle[f])
        rgb, a = render_face(tp.ident, tr.expressions[f], tp.light, P)
        wa = warp(a, m, hw)
        real.append(to_uint8(camera(over(tp.background, warp(rgb, m, hw), wa), noise_rng, cfg.camera_noise)))
        affines.append(m)
        alphas.append(wa)
        boxes.append(box_in_frame(tp.ident, P, m, hw))
    # Frames outer, methods inner: each frame's target and source renders are cached once.
    mrngs = {m: np.random.default_rng([seed, FFPP_STREAM, t, 2, k]) for k, m in enumerate(cfg.methods)}
    fakes = {m: [] for m in cfg.methods}
    masks = {m: [] for m in cfg.methods}
    for f in range(cfg.frames):
        for method in cfg.methods:
            patch, mask = manipulate(method, tp.ident, sp.ident, tp.track.expressions[f],
                                     sp.track.expressions[f], tp.light, P, mrngs[method], strength(cfg))
            mask_u8 = to_uint8(warp(mask, affines[f], hw) * alphas[f])
            clean = over(tp.background, warp(patch, affines[f], hw), alphas[f])
            if method == "FaceShifter":  # high fidelity: it even re-synthesises sensor noise
                clean = clean + mrngs[method].normal(0, cfg.camera_noise, clean.shape).astype(np.float32)
            w = mask_u8.astype(np.float32) / 255  # composite through the stored mask: exact outside it
            fake = over(real[f].astype(np.float32) / 255, clean, w)
            fakes[method].append(np.where(mask_u8[..., None] > 0, to_uint8(fake), real[f])[..., ::-1])
            masks[method].append(mask_u8)
    return TargetFrames(real=np.stack(real)[..., ::-1], boxes=boxes,  # RGB -> BGR for ffmpeg
                        fakes={m: np.stack(v) for m, v in fakes.items()},
                        masks={m: np.stack(v) for m, v in masks.items()})


def render_target(root: Path, seed: int, t: int, cfg: SynthConfig) -> None:
    """Render and write target t's real video and its fakes (skips when all outputs exist)."""
    if all(p.exists() for p in outputs_for(root, t, cfg)):
        return
    frames = render_frames(seed, t, cfg)
    vid, stem = video_id(t), f"{video_id(t)}_{video_id(pair_partner(t))}"
    for c in cfg.compressions:
        write_mp4(layout.real_dir(root, c) / f"{vid}.mp4", frames.real, cfg.fps, CRF[c])
    common = {"frames": cfg.frames, "fps": cfg.fps, "width": cfg.frame_size, "height": cfg.frame_size}
    write_json(root / "ground_truth" / "original" / f"{vid}.json",
               {"video": vid, "method": "original", "identity": vid, **common, "boxes": frames.boxes})
    for method in cfg.methods:
        for c in cfg.compressions:
            write_mp4(layout.fake_dir(root, method, c) / f"{stem}.mp4", frames.fakes[method], cfg.fps, CRF[c])
        mk = frames.masks[method]
        write_mp4(layout.mask_dir(root, method) / f"{stem}.mp4", np.where(mk > 127, 255, 0).astype(np.uint8),
                  cfg.fps, CRF["raw"])
        gt = root / "ground_truth" / method
        write_png(gt / f"{stem}_mask.png", mk.reshape(-1, cfg.frame_size))  # frames stacked vertically
        write_json(gt / f"{stem}.json", {
            "video": stem, "method": method, "target": vid, "source": video_id(pair_partner(t)), **common,
            "boxes": frames.boxes, "mask": f"{stem}_mask.png",
            "manipulated_fraction": [round(float((m > 127).mean()), 4) for m in mk],
        })


def split_pairs(seed: int, cfg: SynthConfig) -> dict:
    """FF++ split files: lists of [a, b] id pairs; both ids and both fakes share the pair's split."""
    pairs = [[video_id(i), video_id(i + 1)] for i in range(0, cfg.identities, 2)]
    order = np.random.default_rng([seed, FFPP_STREAM, 99]).permutation(len(pairs))
    pairs = [pairs[k] for k in order]
    n_val = max(1, round(len(pairs) * cfg.split[1]))
    n_test = max(1, round(len(pairs) * cfg.split[2]))
    n_train = len(pairs) - n_val - n_test
    return {"train": pairs[:n_train], "val": pairs[n_train:n_train + n_val], "test": pairs[n_train + n_val:]}


def write_splits(root: Path, seed: int, cfg: SynthConfig) -> None:
    for name, pairs in split_pairs(seed, cfg).items():
        write_json(root / "splits" / f"{name}.json", pairs)
