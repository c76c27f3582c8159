"""The verdict rule: paired t over seeds against a stated margin, Holm over a table's claims; its error rates
under a simulated null, its power on a planted effect, and every verdict kind."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dflite.analysis import stats
from dflite.analysis.stats import Claim, holm, judge, t_interval, t_test


def _table(rng, seeds: int, claims: int, effect: float, margin: float, sd: float) -> pd.DataFrame:
    """One verdict table: `claims` claims whose paired per-seed values are margin + effect + noise. The two
    arms share a per-seed offset (the seed's initialisation), which pairing removes."""
    rows = []
    for k in range(claims):
        shared = rng.normal(0, 0.05, seeds)                     # what a seed does to both arms
        a = 0.9 + shared + effect + margin + rng.normal(0, sd / math.sqrt(2), seeds)
        b = 0.9 + shared + rng.normal(0, sd / math.sqrt(2), seeds)
        rows.append({"claim": Claim(f"c{k}", margin), "values": a - b})
    return judge(rows)


@pytest.mark.parametrize("seeds", [2, 3, 6])
def test_under_no_true_difference_false_holds_stay_within_five_percent(seeds):
    rng = np.random.default_rng(seeds)
    single = pd.concat([_table(rng, seeds, 1, 0.0, 0.0, 0.01) for _ in range(1000)])
    assert (single.verdict == "holds").mean() <= 0.05       # one claim at a time: alpha / 2 in one direction
    families = [_table(rng, seeds, 12, 0.0, -0.01, 0.01) for _ in range(200)]  # a notebook's dozen claims
    assert np.mean([(f.verdict == "holds").any() for f in families]) <= 0.05


def test_the_old_rule_would_have_failed_the_null_check():
    # "holds when the difference of means exceeds the larger sd": 16.6 % false holds at 2 seeds (issue text).
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (20000, 2)), rng.normal(0, 1, (20000, 2))
    old = (a.mean(1) - b.mean(1)) > np.maximum(a.std(1, ddof=1), b.std(1, ddof=1))
    assert old.mean() > 0.1


def test_a_planted_effect_of_twice_the_margin_is_found():
    rng = np.random.default_rng(1)
    margin = 0.01
    found = [_table(rng, 6, 1, 2 * margin, margin, 0.004).verdict.iloc[0] for _ in range(150)]
    assert np.mean([v == "holds" for v in found]) >= 0.8
    against = [_table(rng, 6, 1, -2 * margin, margin, 0.004).verdict.iloc[0] for _ in range(150)]
    assert np.mean([v == "does not hold" for v in against]) >= 0.8


def test_every_verdict_kind_is_reached():
    rows = [{"claim": Claim("up", 0.0), "values": np.array([0.05, 0.06, 0.055, 0.052])},
            {"claim": Claim("down", 0.0), "values": np.array([-0.05, -0.06, -0.055, -0.052])},
            {"claim": Claim("noise", 0.0), "values": np.array([0.05, -0.04, 0.01, -0.02])},
            {"claim": Claim("one seed", 0.0), "values": np.array([0.05])},
            {"claim": Claim("bad ref", 0.0), "values": np.array([0.05, 0.06]),
             "untestable": "the reference did not learn"}]
    verdicts = judge(rows).set_index("claim")["verdict"]
    assert verdicts["up"] == "holds" and verdicts["down"] == "does not hold" and verdicts["noise"] == "inconclusive"
    assert verdicts["one seed"] == "not testable: fewer than two seeds"
    assert verdicts["bad ref"] == "not testable: the reference did not learn"


def test_a_margin_moves_the_bar():
    values = np.array([-0.004, -0.006, -0.005, -0.0055])            # about half a point worse, consistently
    assert judge([{"claim": Claim("beats", 0.0), "values": values}]).verdict[0] == "does not hold"
    assert judge([{"claim": Claim("loses at most 1 pt", -0.01), "values": values}]).verdict[0] == "holds"


def test_holm_is_step_down_and_leaves_untestable_claims_out():
    adjusted, rejected, level = holm([0.01, 0.04, math.nan, 0.03], alpha=0.05)
    assert list(adjusted[[0, 1, 3]]) == pytest.approx([0.03, 0.06, 0.06])
    assert list(rejected) == [True, False, False, False] and math.isnan(adjusted[2])
    assert level[0] == pytest.approx(0.05 / 3) and level[3] == pytest.approx(0.05 / 2)


def test_the_ci_is_the_t_interval_and_agrees_with_the_test():
    x = np.array([0.01, 0.03, 0.02, 0.04])
    lo, hi = t_interval(x, 0.95)
    assert (lo, hi) == pytest.approx((0.025 - 3.182446 * x.std(ddof=1) / 2, 0.025 + 3.182446 * x.std(ddof=1) / 2))
    assert t_test(x, lo)["p"] == pytest.approx(0.05) and t_test(x, 0.0)["p"] < 0.05 < t_test(x, 0.01)["p"]


def test_paired_differences_use_the_seeds_both_arms_have():
    a, b = pd.Series({0: 0.9, 1: 0.8, 2: 0.7}), pd.Series({1: 0.75, 2: 0.6, 3: 0.5})
    assert list(stats.paired(a, b)) == pytest.approx([0.05, 0.1])
    assert list(stats.paired(a, 0.5)) == pytest.approx([0.4, 0.3, 0.2])
    reason = stats.unlearned(pd.Series({0: 0.97, 1: 0.505}), 0.75)
    assert reason == "the reference did not learn (seed 1 AUC 0.505 < 0.75)"
    assert stats.unlearned(pd.Series({0: 0.97, 1: 0.9}), 0.75) == ""
    # just under the floor: enough digits to show it is under
    assert stats.unlearned(pd.Series({0: 0.7497}), 0.75) == "the reference did not learn (seed 0 AUC 0.7497 < 0.75)"
