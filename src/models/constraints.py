"""What the monotone constraints cost: the backtest's chosen settings refitted with the other
constraint setting on the same folds, AUC and precision at 5 % side by side.

`train.monotone_constraints` (src.models.boosting) makes every directional feature move the
score only in its catalogue direction. The backtest reports the configured model; this
module fits the same folds (same chosen settings, same choice of rounds) with
the constraints switched the other way, so the figures differ only by the constraints.
Precision at 5 % of each month's rows is the backtest's list-size figure (the training rows
carry no caseworker to compute each county's capacity; the default run's lists hold about
5 % of the scored children). The target: the monotone model loses at most 1 % of the
unconstrained model's AUC (`AUC_COST_TARGET`, relative).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from src.config import Params
from src.models import metrics
from src.models.backtest import BacktestResult, fit_folds
from src.models.split import Fold

AUC_COST_TARGET = 0.01  # relative AUC the monotone model may lose against the unconstrained one
FIGURES = ("auc_roc", "precision@5_pct")


def fold_figures(raw: np.ndarray, y: np.ndarray, months: np.ndarray) -> dict[str, float]:
    return {name: metrics.compute(name, y, raw, groups=months) for name in FIGURES}


def mean_figures(rows: list[dict]) -> dict[str, float]:
    return {name: float(np.mean([r[name] for r in rows])) for name in FIGURES}


def compare_constraints(
    frame: pd.DataFrame,
    folds: tuple[Fold, ...],
    params: Params,
    features: list[str],
    categories: dict[str, list[str]],
    backtest: BacktestResult,
) -> dict:
    """Mean fold AUC and precision at 5 % with and without the constraints, and the AUC cost."""
    configured = params.train.monotone_constraints
    other = dataclasses.replace(params, train=dataclasses.replace(params.train, monotone_constraints=not configured))
    dates = pd.to_datetime(frame["as_of"]).dt.date
    parts = [(frame.loc[dates.isin(f.train)], frame.loc[dates.isin(f.window)]) for f in folds]
    fitted = fit_folds(parts, other, backtest.settings, features, categories)
    rows = [fold_figures(scores.raw, scores.y, scores.months) for scores in fitted]
    own = mean_figures([{k: f[k] for k in FIGURES} for f in backtest.report["folds"]])
    theirs = mean_figures(rows)
    monotone, unconstrained = (own, theirs) if configured else (theirs, own)
    cost = (unconstrained["auc_roc"] - monotone["auc_roc"]) / unconstrained["auc_roc"]
    return {
        "configured": "monotone" if configured else "unconstrained",
        "monotone": monotone,
        "unconstrained": unconstrained,
        "auc_cost_relative": float(cost),
        "precision@5_pct_cost": float(unconstrained["precision@5_pct"] - monotone["precision@5_pct"]),
        "auc_cost_target": AUC_COST_TARGET,
        "within_target": bool(cost <= AUC_COST_TARGET),
    }
