"""features.parquet -> models/ (LightGBM booster + calibrator + summary) and one MLflow run.

Rows: fully observed labels (`label_observed`) of children not already out (`already_out == 0`),
in the train and validation periods of `src.models.split` (the test period is never read).

Class imbalance: `train.objective_weighting: balanced` sets LightGBM's `scale_pos_weight` to
negatives/positives of the (sampled) training rows, so both classes weigh the same in the
loss and trees split on the rare class too. `none` trains on the natural balance.
Negative down-sampling (`train.negative_sample_rate` < 1) keeps each negative training row
with that probability, decided by a seeded hash of (child_pid, as_of): order-independent,
so it can run while streaming the file. Both shift the model's log-odds by a known prior
term; the raw score is corrected by `offset = log(rate) - log(scale_pos_weight)` and the
calibrator (fitted on validation only) then maps it to honest probabilities. Early stopping
watches validation AUC, which neither shift affects.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sklearn.metrics import roc_auc_score

from src.atomic import atomic_dir
from src.config import Params
from src.errors import SafetynetError
from src.features import catalogue
from src.models.calibration import Calibrator, fit_calibrator
from src.models.scoring import CalibratedModel, prepare_features
from src.models.split import Split, make_split
from src.models.tracking import log_training_run
from src.models.training_data import (
    KEYS,
    check_observed,
    eligible_counts,
    file_sha256,
    keep_for_training,
    open_features,
    read_training_rows,
)
from src.run_facts import read_facts

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TrainingResult:
    model: CalibratedModel
    best_iteration: int
    scale_pos_weight: float
    metrics: dict[str, float]
    periods: dict[str, dict[str, float]]
    importance: pd.DataFrame  # feature, gain, split (sorted by gain, descending)
    input_example: pd.DataFrame  # synthetic_input_example(model): one made-up row, no child's data


def feature_categories(protected_as_features: bool) -> tuple[list[str], dict[str, list[str]]]:
    """Model features in catalogue order and each categorical feature's fixed categories."""
    features = catalogue.model_features(protected_as_features)
    if not features:
        raise SafetynetError("src/features/catalogue.py: the catalogue has no model features")
    categories = {}
    for name in catalogue.categorical_features(protected_as_features):
        cats = list(catalogue.spec(name).categories)
        if not cats:
            raise SafetynetError(
                f"src/features/catalogue.py: categorical feature '{name}' lists no categories"
            )
        categories[name] = cats
    return features, categories


def lightgbm_params(params: Params, scale_pos_weight: float) -> dict:
    """LightGBM settings: deterministic (fixed threads, row-wise histograms, every seed from base.seed)."""
    lgbp = params.train.lightgbm
    seed = params.base.seed % (2**31 - 1)
    return {
        "objective": "binary",
        "metric": "auc",
        "learning_rate": lgbp.learning_rate,
        "num_leaves": lgbp.num_leaves,
        "min_child_samples": lgbp.min_child_samples,
        "feature_fraction": lgbp.feature_fraction,
        "bagging_fraction": lgbp.bagging_fraction,
        "bagging_freq": lgbp.bagging_freq,
        "lambda_l2": lgbp.lambda_l2,
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

    callback.order = 40  # after early stopping has looked at the iteration
    return callback


def fit_booster(
    x_train, y_train, x_val, y_val, lgb_params: dict, max_rounds: int, patience: int
) -> lgb.Booster:
    """Boost with early stopping on validation AUC; return the booster cut at the best iteration."""
    categorical = [c for c in x_train.columns if isinstance(x_train[c].dtype, pd.CategoricalDtype)]
    train_set = lgb.Dataset(
        x_train, label=y_train, categorical_feature=categorical or "auto", free_raw_data=True
    )
    val_set = lgb.Dataset(x_val, label=y_val, reference=train_set)
    console = Console(stderr=True)
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("rounds", total=max_rounds)
        booster = lgb.train(
            lgb_params,
            train_set,
            num_boost_round=max_rounds,
            valid_sets=[val_set],
            valid_names=["val"],
            callbacks=[
                lgb.early_stopping(patience, first_metric_only=True, verbose=False),
                _progress_callback(progress, task),
            ],
        )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def period_counts(frame: pd.DataFrame) -> dict[str, float]:
    rows, positives = len(frame), int(frame["label"].sum())
    return {
        "rows": rows,
        "positives": positives,
        "prevalence": positives / rows if rows else math.nan,
    }


def train_model(
    frame: pd.DataFrame,
    split: Split,
    params: Params,
    features: list[str],
    categories: dict[str, list[str]],
) -> TrainingResult:
    """Pure core: a features frame -> calibrated booster, metrics and per-period counts."""
    tp = params.train
    rate = tp.negative_sample_rate
    frame = frame.loc[keep_for_training(frame, split, rate, params.base.seed)]
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    period = split.period_of(frame["as_of"])
    train, val = frame.loc[period == "train"], frame.loc[period == "val"]
    for name, part in (("train", train), ("validation", val)):
        if part["label"].nunique() < 2:
            raise SafetynetError(
                f"features.parquet: the {name} period has {len(part)} eligible rows with only one label "
                "value; supply more history or adjust train.val_months / train.test_months"
            )
    positives = int(train["label"].sum())
    spw = (len(train) - positives) / positives if tp.objective_weighting == "balanced" else 1.0
    offset = math.log(rate) - math.log(spw)
    x_train, x_val = (prepare_features(p, features, categories) for p in (train, val))
    booster = fit_booster(
        x_train,
        train["label"].to_numpy(),
        x_val,
        val["label"].to_numpy(),
        lightgbm_params(params, spw),
        tp.lightgbm.max_rounds,
        tp.lightgbm.early_stopping_rounds,
    )
    raw_train = booster.predict(x_train, raw_score=True) + offset
    raw_val = booster.predict(x_val, raw_score=True) + offset
    calibrator = fit_calibrator(tp.calibration, raw_val, val["label"].to_numpy(), offset)
    model = CalibratedModel(booster, calibrator, categories)
    return TrainingResult(
        model=model,
        best_iteration=booster.current_iteration(),
        scale_pos_weight=spw,
        metrics=_fit_metrics(train["label"], raw_train, val["label"], raw_val, calibrator),
        periods={"train": period_counts(train), "val": period_counts(val)},
        importance=_importance(booster),
        input_example=synthetic_input_example(model),
    )


def synthetic_input_example(model: CalibratedModel) -> pd.DataFrame:
    """One made-up row in the pyfunc's input form, logged to MLflow as the model's example.

    Every numeric feature is missing (NaN) and every categorical is its first category, as
    text: it documents the columns and types the model takes without carrying any child's data
    (real rows would publish protection events, disability, age ... to the tracking store).
    """
    row = {
        name: [model.categories[name][0] if name in model.categories else np.nan]
        for name in model.features
    }
    return model.pyfunc_input(pd.DataFrame(row)).reset_index(drop=True)


def _fit_metrics(y_train, raw_train, y_val, raw_val, calibrator: Calibrator) -> dict[str, float]:
    corrected = 1.0 / (1.0 + np.exp(-raw_val))
    calibrated = calibrator.predict(raw_val)
    return {
        "train_auc": float(roc_auc_score(y_train, raw_train)),
        "val_auc": float(roc_auc_score(y_val, raw_val)),
        "val_brier_uncalibrated": float(np.mean((corrected - y_val) ** 2)),
        "val_brier_calibrated": float(np.mean((calibrated - y_val) ** 2)),
        "val_mean_calibrated": float(calibrated.mean()),
        "val_prevalence": float(np.mean(y_val)),
    }


def _importance(booster: lgb.Booster) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": booster.feature_importance("gain"),
            "split": booster.feature_importance("split"),
        }
    )
    return table.sort_values(
        ["gain", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


# --- the stage ---------------------------------------------------------------------------


def run(features_path, features_summary_path, models_dir, params: Params) -> dict:
    """Train, calibrate, write models/ atomically, log the MLflow run and register the model."""
    features_path, models_dir = Path(features_path), Path(models_dir)
    facts = read_facts(features_summary_path)
    features, categories = feature_categories(params.features.protected_as_features)
    dataset = open_features(features_path, features)
    check_observed(dataset, facts, features_path)
    split = make_split(
        facts.as_of_dates,
        facts.export_date,
        facts.horizon_days,
        params.train.val_months,
        params.train.test_months,
    )
    log.info("split: train %s..%s, val %s..%s, test %s..%s", split.train[0], split.train[-1],
             split.val[0], split.val[-1], split.test[0], split.test[-1])  # fmt: skip
    frame = read_training_rows(dataset, split, params, features, categories)
    result = train_model(frame, split, params, features, categories)
    del frame
    summary = {
        "split": split.to_dict(),
        "export_date": facts.export_date.isoformat(),
        "horizon_days": facts.horizon_days,
        "best_iteration": result.best_iteration,
        "negative_sample_rate": params.train.negative_sample_rate,
        "objective_weighting": params.train.objective_weighting,
        "scale_pos_weight": result.scale_pos_weight,
        "raw_score_offset": result.model.calibrator.offset,
        "calibration": params.train.calibration,
        "periods": _merge_counts(eligible_counts(dataset, split), result.periods),
        "metrics": result.metrics,
        "features_sha256": file_sha256(features_path),
        "importance_gain": dict(
            zip(result.importance["feature"], result.importance["gain"].round(6), strict=True)
        ),
    }
    with atomic_dir(models_dir) as tmp:
        result.model.save(tmp, summary)
    # MLflow mirrors the model; its run id and version stay out of models/, whose bytes must
    # not depend on the state of one machine's MLflow store.
    logged = log_training_run(models_dir, result, params, summary)
    log.info("model: best iteration %d, val AUC %.4f, registered as version %s",
             result.best_iteration, result.metrics["val_auc"], logged["model_version"])  # fmt: skip
    return {**logged, "best_iteration": result.best_iteration, **result.metrics}


def _merge_counts(eligible: dict, used: dict) -> dict:
    """Per period: eligible rows/positives/prevalence, plus the rows actually used for fitting."""
    return {
        name: {**counts, **({"rows_used": used[name]["rows"]} if name in used else {})}
        for name, counts in eligible.items()
    }
