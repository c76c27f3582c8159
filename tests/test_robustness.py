"""Notebook 08's claims: "compression costs robustness" is decided from paired per-seed drops, and a reference that
did not learn makes its claims not testable."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from dflite.config import resolve
from dflite.studies import robustness


def profile():
    p = resolve("quick")
    return dataclasses.replace(p, robustness=dataclasses.replace(p.robustness, families={"jpeg": (10, 40, 70),
                                                                                          "blur": (0.5, 1.0, 2.0)}))


def table(nets: dict, p, seeds=range(6)) -> pd.DataFrame:
    """A results table as `run` writes it: nets {(model, label, against): (clean AUC per seed, drop at the middle
    strength per seed)}; the mild strength drops half as much, the strongest twice."""
    rows = []
    rng = np.random.default_rng(0)
    for (model, label, against), (clean, drop) in nets.items():
        for s in seeds:
            c, d = clean[s] if np.ndim(clean) else clean, (drop[s] if np.ndim(drop) else drop) + rng.normal(0, 0.003)
            ids = {"study": "x", "model": model, "arm": "dense" if not against else "imp", "sparsity": 0.0,
                   "ratio": 0.0, "scope": "global", "steps": 1, "alpha": 0.0, "runtime": "ort_fp32", "label": label,
                   "against": against, "seed": s}
            rows.append({**ids, "family": "none", "strength": 0.0, "method": "all", "auc": c})
            for family, strengths in p.robustness.families.items():
                for strength, k in zip(strengths, (0.5, 1.0, 2.0)):
                    rows.append({**ids, "family": family, "strength": float(strength), "method": "all",
                                 "auc": c - k * d})
    return pd.DataFrame(rows)


def test_a_larger_paired_drop_holds_an_equal_one_does_not_and_an_unlearned_reference_is_not_testable():
    p = profile()
    t = table({("cnn5", "ticket dense", ""): (0.97, 0.05),
               ("cnn5", "IMP ticket 80%", "ticket dense"): (0.97, 0.12),   # 0.07 more: costs robustness
               ("cnn5", "random mask 80%", "ticket dense"): (0.96, 0.05),  # the same drop
               ("lite0", "dense", ""): ([0.97, 0.97, 0.6, 0.97, 0.97, 0.97], 0.05),  # seed 2 never learned
               ("lite0", "global 20% 1-shot", "dense"): (0.95, 0.2)}, p)
    drops = robustness.drops(t, p)
    row = drops[(drops.label == "IMP ticket 80%") & (drops.seed == 0)].iloc[0]
    assert abs(row["drop"] - 0.12) < 0.01 and abs(row["clean"] - 0.97) < 1e-9
    v = robustness.verdicts(p, t).set_index("variant")
    assert v.loc["IMP ticket 80%", "verdict"] == "holds"
    assert abs(v.loc["IMP ticket 80%", "stat"] - 0.07) < 0.01 and v.loc["IMP ticket 80%", "seeds"] == 6
    assert v.loc["random mask 80%", "verdict"] == "does not hold"
    assert v.loc["global 20% 1-shot", "verdict"].startswith("not testable: the reference (lite0 dense) did not learn")


def test_each_video_gives_its_evenly_spaced_crops_in_frame_order_and_real_videos_balance_the_classes():
    p = dataclasses.replace(profile(), robustness=dataclasses.replace(profile().robustness, crops_per_video=3))
    index = pd.DataFrame({"media_id": ["b"] * 8 + ["a"] * 4 + ["c"] * 2, "split": "test", "label": 1,
                          "frame": [*range(8, 0, -1), 0, 5, 10, 15, 3, 4], "crop": [f"c{i}" for i in range(14)]})
    store = type("Store", (), {"index": pd.concat([index, index.assign(split="train")])})()
    picked = robustness.test_crops(p, store)
    # ranks linspace(0, n - 1, 3) rounded: a (4 crops) 0, 2, 3; b (8) 0, 4, 7; c (2) both
    assert list(zip(picked.media_id, picked.frame)) == [("a", 0), ("a", 10), ("a", 15), ("b", 1), ("b", 5), ("b", 8),
                                                        ("c", 3), ("c", 4)]
    # One real video beside the three fake ones: it gives 3 x 1 crops at 1 per fake video, all 4 at 2 (of 4)
    real = pd.DataFrame({"media_id": "r", "split": "test", "label": 0, "frame": [0, 1, 2, 3], "crop": list("wxyz")})
    store.index = pd.concat([index, real])
    p1 = dataclasses.replace(p, robustness=dataclasses.replace(p.robustness, crops_per_video=1))
    picked = robustness.test_crops(p1, store)
    assert list(picked[picked.media_id == "r"].frame) == [0, 2, 3] and len(picked) == 6
    p2 = dataclasses.replace(p, robustness=dataclasses.replace(p.robustness, crops_per_video=2))
    assert list(robustness.test_crops(p2, store).query("media_id == 'r'").frame) == [0, 1, 2, 3]
    p0 = dataclasses.replace(p, robustness=dataclasses.replace(p.robustness, crops_per_video=0))
    assert len(robustness.test_crops(p0, store)) == 18


def test_only_the_tickets_found_on_ffpp_are_scored_on_its_crops(monkeypatch):
    """Standard finds tickets on FF++ and on OpenForensics with the same ids; notebooks 06 and 08 score FF++ crops,
    so they take the FF++ tickets only (mixed in, two runs would share each id and seed)."""
    from dflite.studies import gradcam
    from dflite.studies.lottery import results_file as tickets_file
    from dflite.studies.structured import results_file as structured_file

    p = resolve("quick")
    rows = [{"model": "cnn5", "dataset": f"synthetic-{kind}", "arm": arm, "level": level, "sparsity": level / 5,
             "seed": seed, "run": f"{kind}/{arm}{level}/{seed}"}
            for kind in ("ffpp", "openforensics") for arm, level in [("dense", 0), ("imp", 4), ("random_mask", 4)]
            for seed in (0, 1)]
    tickets_file(p).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(tickets_file(p), index=False)
    pd.DataFrame(columns=["model", "match"]).to_csv(structured_file(p), index=False)
    monkeypatch.setattr(gradcam, "final_models", lambda *a, **k: [])
    found = gradcam.models(p)
    assert len(found) == 6 and all(run.startswith("ffpp/") for run in found.run)


def test_whole_video_claims_use_the_video_families_and_quick_runs_none():
    p = profile()
    video = dataclasses.replace(p, robustness=dataclasses.replace(
        p.robustness, families={}, video_families={"jpeg": (10, 40, 70), "blur": (0.5, 1.0, 2.0), "noise": ()}))
    crops = dataclasses.replace(video, robustness=dataclasses.replace(video.robustness,
                                                                      families=video.robustness.video_families))
    t = table({("cnn5", "ticket dense", ""): (0.97, 0.05),
               ("cnn5", "IMP ticket 80%", "ticket dense"): (0.97, 0.12)}, crops)
    assert list(robustness.families(video, video=True)) == ["jpeg", "blur"]  # a family given no strength is left out
    assert robustness.video_conditions(video)[0] == ("none", 0.0) and len(robustness.video_conditions(video)) == 7
    v = robustness.verdicts(video, t, video=True).set_index("variant")
    assert v.loc["IMP ticket 80%", "verdict"] == "holds" and v.loc["IMP ticket 80%", "metric"] == "video AUC drop"
    assert v.loc["IMP ticket 80%", "claim"].endswith("of whole videos")
    quick = resolve("quick")
    assert robustness.video_conditions(quick) == [] and robustness.run_videos(quick) is None
    assert robustness.video_verdicts(quick, None).empty


def test_a_degradation_acts_on_whole_frames_before_the_face_step(tiny_set):
    from dflite import detect
    from dflite.config import ExtractConfig

    video = next((tiny_set.ffpp_root / "manipulated_sequences/Deepfakes/c23/videos").glob("*.mp4"))
    cfg, times = ExtractConfig(frames=4, size=48), dict.fromkeys(detect.STAGES, 0.0)
    _, got, clean, faces = detect.media_faces(video, cfg, times)
    _, got0, same, faces0 = detect.media_faces(video, cfg, times, degraded=("blur", 0, 0))
    assert got0 == got and all((a == b).all() for a, b in zip(clean, same))  # strength 0: untouched
    _, _, dark, _ = detect.media_faces(video, cfg, times, degraded=("exposure", 0.5, 0))
    assert all(abs(d.mean() - c.mean() / 2) < 1 for c, d in zip(clean, dark))  # whole frames, not crops
    _, _, _, dim = detect.media_faces(video, cfg, times, degraded=("exposure", 0.5, 0))
    assert [f[0] for f in dim] and all(crop.mean() < 0.6 * c[-1].mean() for (*_, crop), c in zip(dim, faces))
