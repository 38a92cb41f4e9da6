"""Rolling-origin backtest inside the labelled history: choose, then report.

On the folds of `src.models.split` (never the test period):

1. Search. `train.backtest.search_trials` LightGBM settings (the configured ones, then a
   seeded draw from SEARCH_SPACE) are each fitted on every fold's training dates, with
   early stopping on the fold's window (average precision). A candidate replaces the
   configured settings only when it beats them on the folds by more than one standard error
   of its paired fold differences (`choose`): with a handful of folds, a smaller gain is
   noise, and choosing on noise makes the test period worse, not better. Among those, the
   best mean window score wins. Each candidate's round count is the best round of its folds'
   mean window curve (`common_rounds`): one month's best round is noise, their mean is not.
   The final fit uses the winner's.
2. Out-of-fold scores. The winner's fold models score their windows: the most recent
   labelled months no fitted model has seen. The latest `calibration_folds` windows fit
   the final calibrator, so it reflects the most recent prevalence.
3. Calibrators compared out of time. For each fold after the first, every method is
   fitted on the previous fold's window and judged on this one (ECE, observed / predicted
   ratio): what happens when a calibrator meets next month's prevalence.
4. Per-fold figures of the winner (AUC, AUC-PR, precision at 5 %, ECE) and their mean and
   standard deviation, for reports/metrics.json.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from src.atomic import json_numbers
from src.config import LightGBMParams, Params
from src.errors import SafetynetError
from src.models import metrics
from src.models.boosting import params_for, raw_offset
from src.models.calibration import METHODS, Calibrator, fit_calibrator
from src.models.scoring import prepare_features
from src.models.split import Fold

log = logging.getLogger(__name__)

SEARCH_SPACE = {
    "num_leaves": (7, 15, 31, 63),
    "min_child_samples": (20, 50, 100, 200),
    "feature_fraction": (0.6, 0.8, 1.0),
    "lambda_l2": (0.0, 1.0, 10.0),
}
FOLD_METRIC = "average_precision"  # LightGBM's name; what a capacity-bound list rewards
FOLD_REPORT = ("auc_roc", "auc_pr", "precision@5_pct", "prevalence", "ece")


@dataclass(frozen=True)
class FoldScores:
    """One fold model's corrected raw scores on its window at the folds' common round count,
    with labels, months and the window's score at that round."""

    raw: np.ndarray
    y: np.ndarray
    months: np.ndarray
    best_iteration: int
    score: float


@dataclass(frozen=True)
class FoldFit:
    booster: lgb.Booster
    curve: np.ndarray  # the window's FOLD_METRIC after each round


@dataclass(frozen=True)
class BacktestResult:
    settings: LightGBMParams
    rounds: int
    calibrator: Calibrator
    report: dict  # JSON-ready: folds, mean/sd, calibration comparison, search
    folds: tuple[FoldScores, ...]  # the chosen settings' out-of-fold scores


def candidates(configured: LightGBMParams, trials: int, seed: int) -> list[LightGBMParams]:
    """The configured settings first, then `trials - 1` distinct seeded draws from the grid."""
    grid = [dict(zip(SEARCH_SPACE, values, strict=True)) for values in itertools.product(*SEARCH_SPACE.values())]
    own = {name: getattr(configured, name) for name in SEARCH_SPACE}
    grid = [g for g in grid if g != own]
    picks = np.random.default_rng(seed).permutation(len(grid))[: max(trials - 1, 0)]
    return [configured, *(dataclasses.replace(configured, **grid[i]) for i in sorted(picks))]


def fit_fold(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_window: pd.DataFrame,
    y_window: np.ndarray,
    lgb_params: dict,
    settings: LightGBMParams,
) -> FoldFit:
    """Fit on the fold's training rows, recording the window's score after every round
    (stopped `early_stopping_rounds` after the window's best)."""
    data = lgb.Dataset(x_train, label=y_train, free_raw_data=True)
    valid = lgb.Dataset(x_window, label=y_window, reference=data)
    record: dict = {}
    booster = lgb.train(
        {**lgb_params, "metric": FOLD_METRIC},
        data,
        num_boost_round=settings.max_rounds,
        valid_sets=[valid],
        valid_names=["window"],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False),
                   lgb.record_evaluation(record)],  # fmt: skip
    )
    return FoldFit(booster, np.asarray(record["window"][FOLD_METRIC], dtype=np.float64))


def common_rounds(curves: list[np.ndarray]) -> int:
    """The round count with the best mean window score over the folds.

    One fold's best round is noisy (a month's window); the folds' mean curve is not. A
    curve that stopped early is extended with its last value (it had already fallen for
    `early_stopping_rounds` rounds).
    """
    length = max(len(c) for c in curves)
    padded = np.vstack([np.pad(c, (0, length - len(c)), mode="edge") for c in curves])
    return int(np.argmax(padded.mean(axis=0))) + 1


def fit_folds(
    parts: list[tuple[pd.DataFrame, pd.DataFrame]],
    params: Params,
    settings: LightGBMParams,
    features: list[str],
    categories: dict[str, list[str]],
) -> list[FoldScores]:
    """Every fold fitted with `settings`; every window scored at the folds' common best round."""
    fits, windows = [], []
    for train, window in parts:
        y = train["label"].to_numpy()
        x_window, y_window = prepare_features(window, features, categories), window["label"].to_numpy()
        fit = fit_fold(prepare_features(train, features, categories), y, x_window, y_window,
                       params_for(params, settings, y, features), settings)  # fmt: skip
        fits.append(fit)
        windows.append((x_window, y_window, window["as_of"].to_numpy(), raw_offset(y, params.train)))
    rounds = common_rounds([f.curve for f in fits])
    return [
        FoldScores(fit.booster.predict(x, raw_score=True, num_iteration=rounds) + offset, y, months,
                   rounds, float(fit.curve[min(rounds, len(fit.curve)) - 1]))  # fmt: skip
        for fit, (x, y, months, offset) in zip(fits, windows, strict=True)
    ]


def _fold_figures(fold: FoldScores, calibrated: np.ndarray | None, ece_bins: int) -> dict:
    out = {
        "n": int(len(fold.y)),
        "prevalence": float(np.mean(fold.y)),
    }
    for name in ("auc_roc", "auc_pr", "precision@5_pct"):
        out[name] = metrics.compute(name, fold.y, fold.raw, groups=fold.months)
    out["ece"] = (metrics.compute("ece", fold.y, calibrated, groups=fold.months, ece_bins=ece_bins)
                  if calibrated is not None else None)  # fmt: skip
    return out


def compare_calibrators(folds: list[FoldScores], ece_bins: int, negative_rate: float = 1.0) -> list[dict]:
    """Each method fitted on fold k-1's window, judged on fold k's: ECE and observed/predicted
    (on the windows as sampled: with negative_rate < 1 the judged figures are the sample's)."""
    rows = []
    for before, after in itertools.pairwise(folds):
        row = {}
        for method in METHODS:
            calibrated = fit_calibrator(method, before.raw, before.y, 0.0, negative_rate).predict(after.raw)
            row[method] = {
                "ece": metrics.compute("ece", after.y, calibrated, ece_bins=ece_bins),
                "observed_to_predicted": float(np.mean(after.y) / np.mean(calibrated)),
            }
        rows.append(row)
    return rows


def choose(tried: list[tuple[float, LightGBMParams, list[FoldScores]]]):
    """The configured settings (tried first), unless a candidate beats them on the folds by
    more than one standard error of the paired fold differences; then the best such one."""
    best = tried[0]
    baseline = [f.score for f in tried[0][2]]
    for candidate in tried[1:]:
        diffs = np.array([f.score for f in candidate[2]]) - baseline
        se = np.std(diffs, ddof=1) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.inf
        if diffs.mean() > se and candidate[0] > best[0]:
            best = candidate
    return best


def _mean_sd(rows: list[dict], keys) -> dict:
    out = {}
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
        out[key] = {"mean": float(np.mean(values)) if values else None,
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None}  # fmt: skip
    return out


def run_backtest(
    frame: pd.DataFrame,
    folds: tuple[Fold, ...],
    params: Params,
    features: list[str],
    categories: dict[str, list[str]],
) -> BacktestResult:
    """The search, the out-of-fold scores and the calibrator (see the module docstring).

    `frame` holds every eligible labelled row (negatives already sampled).
    """
    tp = params.train
    dates = pd.to_datetime(frame["as_of"]).dt.date
    parts = [(frame.loc[dates.isin(f.train)], frame.loc[dates.isin(f.window)]) for f in folds]
    for k, (train, window) in enumerate(parts):
        if train["label"].nunique() < 2 or window["label"].nunique() < 2:
            raise SafetynetError(
                f"features.parquet: backtest fold {k + 1} (window {folds[k].window[0]}) has only one "
                "label value in its training rows or window; supply more history or lower "
                "train.backtest.folds"
            )
    tried = []
    for settings in candidates(tp.lightgbm, tp.backtest.search_trials, params.base.seed):
        fitted = fit_folds(parts, params, settings, features, categories)
        tried.append((float(np.mean([f.score for f in fitted])), settings, fitted))
        log.info("backtest: %s -> mean window %s %.4f at %d rounds", {k: getattr(settings, k) for k in SEARCH_SPACE},
                 FOLD_METRIC, tried[-1][0], fitted[0].best_iteration)  # fmt: skip
    _, settings, fitted = choose(tried)
    search = [{"settings": {k: getattr(s, k) for k in SEARCH_SPACE}, FOLD_METRIC: score} for score, s, _ in tried]
    return summarise(folds, fitted, settings, params, search)


def summarise(
    folds: tuple[Fold, ...], fitted: list[FoldScores], settings: LightGBMParams, params: Params, search: list[dict]
) -> BacktestResult:
    """The chosen settings' fold scores -> rounds, the calibrator (latest windows) and the report."""
    tp = params.train
    rounds = fitted[0].best_iteration
    recent = fitted[-tp.backtest.calibration_folds :]
    calibrator = fit_calibrator(tp.calibration, np.concatenate([f.raw for f in recent]),
                                np.concatenate([f.y for f in recent]), 0.0, tp.negative_sample_rate)  # fmt: skip
    ece_bins = params.evaluate.ece_bins
    fold_rows = []
    for k, (fold, scores) in enumerate(zip(folds, fitted, strict=True)):
        previous = fitted[k - 1] if k else None
        calibrated = (fit_calibrator(tp.calibration, previous.raw, previous.y, 0.0, tp.negative_sample_rate).predict(scores.raw)
                      if previous is not None else None)  # fmt: skip
        fold_rows.append({"window": [d.isoformat() for d in fold.window],
                          "train_from": fold.train[0].isoformat(), "train_to": fold.train[-1].isoformat(),
                          **_fold_figures(scores, calibrated, ece_bins)})  # fmt: skip
    report = {
        "folds": fold_rows,
        "summary": _mean_sd(fold_rows, FOLD_REPORT),
        "calibration_comparison": compare_calibrators(fitted, ece_bins, tp.negative_sample_rate),
        "calibration": tp.calibration,
        "search": search,
        "chosen": {k: getattr(settings, k) for k in SEARCH_SPACE},
        "rounds": rounds,
        "fold_metric": FOLD_METRIC,
    }
    return BacktestResult(settings, rounds, calibrator, json_numbers(report), tuple(fitted))
