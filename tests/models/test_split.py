"""The temporal split never leaks: periods are ordered, gapped by a horizon and fully observed."""

import datetime as dt

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from src.errors import SafetynetError
from src.models.split import Split, make_split


def month_starts(first: str, n: int) -> list[dt.date]:
    return [d.date() for d in pd.date_range(first, periods=n, freq="MS")]


def test_default_layout_by_hand():
    dates = month_starts("2022-01-01", 30)  # 2022-01 .. 2024-06
    split = make_split(dates, dt.date(2024, 6, 30), 180, test_months=3, folds=4, fold_months=1)
    # observed: as_of + 180 d <= 2024-06-30  ->  up to 2024-01-01
    assert split.test == tuple(month_starts("2023-11-01", 3))
    # 2023-05-01 + 180 d = 2023-10-28 < 2023-11-01; 2023-06-01 + 180 d = 2023-11-28 is not
    assert split.train == tuple(month_starts("2022-01-01", 17))
    assert [f.window for f in split.folds] == [(d,) for d in month_starts("2023-02-01", 4)]
    # the last window, 2023-05-01: its training dates end where 180 days still close before it
    assert split.folds[-1].train == tuple(month_starts("2022-01-01", 11))  # .. 2022-11-01


@settings(max_examples=200, deadline=None)
@given(
    n_dates=st.integers(1, 60),
    horizon=st.integers(1, 400),
    folds=st.integers(2, 6),
    fold_months=st.integers(1, 3),
    test_months=st.integers(1, 6),
    export_shift=st.integers(-30, 400),
)
def test_split_never_leaks(n_dates, horizon, folds, fold_months, test_months, export_shift):
    dates = month_starts("2020-01-01", n_dates)
    export = dates[-1] + dt.timedelta(days=export_shift)
    h = dt.timedelta(days=horizon)
    try:
        split = make_split(dates, export, horizon, test_months, folds, fold_months)
    except SafetynetError:
        assume(False)  # an infeasible split is a clear error (tested below), not a leak
    train, test = split.train, split.test
    assert len(test) == test_months and train and len(split.folds) == folds
    assert max(train) + h < min(test), "a train label window reaches into test"
    assert all(d + h <= export for d in (*train, *test)), "an unobserved label is used"
    observed = [d for d in dates if d + h <= export]
    assert list(test) == observed[-test_months:], "test is not the latest observed dates"
    assert set(train) == {d for d in dates if d + h < min(test)}
    windows = [d for f in split.folds for d in f.window]
    assert windows == list(train[-folds * fold_months :]), "windows are the latest train dates, in order"
    for fold in split.folds:
        assert len(fold.window) == fold_months and fold.train
        assert max(fold.train) + h < min(fold.window), "a fold's label window reaches its window"
        assert set(fold.window) <= set(train) and not set(fold.window) & set(test)


def test_too_few_months_is_one_clear_error():
    dates = month_starts("2023-01-01", 14)
    with pytest.raises(SafetynetError, match="cannot hold 4 backtest folds"):
        make_split(dates, dates[-1] + dt.timedelta(days=200), 180, 3, 4, 1)
    with pytest.raises(SafetynetError, match="train.test_months"):
        make_split(dates[:2], dates[1], 180, 3, 4, 1)


def test_round_trip_and_period_lookup():
    split = make_split(month_starts("2022-01-01", 30), dt.date(2024, 6, 30), 180, 3, 4, 1)
    assert Split.from_dict(split.to_dict()) == split
    as_of = pd.Series(pd.to_datetime(["2022-01-01", "2023-12-01", "2023-07-01"]).as_unit("us"))
    period = split.period_of(as_of)
    assert period[:2].tolist() == ["train", "test"] and pd.isna(period[2])  # 2023-07: in the gap
