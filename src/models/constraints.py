"""What the monotone constraints cost, and whether they are kept: the backtest's chosen
settings refitted with the other constraint setting on the same folds, side by side.

The constraints (src.models.boosting) make every directional feature move the score only in
its catalogue direction. The backtest reports the configured model; this module fits the
same folds (same chosen settings, same choice of rounds) with the constraints switched the
other way, so the figures differ only by the constraints. Precision at 5 % of each month's
rows is the backtest's list-size figure (the training rows carry no caseworker to compute
each county's capacity; the default run's lists hold about 5 % of the scored children). The
target: the monotone model loses at most 1 % of the unconstrained model's AUC
(`AUC_COST_TARGET`, relative).

`train.monotone_constraints`: `always`, `never`, or `unless_costly` (the default). The
last keeps them unless the backtest's unconstrained lists (top 5 % of each fold month) are
significantly better than the monotone ones: the paired test the gate applies against the
plain LightGBM peer (`promotion.paired_lists`, one-sided at `evaluate.peer_alpha`). On a
large export the gate's test is precise enough to refuse a constrained model that loses half
a point of precision; rather than hand out no list, the model is then trained without them
and says so in the model card. The chosen settings stay; their unconstrained fold fits (made
here) give the rounds, the calibrator and the backtest figures, so no second search runs. Reasons do not depend on the
constraints: each shown reason must still raise the score and lie on the risk side of its
normal range (src.delivery.reasons).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from src.config import Params
from src.models import metrics
from src.models.backtest import BacktestResult, fit_folds, summarise
from src.models.boosting import constrained, with_constraints
from src.models.promotion import paired_lists
from src.models.split import Fold

AUC_COST_TARGET = 0.01  # relative AUC the monotone model may lose against the unconstrained one
FIGURES = ("auc_roc", "precision@5_pct")
LIST_PCT = 5.0  # the backtest's list: the top 5 % of each fold month


def top_share(score: np.ndarray, months: np.ndarray, pct: float = LIST_PCT) -> np.ndarray:
    """Per month, the top ceil(pct % of its rows) by score (ties: the earlier row)."""
    codes, counts = np.unique(months, return_inverse=True, return_counts=True)[1:]
    order = np.lexsort((np.arange(len(score)), -np.asarray(score, dtype="float64"), codes))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    position = np.empty(len(score), dtype="int64")
    position[order] = np.arange(len(score)) - starts[codes[order]]
    return position < np.ceil(np.round(counts * pct / 100.0, 9)).astype("int64")[codes]


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
) -> tuple[dict, BacktestResult]:
    """Mean fold AUC and precision at 5 % with and without the constraints, the AUC cost, the
    paired test of the two models' lists and whether the constraints are released; and the
    backtest to train with (`backtest`, or the unconstrained one when released)."""
    configured = constrained(params)
    other = with_constraints(params, "never" if configured else "always")
    dates = pd.to_datetime(frame["as_of"]).dt.date
    parts = [(frame.loc[dates.isin(f.train)], frame.loc[dates.isin(f.window)]) for f in folds]
    fitted = fit_folds(parts, other, backtest.settings, features, categories)
    rows = [fold_figures(scores.raw, scores.y, scores.months) for scores in fitted]
    own = mean_figures([{k: f[k] for k in FIGURES} for f in backtest.report["folds"]])
    theirs = mean_figures(rows)
    monotone, unconstrained = (own, theirs) if configured else (theirs, own)
    mono_folds, free_folds = (backtest.folds, fitted) if configured else (fitted, backtest.folds)
    lists = paired_lists(np.concatenate([f.y for f in mono_folds]),
                         np.concatenate([top_share(f.raw, f.months) for f in free_folds]),
                         np.concatenate([top_share(f.raw, f.months) for f in mono_folds]))  # fmt: skip
    critical = NormalDist().inv_cdf(1 - params.evaluate.peer_alpha)
    released = bool(lists["z"] >= critical and params.train.monotone_constraints == "unless_costly")
    cost = (unconstrained["auc_roc"] - monotone["auc_roc"]) / unconstrained["auc_roc"]
    report = {
        "configured": params.train.monotone_constraints,
        "monotone": monotone,
        "unconstrained": unconstrained,
        "auc_cost_relative": float(cost),
        "precision@5_pct_cost": float(unconstrained["precision@5_pct"] - monotone["precision@5_pct"]),
        "auc_cost_target": AUC_COST_TARGET,
        "within_target": bool(cost <= AUC_COST_TARGET),
        "lists": {**{key.replace("model", "unconstrained").replace("peer", "monotone"): value
                     for key, value in lists.items()}, "critical_z": critical},  # fmt: skip
        "released": released,
    }
    if released:
        return report, summarise(folds, fitted, backtest.settings, other, backtest.report["search"])
    return report, backtest
