"""As-of dates + export date + label horizon -> the labelled history, its backtest folds, and
the untouched test period.

Timeline (h = label.horizon_days; every label window is (as_of, as_of + h]):

    train (all labelled history) ..................... | gap >= h | test (test_months) | unobserved
    t + h < s0                                                      s + h <= export date

    backtest fold k (rolling origin, as dssg/triage's timechop):
    fold train ......... | gap >= h | window k (fold_months) |
    f + h < w0

- test: the latest `test_months` as-of dates whose labels are fully observed; nothing is
  chosen by looking at them;
- train: every as-of date whose label window closes before the test period starts; the
  evaluated model is fitted on all of it;
- folds: the last `folds x fold_months` train dates, cut into `folds` consecutive windows,
  oldest first; each window's model is fitted on the train dates whose label window closes
  before that window starts. Hyperparameters, the number of boosting rounds and the
  calibrator are chosen on the folds only.

So no label window of one period reaches into the next, and the test period is never seen
by any fitting or tuning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from src.errors import SafetynetError

PERIODS = ("train", "test")


@dataclass(frozen=True)
class Fold:
    train: tuple[dt.date, ...]
    window: tuple[dt.date, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {name: [d.isoformat() for d in getattr(self, name)] for name in ("train", "window")}


@dataclass(frozen=True)
class Split:
    train: tuple[dt.date, ...]
    test: tuple[dt.date, ...]
    folds: tuple[Fold, ...] = ()

    def to_dict(self) -> dict:
        out: dict = {name: [d.isoformat() for d in getattr(self, name)] for name in PERIODS}
        out["folds"] = [fold.to_dict() for fold in self.folds]
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> Split:
        def dates(values) -> tuple[dt.date, ...]:
            return tuple(dt.date.fromisoformat(d) for d in values)

        folds = tuple(Fold(dates(f["train"]), dates(f["window"])) for f in raw.get("folds", []))
        return cls(train=dates(raw["train"]), test=dates(raw["test"]), folds=folds)

    def period_of(self, as_of: pd.Series) -> pd.Series:
        """'train' or 'test' per as-of value; missing (NaN) for dates in no period."""
        lookup = {pd.Timestamp(d): name for name in PERIODS for d in getattr(self, name)}
        return pd.to_datetime(as_of).map(lookup)


def _as_dates(values: Iterable) -> list[dt.date]:
    return sorted({pd.Timestamp(v).date() for v in values})


def make_split(
    as_of_dates: Iterable,
    export_date: dt.date,
    horizon_days: int,
    test_months: int,
    folds: int,
    fold_months: int,
) -> Split:
    """The labelled history, `folds` rolling-origin backtest folds inside it, and the test period."""
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
    train = [d for d in observed if d + horizon < test[0]]
    windows = train[len(train) - folds * fold_months :] if folds * fold_months <= len(train) else []
    made = []
    for k in range(folds if windows else 0):
        window = windows[k * fold_months : (k + 1) * fold_months]
        fold_train = [d for d in train if d + horizon < window[0]]
        if not fold_train:
            break
        made.append(Fold(tuple(fold_train), tuple(window)))
    if len(made) < folds:
        first = dates[0] if dates else None
        raise SafetynetError(
            f"features.parquet: the labelled history before the test period ({len(train)} as-of "
            f"dates from {first}) cannot hold {folds} backtest folds of {fold_months} month(s), "
            f"each after {horizon_days} days of gap behind its own training dates; supply a "
            "longer history, or lower train.backtest.folds / fold_months / train.test_months"
        )
    return Split(train=tuple(train), test=tuple(test), folds=tuple(made))
