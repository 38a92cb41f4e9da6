"""As-of dates + export date + label horizon -> train / validation / test as-of dates.

Timeline (h = label.horizon_days; every label window is (as_of, as_of + h]):

    train ........ | gap >= h | validation (val_months) | gap >= h | test (test_months) | unobserved
    t + h < v0                  v + h < s0                           s + h <= export date

- test: the latest `test_months` as-of dates whose labels are fully observed;
- validation: the latest `val_months` as-of dates whose label window closes before the
  test period starts (early stopping and calibration only);
- train: every as-of date whose label window closes before validation starts.

So no label window of one period reaches into the next, and the test period is never
seen by any fitting or tuning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from src.errors import SafetynetError

PERIODS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    train: tuple[dt.date, ...]
    val: tuple[dt.date, ...]
    test: tuple[dt.date, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {name: [d.isoformat() for d in getattr(self, name)] for name in PERIODS}

    @classmethod
    def from_dict(cls, raw: dict[str, list[str]]) -> Split:
        return cls(**{name: tuple(dt.date.fromisoformat(d) for d in raw[name]) for name in PERIODS})

    def period_of(self, as_of: pd.Series) -> pd.Series:
        """'train', 'val', 'test' per as-of value; missing (NaN) for dates in no period."""
        lookup = {pd.Timestamp(d): name for name in PERIODS for d in getattr(self, name)}
        return pd.to_datetime(as_of).map(lookup)


def _as_dates(values: Iterable) -> list[dt.date]:
    return sorted({pd.Timestamp(v).date() for v in values})


def make_split(
    as_of_dates: Iterable,
    export_date: dt.date,
    horizon_days: int,
    val_months: int,
    test_months: int,
) -> Split:
    """Split the as-of dates into train, validation and test with a one-horizon gap between them."""
    dates = _as_dates(as_of_dates)
    horizon = dt.timedelta(days=horizon_days)
    observed = [d for d in dates if d + horizon <= export_date]
    if len(observed) < test_months:
        raise SafetynetError(
            f"features.parquet: only {len(observed)} as-of date(s) have fully observed labels "
            f"(as_of + {horizon_days} days <= export date {export_date}) but train.test_months is "
            f"{test_months}; lower train.test_months or label.horizon_days, or supply a longer history"
        )
    test = observed[-test_months:]
    val_candidates = [d for d in observed if d + horizon < test[0]]
    if len(val_candidates) < val_months:
        raise SafetynetError(
            f"features.parquet: {len(val_candidates)} as-of date(s) end their {horizon_days}-day label "
            f"window before the test period starts ({test[0]}), but train.val_months is {val_months}; "
            "lower train.val_months / train.test_months, or supply a longer history"
        )
    val = val_candidates[-val_months:]
    train = [d for d in observed if d + horizon < val[0]]
    if not train:
        first = dates[0] if dates else None
        raise SafetynetError(
            f"features.parquet: no as-of date (first: {first}) ends its {horizon_days}-day label window "
            f"before validation starts ({val[0]}), so there is nothing to train on; the split needs "
            f"about {val_months + test_months} months plus two horizons of history: lower "
            "train.val_months / train.test_months or features.first_as_of, or supply a longer history"
        )
    return Split(train=tuple(train), val=tuple(val), test=tuple(test))
