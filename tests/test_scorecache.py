"""Scores kept between executions of a notebook are read back only under the key that made them."""
from __future__ import annotations

import numpy as np
import pytest
from dflite.engine import scorecache


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("DFLITE_DATA", str(tmp_path))
    return tmp_path


def test_the_same_key_reads_the_scores_back_bit_for_bit_and_another_scores_again(data):
    calls = []

    def compute():
        calls.append(1)
        rng = np.random.default_rng(len(calls))
        return {"0/none/0": rng.random(7, dtype=np.float32), "1/jpeg/40": rng.random(7, dtype=np.float32),
                "empty": np.zeros(0, np.float32)}

    key = {"nets": [("run_a", "abc")], "crops": scorecache.array_digest(np.arange(6, dtype=np.uint8))}
    first = scorecache.cached("quick", "study", key, compute)
    again = scorecache.cached("quick", "study", key, compute)
    assert len(calls) == 1 and first.keys() == again.keys()
    for k in first:
        assert first[k].dtype == again[k].dtype and np.array_equal(first[k], again[k])
    # Another net's weights, other pixels, another profile: scored again, never the stored arrays.
    other = scorecache.cached("quick", "study", {**key, "nets": [("run_a", "abd")]}, compute)
    assert len(calls) == 2 and not np.array_equal(other["0/none/0"], first["0/none/0"])
    scorecache.cached("quick", "study", {**key, "crops": scorecache.array_digest(np.arange(1, 7, dtype=np.uint8))},
                      compute)
    scorecache.cached("standard", "study", key, compute)
    assert len(calls) == 4
    # A damaged file is scored again and replaced.
    path = data / "runs" / "quick" / "cache" / "study.safetensors"
    path.write_bytes(b"not a safetensors file")
    scorecache.cached("quick", "study", key, compute)
    assert len(calls) == 5
    scorecache.cached("quick", "study", key, compute)
    assert len(calls) == 5


def test_digests_see_every_pixel_shape_and_dtype():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[1, 3, 3, 2] = 1
    assert scorecache.array_digest(a) != scorecache.array_digest(b)
    assert scorecache.array_digest(a) != scorecache.array_digest(a.astype(np.int8))  # the same bytes
    assert scorecache.array_digest(a) != scorecache.array_digest(a.reshape(4, 2, 4, 3))
    assert scorecache.array_digest(a[:1], a[1:]) != scorecache.array_digest(a)  # two crops are not one batch
    assert scorecache.array_digest(a) == scorecache.array_digest(a.copy())
    assert len(scorecache.code_digest()) == 16


def test_a_table_comes_back_with_its_columns_dtypes_and_every_float(data):
    import pandas as pd

    frame = pd.DataFrame({"crop": ["a/1.png", "b/2.png", "c/3.png"], "method": pd.Series(["x", "y", "z"], dtype=object),
                          "n": np.array([1, 2, 3], np.int64), "small": np.array([0, 1, 255], np.uint8),
                          "road": [0.1 + 0.2, np.nan, 1 / 3], "ok": [True, False, True]})
    calls = []
    key = {"nets": ["a"]}
    first = scorecache.cached_frame("quick", "table", key, lambda: calls.append(1) or frame)
    again = scorecache.cached_frame("quick", "table", key, lambda: calls.append(1) or frame)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again, frame)
    assert list(again.dtypes) == list(frame.dtypes) and again.road[0] == 0.1 + 0.2
    pd.testing.assert_frame_equal(first, frame)
