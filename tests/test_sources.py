"""Dataset adapters on fixtures written here in the real FF++ and OpenForensics layouts."""
import json

import pytest
from dflite.data.sources import (
    DatasetLayoutError,
    ffpp_records,
    inspect_ffpp,
    inspect_openforensics,
    openforensics_records,
)


def write_ffpp(root, ids=("000", "001", "002", "003"), methods=("Deepfakes", "FaceSwap"), comps=("c23",),
               splits=True):
    """A tiny FF++ root: empty files stand in for videos (adapters only list files)."""
    for comp in comps:
        d = root / "original_sequences/youtube" / comp / "videos"
        d.mkdir(parents=True, exist_ok=True)
        for i in ids:
            (d / f"{i}.mp4").write_bytes(b"")
        for m in methods:
            md = root / "manipulated_sequences" / m / comp / "videos"
            md.mkdir(parents=True, exist_ok=True)
            masks = root / "manipulated_sequences" / m / "masks/videos"
            masks.mkdir(parents=True, exist_ok=True)
            for a, b in zip(ids[::2], ids[1::2]):
                for stem in (f"{a}_{b}", f"{b}_{a}"):
                    (md / f"{stem}.mp4").write_bytes(b"")
                    (masks / f"{stem}.mp4").write_bytes(b"")
    if splits:
        (root / "splits").mkdir(exist_ok=True)
        (root / "splits/train.json").write_text(json.dumps([["000", "001"]]))
        (root / "splits/val.json").write_text(json.dumps([["002", "003"]]))
        (root / "splits/test.json").write_text(json.dumps([]))
    return root


def write_of(root, split="Train", images=None, annotations=None):
    (root / "Images" / split).mkdir(parents=True, exist_ok=True)
    (root / "Images" / split / "9c541c578f.jpg").write_bytes(b"")
    doc = {
        "images": images if images is not None else
        [{"id": 0, "file_name": f"Images/{split}/9c541c578f.jpg", "width": 640, "height": 480}],
        "annotations": annotations if annotations is not None else [
            {"id": 0, "image_id": 0, "category_id": 1, "bbox": [10, 20, 50, 60],
             "segmentation": [[10, 20, 60, 20, 60, 80]], "area": 3000, "iscrowd": 0},
            {"id": 1, "image_id": 0, "category_id": 0, "bbox": [200, 40, 80, 80],
             "segmentation": [[200, 40, 280, 40, 280, 120]], "area": 6400, "iscrowd": 0}],
        "categories": [{"id": 0, "name": "Real"}, {"id": 1, "name": "Fake"}],
    }
    (root / f"{split}_poly.json").write_text(json.dumps(doc))
    return root


def test_ffpp_records_follow_official_pairs(tmp_path):
    recs = ffpp_records(write_ffpp(tmp_path), methods=("Deepfakes", "FaceSwap"))
    by_id = {r.media_id: r for r in recs}
    assert len(recs) == 4 + 2 * 4
    assert by_id["original/000"].split == "train" and by_id["original/000"].label == 0
    assert by_id["Deepfakes/001_000"].split == "train" and by_id["Deepfakes/001_000"].label == 1
    assert by_id["FaceSwap/003_002"].split == "val" and by_id["FaceSwap/003_002"].group == "003"
    assert by_id["Deepfakes/000_001"].mask_path.endswith("Deepfakes/masks/videos/000_001.mp4")


def test_ffpp_inspect_counts(tmp_path):
    info = inspect_ffpp(write_ffpp(tmp_path, comps=("c23", "c40")))
    assert info["videos"].loc["original", "c40"] == 4
    assert info["videos"].loc["FaceSwap", "c23"] == 4
    assert info["masks"] == {"Deepfakes": 4, "FaceSwap": 4}
    assert info["split_pairs"] == {"train": 1, "val": 1, "test": 0}


def test_ffpp_wrong_root_lists_the_expected_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no original_sequences/youtube.*expected a FaceForensics"):
        inspect_ffpp(tmp_path)
    with pytest.raises(DatasetLayoutError, match="is not a folder"):
        inspect_ffpp(tmp_path / "nope")


def test_ffpp_missing_or_bad_split_file(tmp_path):
    root = write_ffpp(tmp_path, splits=False)
    with pytest.raises(DatasetLayoutError, match=r"missing split file .*splits/train.json"):
        ffpp_records(root)
    write_ffpp(tmp_path)
    (root / "splits/val.json").write_text('{"pairs": 1}')
    with pytest.raises(DatasetLayoutError, match=r"val.json: expected a list of id pairs"):
        ffpp_records(root)


def test_openforensics_one_record_per_face(tmp_path):
    recs = openforensics_records(write_of(tmp_path))
    assert [(r.label, r.face, r.box) for r in recs] == [(1, 0, (10, 20, 50, 60)), (0, 1, (200, 40, 80, 80))]
    assert recs[0].split == "train" and recs[0].media_id == "Train/9c541c578f"
    table = inspect_openforensics(tmp_path)
    assert table.loc["Train"].to_dict() == {"images": 1, "faces": 2, "real": 1, "fake": 1, "missing images": 0}


def test_openforensics_missing_key_is_named(tmp_path):
    write_of(tmp_path, annotations=[{"id": 0, "image_id": 0, "bbox": [1, 2, 3, 4]}])
    with pytest.raises(DatasetLayoutError, match=r"Train_poly.json: annotations\[0\] has no 'category_id'"):
        openforensics_records(tmp_path)


def test_openforensics_file_name_cannot_escape_the_root(tmp_path):
    root = tmp_path / "of"
    write_of(root, images=[{"id": 0, "file_name": "../../etc/passwd", "width": 1, "height": 1}])
    with pytest.raises(DatasetLayoutError, match="points outside the dataset root"):
        openforensics_records(root)


def test_openforensics_wrong_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="holds no <Split>_poly.json"):
        inspect_openforensics(tmp_path)
    with pytest.raises(DatasetLayoutError, match="missing .*Val_poly.json"):
        openforensics_records(tmp_path, "Val")


def test_synthetic_set_reads_through_the_real_adapters(tiny_set):
    recs = ffpp_records(tiny_set.ffpp_root)
    assert len(recs) == 4 * 6 and {r.split for r in recs} <= {"train", "val", "test"}
    faces = openforensics_records(tiny_set.openforensics_root, "Train")
    assert len(faces) >= 3 and all(len(r.box) == 4 for r in faces)


def test_balance_counts_methods_splits_and_totals(tmp_path):
    from dflite.data.sources import balance, records_frame

    table = balance(records_frame(ffpp_records(write_ffpp(tmp_path), methods=("Deepfakes", "FaceSwap"))))
    assert table.loc["original", "train"] == 2 and table.loc["Deepfakes", "val"] == 2
    assert table.loc["all real"].tolist() == [2, 2] and table.loc["all fake"].tolist() == [4, 4]


def test_two_videos_sharing_a_stem_keep_both_ids(tmp_path):
    root = write_ffpp(tmp_path)
    (root / "original_sequences/youtube/c23/videos/000.avi").write_bytes(b"")
    ids = [r.media_id for r in ffpp_records(root, methods=()) if r.media_id.startswith("original/000")]
    assert ids == ["original/000.avi", "original/000.mp4"]      # never one id for two videos
    assert {r.media_id for r in ffpp_records(root, methods=())} >= {"original/001", "original/002"}


def test_inspect_reports_listed_images_that_are_not_on_disk(tmp_path):
    from dflite.config import ExtractConfig
    from dflite.data.sources import get_adapter

    root = write_of(tmp_path)
    (root / "Images/Train/9c541c578f.jpg").unlink()
    assert inspect_openforensics(root).loc["Train", "missing images"] == 1
    found = get_adapter("openforensics").inspect(root, ExtractConfig())
    assert found.skipped.to_dict("records") == [{"file": "Images/Train/9c541c578f.jpg",
                                                 "reason": "listed in its annotation file but not on disk"}]


def test_two_images_sharing_a_stem_keep_both_ids(tmp_path):
    images = [{"id": 0, "file_name": "Images/Train/a.jpg"}, {"id": 1, "file_name": "Images/Train/a.png"},
              {"id": 2, "file_name": "Images/Train/b.jpg"}]
    annotations = [{"id": i, "image_id": i, "category_id": 0, "bbox": [1, 2, 30, 30]} for i in range(3)]
    recs = openforensics_records(write_of(tmp_path, images=images, annotations=annotations))
    assert [r.media_id for r in recs] == ["Train/a.jpg", "Train/a.png", "Train/b"]
