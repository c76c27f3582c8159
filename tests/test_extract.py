"""Crop extraction: store layout, resumability, splits, and every kind of bad input."""
import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from dflite.config import ExtractConfig, override
from dflite.data.extract import extract, load_store
from dflite.data.sources import DatasetLayoutError
from dflite.data.synth.check import store_recall
from dflite.data.video import read_frames, write_mp4
from dflite.folders import OutputFolderError

CFG = ExtractConfig(frames=4, size=48)


def test_synthetic_ffpp_store(tiny_set, tmp_path):
    store = extract("ffpp", tiny_set.ffpp_root, tmp_path / "store", CFG, workers=2, progress=False)
    idx = store.index
    assert list(idx.columns[:8]) == ["media_id", "frame", "face", "label", "method", "split", "group", "compression"]
    assert set(idx["method"]) == {"original", "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"}
    crop = cv2.imread(str(store.root / idx["crop"].iloc[0]))
    assert crop.shape == (48, 48, 3)
    assert not idx["source"].str.startswith("/").any()  # project-relative, no machine paths
    # Splits are by video pair: no group (target identity) in two splits.
    assert (idx.groupby("group")["split"].nunique() == 1).all()
    assert store.summary["sampled"] == 24 * 4
    assert store_recall(store, tiny_set.ffpp_root).loc["all", "recall"] >= 0.9


def test_killed_run_resumes_to_the_same_index(tiny_set, tmp_path):
    full = extract("ffpp", tiny_set.ffpp_root, tmp_path / "a", CFG, workers=1, progress=False)
    # Simulate a kill half-way: unfinished marker, some parts and every table missing.
    out = tmp_path / "a"
    marker = json.loads((out / "store.json").read_text())
    (out / "store.json").write_text(json.dumps({**marker, "complete": False}))
    for p in sorted((out / "parts").glob("*.json"))[::2]:
        p.unlink()
    for name in ("index.csv", "media.csv", "failures.csv", "summary.json"):
        (out / name).unlink()
    resumed = extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=2, progress=False)
    pd.testing.assert_frame_equal(resumed.index, full.index)


def test_store_is_reused_and_other_settings_need_force(tiny_set, tmp_path):
    out = tmp_path / "s"
    extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False)
    stamp = (out / "index.csv").stat().st_mtime_ns
    extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False)
    assert (out / "index.csv").stat().st_mtime_ns == stamp
    with pytest.raises(OutputFolderError, match="other settings"):
        extract("ffpp", tiny_set.ffpp_root, out, override(CFG, size=32), workers=1, progress=False)
    store = extract("ffpp", tiny_set.ffpp_root, out, override(CFG, size=32), workers=1, progress=False, force=True)
    assert cv2.imread(str(out / store.index["crop"].iloc[0])).shape == (32, 32, 3)


def test_load_store_says_which_notebook_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `dflite extract`"):
        load_store(tmp_path / "nothing")


def test_group_and_leaky_splits(tiny_set, tmp_path):
    group = extract("ffpp", tiny_set.ffpp_root, tmp_path / "g", override(CFG, split_mode="group"), workers=1,
                    progress=False).index
    assert (group.groupby("group")["split"].nunique() == 1).all()
    leaky = extract("ffpp", tiny_set.ffpp_root, tmp_path / "l", override(CFG, split_mode="leaky"), workers=1,
                    progress=False).index
    assert (leaky.groupby("media_id")["split"].nunique() > 1).any(), "leaky must split videos across splits"


def test_openforensics_crops_from_annotations_with_detector_recall(tiny_set, tmp_path):
    store = extract("openforensics", tiny_set.openforensics_root, tmp_path / "of", CFG, workers=1, progress=False)
    doc = json.loads((tiny_set.openforensics_root / "Train_poly.json").read_text())
    train = store.index[store.index["split"] == "train"]
    assert len(train) == len(doc["annotations"])
    assert list(train["label"]) == [a["category_id"] for a in sorted(
        doc["annotations"], key=lambda a: (doc["images"][a["image_id"]]["file_name"], a["id"]))]
    assert 0.5 <= store.index["detected"].mean() <= 1.0


# --- bad input -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_root(tiny_set, tmp_path_factory):
    """An FF++ root under a path with spaces and non-ASCII letters, holding one good and many bad videos."""
    root = tmp_path_factory.mktemp("bad") / "dåta sét" / "FF++ ü"
    videos = root / "original_sequences/youtube/c23/videos"
    videos.mkdir(parents=True)
    good = tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4"
    shutil.copy(good, videos / "000.mp4")
    frames = read_frames(good)
    (videos / "001.mp4").write_bytes(b"")                                  # zero-byte file
    (videos / "002.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # truncated
    (videos / "003.mp4").write_text("this is a text file, not a video\n")   # text named .mp4
    write_mp4(videos / "004.mp4", np.full((6, 96, 96, 3), 128, np.uint8), fps=8)  # no faces
    gray = np.repeat(cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)[None, ..., None], 6, 0).repeat(3, 3)
    write_mp4(videos / "005.mp4", gray, fps=8)                             # grayscale
    write_mp4(videos / "006.mp4", frames[:1], fps=8)                       # one frame
    big = cv2.resize(frames[0], None, fx=12, fy=12, interpolation=cv2.INTER_CUBIC)  # 1920 x 1920
    write_mp4(videos / "007.mp4", np.stack([big, big]), fps=8)             # very large frame
    (root / "splits").mkdir()
    (root / "splits/train.json").write_text(json.dumps([["000", "001"], ["002", "003"]]))
    (root / "splits/val.json").write_text(json.dumps([["004", "005"]]))
    (root / "splits/test.json").write_text(json.dumps([["006", "007"]]))
    return root


def test_bad_videos_are_recorded_and_the_rest_survives(bad_root, tmp_path):
    cfg = override(CFG, methods=())
    store = extract("ffpp", bad_root, tmp_path / "out put é", cfg, workers=2, progress=False)
    reasons = dict(zip(store.failures["media_id"], store.failures["reason"]))
    assert reasons["original/001"] == "undecodable"
    assert reasons["original/002"] in ("undecodable", "no frames")
    assert reasons["original/003"] == "undecodable"
    assert reasons["original/004"] == "no face"
    assert set(reasons) == {"original/001", "original/002", "original/003", "original/004"}
    crops = store.index.groupby("media_id").size()
    assert crops["original/000"] == 4        # the good video
    assert crops["original/005"] >= 1        # grayscale still finds the face
    assert crops["original/006"] == 1        # one-frame video: one crop
    assert crops["original/007"] >= 1        # 1920 px frame: detected on a downscaled copy
    big = store.index[store.index["media_id"] == "original/007"].iloc[0]
    assert big["w"] > 300                    # the box is in full-frame pixels
    assert (tmp_path / "out put é" / "failures.csv").is_file()


def test_missing_split_file_and_wrong_root_are_clear_errors(bad_root, tiny_set, tmp_path):
    broken = tmp_path / "nosplits"
    shutil.copytree(bad_root, broken)
    (broken / "splits/val.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"missing split file .*val.json"):
        extract("ffpp", broken, tmp_path / "x", CFG, progress=False)
    with pytest.raises(DatasetLayoutError, match="expected a FaceForensics"):
        extract("ffpp", tiny_set.openforensics_root, tmp_path / "y", CFG, progress=False)
    with pytest.raises(DatasetLayoutError, match="expected an OpenForensics root"):
        extract("openforensics", tiny_set.ffpp_root, tmp_path / "z", CFG, progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_missing_cascade_file_stops_extraction_before_any_media_is_recorded(tiny_set, tmp_path, monkeypatch):
    # OpenCV 5.x ships no cascade files (seen on a GPU machine's image): one clear error naming the file and the fix,
    # not every media recorded as failed and an empty store assembled.
    from dflite.data import faces

    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path / "no_cascades"))
    faces.load_cascade.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"haarcascade_frontalface_default.xml is missing.*<5"):
            extract("ffpp", tiny_set.ffpp_root, tmp_path / "store", CFG, workers=1, progress=False)
    finally:
        faces.load_cascade.cache_clear()
    assert not (tmp_path / "store" / "index.csv").exists()
    assert not list((tmp_path / "store").glob("parts/*"))


def test_openforensics_bad_annotations_are_clear_errors(tmp_path):
    root = tmp_path / "of"
    (root / "Images/Train").mkdir(parents=True)
    doc = {"images": [{"id": 0, "file_name": "../../secret.jpg"}], "annotations": [
        {"id": 0, "image_id": 0, "category_id": 1, "bbox": [0, 0, 4, 4]}], "categories": []}
    (root / "Train_poly.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetLayoutError, match="outside the dataset root"):
        extract("openforensics", root, tmp_path / "o1", CFG, progress=False)
    del doc["annotations"][0]["bbox"]
    doc["images"][0]["file_name"] = "Images/Train/a.jpg"
    (root / "Train_poly.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetLayoutError, match=r"annotations\[0\] has no 'bbox'"):
        extract("openforensics", root, tmp_path / "o2", CFG, progress=False)


def test_openforensics_unreadable_image_is_recorded(tiny_set, tmp_path):
    root = tmp_path / "of"
    shutil.copytree(tiny_set.openforensics_root, root)
    victim = sorted((root / "Images/Val").glob("*.jpg"))[0]
    victim.write_bytes(b"not a jpeg")
    store = extract("openforensics", root, tmp_path / "s", CFG, workers=1, progress=False)
    assert list(store.failures["reason"]) == ["undecodable"]
    assert (store.index["split"] == "train").sum() > 0


def test_a_listed_image_that_is_not_on_disk_is_missing(tiny_set, tmp_path):
    root = tmp_path / "of"
    shutil.copytree(tiny_set.openforensics_root, root)
    sorted((root / "Images/Val").glob("*.jpg"))[0].unlink()
    store = extract("openforensics", root, tmp_path / "s", CFG, workers=1, progress=False)
    assert list(store.failures["reason"]) == ["missing"]


def test_celebdf_layout(tiny_set, tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    good = tiny_set.ffpp_root / "original_sequences/youtube/c23/videos/000.mp4"
    fake = tiny_set.ffpp_root / "manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"
    for folder, names, src in (("Celeb-real", ["id0_0000", "id1_0000", "id2_0000", "id3_0000"], good),
                               ("YouTube-real", ["00000", "00001"], good),
                               ("Celeb-synthesis", ["id0_id1_0000", "id1_id0_0000", "id2_id3_0000"], fake)):
        (root / folder).mkdir(parents=True)
        for n in names:
            shutil.copy(src, root / folder / f"{n}.mp4")
    (root / "List_of_testing_videos.txt").write_text("1 YouTube-real/00001.mp4\n0 Celeb-synthesis/id2_id3_0000.mp4\n")
    store = extract("celebdf", root, tmp_path / "c", CFG, workers=1, progress=False)
    media = store.media.set_index("media_id")
    assert media.loc["YouTube-real/00001", "split"] == "test" and media.loc["YouTube-real/00001", "label"] == 0
    assert media.loc["Celeb-synthesis/id2_id3_0000", "split"] == "test"
    assert media.loc["Celeb-synthesis/id2_id3_0000", "label"] == 1
    rest = store.media[store.media["split"] != "test"]
    assert set(rest["split"]) <= {"train", "val"}
    # split by identity: id0's real video and id0's fake (target id0) share a split
    assert media.loc["Celeb-real/id0_0000", "split"] == media.loc["Celeb-synthesis/id0_id1_0000", "split"]
    (root / "List_of_testing_videos.txt").write_text("2 YouTube-real/00001.mp4\n")
    with pytest.raises(DatasetLayoutError, match="line 1"):
        extract("celebdf", root, tmp_path / "d", CFG, progress=False)


# --- manipulation-mask crops -----------------------------------------------------------------------

def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_every_fake_crop_gets_its_mask_cropped_with_the_same_box(tiny_set, tmp_path):
    from dflite.data.faces import crop_square

    store = extract("ffpp", tiny_set.ffpp_root, tmp_path / "m", CFG, workers=2, progress=False)
    fakes = store.index[store.index["label"] == 1]
    assert sorted(store.masks["crop"]) == sorted(fakes["crop"])   # every fake crop, and no real one
    assert store.summary["mask_crops"] == len(fakes) and store.summary["mask_failures"] == 0
    # Against the generator's own mask frames, cropped with the index's box: the stored crop lines up.
    gt = tiny_set.ffpp_root / "ground_truth"
    by_crop = dict(zip(store.masks["crop"], store.masks["mask"]))
    for row in fakes.sample(6, random_state=0).itertuples():
        stem = row.media_id.split("/")[1]
        frames = cv2.imread(str(gt / row.method / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
        side = frames.shape[1]
        truth = crop_square(frames[row.frame * side:(row.frame + 1) * side], (row.x, row.y, row.w, row.h),
                            CFG.expand, CFG.size) > 127
        stored = cv2.imread(str(store.root / by_crop[row.crop]), cv2.IMREAD_GRAYSCALE)
        assert stored.shape == (48, 48) and set(np.unique(stored)) <= {0, 255}
        assert _iou(stored > 127, truth) > 0.85, row.crop
        # The wrong frame's mask lines up worse (the mask moves with the face's expression and pose).
        other = (row.frame + 3) % (frames.shape[0] // side)
        wrong = crop_square(frames[other * side:(other + 1) * side], (row.x, row.y, row.w, row.h),
                            CFG.expand, CFG.size) > 127
        assert _iou(stored > 127, truth) >= _iou(stored > 127, wrong)


def test_a_store_made_before_mask_crops_gets_them_and_keeps_its_index(tiny_set, tmp_path):
    out = tmp_path / "old"
    full = extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False)
    fingerprint = full.fingerprint
    # Turn it into a layout-1 store: no mask crops, no layout in the marker or the parts.
    shutil.rmtree(out / "masks")
    for name in ("masks.csv", "mask_failures.csv"):
        (out / name).unlink()
    marker = json.loads((out / "store.json").read_text())
    marker.pop("layout")
    (out / "store.json").write_text(json.dumps(marker))
    for p in (out / "parts").glob("*.json"):
        part = json.loads(p.read_text())
        part.pop("layout")
        part.pop("masks", None)
        p.write_text(json.dumps(part))
    upgraded = extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False)
    assert upgraded.fingerprint == fingerprint       # same crops, so every run keyed by it stays valid
    assert len(upgraded.masks) == (upgraded.index["label"] == 1).sum()


def test_a_broken_mask_video_costs_its_masks_not_its_crops(tiny_set, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_set.ffpp_root, root)
    broken = sorted((root / "manipulated_sequences/Deepfakes/masks/videos").glob("*.mp4"))[0]
    broken.write_text("not a video\n")
    store = extract("ffpp", root, tmp_path / "s", CFG, workers=1, progress=False)
    media = f"Deepfakes/{broken.stem}"
    assert (store.index["media_id"] == media).sum() >= 1          # the crops survive
    assert media not in set(store.failures["media_id"])
    failures = pd.read_csv(store.root / "mask_failures.csv")
    assert list(failures["media_id"]) == [media] and failures["reason"].str.contains("undecodable").all()
    assert not store.masks["crop"].str.contains(media).any()
    assert store.summary["mask_failures"] == 1


def test_a_leaky_split_store_reuses_the_official_crops_and_matches_a_fresh_extraction(tiny_set, tmp_path):
    from dflite.config import config_hash

    official = ExtractConfig(frames=3, size=32)
    leaky = override(official, split_mode="leaky")
    first = extract("ffpp", tiny_set.ffpp_root, tmp_path / f"ffpp_{config_hash(official)}", official, workers=1,
                    progress=False)
    reused = extract("ffpp", tiny_set.ffpp_root, tmp_path / f"ffpp_{config_hash(leaky)}", leaky, workers=1,
                     progress=False)
    fresh = extract("ffpp", tiny_set.ffpp_root, tmp_path / "elsewhere", leaky, workers=1, progress=False)
    assert (reused.root / "index.csv").read_bytes() == (fresh.root / "index.csv").read_bytes()
    assert reused.index.drop(columns="split").equals(first.index.drop(columns="split"))
    crop = reused.index.crop.iloc[0]
    assert (reused.root / crop).stat().st_ino == (first.root / crop).stat().st_ino  # hard-linked, not redone
