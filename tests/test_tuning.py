"""Recipes are chosen on validation: the search's candidates and rule, and the committed search agrees with the
quick profile's recipes."""
import pandas as pd
import pytest
from dflite import config, paths
from dflite.studies import tuning

QUICK = config.get_profile("quick")
PUBLISHED = paths.ROOT / "results" / "quick" / "recipe_search.csv"


def test_candidates_are_the_recipe_its_lr_halved_and_doubled_and_an_fp32_twin_where_it_trains_in_bf16():
    got = tuning.candidates(QUICK, "lottery", "cnn5")
    base = QUICK.lottery_recipe("cnn5")
    assert got["profile"] == base
    assert got["lr x0.5"].lr == pytest.approx(base.lr / 2) and got["lr x2"].lr == pytest.approx(base.lr * 2)
    assert base.cpu_bf16 and got["profile, fp32"] == config.override(base, cpu_bf16=False)
    assert "profile, fp32" not in tuning.candidates(QUICK, "baseline", "efficientnet_b0")  # an fp32 recipe


def row(candidate, val, low=0.0, bf16=False, recipe="baseline", model="cnn5"):
    return {"recipe": recipe, "model": model, "candidate": candidate, "cpu_bf16": bf16, "seeds": 3,
            "val_auc": val, "val_auc_ci_low": low}


def test_the_best_mean_validation_auc_is_chosen_and_an_fp32_twin_only_checks_the_precision():
    table = pd.DataFrame([row("profile", 0.90, bf16=True), row("lr x0.5", 0.93, bf16=True),
                          row("lr x2", 0.80, bf16=True), row("profile, fp32", 0.99, low=0.95),
                          row("profile", 0.7, model="meso4"), row("lr x2", 0.7, model="meso4")])
    out = tuning.choices(table)
    assert list(out[out.chosen].candidate) == ["lr x0.5", "profile"]  # a tie keeps the first listed
    close = tuning.choices(pd.DataFrame([row("lr x0.5", 0.9995), row("profile", 0.9990), row("lr x2", 0.9)]))
    assert list(close[close.chosen].candidate) == ["profile"]  # better by no more than TIE: the profile's stays
    past = tuning.choices(pd.DataFrame([row("lr x0.5", 0.9990 + 1.5 * tuning.TIE), row("profile", 0.9990)]))
    assert list(past[past.chosen].candidate) == ["lr x0.5"]
    assert out.loc[0, "within_fp32_ci"] is False  # bf16 0.90 under the fp32 twin's low end 0.95
    assert out.loc[4, "within_fp32_ci"] == ""  # no twin
    off = tuning.disagreements(out)
    assert off == ["baseline cnn5: lr x0.5", "baseline cnn5: bf16 below the fp32 twin's CI"]


def test_the_committed_search_chose_the_quick_profiles_recipes():
    """results/quick/recipe_search.csv (benchmarks/recipe_search.py): every recipe the quick notebooks train with
    was searched, the chosen candidate is the profile's own, and bf16 learns within fp32's CI where it is used."""
    table = pd.read_csv(PUBLISHED, keep_default_na=False)
    searched = set(zip(table.recipe, table.model))
    wanted = {("baseline", m) for m in QUICK.baselines.models} | {
        ("lottery", m) for m in QUICK.lottery.models if QUICK.lottery_recipe(m) != QUICK.recipe(m)}
    assert searched == wanted
    assert tuning.disagreements(table.assign(chosen=table.chosen.astype(str) == "True")) == []
    for r in table[table.candidate == "profile"].itertuples():
        cfg = tuning.profile_recipe(QUICK, r.recipe, r.model)
        assert (r.input_size, r.epochs, r.epoch_size, r.batch_size, str(r.cpu_bf16)) == \
            (cfg.input_size, cfg.epochs, cfg.epoch_size, cfg.batch_size, str(cfg.cpu_bf16)), (r.recipe, r.model)
        assert r.lr == pytest.approx(cfg.lr)
