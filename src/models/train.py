"""features.parquet -> models/ (LightGBM booster + calibrator + summary) and one MLflow run.

Rows: fully observed labels (`label_observed`) of children not already out (`already_out == 0`),
at the train as-of dates of `src.models.split`: all labelled history before the test period,
which is never read. Negative down-sampling (`train.negative_sample_rate` < 1) keeps each
negative with that probability, decided by a seeded hash of (child_pid, as_of):
order-independent, so it can run while streaming the file.

The backtest (`src.models.backtest`) chooses the settings, the boosting rounds and the
calibrator on folds inside the train dates, on a seeded sample of at most
`train.backtest.max_children` children (the search is what grows with the data; a sample of
100,000 children holds thousands of outcomes per fold); the evaluated model is then fitted on all of
them with those settings and rounds. Class weighting, the raw-score offset that undoes it and
the monotone constraints: `src.models.boosting`; what the constraints cost on the backtest
folds: `src.models.constraints` (in the summary's backtest section, hence reports/metrics.json).
The model's nowcast (`src.models.nowcast`) gives the outcome level of each test month from
what the export showed by that month's first day.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from src.config import Params
from src.errors import SafetynetError
from src.features import catalogue
from src.models import nowcast
from src.models.backtest import run_backtest
from src.models.boosting import (
    class_weight,
    constrained,
    fit_with_training_auc,
    params_for,
    raw_offset,
    training_set,
    with_constraints,
)
from src.models.constraints import compare_constraints
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
    read_cohort_rows,
    read_training_rows,
    sample_children,
)
from src.run_facts import read_facts, read_stage_json

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
    backtest: dict  # the backtest report (src/models/backtest.py), JSON-ready
    kappa: float  # share of outcomes in the horizon's first train.nowcast.days (src/models/nowcast.py)


def feature_categories(
    protected_as_features: bool, excluded: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, list[str]]]:
    """Model features in catalogue order (less ``excluded``) and each categorical's categories."""
    features = catalogue.model_features(protected_as_features, excluded)
    if not features:
        raise SafetynetError("src/features/catalogue.py: the catalogue has no model features")
    categories = {}
    for name in catalogue.categorical_features(protected_as_features, excluded):
        cats = list(catalogue.spec(name).categories)
        if not cats:
            raise SafetynetError(
                f"src/features/catalogue.py: categorical feature '{name}' lists no categories"
            )
        categories[name] = cats
    return features, categories


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
    """Pure core: labelled rows -> backtest (search, rounds, calibrator) -> the final model,
    fitted on every labelled as-of date before the test period."""
    tp = params.train
    rate = tp.negative_sample_rate
    keep = keep_for_training(frame, split.train, rate, params.base.seed)
    if not keep.all():  # rows read by read_training_rows are kept already: no copy then
        frame = frame.loc[keep]
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    if frame["label"].nunique() < 2:
        raise SafetynetError(
            f"features.parquet: the labelled history has {len(frame)} eligible rows with only one "
            "label value; supply more history"
        )
    sample = sample_children(frame, tp.backtest.max_children, params.base.seed)
    backtest = run_backtest(sample, split.folds, params, features, categories)
    constraints, backtest = compare_constraints(sample, split.folds, params, features, categories, backtest)
    if constraints["released"]:  # src.models.constraints: the chosen settings, unconstrained
        log.info("monotone constraints released: the backtest's unconstrained lists are better "
                 "(paired z %.2f >= %.2f)", constraints["lists"]["z"], constraints["lists"]["critical_z"])  # fmt: skip
        params = with_constraints(params, "never")
    sampled_children = int(sample["child_pid"].nunique())
    y = frame["label"].to_numpy()
    spw, offset = class_weight(y, tp.objective_weighting), raw_offset(y, tp)
    counts, kappa = period_counts(frame), nowcast.kappa_from(frame["days_to_outcome"], y, tp.nowcast.days)
    x_train = prepare_features(frame, features, categories)
    del frame, sample  # the caller passes the rows without keeping them: only x_train stays
    booster, train_auc = fit_with_training_auc(training_set(x_train, y),  # empties x_train
                                               params_for(params, backtest.settings, y, features), backtest.rounds)  # fmt: skip
    calibrator = dataclasses.replace(backtest.calibrator, offset=offset)
    model = CalibratedModel(booster, calibrator, categories)
    return TrainingResult(
        model=model,
        best_iteration=backtest.rounds,
        scale_pos_weight=spw,
        metrics={"train_auc": train_auc,
                 "backtest_mean_auc_pr": backtest.report["summary"]["auc_pr"]["mean"]},  # fmt: skip
        periods={"train": counts},
        importance=_importance(booster),
        input_example=synthetic_input_example(model),
        backtest={**backtest.report, "children": sampled_children, "constrained": constrained(params),
                  "monotone_constraints": constraints},  # fmt: skip
        kappa=kappa,
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
    excluded = catalogue.registry_excluded(read_stage_json(features_summary_path, "features"))
    features, categories = feature_categories(params.features.protected_as_features, excluded)
    dataset = open_features(features_path, features)
    check_observed(dataset, facts, features_path)
    bt = params.train.backtest
    split = make_split(facts.as_of_dates, facts.export_date, facts.horizon_days,
                       params.train.test_months, bt.folds, bt.fold_months)  # fmt: skip
    log.info("split: train %s..%s (%d folds, last window %s), test %s..%s", split.train[0],
             split.train[-1], len(split.folds), split.folds[-1].window[-1], split.test[0],
             split.test[-1])  # fmt: skip
    # passed on without a reference here, so train_model can free the rows once they are
    # the model's input (sorted as train_model wants them: its sort is then a no-op)
    result = train_model(read_training_rows(dataset, split.train, params, features, categories,
                                            ordered=True), split, params, features, categories)  # fmt: skip
    nc = params.train.nowcast
    window = read_cohort_rows(dataset, nowcast.candidate_dates(split.test, facts.as_of_dates, nc.days,
                              nc.months), features, categories)  # fmt: skip
    result.model.nowcast = nowcast.build(result.model, window, split.test, result.kappa, nc)
    summary = {
        "split": split.to_dict(),
        "export_date": facts.export_date.isoformat(),
        "horizon_days": facts.horizon_days,
        "best_iteration": result.best_iteration,
        "backtest": result.backtest,
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
    result.model.save(models_dir, summary)  # file by file, atomically: models/ holds other stages' files
    # MLflow mirrors the model; its run id and version stay out of models/, whose bytes must
    # not depend on the state of one machine's MLflow store.
    logged = log_training_run(models_dir, result, params, summary)
    log.info("model: %d rounds, backtest mean AUC-PR %s, registered as version %s",
             result.best_iteration, result.metrics["backtest_mean_auc_pr"], logged["model_version"])  # fmt: skip
    return {**logged, "best_iteration": result.best_iteration, **result.metrics}


def _merge_counts(eligible: dict, used: dict) -> dict:
    """Per period: eligible rows/positives/prevalence, plus the rows actually used for fitting."""
    return {
        name: {**counts, **({"rows_used": used[name]["rows"]} if name in used else {})}
        for name, counts in eligible.items()
    }
