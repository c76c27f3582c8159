"""Real media: faces at real resolutions, every container, symlinks, nothing dropped silently, store
integrity, exit codes, sharding. Fixtures are written here at 720p in the FF++ layout."""
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from dflite.cli import main
from dflite.config import ExtractConfig, get_profile
from dflite.data import extract as ex
from dflite.data.extract import IncompleteStoreError, extract, parse_shard
from dflite.data.faces import RELIABLE, HaarConfig, detect_scale, haar_config
from dflite.data.sources import inspect_ffpp
from dflite.data.synth.sizes import RESOLUTIONS, face_scene, recall_by_size
from dflite.data.updates import part_path
from dflite.data.video import write_mp4
from dflite.folders import OutputFolderError

CFG = ExtractConfig(frames=3, size=48)


def _haar(profile):
    e = get_profile(profile).extract
    return haar_config(e)


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_faces_of_at_least_min_size_are_found_at_480p_720p_1080p(profile):
    cfg = _haar(profile)
    sides = [s for s in (60, 80, 100, 130, 160, 200, 250, 300) if s >= cfg.min_size]
    table = recall_by_size(cfg, sides=sides, faces=6, seed=1)
    per_res = table.groupby("resolution")[["found", "faces"]].sum()
    recall = per_res["found"] / per_res["faces"]
    assert (recall >= 0.95).all(), table.to_string()


@pytest.mark.parametrize("hw", list(RESOLUTIONS.values()))
def test_downscale_never_hides_a_face_of_min_size(hw):
    for cfg in (_haar("quick"), _haar("paper"), HaarConfig(min_size=40, max_side=200)):
        assert cfg.min_size * detect_scale(hw, cfg) >= min(cfg.min_size, RELIABLE) - 1e-9


def _video(path, seed, frames=6, hw=(720, 1280), side=140, broken=False):
    """A short video of one face drifting a few pixels per frame, in the container path's suffix names."""
    if broken:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
        return
    frame, _ = face_scene(np.random.default_rng(seed), hw, side)
    write_mp4(path, np.stack([np.roll(frame, 3 * i, axis=1) for i in range(frames)]), fps=6)


def _ffpp(root, files, splits, extra=()):
    """An FF++ root with real videos named in `files` ({'000.mp4': seed | 'broken'}) and split pairs."""
    vids = root / "original_sequences/youtube/c23/videos"
    for name, seed in files.items():
        _video(vids / name, seed if seed != "broken" else 0, broken=seed == "broken")
    for name in extra:
        (vids / name).write_text("not a video")
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, pairs in zip(("train", "val", "test"), splits):
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    return root


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("media")
    root = _ffpp(base / "ffpp", {"000.mp4": 1, "001.avi": 2, "002.mov": 3, "003.mkv": 4, "004.webm": 5,
                                 "005.mp4": 6, "007.mp4": "broken"},
                 ([["000", "001"], ["002", "003"]], [["004", "006"]], [["007", "008"]]), extra=("notes.txt",))
    # 006 lives outside the root (another disk) and is linked in; 008 links to a file inside the root.
    _video(base / "elsewhere" / "clip.mp4", 7)
    vids = root / "original_sequences/youtube/c23/videos"
    os.symlink(base / "elsewhere" / "clip.mp4", vids / "006.mp4")
    os.symlink("000.mp4", vids / "008.mp4")
    return root


def _no_absolute_paths(out, *machine):
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".csv", ".json"):
            text = f.read_text()
            for m in machine:
                assert str(m) not in text, f"{f.name} holds the machine path {m}"


def test_every_container_symlinks_and_skips_are_recorded(media_root, tmp_path, capfd):
    out = tmp_path / "store"
    store = extract("ffpp", media_root, out, CFG, workers=1, progress=False)
    media = store.media.set_index("media_id")
    for stem in ("000", "001", "002", "003", "004", "006", "008"):
        assert media.loc[f"original/{stem}", "crops"] > 0, f"{stem} gave no crop"
    # The corrupt video is a failure with FFmpeg's complaint in its detail, and nothing reached stderr.
    fail = store.failures.set_index("media_id").loc["original/007"]
    assert fail["path"] == "original_sequences/youtube/c23/videos/007.mp4"
    assert capfd.readouterr().err == ""
    # 005 is in no split file: not extracted, but listed.
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["media_id"].tolist() == ["original/005"] and "split" in skipped["reason"][0]
    assert store.summary["skipped"] == 1
    # Symlinks record the path as listed, not where they lead.
    sources = store.index.groupby("media_id")["source"].first()
    assert sources["original/006"] == "original_sequences/youtube/c23/videos/006.mp4"
    assert sources["original/008"] == "original_sequences/youtube/c23/videos/008.mp4"
    _no_absolute_paths(out, media_root.parent, os.getcwd())
    # Every crop on disk has its index row, and every row its crop.
    on_disk = {p.relative_to(out).as_posix() for p in (out / "crops").rglob("*.png")}
    assert on_disk == set(store.index["crop"])
    info = inspect_ffpp(media_root)
    reasons = dict(zip(info["skipped"]["file"].map(lambda f: f.rsplit("/", 1)[-1]), info["skipped"]["reason"]))
    assert set(reasons) == {"notes.txt", "005.mp4"}


def test_a_failure_after_some_crops_leaves_no_orphan(media_root, tmp_path, monkeypatch):
    real_row = ex._row

    def flaky(r, frame, *a, **k):
        if r.media_id == "original/002" and frame > 0:
            raise OSError("disk full")
        return real_row(r, frame, *a, **k)

    monkeypatch.setattr(ex, "_row", flaky)
    out = tmp_path / "store"
    store = extract("ffpp", media_root, out, CFG, workers=1, progress=False)
    assert "disk full" in store.failures.set_index("media_id").loc["original/002", "detail"]
    assert not (out / "crops" / "original" / "002").exists()
    assert "original/002" not in set(store.index["media_id"])


def test_extract_exits_nonzero_when_every_item_fails(tmp_path, capsys):
    root = _ffpp(tmp_path / "ffpp", {"000.mp4": "broken", "001.mp4": "broken"}, ([["000", "001"]], [], []))
    code = main(["extract", "--dataset", "ffpp", "--root", str(root), "--out", str(tmp_path / "s"),
                 "--workers", "1", "--frames", "2"])
    assert code == 1
    assert "every one of the 2 media failed" in capsys.readouterr().err


def test_a_reused_store_does_not_reprint_old_timings(tmp_path, capsys):
    root = _ffpp(tmp_path / "ffpp", {"000.mp4": 1, "001.mp4": 2}, ([["000", "001"]], [], []))
    args = ["extract", "--dataset", "ffpp", "--root", str(root), "--out", str(tmp_path / "s"), "--workers", "1",
            "--frames", "2"]
    assert main(args) == 0 and "seconds per stage" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and "seconds per stage" not in out and "crops/s" not in out


def test_two_videos_sharing_a_stem_are_both_extracted(tmp_path):
    root = _ffpp(tmp_path / "ffpp", {"000.mp4": 1, "000.avi": 2, "001.mp4": 3}, ([["000", "001"]], [], []))
    store = extract("ffpp", root, tmp_path / "s", CFG, workers=1, progress=False)
    assert set(store.media["media_id"]) == {"original/000.avi", "original/000.mp4", "original/001"}


def test_store_refuses_another_root_and_updates_changed_media(tmp_path):
    files = {"000.mp4": 1, "001.mp4": 2, "002.mp4": 3, "003.mp4": 4}
    pairs = ([["000", "001"]], [["002", "003"]], [])
    a = _ffpp(tmp_path / "a" / "ffpp", files, pairs)
    b = _ffpp(tmp_path / "b" / "ffpp", {"000.mp4": 9, "001.mp4": 8}, ([["000", "001"]], [], []))
    out = tmp_path / "store"
    first = extract("ffpp", a, out, CFG, workers=1, progress=False).fingerprint
    with pytest.raises(OutputFolderError, match="root: folder has 'ffpp@"):
        extract("ffpp", b, out, CFG, workers=1, progress=False)
    part = part_path(out, "original/001")
    kept_at = part.stat().st_mtime_ns
    # Change one video, remove another, add a third: only those are redone.
    vids = a / "original_sequences/youtube/c23/videos"
    _video(vids / "000.mp4", 21, frames=4)
    (vids / "003.mp4").unlink()
    _video(vids / "004.mp4", 22)
    (a / "splits/test.json").write_text(json.dumps([["004", "005"]]))
    second = extract("ffpp", a, out, CFG, workers=1, progress=False)
    assert part.stat().st_mtime_ns == kept_at  # unchanged media are reused
    assert set(second.media["media_id"]) == {"original/000", "original/001", "original/002", "original/004"}
    assert not (out / "crops" / "original" / "003").exists()
    assert second.fingerprint != first
    # Unchanged: a plain reuse.
    assert extract("ffpp", a, out, CFG, workers=1, progress=False).fingerprint == second.fingerprint


def test_two_shards_merged_equal_one_run(tiny_set, tmp_path):
    one = extract("ffpp", tiny_set.ffpp_root, tmp_path / "one", CFG, workers=1, progress=False)
    sharded = tmp_path / "sharded"
    assert extract("ffpp", tiny_set.ffpp_root, sharded, CFG, workers=1, progress=False, shard=(0, 2)) is None
    with pytest.raises(IncompleteStoreError, match="no result yet"):
        extract("ffpp", tiny_set.ffpp_root, sharded, CFG, workers=1, progress=False, merge=True)
    merged = extract("ffpp", tiny_set.ffpp_root, sharded, CFG, workers=1, progress=False, shard=(1, 2))
    assert merged is not None
    pd.testing.assert_frame_equal(merged.index, one.index)
    pd.testing.assert_frame_equal(merged.media, one.media)
    assert merged.fingerprint == one.fingerprint
    again = extract("ffpp", tiny_set.ffpp_root, sharded, CFG, workers=1, progress=False, merge=True)
    assert again.fingerprint == one.fingerprint


@pytest.mark.parametrize("text", ["2/2", "a/b", "1", "-1/3"])
def test_bad_shard_is_a_clear_error(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_openforensics_image_with_one_fake_face_is_fake(tmp_path):
    import cv2

    frame, box = face_scene(np.random.default_rng(0), (240, 320), 70)
    root = tmp_path / "of"
    (root / "Images" / "Train").mkdir(parents=True)
    cv2.imwrite(str(root / "Images/Train/abc.jpg"), frame)
    anns = [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [10, 10, 50, 50]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": list(map(float, box))}]
    (root / "Train_poly.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "Images/Train/abc.jpg"}], "annotations": anns,
        "categories": [{"id": 0, "name": "Real"}, {"id": 1, "name": "Fake"}]}))
    store = extract("openforensics", root, tmp_path / "s", CFG, workers=1, progress=False)
    row = store.media.set_index("media_id").loc["Train/abc"]
    assert (row["label"], row["faces_real"], row["faces_fake"]) == (1, 1, 1)
    assert sorted(store.index["label"]) == [0, 1]  # crops keep their own face's label


def test_a_symlinked_image_folder_from_elsewhere_works(tiny_set, tmp_path):
    src = tiny_set.openforensics_root
    root = tmp_path / "of"
    root.mkdir()
    for f in src.glob("*_poly.json"):
        shutil.copy(f, root / f.name)
    os.symlink(src / "Images", root / "Images")
    store = extract("openforensics", root, tmp_path / "s", CFG, workers=1, progress=False)
    assert len(store.failures) == 0 and len(store.index) > 0
    assert store.index["source"].str.startswith("Images/").all()
    _no_absolute_paths(tmp_path / "s", src)


def test_a_store_made_before_a_setting_existed_is_still_reused(tiny_set, tmp_path):
    out = tmp_path / "store"
    first = extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False).fingerprint
    marker = json.loads((out / "store.json").read_text())
    del marker["config"]["min_box"]  # as written by a dflite without that setting
    (out / "store.json").write_text(json.dumps(marker))
    assert extract("ffpp", tiny_set.ffpp_root, out, CFG, workers=1, progress=False).fingerprint == first
