"""The DFDC adapter on fixtures written here in DFDC's layout (part folders with a metadata.json each)."""
import json
import shutil

import pytest
from dflite.cli import main
from dflite.config import ExtractConfig
from dflite.data.extract import extract
from dflite.data.sources import DatasetLayoutError, dfdc_records, inspect_dfdc


def write_dfdc(root, tiny_set, parts=3, per_part=4):
    """parts x (per_part reals + one fake of each real); videos copied from the tiny synthetic set."""
    real_videos = sorted((tiny_set.ffpp_root / "original_sequences/youtube/c23/videos").glob("*.mp4"))
    fake_videos = sorted((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    for p in range(parts):
        folder = root / f"dfdc_train_part_{p}"
        folder.mkdir(parents=True)
        meta = {}
        for i in range(per_part):
            real, fake = f"r{p}x{i}.mp4", f"f{p}x{i}.mp4"
            shutil.copy(real_videos[i % len(real_videos)], folder / real)
            shutil.copy(fake_videos[i % len(fake_videos)], folder / fake)
            meta[real] = {"label": "REAL", "split": "train", "original": None}
            meta[fake] = {"label": "FAKE", "split": "train", "original": real}
        (folder / "metadata.json").write_text(json.dumps(meta))
    return root


def test_records_labels_and_original_groups(tiny_set, tmp_path):
    recs = dfdc_records(write_dfdc(tmp_path / "dfdc", tiny_set))
    assert len(recs) == 24 and sum(r.label for r in recs) == 12
    by_id = {r.media_id: r for r in recs}
    fake = by_id["dfdc_train_part_1/f1x2"]
    assert (fake.label, fake.method, fake.group) == (1, "fake", "r1x2")
    assert by_id["dfdc_train_part_1/r1x2"].split == fake.split  # a fake never leaves its original's split
    splits = [r.split for r in recs if r.label == 0]
    assert set(splits) <= {"train", "val", "test"} and splits.count("train") >= 6


def test_named_parts_give_val_and_test(tiny_set, tmp_path):
    recs = dfdc_records(write_dfdc(tmp_path / "dfdc", tiny_set), val_parts=("1",), test_parts=("dfdc_train_part_2",))
    assert {r.media_id.split("/")[0]: r.split for r in recs} == {
        "dfdc_train_part_0": "train", "dfdc_train_part_1": "val", "dfdc_train_part_2": "test"}
    with pytest.raises(DatasetLayoutError, match="no part folder 7"):
        dfdc_records(tmp_path / "dfdc", test_parts=("7",))


@pytest.mark.parametrize("entry,message", [({"split": "train"}, "has no 'label' key"),
                                           ({"label": "MAYBE"}, "label 'MAYBE'; expected REAL or FAKE"),
                                           ({"label": "FAKE"}, "no 'original' key")])
def test_bad_metadata_names_the_file_and_entry(tiny_set, tmp_path, entry, message):
    root = write_dfdc(tmp_path / "dfdc", tiny_set, parts=1)
    meta_path = root / "dfdc_train_part_0/metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["r0x1.mp4"] = entry
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetLayoutError, match=message) as err:
        dfdc_records(root)
    assert "dfdc_train_part_0/metadata.json" in str(err.value) and "r0x1.mp4" in str(err.value)


def test_not_a_dfdc_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no part folder with a metadata.json"):
        dfdc_records(tmp_path)


def test_extract_and_inspect_dfdc(tiny_set, tmp_path, capsys):
    root = write_dfdc(tmp_path / "dfdc", tiny_set, parts=2, per_part=2)
    part = root / "dfdc_train_part_1"
    shutil.copy(part / "r1x0.mp4", part / "stray.mp4")  # in no metadata.json
    (part / "f1x1.mp4").unlink()                          # listed but missing
    info = inspect_dfdc(root)
    assert info["parts"].loc["dfdc_train_part_1", "missing"] == 1
    assert info["skipped"]["file"].tolist() == ["dfdc_train_part_1/stray.mp4"]
    assert main(["inspect", "--dataset", "dfdc", "--root", str(root)]) == 0
    assert "1 files will be skipped" in capsys.readouterr().out
    store = extract("dfdc", root, tmp_path / "store", ExtractConfig(frames=2, size=32), workers=1, progress=False)
    assert store.failures.set_index("media_id").loc["dfdc_train_part_1/f1x1", "reason"] == "missing"
    assert store.summary["skipped"] == 1 and store.kind == "dfdc"
    assert set(store.index["label"]) == {0, 1}


def test_splits_are_drawn_over_the_videos_present(tmp_path):
    from dflite.data.sources import group_split

    folder = tmp_path / "dfdc" / "dfdc_train_part_0"
    folder.mkdir(parents=True)
    listed = [f"r{i:02d}" for i in range(40)]
    (folder / "metadata.json").write_text(json.dumps({f"{n}.mp4": {"label": "REAL"} for n in listed}))
    # On disk: 8 of the 40 listed, ones a split over all 40 would put in train (no test split would be left).
    here = [n for n in listed if group_split(listed)[n] == "train"][:8]
    for n in here:
        (folder / f"{n}.mp4").write_bytes(b"")
    recs = dfdc_records(tmp_path / "dfdc")
    present = [r.split for r in recs if r.media_id.split("/")[1] in here]
    assert sorted(present) == ["test"] + ["train"] * 6 + ["val"]        # 70/15/15 of the 8 present
    assert len(recs) == 40                                              # the absent ones stay listed (missing)
