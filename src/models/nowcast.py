"""The outcome level now: calibrated probabilities corrected by the latest short-window outcomes.

A calibrator fitted on the most recent fully labelled months is at least one horizon old
when the model scores a month (the labels of the months in between are not complete yet).
When the share of children with an outcome drifts (a policy change, a recertification
campaign, the season), every probability is off by the same factor; the ranking is not.

The months in between are not silent, though. For an as-of date ``s`` at least
`train.nowcast.days` (w) before the scoring date ``t``, the export already shows whether each
child had an outcome in the first w days (``days_to_outcome <= w``, src/features/labels.py).
So, for the latest `train.nowcast.months` such dates ``S(t)``:

    ratio(t) = sum over S(t) of [days_to_outcome <= w]  /  (kappa * sum over S(t) of p)

where ``p`` is the model's calibrated probability (horizon h) of the same rows and ``kappa``
is the share of outcomes within the horizon that fall in its first w days, counted over
every labelled row the model was trained on (``kappa_from``). ``ratio`` is 1 when the
latest months run at the level the calibrator learned; 0.8 when they show 20 % fewer
outcomes than it expects. The probability is then corrected on the hazard scale,

    p' = 1 - (1 - p) ** ratio(t),

With few rows the ratio is noisy, so it is shrunk towards 1 by `train.nowcast.prior_events`
pseudo-outcomes (a gamma-Poisson prior: ``(observed + m) / (expected + m)``); an export with
thousands of early outcomes barely notices it, one with a dozen is hardly corrected.
The correction keeps the ranking, keeps p' in [0, 1], and is the exact correction when the drift
multiplies every child's outcome hazard (the generator's prevalence drift does; so does a
campaign that speeds up or slows down every case). Only data dated on or before ``t`` are
read: an as-of date in S(t) plus w days is at most ``t``. With `train.nowcast.months` = 0,
or when S(t) holds no row, the ratio is 1 (no correction), and the model folder says so.

`models/nowcast.json` holds ``kappa`` and the ratio of every as-of date the folder's model
is meant to score: the test months for the evaluated model (src/models/train.py), the
unlabelled months for the served model (src/models/refit.py). CalibratedModel applies it by
each row's ``as_of``; a date it does not list is scored without correction.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from src.errors import SafetynetError
from src.models import metrics

NOWCAST_FILE = "nowcast.json"


def kappa_from(days_to_outcome: np.ndarray, labels: np.ndarray, days: int) -> float:
    """Share of the labelled outcomes that happen within `days` of the as-of date.

    Counts positives only, so negative down-sampling does not change it.
    """
    positive = np.asarray(labels) == 1
    if not positive.any():
        raise SafetynetError("features.parquet: no labelled outcome to time the nowcast with")
    early = np.asarray(days_to_outcome, dtype=np.float64)[positive] <= days
    return float(early.mean())


def window_dates(target: dt.date, available, days: int, months: int) -> list[dt.date]:
    """S(target): the latest `months` as-of dates whose first `days` days end by `target`."""
    usable = sorted(d for d in available if d + dt.timedelta(days=days) <= target)
    return usable[-months:] if months > 0 else []


def level_ratio(early: np.ndarray, proba: np.ndarray, kappa: float, prior_events: float) -> float:
    """(Observed early outcomes + m) / (the early outcomes the calibrated model expects + m)."""
    expected = kappa * float(np.sum(proba))
    return (float(np.sum(early)) + prior_events) / (expected + prior_events)


def correct(proba: np.ndarray, ratio: np.ndarray | float) -> np.ndarray:
    """Scale each outcome hazard by `ratio`: p' = 1 - (1 - p) ** ratio (order-preserving)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    return -np.expm1(np.asarray(ratio, dtype=np.float64) * np.log1p(-np.minimum(p, 1.0 - 1e-15)))


def ratios(rows: pd.DataFrame, proba: np.ndarray, targets, kappa: float, settings) -> dict[dt.date, dict]:
    """Per target date: the ratio and what it was computed from.

    `rows` are the cohort rows (not already out) of the candidate window dates, with
    ``as_of`` and ``days_to_outcome``; `proba` is the model's calibrated probability of each;
    `settings` is `train.nowcast` (days, months, prior_events).
    """
    days, months = settings.days, settings.months
    as_of = pd.to_datetime(rows["as_of"]).dt.date.to_numpy()
    early = (rows["days_to_outcome"].to_numpy(dtype=np.float64) <= days).astype(np.float64)
    available = sorted(set(as_of))
    out = {}
    for target in sorted(targets):
        dates = window_dates(target, available, days, months)
        mask = np.isin(as_of, dates)
        out[target] = {
            "ratio": level_ratio(early[mask], proba[mask], kappa, settings.prior_events),
            "from": [d.isoformat() for d in dates],
            "rows": int(mask.sum()),
            "early_outcomes": int(early[mask].sum()),
        }
    return out


def candidate_dates(targets, available, days: int, months: int) -> list[dt.date]:
    """Every as-of date some target's window reads (what to load from features.parquet)."""
    needed = {d for t in targets for d in window_dates(t, available, days, months)}
    return sorted(needed)


def to_json(kappa: float, settings, per_date: dict[dt.date, dict]) -> dict:
    return {
        "days": settings.days,
        "months": settings.months,
        "prior_events": settings.prior_events,
        "kappa": kappa,
        "ratios": {d.isoformat(): v for d, v in sorted(per_date.items())},
    }


def ratio_lookup(nowcast: dict | None, as_of: pd.Series) -> np.ndarray:
    """The ratio of each row's as-of date (1 where the folder lists none)."""
    if not nowcast or not nowcast.get("ratios"):
        return np.ones(len(as_of))
    table = {pd.Timestamp(d): float(v["ratio"]) for d, v in nowcast["ratios"].items()}
    mapped = pd.to_datetime(as_of).map(table).to_numpy(dtype=np.float64)
    return np.where(np.isnan(mapped), 1.0, mapped)


def check(nowcast: dict, source: str) -> dict:
    """A nowcast.json as read: {} (a model saved without one: no correction) or complete."""
    if not nowcast:
        return {}
    for key in ("days", "months", "kappa", "ratios"):
        if key not in nowcast:
            raise SafetynetError(f"{source}: '{key}' is missing; retrain (dvc repro train)")
    bad = [d for d, v in nowcast["ratios"].items() if not (math.isfinite(v["ratio"]) and v["ratio"] > 0)]
    if bad:
        raise SafetynetError(f"{source}: ratio of {bad[0]} is not a positive number; retrain")
    return nowcast


def build(model, rows: pd.DataFrame, targets, kappa: float, settings) -> dict:
    """nowcast.json for `model` (a CalibratedModel) at `targets`, from the window `rows`."""
    proba = model.calibrated(rows) if len(rows) else np.zeros(0)
    return to_json(kappa, settings, ratios(rows, proba, targets, kappa, settings))


def effect(nowcast: dict, as_of: pd.Series, y: np.ndarray, calibrated: np.ndarray, ece_bins: int) -> dict:
    """Per listed month of these rows: the ratio, and ECE and observed/predicted without and
    with the correction (what reports/metrics.json shows about the nowcast)."""
    months = pd.to_datetime(as_of).dt.date.to_numpy()
    out = {}
    for month, entry in sorted((nowcast or {}).get("ratios", {}).items()):
        mask = months == dt.date.fromisoformat(month)
        if not mask.any():
            continue
        before = calibrated[mask]
        after = correct(before, entry["ratio"])
        out[month] = {
            "ratio": entry["ratio"],
            "from": entry["from"],
            "ece_calibrated": metrics.compute("ece", y[mask], before, ece_bins=ece_bins),
            "ece_nowcast": metrics.compute("ece", y[mask], after, ece_bins=ece_bins),
            "observed_to_predicted_calibrated": float(np.mean(y[mask]) / np.mean(before)),
            "observed_to_predicted_nowcast": float(np.mean(y[mask]) / np.mean(after)),
        }
    return out
