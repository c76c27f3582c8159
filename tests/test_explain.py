"""Grad-CAM scores against manipulation masks: hand-made maps with known answers, and a model whose
evidence sits in a known place."""
import math

import numpy as np
import pytest
import torch
from dflite.analysis.explain import energy_ratio, gradcams, mask_scores, pointing, road
from dflite.config import resolve
from torch import nn

S = 32


@pytest.fixture
def mask():
    m = np.zeros((S, S), bool)
    m[4:16, 8:24] = True  # 12 x 16 of 32 x 32: area share 0.1875
    return m


def test_a_map_equal_to_the_mask_scores_high(mask):
    cam = mask.astype(float)
    assert energy_ratio(cam, mask) == pytest.approx(1 / mask.mean())   # all energy inside: 1 / area share
    assert pointing(cam, mask) == 1.0


def test_a_uniform_map_scores_chance(mask):
    cam = np.full((S, S), 0.4)
    assert energy_ratio(cam, mask) == pytest.approx(1.0)
    assert pointing(cam, mask) == pytest.approx(mask.mean())            # every pixel is a peak


def test_a_map_outside_the_mask_scores_below_one(mask):
    cam = (~mask).astype(float)
    assert energy_ratio(cam, mask) == 0.0
    assert pointing(cam, mask) == 0.0
    # A soft map that leans outside but leaks inside: between 0 and 1.
    leak = np.where(mask, 0.2, 1.0)
    assert 0 < energy_ratio(leak, mask) < 1


def test_a_peak_inside_a_broad_map(mask):
    yy, xx = np.mgrid[:S, :S]
    cam = np.exp(-((yy - 10) ** 2 + (xx - 16) ** 2) / 40.0)          # centred in the mask
    assert energy_ratio(cam, mask) > 2 and pointing(cam, mask) == 1.0
    cam = np.exp(-((yy - 28) ** 2 + (xx - 4) ** 2) / 40.0)            # centred far outside it
    assert energy_ratio(cam, mask) < 0.5 and pointing(cam, mask) == 0.0


def test_undefined_cases_are_nan(mask):
    assert math.isnan(energy_ratio(np.zeros((S, S)), mask))          # Grad-CAM found nothing
    assert math.isnan(pointing(np.zeros((S, S)), mask))
    assert math.isnan(energy_ratio(np.ones((S, S)), np.zeros((S, S), bool)))
    assert math.isnan(energy_ratio(np.ones((S, S)), np.ones((S, S), bool)))
    table = mask_scores(np.stack([mask.astype(float), np.zeros((S, S))]), np.stack([mask, mask]))
    assert table["pointing"].tolist()[0] == 1.0 and math.isnan(table["energy_ratio"][1])


class Bright(nn.Module):
    """A detector whose fake logit is the mean of a positive 1x1 conv: the evidence is where the input is bright."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        nn.init.constant_(self.conv.weight, 0.5)
        nn.init.zeros_(self.conv.bias)
        self.fc = nn.Linear(4, 1)
        nn.init.constant_(self.fc.weight, 1.0)
        self.dflite_spec = {"name": "bright", "input_size": S}

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_gradcam_of_the_fake_logit_finds_where_the_evidence_is(mask):
    images = torch.zeros(3, 3, S, S, dtype=torch.uint8)
    images[:, :, torch.from_numpy(mask)] = 255           # a bright patch exactly on the mask
    cams = gradcams(Bright(), images, layer_name="conv")
    assert cams.shape == (3, S, S) and cams.min() >= 0 and cams.max() <= 1
    scores = mask_scores(cams, np.stack([mask] * 3))
    assert (scores["energy_ratio"] > 3).all() and (scores["pointing"] == 1).all()
    # Move the patch: the map follows it, and the scores against the old mask fall below chance.
    moved = torch.zeros_like(images)
    moved[:, :, 20:30, 0:10] = 255
    away = mask_scores(gradcams(Bright(), moved, layer_name="conv"), np.stack([mask] * 3))
    assert (away["energy_ratio"] < 1).all() and (away["pointing"] == 0).all()


def test_road_is_reproducible_and_rewards_a_faithful_map(mask):
    images = torch.zeros(2, 3, S, S, dtype=torch.uint8)
    images[:, :, torch.from_numpy(mask)] = 255
    model = Bright()
    cams = gradcams(model, images, layer_name="conv")
    good = road(model, images, cams)
    assert good.shape == (2,)
    np.testing.assert_allclose(good, road(model, images, cams), rtol=1e-6, atol=1e-9)  # the same noise draws
    # The inverted map removes the evidence last when it should remove it first.
    bad = road(model, images, 1 - cams)
    assert (good > bad).all()


def _per_crop(pruned_factor, seeds=(0, 1, 2), focus=0.3):
    """Per-crop scores of a dense CNN-5 and its 80 % ticket: the dense net's energy ratio is `focus` above the
    stronger baseline (the centre prior's 1.3; shuffled masks give 1.1), the ticket keeps `pruned_factor` of that."""
    import pandas as pd

    rows = []
    for seed in seeds:
        for method in ("Deepfakes", "FaceSwap"):
            for k in range(4):
                excess = focus + 0.02 * seed + 0.01 * k
                ids = {"study": "lottery", "model": "cnn5", "ratio": 0.0, "scope": "global", "steps": 1, "alpha": 0.0,
                       "match": "", "seed": seed, "method": method, "pointing": 0.5, "shuffled_energy_ratio": 1.1,
                       "shuffled_pointing": 0.3, "prior_energy_ratio": 1.3, "prior_pointing": 0.4}
                rows.append({**ids, "arm": "dense", "sparsity": 0.0, "energy_ratio": 1.3 + excess, "road": 0.1})
                rows.append({**ids, "arm": "imp", "sparsity": 0.8, "energy_ratio": 1.3 + pruned_factor * excess,
                             "road": float("nan")})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("factor, expected", [(1.0, "holds"), (0.5, "does not hold")])
def test_focus_verdicts_are_judged_against_the_baselines_not_a_uniform_map(factor, expected):
    from dflite.studies import gradcam

    quick = resolve("quick")
    table = gradcam.per_method_table(_per_crop(factor))
    assert set(table["n"]) == {4} and set(table["road_n"]) == {0, 4}
    verdicts = gradcam.verdicts(quick, table).set_index("variant")
    assert verdicts.loc["ticket dense", "verdict"] == "holds"   # 0.3 above the stronger baseline, every seed
    assert verdicts.loc["IMP ticket 80%", "verdict"] == expected
    # Above a uniform map (energy 1) but not above the centre prior: no focus, and nothing to keep.
    unfocused = gradcam.verdicts(quick, gradcam.per_method_table(_per_crop(factor, focus=-0.3))).set_index("variant")
    assert unfocused.loc["ticket dense", "verdict"] == "does not hold"
    assert unfocused.loc["IMP ticket 80%", "verdict"].startswith("not testable: its dense net does not look")
    one_seed = gradcam.verdicts(quick, gradcam.per_method_table(_per_crop(factor, seeds=(0,)))).set_index("variant")
    assert one_seed.loc["IMP ticket 80%", "verdict"] == "not testable: fewer than two seeds"


def test_the_centre_prior_beats_a_uniform_map_on_centred_masks_and_shuffling_keeps_no_mask():
    import pandas as pd
    from dflite.analysis.explain import centre_prior, shuffled

    mask = np.zeros((S, S), bool)
    mask[10:22, 10:22] = True  # a centred manipulation, as on face crops
    assert energy_ratio(centre_prior(S), mask) > 1.5 and energy_ratio(np.ones((S, S)), mask) == pytest.approx(1.0)
    rows = pd.DataFrame({"method": ["a"] * 5 + ["b"] * 3 + ["c"]})
    order = shuffled(rows, seed=3)
    assert all(order[i] != i for i in range(8)) and order[8] == 8        # a lone crop cannot be shuffled
    assert all(rows.method[order[i]] == rows.method[i] for i in range(9))  # within its method
    assert sorted(order[:5]) == [0, 1, 2, 3, 4] and list(order) == list(shuffled(rows, seed=3))


def test_the_cam_layer_has_a_map_that_can_localise():
    from dflite.analysis.explain import cam_layer
    from dflite.nets.models import create_model

    assert cam_layer(create_model("cnn5", input_size=48)) == "features.3.act"       # 6 x 6; features.4 is 3 x 3
    assert cam_layer(create_model("cnn5", input_size=128)) == "features.4.act"      # 8 x 8
    assert cam_layer(create_model("efficientnet_lite0", input_size=80)) == "blocks.2"  # 10 x 10


def test_the_crops_every_model_explains_have_masks(train_store):
    from dflite.studies import gradcam

    picked = gradcam.crops(resolve("quick"), train_store)
    test_fakes = train_store.index[(train_store.index.split == "test") & (train_store.index.label == 1)]
    assert len(picked) == min(len(test_fakes), 24 * test_fakes.method.nunique())
    assert set(picked["crop"]) <= set(test_fakes["crop"]) and picked["mask"].str.startswith("masks/").all()
    assert (picked.groupby("method")["road"].sum() <= 3).all()
    assert picked.equals(gradcam.crops(resolve("quick"), train_store))   # the same crops every time
