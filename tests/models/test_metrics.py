"""The metric registry against hand-computed cases (ties included) and scikit-learn."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from src.models import metrics


def test_auc_roc_hand_case_with_a_tied_pair():
    # pairs (pos, neg): (.8,.8) tie = 1/2, (.8,.1) = 1, (.3,.8) = 0, (.3,.1) = 1 -> 2.5 / 4
    assert metrics.compute("auc_roc", [1, 0, 1, 0], [0.8, 0.8, 0.3, 0.1]) == pytest.approx(0.625)


def test_auc_pr_hand_cases():
    # thresholds .9 (P=1, R=.5), .8 (P=.5, R=.5), .7 (P=2/3, R=1) -> .5 x 1 + .5 x 2/3
    assert metrics.compute("auc_pr", [1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(5 / 6)
    # tied rows form one threshold: .9 (P=0, R=0), .5 (P=2/3, R=1) -> 2/3
    assert metrics.compute("auc_pr", [0, 1, 1], [0.9, 0.5, 0.5]) == pytest.approx(2 / 3)


def test_brier_and_ece_hand_cases():
    y = [0, 0, 1, 1]
    p = [0.05, 0.15, 0.15, 0.95]
    assert metrics.compute("brier", y, p) == pytest.approx(
        (0.05**2 + 0.15**2 + 0.85**2 + 0.05**2) / 4
    )
    # bins: [0,.1): .05 vs 0; [.1,.2): .15 vs .5 (2 rows); [.9,1]: .95 vs 1
    assert metrics.compute("ece", y, p, ece_bins=10) == pytest.approx((0.05 + 2 * 0.35 + 0.05) / 4)
    # with 2 bins: [0,.5): 3 rows, mean .1167 vs 1/3; [.5,1]: .95 vs 1
    expected = (3 * abs(0.35 / 3 - 1 / 3) + 0.05) / 4
    assert metrics.compute("ece", y, p, ece_bins=2) == pytest.approx(expected)


def test_calibration_table_puts_one_in_the_last_bin():
    table = metrics.calibration_table([0, 1, 1], [0.0, 1.0, 0.999], n_bins=4)
    assert table["bin"].tolist() == [0, 3]
    assert table["n"].tolist() == [1, 2]


@pytest.mark.parametrize("seed", range(8))
def test_threshold_free_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 200))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    score = np.round(rng.random(n), 1)  # coarse: many ties
    assert metrics.compute("auc_roc", y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert metrics.compute("auc_pr", y, score) == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )
    assert metrics.compute("brier", y, score) == pytest.approx(
        brier_score_loss(y, score), abs=1e-12
    )


def test_precision_and_recall_at_a_tied_cut_are_expected_values():
    y = [1, 0, 1, 0, 0]
    score = [0.9, 0.5, 0.5, 0.5, 0.1]
    # top 2: the .9 (a positive) plus one of three tied rows, one of which is positive
    assert metrics.selection_probability(score, k=2).tolist() == pytest.approx(
        [1, 1 / 3, 1 / 3, 1 / 3, 0]
    )
    assert metrics.compute("precision@2_abs", y, score) == pytest.approx((1 + 1 / 3) / 2)
    assert metrics.compute("recall@2_abs", y, score) == pytest.approx((1 + 1 / 3) / 2)
    assert metrics.compute("precision_at_k", y, score, k=2) == pytest.approx(2 / 3)
    # lift = precision / prevalence (2 / 5)
    assert metrics.compute("lift@2_abs", y, score) == pytest.approx((2 / 3) / 0.4)
    # a cut that does not split the tie is exact
    assert metrics.compute("precision@4_abs", y, score) == pytest.approx(2 / 4)


def _all_tie_breaks_precision(y, score, k):
    """Brute force: average precision@k over every order of the rows (stable sort by score)."""
    values = []
    for order in itertools.permutations(range(len(y))):
        ranked = sorted(order, key=lambda i: -score[i])
        values.append(sum(y[i] for i in ranked[:k]) / k)
    return float(np.mean(values))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_tie_rule_equals_the_average_over_all_tie_breaks(k):
    y = [1, 0, 1, 1, 0, 0]
    score = [0.7, 0.7, 0.7, 0.4, 0.4, 0.1]
    assert metrics.compute(f"precision@{k}_abs", y, score) == pytest.approx(
        _all_tie_breaks_precision(y, score, k)
    )


def test_percent_cutoffs_round_up_and_avoid_float_noise():
    assert metrics.group_list_sizes(None, 200, metrics.pct_rule(5)) == {None: 10}
    assert metrics.group_list_sizes(["a"] * 3 + ["b"] * 30, 33, metrics.pct_rule(10)) == {
        "a": 1,
        "b": 3,
    }
    y = np.r_[np.ones(10), np.zeros(190)]
    score = np.linspace(1, 0, 200)
    assert metrics.compute("precision@5_pct", y, score) == pytest.approx(1.0)
    # 50 % of 3 rows -> 2 rows
    assert metrics.compute("precision@50_pct", [1, 0, 0], [0.9, 0.5, 0.1]) == pytest.approx(0.5)


def test_top_k_is_chosen_within_each_group_and_pooled():
    y = [1, 0, 0, 0, 1, 1]
    score = [0.9, 0.8, 0.1, 0.9, 0.8, 0.2]
    groups = ["jan", "jan", "jan", "feb", "feb", "feb"]
    # jan top 1 = positive, feb top 2 = {neg, pos}: 2 hits of 3 slots; 3 positives in all
    k = {"jan": 1, "feb": 2}
    assert metrics.compute("precision_at_k", y, score, k=k, groups=groups) == pytest.approx(2 / 3)
    assert metrics.compute("recall_at_k", y, score, k=k, groups=groups) == pytest.approx(2 / 3)
    # a list larger than its group is capped at the group size
    assert metrics.compute("precision@10_abs", y, score, groups=groups) == pytest.approx(3 / 6)


def test_metrics_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    score = np.round(rng.random(120), 1)
    groups = np.repeat(["a", "b", "c"], 40)
    perm = rng.permutation(120)
    for name in ["auc_roc", "auc_pr", "ece", "precision@10_pct", "recall@7_abs", "lift_at_k"]:
        before = metrics.compute(name, y, score, groups=groups, k=9)
        after = metrics.compute(name, y[perm], score[perm], groups=groups[perm], k=9)
        assert before == pytest.approx(after, abs=1e-12), name


def test_jaccard_stability_hand_cases():
    # month 1 list = {1}; month 2: ids 1 and 2 tie for one place -> E|A and B| = .5, J = .5 / 1.5
    ids = [1, 2, 1, 2, 3]
    months = ["m1", "m1", "m2", "m2", "m2"]
    score = [0.9, 0.5, 0.5, 0.5, 0.1]
    y = [0, 0, 0, 0, 0]
    assert metrics.compute(
        "list_stability", y, score, k=1, groups=months, ids=ids
    ) == pytest.approx(1 / 3)
    # identical top-2 lists -> 1; disjoint -> 0; the mean over consecutive pairs
    ids = ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
    months = ["1"] * 3 + ["2"] * 3 + ["3"] * 3
    score = [3, 2, 1, 3, 2, 1, 0, 0, 5]
    pairs = metrics.jaccard_between_groups(score, k=1, groups=months, ids=ids)
    assert pairs == {"2": pytest.approx(1.0), "3": pytest.approx(0.0)}
    y = [0] * 9
    assert metrics.compute(
        "list_stability", y, score, k=1, groups=months, ids=ids
    ) == pytest.approx(0.5)


def test_stability_compares_the_union_of_finer_lists_per_period():
    # lists = (month, county), k = 1 each; month 1 union {a, c}, month 2 union {a, d}: J = 1/3
    ids = ["a", "b", "c", "d", "a", "b", "c", "d"]
    months = ["1"] * 4 + ["2"] * 4
    lists = ["1x", "1x", "1y", "1y", "2x", "2x", "2y", "2y"]
    score = [0.9, 0.1, 0.8, 0.2, 0.9, 0.1, 0.2, 0.8]
    pairs = metrics.jaccard_between_groups(score, k=1, groups=lists, ids=ids, periods=months)
    assert pairs == {"2": pytest.approx(1 / 3)}
    assert metrics.compute(
        "list_stability", [0] * 8, score, k=1, groups=lists, ids=ids, periods=months
    ) == pytest.approx(1 / 3)
    # without periods, consecutive groups are compared: 1x-1y, 1y-2x, 2x-2y
    assert len(metrics.jaccard_between_groups(score, k=1, groups=lists, ids=ids)) == 3


def test_stability_needs_ids_and_one_row_per_id_and_month():
    with pytest.raises(ValueError, match="ids"):
        metrics.compute("list_stability", [0, 1], [0.1, 0.2], k=1, groups=["a", "b"])
    with pytest.raises(ValueError, match="at most once"):
        metrics.compute("list_stability", [0, 1], [0.1, 0.2], k=1, groups=["a", "a"], ids=[1, 1])


def test_registry_parses_names_and_rejects_unknown_ones():
    assert metrics.compute("recall@200_abs", [1, 0], [0.2, 0.1]) == 1.0
    assert metrics.compute(
        "precision@2.5_pct", [1] + [0] * 79, np.linspace(1, 0, 80)
    ) == pytest.approx(0.5)
    for bad in ["precision@5", "f1@5_pct", "precision@0_pct", "auc"]:
        with pytest.raises(KeyError):
            metrics.resolve(bad)
    assert metrics.standard_names((1, 5)) == [
        "auc_roc", "auc_pr", "brier", "ece", "observed_to_predicted", "precision_at_k", "recall_at_k", "lift_at_k",
        "precision@1_pct", "recall@1_pct", "lift@1_pct", "precision@5_pct", "recall@5_pct", "lift@5_pct",
    ]  # fmt: skip


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="NaN"):
        metrics.compute("auc_roc", [0, 1], [0.1, math.nan])
    with pytest.raises(ValueError, match="probabilities"):
        metrics.compute("brier", [0, 1], [0, 3])  # a rule count is not a probability
    with pytest.raises(ValueError, match="capacity"):
        metrics.compute("precision_at_k", [0, 1], [0.1, 0.2])
    assert math.isnan(metrics.compute("auc_roc", [1, 1], [0.1, 0.2]))
    assert math.isnan(metrics.compute("recall@1_abs", [0, 0], [0.1, 0.2]))


def test_observed_to_predicted_by_hand():
    # 2 positives in 4 rows (0.5) against a mean prediction of 0.625: the list over-states risk
    assert metrics.compute("observed_to_predicted", [1, 0, 1, 0], [0.9, 0.6, 0.5, 0.5]) == 0.8
    assert math.isnan(metrics.compute("observed_to_predicted", [], []))
