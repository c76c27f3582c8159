"""Metrics against hand-computed values and scikit-learn."""
import numpy as np
import pandas as pd
import pytest
from dflite.engine.metrics import binary_metrics, equal_error_rate, evaluate_predictions, video_scores
from sklearn.metrics import roc_auc_score


def test_binary_metrics_by_hand():
    labels = [0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.6, 0.4, 0.7, 0.8, 0.9]
    m = binary_metrics(labels, scores)
    assert m["acc"] == pytest.approx(4 / 6)
    assert m["bacc"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert 0 < m["eer"] < 0.5


def test_eer_extremes():
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert np.isnan(equal_error_rate([1, 1], [0.2, 0.3]))


def test_video_level_means_frame_scores_and_per_method_accuracy():
    preds = pd.DataFrame({
        "media_id": ["original/000"] * 2 + ["Deepfakes/000_001"] * 2 + ["FaceSwap/001_000"] * 2,
        "label": [0, 0, 1, 1, 1, 1], "method": ["original"] * 2 + ["Deepfakes"] * 2 + ["FaceSwap"] * 2,
        "score": [0.2, 0.6, 0.9, 0.7, 0.3, 0.45]})
    videos = video_scores(preds).set_index("media_id")
    assert videos.loc["original/000", "score"] == pytest.approx(0.4)
    m = evaluate_predictions(preds)
    assert m["acc_original"] == 0.5 and m["acc_Deepfakes"] == 1.0 and m["acc_FaceSwap"] == 0.0
    assert m["video_acc"] == pytest.approx(2 / 3)  # real 0.4 ok, Deepfakes 0.8 ok, FaceSwap 0.375 wrong
    assert m["video_auc"] == pytest.approx(0.5)


def test_per_method_auc_is_each_method_against_all_reals():
    preds = pd.DataFrame({
        "media_id": ["r"] * 4 + ["d"] * 2 + ["s"] * 2,
        "label": [0, 0, 0, 0, 1, 1, 1, 1],
        "method": ["original"] * 4 + ["Deepfakes"] * 2 + ["FaceSwap"] * 2,
        "score": [0.1, 0.2, 0.3, 0.6, 0.9, 0.8, 0.25, 0.15]})
    m = evaluate_predictions(preds)
    assert m["auc_Deepfakes"] == 1.0  # both above every real
    assert m["auc_FaceSwap"] == pytest.approx(roc_auc_score([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.25, 0.15]))
    assert "auc_original" not in m
