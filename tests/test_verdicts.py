"""Each study's verdict function reaches every verdict kind on constructed tables: the claims are wired to the
right arms, margins and references (the rule itself is tested in test_stats.py)."""
from __future__ import annotations

import pandas as pd
import pytest
from dflite.config import override, resolve
from dflite.experiments.structured import Variant
from dflite.studies import structured, transfer

P = resolve("quick")
# Quick distils Lite0 from itself; these tables need a teacher of its own that can fail to learn alone.
PS = override(P, structured=override(P.structured, teacher="cnn5"))
SHARED = [0.0, 0.004, -0.003, 0.002]   # what a seed does to every arm alike
JITTER = [0.01, -0.012, 0.008, -0.006]  # differences that are noise


def _structured_rows(teacher_auc: float) -> pd.DataFrame:
    st = PS.structured
    rows = []

    def add(model, arm, v, seed, auc):
        rows.append({"model": model, "arm": arm, **v.settings(), "seed": seed, "auc": auc, "acc": auc})
    for seed, (n, j) in enumerate(zip(SHARED, JITTER)):
        add(st.student, "dense", Variant(), seed, 0.95 + n)
        add(st.teacher, "dense", Variant(), seed, teacher_auc + n)
        add(st.reference, "dense", Variant(), seed, 0.9 + n)
        add(st.student, "variant", Variant(st.scope_ratio, "global", match="local"), seed, 0.85 + n)
        add(st.student, "variant", Variant(st.scope_ratio, "local"), seed, 0.8 + n)
        add(st.student, "variant", Variant(st.steps_ratio, "global", st.steps), seed, 0.7 + n)
        add(st.student, "variant", Variant(st.steps_ratio, "global", 1), seed, 0.8 + n)
        for r in st.ratios:
            add(st.student, "variant", Variant(r, st.sweep_scope, st.sweep_steps), seed, 0.8 + n)
            add(st.student, "variant", Variant(r, st.sweep_scope, st.sweep_steps, st.alpha), seed, 0.8 + n + j)
        for a in st.alphas:
            add(st.student, "variant", Variant(0.0, alpha=a), seed, 0.85 + n + (j if a else 0))
    return pd.DataFrame(rows)


def test_structured_verdicts_reach_every_kind():
    table = structured.verdicts(PS, _structured_rows(teacher_auc=0.95)).set_index("claim")["verdict"]
    assert table["global beats local Taylor pruning at equal parameters"] == "holds"
    assert table[f"{PS.structured.steps}-step beats 1-shot"] == "does not hold"
    assert table[f"KD helps the pruned student at {PS.structured.ratios[0]:.0%}"] == "inconclusive"
    unlearned = structured.verdicts(PS, _structured_rows(teacher_auc=0.55)).set_index("claim")["verdict"]
    kd = unlearned[unlearned.index.str.contains("KD")]
    st = PS.structured
    sweep = {0.0, st.alpha} <= set(st.alphas)  # the alpha claims need the alpha sweep (standard and paper)
    kd_claims = len(st.ratios) + (1 + len(set(st.alphas) - {0.0, st.alpha}) if sweep else 0)
    assert len(kd) == kd_claims and kd.str.startswith(f"not testable: teacher {st.teacher} did not learn").all()
    assert unlearned["global beats local Taylor pruning at equal parameters"] == "holds"  # no teacher involved


def _transfer_rows(carried_gap: float, dense_auc: float = 0.95) -> pd.DataFrame:
    rows = []
    for seed, (n, j) in enumerate(zip(SHARED, JITTER)):
        for source, target in (("a", "b"), ("b", "a")):
            base = {"model": "cnn5", "seed": seed, "method": "", "n": 100, "run": ""}
            rows.append({**base, "source": target, "target": target, "kind": "dense", "sparsity": 0.0,
                         "auc": dense_auc + n})
            rows.append({**base, "source": target, "target": target, "kind": "ticket", "sparsity": 0.8,
                         "auc": 0.9 + n})
            rows.append({**base, "source": source, "target": target, "kind": "ticket", "sparsity": 0.8,
                         "auc": 0.9 + carried_gap + n + j / 10})
            rows.append({**base, "source": source, "target": target, "kind": "random_mask", "sparsity": 0.8,
                         "auc": 0.9 + carried_gap + n + j})
    return pd.DataFrame(rows).assign(acc=lambda t: t.auc, bacc=lambda t: t.auc)


def test_transfer_verdicts_reach_every_kind():
    close = transfer.verdicts(P, _transfer_rows(-0.002)).set_index("claim")["verdict"]
    assert (close.filter(like="(t1)") == "inconclusive").all()      # carried ticket vs random mask: noise
    assert (close.filter(like="(t2)") == "holds").all()             # within 1 pt of the target's own ticket
    far = transfer.verdicts(P, _transfer_rows(-0.05)).set_index("claim")["verdict"]
    assert (far.filter(like="(t2)") == "does not hold").all()
    bad = transfer.verdicts(P, _transfer_rows(0.0, dense_auc=0.6))
    assert bad.verdict.str.startswith("not testable: dense cnn5 on").all()


def test_the_imagenet_start_claims_pair_seeds_and_read_auc_and_the_first_epoch():
    """baselines.imagenet_verdicts: test AUC and the first epoch's validation AUC, paired by seed; a start that is
    better on both holds both, and the two claims read different numbers."""
    from types import SimpleNamespace

    from dflite.studies import baselines

    def job(seed, auc, first):
        result = SimpleNamespace(metrics={"auc": auc}, history=pd.DataFrame({"val_auc": [first, 0.99]}))
        return SimpleNamespace(seed=seed, model="efficientnet_lite0", result=lambda r=result: r)
    imagenet = [job(s, 0.95 + n, 0.9 + j) for s, (n, j) in enumerate(zip(SHARED, JITTER))]
    scratch = [job(s, 0.90 + n, 0.6 + n) for s, (n, j) in enumerate(zip(SHARED, JITTER))]
    out = baselines.imagenet_verdicts(P, imagenet, scratch).set_index("claim")
    assert list(out.verdict) == ["holds", "holds"]
    assert out.loc["an ImageNet start beats a random one", "stat"] == pytest.approx(0.05)
    assert out.loc["an ImageNet start converges faster", "b"] == pytest.approx(0.6 + sum(SHARED) / 4, abs=1e-4)
    worse = baselines.imagenet_verdicts(P, scratch, imagenet).set_index("claim")
    assert list(worse.verdict) == ["does not hold", "does not hold"]


def test_a_run_two_ablations_share_is_one_curve_named_by_both():
    from types import SimpleNamespace

    from dflite.studies import baselines

    def job(key, seed=0):
        history = pd.DataFrame({"epoch": [1, 2], "images": [10, 20], "val_auc": [0.6, 0.9], "train_loss": [0.7, 0.3]})
        return SimpleNamespace(key=key, model="cnn5", seed=seed, result=lambda: SimpleNamespace(history=history))

    base, constant, leaky = job("base"), job("const"), job("leaky")
    found = {"schedule": baselines.Ablation(None, [base, constant], {"base": "cnn5 cosine", "const": "cnn5 constant"}),
             "leakage": baselines.Ablation(None, [base, leaky],
                                           {"base": "cnn5 video split", "leaky": "cnn5 frame split"})}
    h = baselines.ablation_histories(found)
    assert len(h) == 6 and list(h.model.unique()) == ["cnn5 cosine = video split", "cnn5 constant", "cnn5 frame split"]


def test_the_grad_cam_heatmap_shows_each_mean_with_its_seeds_spread():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dflite.analysis import plots
    from dflite.studies import gradcam

    rows = [{"model": "cnn5", "study": "lottery", "arm": arm, "sparsity": sp, "ratio": "", "scope": "", "steps": "",
             "alpha": "", "match": "", "seed": seed, "method": method, "energy_ratio": value}
            for arm, sp, seeds in (("dense", 0.0, (0, 1, 2)), ("imp", 0.8, (0,)))
            for seed in seeds for method, value in (("Deepfakes", 1.0 + 0.1 * seed), ("FaceSwap", 2.0 - 0.2 * seed))]
    table = pd.DataFrame(rows)
    mean, sd = gradcam.per_method(table), gradcam.per_method(table, stat="std")
    assert mean.loc[mean.index[0], "Deepfakes"] == pytest.approx(1.1) and sd.loc[sd.index[0], "FaceSwap"] == 0.2
    fig = plots.method_heatmap(mean, vmin=0.5, vmax=2.5, sd=sd)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    # Three seeds: mean and sd; one seed: the mean alone (no sd to show).
    assert texts == sorted(["1.10\n± 0.10", "1.80\n± 0.20", "1.00", "2.00"])


def test_the_baselines_per_method_spread_is_the_sd_over_each_models_seeds():
    from dflite.studies import baselines

    class Run:
        def __init__(self, model, seed, auc):
            self.model, self.seed, self.auc = model, seed, auc

        def row(self):
            return {"model": self.model, "seed": self.seed, "auc": 0.9, "auc_Deepfakes": self.auc,
                    "auc_FaceSwap": 1 - self.auc, "acc_Deepfakes": 0.5}

    sd = baselines.per_method_sd([Run("cnn5", 0, 0.9), Run("cnn5", 1, 0.8), Run("cnn5", 2, 0.7), Run("b0", 0, 0.9)])
    assert list(sd.columns) == ["Deepfakes", "FaceSwap"] and list(sd.index) == ["cnn5", "b0"]
    assert sd.loc["cnn5", "Deepfakes"] == pytest.approx(0.1) and sd.loc["cnn5", "FaceSwap"] == pytest.approx(0.1)
    assert sd.loc["b0"].isna().all()  # one seed: no spread to show


def test_a_figure_of_photographs_is_shown_as_a_jpeg_smaller_than_its_png():
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from dflite.analysis import plots

    noisy = np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)  # sensor noise, as in frames
    fig, ax = plt.subplots(figsize=(2, 2), dpi=80)
    ax.imshow(noisy)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80, bbox_inches="tight")
    shown = plots.as_jpeg(fig)
    assert shown.format == "jpeg" and shown.data[:3] == b"\xff\xd8\xff"  # a JPEG's first bytes
    assert len(shown.data) < len(png.getvalue()) / 2
    assert not plt.fignum_exists(fig.number)  # closed: the notebook shows the JPEG only
