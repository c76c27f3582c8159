"""Detection metrics: ACC, per-method ACC, AUC, AP, EER, and video-level scores (scikit-learn curves)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def equal_error_rate(labels, scores) -> float:
    """The error rate where false positives and false negatives are equally frequent (ROC crossing)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    if len(np.unique(labels)) < 2:
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def binary_metrics(labels, scores, threshold: float = 0.5) -> dict:
    """acc and balanced acc (mean of real and fake recall) at the threshold, AUC, AP (fake =
    positive), EER; nan where one class is missing. FF++ has 5 fakes per real video, so plain
    accuracy rewards calling everything fake: read it beside bacc."""
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    both = len(np.unique(labels)) == 2
    hit = (scores >= threshold).astype(int) == labels
    return {
        "acc": float(hit.mean()) if len(labels) else float("nan"),
        "bacc": float((hit[labels == 0].mean() + hit[labels == 1].mean()) / 2) if both else float("nan"),
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "ap": float(average_precision_score(labels, scores)) if both else float("nan"),
        "eer": equal_error_rate(labels, scores),
    }


def per_method_accuracy(predictions: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Accuracy per method column value (the capstone's table): real frames and each method's fakes."""
    hit = (predictions["score"] >= threshold).astype(int) == predictions["label"]
    return {m: float(v) for m, v in hit.groupby(predictions["method"]).mean().items()}


def per_method_auc(predictions: pd.DataFrame) -> dict:
    """AUC of each method's fakes against all real crops (how separable each manipulation is)."""
    real = predictions[predictions["label"] == 0]
    out = {}
    for m, fakes in predictions[predictions["label"] == 1].groupby("method"):
        both = pd.concat([real, fakes])
        out[m] = float(roc_auc_score(both["label"], both["score"])) if len(real) else float("nan")
    return out


def video_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per video: its label, method and the mean of its frame scores."""
    return predictions.groupby("media_id").agg(label=("label", "first"), method=("method", "first"),
                                               score=("score", "mean")).reset_index()


def evaluate_predictions(predictions: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Frame-level metrics, per-method accuracy (acc_<method>) and AUC (auc_<method>), video AUC and ACC."""
    out = binary_metrics(predictions["label"], predictions["score"], threshold)
    out.update({f"acc_{m}": v for m, v in per_method_accuracy(predictions, threshold).items()})
    out.update({f"auc_{m}": v for m, v in per_method_auc(predictions).items()})
    videos = video_scores(predictions)
    vid = binary_metrics(videos["label"], videos["score"], threshold)
    out.update({"video_auc": vid["auc"], "video_acc": vid["acc"]})
    return out



def attribution_metrics(classes, probs, names) -> dict:
    """Which-method metrics of a head over `names` (real first): attr_acc, attr_bacc (mean recall over the classes
    present: each method counts once, however many crops it has) and recall_<name> per class present."""
    classes, probs = np.asarray(classes).astype(int), np.asarray(probs, dtype=float)
    hit = probs.argmax(1) == classes
    recall = {names[c]: float(hit[classes == c].mean()) for c in sorted(set(classes.tolist()))}
    return {"attr_acc": float(hit.mean()) if len(hit) else float("nan"),
            "attr_bacc": float(np.mean(list(recall.values()))) if recall else float("nan"),
            **{f"recall_{k}": v for k, v in recall.items()}}


def confusion(classes, predicted, names) -> pd.DataFrame:
    """Row-normalised confusion: true class (rows) x predicted class (columns), each row summing to 1."""
    table = pd.crosstab(pd.Categorical([names[c] for c in classes], names),
                        pd.Categorical([names[c] for c in predicted], names), dropna=False, normalize="index")
    table.index.name, table.columns.name = "true", "predicted"
    return table
