"""LightGBM as this project fits it: one parameter set, one class weight, one raw-score offset.

Shared by the backtest's fold models, the evaluated model (train) and the served model
(refit), so the three can never be fitted or corrected differently.

Class imbalance: `train.objective_weighting: balanced` sets `scale_pos_weight` to
negatives/positives of the (sampled) training rows. Negative down-sampling
(`train.negative_sample_rate` < 1) keeps each negative with that probability. Both shift
the model's log-odds by a known prior term, undone by `raw_offset` = log(rate) -
log(scale_pos_weight); the calibrator then maps the corrected score to a probability.

Monotone constraints (`train.monotone_constraints`: always, unless_costly (the default; see
`src.models.constraints`) or never): each numeric or indicator
feature with a catalogue risk direction (+1 / -1) may only move the score that way, so a
contribution's sign agrees with the declared direction and a reason (a value beyond its
normal range on the risk side) cannot be a protective value in disguise. Categorical and
directionless features are unconstrained. `train.lightgbm.monotone_constraints_method` is
LightGBM's: `basic` (the default) over-constrains the predictions, in LightGBM's own words;
`intermediate` and `advanced` constrain less, with the same guarantee. What they cost and
gain, on small exports and at 1M children: docs/architecture.md. The cost on each run's
folds is measured in the backtest (`src.models.constraints`).
"""

from __future__ import annotations

import dataclasses
import math

import lightgbm as lgb
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import roc_auc_score

from src.config import LightGBMParams, Params, Train
from src.features import catalogue


def class_weight(y: np.ndarray, weighting: str) -> float:
    """scale_pos_weight: negatives / positives under `balanced`, else 1."""
    positives = int(np.sum(y))
    return (len(y) - positives) / positives if weighting == "balanced" and positives else 1.0


def raw_offset(y: np.ndarray, train: Train) -> float:
    """What to add to the booster's raw score to undo sampling and class weighting."""
    return math.log(train.negative_sample_rate) - math.log(class_weight(y, train.objective_weighting))


def monotone_constraints(features: list[str]) -> list[int]:
    """Per model feature, its catalogue direction (numeric and indicator features; else 0)."""
    out = []
    for name in features:
        entry = catalogue.spec(name)
        out.append(int(entry.direction) if entry.kind != "categorical" else 0)
    return out


def constrained(params: Params) -> bool:
    """Whether `train.monotone_constraints` applies them (always, unless_costly) or not (never)."""
    return params.train.monotone_constraints != "never"


def with_constraints(params: Params, mode: str) -> Params:
    return dataclasses.replace(params, train=dataclasses.replace(params.train, monotone_constraints=mode))


def lightgbm_params(
    params: Params, settings: LightGBMParams, scale_pos_weight: float, features: list[str]
) -> dict:
    """LightGBM settings: deterministic (fixed threads, row-wise histograms, every seed from base.seed).

    `features` are the columns of the fit, in order (the registry fields may be excluded), so
    the monotone constraints line up with them.
    """
    seed = params.base.seed % (2**31 - 1)
    constraints = {}
    if constrained(params):
        directions = monotone_constraints(features)
        if any(directions):
            constraints = {"monotone_constraints": directions,
                           "monotone_constraints_method": settings.monotone_constraints_method}
    return {
        **constraints,
        "objective": "binary",
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_child_samples": settings.min_child_samples,
        "feature_fraction": settings.feature_fraction,
        "bagging_fraction": settings.bagging_fraction,
        "bagging_freq": settings.bagging_freq,
        "lambda_l2": settings.lambda_l2,
        "scale_pos_weight": scale_pos_weight,
        "num_threads": params.train.num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "bagging_seed": (seed + 1) % (2**31 - 1),
        "feature_fraction_seed": (seed + 2) % (2**31 - 1),
        "data_random_seed": (seed + 3) % (2**31 - 1),
        "verbosity": -1,
    }


def _progress_callback(progress: Progress, task) -> callable:
    def callback(env: lgb.callback.CallbackEnv) -> None:
        progress.update(task, completed=env.iteration + 1)

    return callback


def training_set(x: pd.DataFrame, y: np.ndarray) -> lgb.Dataset:
    """`x` as the Dataset LightGBM makes of a DataFrame, and empties `x` on the way.

    LightGBM converts a DataFrame into one float64 matrix (categoricals as their codes,
    missing and unknown as NaN) while the frame is still alive: at 1M children the rows were
    held twice, 5 GB each. Here each column leaves `x` as soon as it is copied into the
    matrix, and the matrix goes once LightGBM has binned it (`free_raw_data`). The values,
    names, categorical columns and kept categories are LightGBM's own, so the booster is the
    one the DataFrame gives, to the byte (tests/models/test_boosting.py)."""
    names = [str(c) for c in x.columns]
    categorical = [c for c in names if isinstance(x[c].dtype, pd.CategoricalDtype)]
    kept = [list(x[c].cat.categories) for c in categorical]
    unordered = [c for c in categorical if not x[c].cat.ordered]  # LightGBM: ordered ones are numbers
    values = np.empty((len(x), len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        column = x.pop(name)
        if name in categorical:
            codes = column.cat.codes.to_numpy()
            values[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            values[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        del column
    data = lgb.Dataset(values, label=y, feature_name=names, categorical_feature=unordered,
                       free_raw_data=True)  # fmt: skip
    data.pandas_categorical = kept  # what LightGBM keeps of a DataFrame: scoring maps text to codes
    return data


def fit_booster(
    train_set: lgb.Dataset, lgb_params: dict, rounds: int, keep_training: bool = False
) -> lgb.Booster:
    """Boost a fixed number of rounds (chosen on the backtest folds) on all the training rows
    (`training_set`).

    `keep_training`: the booster keeps its training set and the scores LightGBM kept on it
    while boosting (`fit_with_training_auc` reads them)."""
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("rounds", total=rounds)
        return lgb.train(lgb_params, train_set, num_boost_round=rounds, keep_training_booster=keep_training,
                         callbacks=[_progress_callback(progress, task)])  # fmt: skip


def fit_with_training_auc(
    train_set: lgb.Dataset, lgb_params: dict, rounds: int
) -> tuple[lgb.Booster, float]:
    """`fit_booster`, and its ROC AUC on the training rows from the scores LightGBM kept.

    LightGBM updates every training row's score with each tree (out-of-bag rows too), so
    its kept scores are the model's scores: no second pass over millions of rows (at 1M
    children predicting 5.5M training rows took 130 s). They are probabilities, a monotone
    map of the raw score, so the AUC is the same. The booster returned is the one
    `lgb.train` returns by default, rebuilt from its model text without the training set:
    the model `models/booster.txt` reloads (its split gains are the text's)."""
    booster = fit_booster(train_set, lgb_params, rounds, keep_training=True)
    y = train_set.get_label()
    results = booster.eval_train(feval=lambda preds, _: ("auc", roc_auc_score(y, preds), True))
    auc = float(next(r.metric_value for r in results if r.metric_name == "auc"))
    return lgb.Booster(model_str=booster.model_to_string()), auc


def params_for(params: Params, settings: LightGBMParams, y: np.ndarray, features: list[str]) -> dict:
    """`lightgbm_params` with the class weight of the training labels `y`, for `features`."""
    return lightgbm_params(params, settings, class_weight(y, params.train.objective_weighting), features)
