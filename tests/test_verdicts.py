"""Each study's verdict function reaches every verdict kind on constructed tables: the claims are wired to the
right arms, margins and references (the rule itself is tested in test_stats.py)."""
from __future__ import annotations

import pandas as pd
from dflite.config import resolve
from dflite.experiments.structured import Variant
from dflite.studies import structured, transfer

P = resolve("quick")
SHARED = [0.0, 0.004, -0.003, 0.002]   # what a seed does to every arm alike
JITTER = [0.01, -0.012, 0.008, -0.006]  # differences that are noise


def _structured_rows(teacher_auc: float) -> pd.DataFrame:
    st = P.structured
    rows = []

    def add(model, arm, v, seed, auc):
        rows.append({"model": model, "arm": arm, **v.settings(), "seed": seed, "auc": auc, "acc": auc})
    for seed, (n, j) in enumerate(zip(SHARED, JITTER)):
        add(st.student, "dense", Variant(), seed, 0.9 + n)
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
    table = structured.verdicts(P, _structured_rows(teacher_auc=0.9)).set_index("claim")["verdict"]
    assert table["global beats local Taylor pruning at equal parameters"] == "holds"
    assert table[f"{P.structured.steps}-step beats 1-shot"] == "does not hold"
    assert table[f"KD helps the pruned student at {P.structured.ratios[0]:.0%}"] == "inconclusive"
    unlearned = structured.verdicts(P, _structured_rows(teacher_auc=0.55)).set_index("claim")["verdict"]
    kd = unlearned[unlearned.index.str.contains("KD")]
    assert len(kd) >= 5 and kd.str.startswith(f"not testable: teacher {P.structured.teacher} did not learn").all()
    assert unlearned["global beats local Taylor pruning at equal parameters"] == "holds"  # no teacher involved


def _transfer_rows(carried_gap: float, dense_auc: float = 0.9) -> pd.DataFrame:
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
