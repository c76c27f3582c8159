"""The synthetic dataset: layouts, determinism, masks, detectability, and folder safety."""
from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from dflite.config import METHODS, OF_SPLITS, override
from dflite.data.faces import HaarConfig
from dflite.data.synth import MARKER, OutputFolderError, generate
from dflite.data.synth.check import haar_recall
from dflite.data.synth.ffpp import split_pairs
from dflite.data.video import read_frames

from .conftest import TINY


def _hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER}


def test_ffpp_layout_is_exact(tiny_set):
    root = tiny_set.ffpp_root
    for vid in ("000", "001", "002", "003"):
        assert (root / "original_sequences/youtube/c23/videos" / f"{vid}.mp4").is_file()
    for method in METHODS:
        for stem in ("000_001", "001_000", "002_003", "003_002"):
            assert (root / "manipulated_sequences" / method / "c23/videos" / f"{stem}.mp4").is_file()
            assert (root / "manipulated_sequences" / method / "masks/videos" / f"{stem}.mp4").is_file()
    frames = read_frames(root / "original_sequences/youtube/c23/videos/000.mp4")
    assert frames.shape == (TINY.frames, TINY.frame_size, TINY.frame_size, 3)


def test_splits_are_ffpp_pairs_with_no_identity_in_two_splits(tiny_set):
    seen = {}
    for split in ("train", "val", "test"):
        pairs = json.loads((tiny_set.ffpp_root / "splits" / f"{split}.json").read_text())
        for pair in pairs:
            assert isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
            for vid in pair:
                assert vid not in seen, f"{vid} in {seen.get(vid)} and {split}"
                seen[vid] = split
    assert sorted(seen) == ["000", "001", "002", "003"]


def test_split_fractions_for_the_quick_profile():
    """Quick's 96 identities (48 pairs) split 50/25/25: 24 test identities; standard keeps FF++'s 70/15/15."""
    from dflite.config import resolve

    sizes = {k: len(v) for k, v in split_pairs(0, resolve("quick").synth).items()}
    assert sizes == {"train": 24, "val": 12, "test": 12}
    sizes = {k: len(v) for k, v in split_pairs(0, resolve("standard").synth).items()}
    assert sizes == {"train": 84, "val": 18, "test": 18}


def test_openforensics_layout_is_coco(tiny_set):
    root = tiny_set.openforensics_root
    for split, n in zip(OF_SPLITS, TINY.of_images):
        doc = json.loads((root / f"{split}_poly.json").read_text())
        assert set(doc) == {"images", "annotations", "categories"}
        assert doc["categories"] == [{"id": 0, "name": "Real"}, {"id": 1, "name": "Fake"}]
        assert len(doc["images"]) == n
        sizes = {}
        for img in doc["images"]:
            assert img["file_name"].startswith(f"Images/{split}/") and img["file_name"].endswith(".jpg")
            assert (root / img["file_name"]).is_file()
            sizes[img["id"]] = (img["width"], img["height"])
        for ann in doc["annotations"]:
            assert set(ann) >= {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd"}
            assert ann["category_id"] in (0, 1)
            x, y, w, h = ann["bbox"]
            iw, ih = sizes[ann["image_id"]]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= iw + 0.5 and y + h <= ih + 0.5
            poly = ann["segmentation"][0]
            assert len(poly) >= 8 and len(poly) % 2 == 0


def test_masks_nonempty_exactly_where_manipulated(tiny_set):
    gt = tiny_set.ffpp_root / "ground_truth"
    assert not list((gt / "original").glob("*_mask.png")), "real videos must have no mask"
    for method in METHODS:
        for side in sorted((gt / method).glob("*.json")):
            info = json.loads(side.read_text())
            strip = cv2.imread(str(gt / method / info["mask"]), cv2.IMREAD_GRAYSCALE)
            masks = strip.reshape(info["frames"], info["height"], info["width"])
            assert all((m > 127).any() for m in masks), f"{method} {side.stem}: a frame with an empty mask"
            # The manipulated pixels lie inside the face box (plus a small margin).
            x, y, w, h = info["boxes"][0]
            ys, xs = np.nonzero(masks[0] > 127)
            assert xs.min() >= x - 4 and xs.max() <= x + w + 4 and ys.min() >= y - 4 and ys.max() <= y + h + 4


def test_fakes_differ_from_the_real_video_only_inside_the_mask(tiny_set):
    root, gt = tiny_set.ffpp_root, tiny_set.ffpp_root / "ground_truth"
    # Compare the lossless renders via the masks: outside the (dilated) mask the fake equals the real
    # frame up to H.264 noise; inside it differs clearly.
    real = read_frames(root / "original_sequences/youtube/c23/videos/000.mp4", [2])[0].astype(float)
    for method in METHODS:
        fake = read_frames(root / "manipulated_sequences" / method / "c23/videos/000_001.mp4", [2])[0].astype(float)
        strip = cv2.imread(str(gt / method / "000_001_mask.png"), cv2.IMREAD_GRAYSCALE)
        mask = strip.reshape(TINY.frames, TINY.frame_size, TINY.frame_size)[2] > 0
        near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        diff = np.abs(fake - real).mean(2)
        assert diff[~near].mean() < 1.5, method
        assert diff[mask].mean() > diff[~near].mean() + 0.3, method


def test_openforensics_masks_match_labels(tiny_set):
    root = tiny_set.openforensics_root
    for split in OF_SPLITS:
        doc = json.loads((root / f"{split}_poly.json").read_text())
        for img in doc["images"]:
            name = img["file_name"].split("/")[-1][:-4]
            mask = cv2.imread(str(root / "ground_truth" / split / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
            has_fake = any(a["category_id"] == 1 for a in doc["annotations"] if a["image_id"] == img["id"])
            assert (mask > 127).any() == has_fake


def test_same_seed_same_files_other_seed_other_files(tiny_set, tmp_path):
    again = generate(tmp_path / "again", seed=3, cfg=TINY, workers=2, progress=False)  # 2 workers vs 1
    assert _hashes(again.root) == _hashes(tiny_set.root)
    other = generate(tmp_path / "other", seed=4, cfg=override(TINY, of_images=(1, 1, 1, 1)), workers=1,
                     progress=False)
    a = (tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4").read_bytes()
    assert (other.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4").read_bytes() != a


def test_haar_cascade_finds_the_faces(tiny_set):
    table = haar_recall(tiny_set.ffpp_root, "c23", HaarConfig(scale_factor=1.1, min_neighbors=5), frames_per_video=6)
    assert table.loc["all", "faces"] == 4 * 6 * (1 + len(METHODS))
    assert table.loc["all", "recall"] >= 0.95
    assert table.loc["all", "mean_iou"] >= 0.7


def test_difficulty_scales_the_artifacts(tmp_path):
    """Harder settings leave fakes closer to the real frames (inside the mask)."""
    cfg = override(TINY, identities=2, frames=2, of_images=(1, 1, 1, 1), methods=("Deepfakes", "NeuralTextures"))
    gaps = []
    for d in (0.0, 1.0):
        s = generate(tmp_path / f"d{d}", seed=1, cfg=override(cfg, difficulty=d), workers=1, progress=False)
        real = read_frames(s.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4", [0])[0].astype(float)
        gap = 0.0
        for m in cfg.methods:
            fake = read_frames(s.ffpp_root / "manipulated_sequences" / m / "c23/videos/000_001.mp4", [0])[0]
            gap += np.abs(fake.astype(float) - real).mean()
        gaps.append(gap)
    assert gaps[0] > gaps[1] * 1.1


# --- folder safety ---------------------------------------------------------------------------------

def test_finished_set_is_reused_not_rewritten(tiny_set):
    video = tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4"
    before = video.stat().st_mtime_ns
    again = generate(tiny_set.root, seed=3, cfg=TINY, workers=1, progress=False)
    assert video.stat().st_mtime_ns == before
    assert again.ffpp["videos"].equals(tiny_set.ffpp["videos"])


def test_interrupted_set_resumes_to_identical_files(tmp_path):
    cfg = override(TINY, identities=2, of_images=(1, 1, 1, 1))
    full = generate(tmp_path / "full", seed=5, cfg=cfg, workers=1, progress=False)
    reference = _hashes(full.root)
    # Simulate a kill: marker says incomplete, one video and one image missing.
    marker = json.loads((full.root / MARKER).read_text())
    (full.root / MARKER).write_text(json.dumps({**marker, "complete": False}))
    (full.ffpp_root / "manipulated_sequences/FaceSwap/c23/videos/001_000.mp4").unlink()
    next((full.openforensics_root / "Images/Train").glob("*.jpg")).unlink()
    generate(full.root, seed=5, cfg=cfg, workers=1, progress=False)
    assert _hashes(full.root) == reference
    assert json.loads((full.root / MARKER).read_text())["complete"] is True


def test_other_settings_need_force(tmp_path):
    cfg = override(TINY, identities=2, frames=2, of_images=(1, 1, 1, 1))
    s = generate(tmp_path / "s", seed=1, cfg=cfg, workers=1, progress=False)
    with pytest.raises(OutputFolderError, match="other settings.*--force"):
        generate(s.root, seed=2, cfg=cfg, workers=1, progress=False)
    generate(s.root, seed=2, cfg=cfg, workers=1, progress=False, force=True)
    assert json.loads((s.root / MARKER).read_text())["seed"] == 2


def test_refuses_a_file_and_a_foreign_folder(tmp_path):
    target = tmp_path / "afile"
    target.write_text("mine")
    with pytest.raises(OutputFolderError, match="is a file"):
        generate(target, cfg=TINY, progress=False)
    assert target.read_text() == "mine"
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    for force in (False, True):
        with pytest.raises(OutputFolderError, match="not made by `dflite synth`"):
            generate(foreign, cfg=TINY, progress=False, force=force)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]


def test_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    # CI runs as root, which may write anywhere: make the permission check itself say no.
    monkeypatch.setattr("dflite.data.synth.os.access", lambda path, mode: False)
    with pytest.raises(OutputFolderError, match="not writable"):
        generate(tmp_path / "out", cfg=TINY, progress=False)
    assert not (tmp_path / "out").exists()


def test_odd_identity_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="even number"):
        generate(tmp_path / "x", cfg=override(TINY, identities=3), progress=False)


# --- no shortcuts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [0, 1])
def test_fake_equals_real_outside_the_mask_before_encoding(target):
    """Exactly: the only pixels a fake changes are those its mask sidecar marks (uint8 > 0)."""
    from dflite.data.synth.ffpp import render_frames

    frames = render_frames(3, target, TINY)
    for method in METHODS:
        fake, mask = frames.fakes[method].astype(int), frames.masks[method]
        changed = (fake != frames.real).any(3)
        assert not (changed & (mask == 0)).any(), f"{method}: pixels changed outside the mask"
        assert changed[mask > 127].mean() > 0.5, f"{method}: the mask marks pixels that did not change"


def test_quick_test_split_has_enough_real_identities():
    from dflite.config import get_profile

    cfg = get_profile("quick").synth
    splits = split_pairs(0, cfg)
    ids = {name: {i for pair in pairs for i in pair} for name, pairs in splits.items()}
    assert len(ids["test"]) >= 6 and len(ids["val"]) >= 6
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["val"]) and not (ids["val"] & ids["test"])


def test_a_studys_refusal_gives_a_way_out_that_works_in_a_notebook(tmp_path, monkeypatch):
    """A notebook cannot pass --force: a generated folder made with other settings is refused with a deletion
    that works from where the notebook runs, and following it lets the study remake the folder."""
    import re

    from dflite import config, paths
    from dflite.studies.datasets import dataset_roots

    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "data"))
    cfg = override(TINY, identities=2, frames=2, of_images=(1, 1, 1, 1))
    p = config.override(config.resolve("quick"), synth=cfg, workers=1)
    generate(paths.synth_dir(p.name), profile=p.name, seed=7, cfg=cfg, workers=1, progress=False)  # an old set
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    with pytest.raises(OutputFolderError) as refused:
        dataset_roots(p)
    advice = str(refused.value)
    assert "seed: folder has 7, asked for 0" in advice and "--force" not in advice
    exec(re.search(r"\(in Python: (.*)\) and run this again", advice).group(1))
    assert dataset_roots(p)["ffpp"].is_dir()
