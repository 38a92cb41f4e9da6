"""The served model: the evaluated model's settings, refitted on all labelled history.

After evaluate has measured the model in `models/` on the untouched test period, this stage
fits a booster with exactly the settings and boosting rounds the backtest chose, on every
as-of date whose label is observed (the test months and the gap before them included). It
is what scores the watchlists: the newest labelled months are the best guide to next month.

Its calibrator cannot be fitted on rows it was trained on, so it is fitted on the evaluated
model's scores of the test period: the most recent labelled months, which that model never
saw (`train.calibration` picks the method). Its nowcast (`src.models.nowcast`) covers every
as-of date after the test period: the months it may score. The served model is not evaluated again; the
model card reports the evaluated model's test figures and says that the served one was
refitted, on which dates. `models/served/train_summary.json` names the evaluated model by
its digest, so the watchlist stage can check that the gate decision it obeys is about the
model this one was refitted from.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pandas as pd

from src.config import Params
from src.errors import SafetynetError
from src.features import catalogue
from src.models import nowcast, promotion
from src.models.backtest import SEARCH_SPACE
from src.models.boosting import fit_booster, params_for, raw_offset
from src.models.calibration import fit_calibrator
from src.models.scoring import CalibratedModel, prepare_features
from src.models.split import Split
from src.models.train import feature_categories
from src.models.training_data import (
    file_sha256,
    open_features,
    read_cohort_rows,
    read_training_rows,
)
from src.run_facts import read_facts, read_stage_json, read_train_summary

log = logging.getLogger(__name__)


def refit(frame: pd.DataFrame, test_rows: pd.DataFrame, evaluated: CalibratedModel,
          summary: dict, params: Params, categories: dict[str, list[str]]) -> CalibratedModel:  # fmt: skip
    """Pure core: all labelled rows -> booster with the chosen settings; calibrator fitted on
    the evaluated model's corrected raw scores of the test period."""
    tp = params.train
    chosen = summary["backtest"]["chosen"]
    settings = dataclasses.replace(tp.lightgbm, **{k: chosen[k] for k in SEARCH_SPACE})
    y = frame["label"].to_numpy()
    features = list(summary["features"])
    booster = fit_booster(prepare_features(frame, features, categories), y,
                          params_for(params, settings, y, features), summary["backtest"]["rounds"])  # fmt: skip
    if test_rows["label"].nunique() < 2:
        raise SafetynetError("features.parquet: the test period has one label value; cannot calibrate the served model")
    calibrator = fit_calibrator(tp.calibration, evaluated.raw_score(test_rows),
                                test_rows["label"].to_numpy(), raw_offset(y, tp))  # fmt: skip
    return CalibratedModel(booster, calibrator, categories)


def run(features_path, features_summary_path, models_dir, served_dir, params: Params) -> dict:
    """Refit on all labelled as-of dates; write models/served/ file by file, atomically."""
    features_path, models_dir, served_dir = Path(features_path), Path(models_dir), Path(served_dir)
    facts = read_facts(features_summary_path)
    summary = read_train_summary(models_dir)
    test_dates = Split.from_dict(summary["split"]).test
    decision = read_stage_json(models_dir / promotion.PROMOTION_FILE, "evaluate")
    evaluated = CalibratedModel.from_dir(models_dir)
    excluded = catalogue.registry_excluded(read_stage_json(features_summary_path, "features"))
    features, categories = feature_categories(params.features.protected_as_features, excluded)
    if features != list(summary["features"]):
        raise SafetynetError(f"{models_dir}: trained on other features than the catalogue's; rerun dvc repro")
    dataset = open_features(features_path, features)
    labelled = facts.observed_dates()
    frame = read_training_rows(dataset, labelled, params, features, categories)
    test_rows = read_training_rows(dataset, test_dates, dataclasses.replace(
        params, train=dataclasses.replace(params.train, negative_sample_rate=1.0)), features, categories)  # fmt: skip
    model = refit(frame, test_rows, evaluated, summary, params, categories)
    nc = params.train.nowcast
    targets = [d for d in facts.as_of_dates if d > test_dates[-1]]
    window = read_cohort_rows(dataset, nowcast.candidate_dates(targets, facts.as_of_dates, nc.days, nc.months),
                              features, categories)  # fmt: skip
    kappa = nowcast.kappa_from(frame["days_to_outcome"], frame["label"], nc.days)
    model.nowcast = nowcast.build(model, window, targets, kappa, nc)
    served = {
        "refit_on": [d.isoformat() for d in labelled],
        "rows": len(frame),
        "rounds": summary["backtest"]["rounds"],
        "calibrated_on": [d.isoformat() for d in test_dates],
        "evaluated_model_digest": decision["model_digest"],
        "features_sha256": file_sha256(features_path),
    }
    model.save(served_dir, served)
    log.info("served model: refitted on %d as-of dates (%s..%s, %d rows), calibrated on the test period",
             len(labelled), labelled[0], labelled[-1], len(frame))  # fmt: skip
    return served
