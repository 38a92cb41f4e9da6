"""The nowcast: hand-computed ratios, the as-of rule, the hazard correction, the model folder."""

from __future__ import annotations

import datetime as dt
import types

import numpy as np
import pandas as pd
import pytest

from src.errors import SafetynetError
from src.models import nowcast

D = dt.date
SETTINGS = types.SimpleNamespace(days=30, months=2, prior_events=0.0)


def test_kappa_counts_positives_only_so_sampling_negatives_does_not_move_it():
    days = np.array([5, 40, np.nan, 30, 170, np.nan])
    labels = np.array([1, 1, 0, 1, 1, 0])
    assert nowcast.kappa_from(days, labels, 30) == pytest.approx(2 / 4)
    assert nowcast.kappa_from(days[:5], labels[:5], 30) == pytest.approx(2 / 4)
    with pytest.raises(SafetynetError, match="no labelled outcome"):
        nowcast.kappa_from(days[[2, 5]], labels[[2, 5]], 30)


def test_window_dates_read_only_what_the_scoring_date_has_seen():
    months = [D(2025, m, 1) for m in range(1, 8)]
    # 2025-06-01 + 30 days is after 2025-07-01 (30-day June), 2025-05-01 + 30 days is before
    assert nowcast.window_dates(D(2025, 7, 1), months, 30, 2) == [D(2025, 5, 1), D(2025, 6, 1)]
    # February: 2025-02-01 + 30 days = 2025-03-03 > 2025-03-01, so January is the latest
    assert nowcast.window_dates(D(2025, 3, 1), months, 30, 2) == [D(2025, 1, 1)]
    assert nowcast.window_dates(D(2025, 7, 1), months, 30, 0) == []


def test_ratio_is_observed_over_expected_early_outcomes_shrunk_by_the_prior():
    proba = np.array([0.5, 0.5, 0.2, 0.2, 0.1, 0.5])  # sum 2.0
    early = np.array([1, 0, 0, 0, 0, 0])
    # kappa 0.25: the model expects 0.25 * 2.0 = 0.5 early outcomes; one was seen
    assert nowcast.level_ratio(early, proba, 0.25, 0.0) == pytest.approx(2.0)
    assert nowcast.level_ratio(early, proba, 0.25, 0.5) == pytest.approx(1.5 / 1.0)
    assert nowcast.level_ratio(early[:0], proba[:0], 0.25, 30.0) == 1.0  # nothing seen: no correction


def test_ratios_per_target_use_their_own_window():
    rows = pd.DataFrame({
        "as_of": pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 4 + ["2025-03-01"] * 4),
        "days_to_outcome": [3, np.nan, np.nan, 90, 10, 20, np.nan, np.nan, np.nan, np.nan, np.nan, 5],
    })
    proba = np.full(12, 0.25)  # one expected outcome per date at kappa 1
    out = nowcast.ratios(rows, proba, [D(2025, 4, 1)], 1.0, SETTINGS)
    # April's window: February and March (March 1 + 30 days = March 31 <= April 1)
    assert out[D(2025, 4, 1)]["from"] == ["2025-02-01", "2025-03-01"]
    assert out[D(2025, 4, 1)]["early_outcomes"] == 3
    assert out[D(2025, 4, 1)]["ratio"] == pytest.approx(3 / 2)


def test_correction_scales_the_hazard_and_keeps_the_order():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    assert nowcast.correct(p, 1.0) == pytest.approx(p)
    half = nowcast.correct(p, 0.5)
    assert half[2] == pytest.approx(1 - np.sqrt(0.5))  # 1 - (1 - 0.5) ** 0.5
    assert np.all(np.diff(half) > 0) and half[0] == 0.0 and half[-1] <= 1.0
    # a small probability moves by about the ratio
    assert nowcast.correct(np.array([0.01]), 0.8)[0] == pytest.approx(0.008, rel=0.01)


def test_lookup_corrects_listed_dates_only():
    table = nowcast.to_json(0.2, SETTINGS, {D(2025, 5, 1): {"ratio": 0.8, "from": [], "rows": 1,
                                                            "early_outcomes": 1}})  # fmt: skip
    got = nowcast.ratio_lookup(table, pd.Series(pd.to_datetime(["2025-05-01", "2025-06-01"])))
    assert got.tolist() == [0.8, 1.0]
    assert nowcast.ratio_lookup({}, pd.Series(pd.to_datetime(["2025-05-01"]))).tolist() == [1.0]


def test_check_refuses_an_incomplete_or_non_positive_file():
    assert nowcast.check({}, "x") == {}
    with pytest.raises(SafetynetError, match="'kappa' is missing"):
        nowcast.check({"days": 30, "months": 2, "ratios": {}}, "nowcast.json")
    bad = nowcast.to_json(0.2, SETTINGS, {D(2025, 5, 1): {"ratio": 0.0}})
    with pytest.raises(SafetynetError, match="2025-05-01"):
        nowcast.check(bad, "nowcast.json")
