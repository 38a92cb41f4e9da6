"""Drift arithmetic (src/audit/drift.py) against hand-computed PSI cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from src.audit import drift


def test_psi_of_two_bins_by_hand():
    # e = (0.5, 0.5), a = (0.25, 0.75): (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5)
    assert drift.psi_from_counts([50, 50], [25, 75]) == pytest.approx(0.274653072, abs=1e-8)
    assert drift.psi_from_counts([50, 50], [25, 75]) == pytest.approx(drift.psi_from_counts([25, 75], [50, 50]))


def test_identical_distributions_have_zero_psi():
    assert drift.psi_from_counts([10, 30, 60], [1, 3, 6]) == pytest.approx(0.0, abs=1e-12)
    values = np.arange(1000.0)
    assert drift.psi(values, values[::-1]) == pytest.approx(0.0, abs=1e-12)


def test_an_emptied_bin_is_floored_not_infinite():
    # e = (1, 0 -> 1e-4), a = (0.5, 0.5): (0.5 - 1) ln(0.5) + (0.5 - 1e-4) ln(0.5 / 1e-4)
    value = drift.psi_from_counts([100, 0], [50, 50])
    assert math.isfinite(value)
    assert value == pytest.approx(0.5 * math.log(2) + 0.4999 * math.log(5000), abs=1e-9)
    assert value == pytest.approx(4.604318467, abs=1e-8)


def test_an_empty_side_gives_zero():
    assert drift.psi_from_counts([0, 0], [3, 4]) == 0.0
    assert drift.psi(np.array([1.0, 2.0]), np.array([np.nan, np.nan])) == 0.0


def test_numeric_bins_are_the_reference_deciles():
    reference = np.arange(100.0)  # deciles 9.9, 19.8, ..., 89.1: ten bins of 10
    expected, actual = drift.counts(reference, np.full(20, 95.0))
    assert expected.tolist() == [10] * 10
    assert actual.tolist() == [0] * 9 + [20]
    # nine bins from 0.1 to 1e-4, one from 0.1 to 1: 9 (0.1 - 1e-4) ln(1000) + 0.9 ln(10)
    assert drift.psi(reference, np.full(20, 95.0)) == pytest.approx(8.283089355, abs=1e-8)


def test_unknowns_are_left_out_of_the_psi():
    reference = np.arange(100.0)
    with_unknowns = np.concatenate([reference, np.full(100, np.nan)])
    assert drift.psi(reference, with_unknowns) == pytest.approx(0.0, abs=1e-12)


def test_categorical_psi_by_hand():
    reference = pd.Series(["a", "a", "b", "b"])
    current = pd.Series(["a", "b", "b", "b", None])
    assert drift.psi(reference, current, categorical=True) == pytest.approx(0.274653072, abs=1e-8)
    expected, actual = drift.counts(reference, pd.Series(["c", "c"]), categorical=True)  # a new category
    assert expected.tolist() == [2, 2, 0] and actual.tolist() == [0, 0, 2]


def test_feature_drift_flags_sorts_and_reports_unknowns():
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0), "c": ["a", "b"] * 50})
    current = pd.DataFrame({"x": np.full(50, 95.0), "y": np.r_[np.arange(0.0, 100.0, 2.0)[:25], [np.nan] * 25],
                            "c": ["a", "b"] * 25})  # fmt: skip
    rows = drift.feature_drift(reference, current, [("y", "s2", False), ("x", "s1", False), ("c", "s3", True)], 0.25)
    assert [r["feature"] for r in rows][0] == "x" and rows[0]["alert"] and rows[0]["system"] == "s1"
    by = {r["feature"]: r for r in rows}
    assert not by["c"]["alert"] and by["c"]["psi"] == 0.0
    assert by["y"]["unknown_share_current"] == 0.5 and by["y"]["unknown_share_reference"] == 0.0


def test_a_season_the_training_months_already_showed_is_no_alert():
    # Month 2 of the training window holds the raise: its own PSI against the pool is the usual.
    values = np.r_[np.zeros(100), np.full(100, 10.0)]
    reference = pd.DataFrame({"as_of": ["2024-01-01"] * 100 + ["2024-02-01"] * 100, "v": values})
    seasonal = pd.DataFrame({"v": np.full(100, 10.0)})  # like the raise month
    row = drift.feature_drift(reference, seasonal, [("v", "s", False)], 0.25)[0]
    assert row["psi"] >= 0.25 and row["psi"] == pytest.approx(row["psi_usual"]) and not row["alert"]
    new = pd.DataFrame({"v": np.full(100, 5.0)})  # never seen in any training month
    row = drift.feature_drift(reference, new, [("v", "s", False)], 0.25)[0]
    assert row["psi"] > row["psi_usual"] and row["alert"]


def test_a_lost_source_table_is_an_alert():
    present = pd.DataFrame({
        "table": ["school", "school", "school", "welfare", "welfare", "welfare"],
        "as_of": ["2024-01-01", "2024-02-01", "2024-06-01"] * 2,
        "share": [0.4, 0.6, 0.0, 0.9, 0.9, 0.88],
    })  # fmt: skip
    rows = {r["table"]: r for r in drift.source_shares(present, "2024-06-01", ["2024-01-01", "2024-02-01"], 0.5)}
    assert rows["school"]["share_reference"] == pytest.approx(0.5) and rows["school"]["relative_drop"] == 1.0
    assert rows["school"]["alert"]
    assert rows["welfare"]["relative_drop"] == pytest.approx(1 - 0.88 / 0.9, abs=1e-6) and not rows["welfare"]["alert"]


def test_score_drift_alerts_on_the_mean_shift_alone():
    reference = np.linspace(0.0, 0.2, 1001)
    shifted = drift.score_drift(reference, reference + 0.005, psi_threshold=10.0, mean_shift=0.004)
    assert shifted["mean_shift"] == pytest.approx(0.005, abs=1e-6) and shifted["alert"]
    same = drift.score_drift(reference, reference, psi_threshold=0.1, mean_shift=0.03)
    assert same["psi"] == 0.0 and not same["alert"]


def test_realised_vs_expected_by_hand():
    predictions = pd.DataFrame({
        "as_of": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 3),
        "score": [0.6, 0.4, 0.9, 0.1, 0.5, 0.5, 0.2],
        "label": [1, 0, 1, 1, 0, 0, 1],
        "selected": [True, True, False, False, True, True, False],
    })  # fmt: skip
    rows = drift.realised_vs_expected(predictions, gap=0.3)
    assert [r["as_of"] for r in rows] == ["2025-01-01", "2025-02-01"]
    assert rows[0]["n_listed"] == 2 and rows[0]["expected_precision"] == 0.5 and rows[0]["realised_precision"] == 0.5
    assert not rows[0]["alert"]
    assert rows[1]["difference"] == -0.5 and rows[1]["alert"]
