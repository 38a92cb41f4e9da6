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

import numpy as np
import pandas as pd

from src.config import Params
from src.errors import SafetynetError
from src.features import catalogue
from src.models import nowcast, promotion
from src.models.backtest import SEARCH_SPACE
from src.models.boosting import fit_booster, params_for, raw_offset, training_set, with_constraints
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


def refit(frame: pd.DataFrame, calibrator, summary: dict, params: Params,
          categories: dict[str, list[str]]) -> tuple[CalibratedModel, dict]:  # fmt: skip
    """Pure core: all labelled rows -> booster with the chosen settings and `calibrator`
    (shifted by this fit's raw-score offset). Returns the model and the rows' facts (count,
    nowcast kappa). The caller passes the rows without keeping them: once they are the
    model's input, only that input stays (a million children's history is not held twice)."""
    tp = params.train
    chosen = summary["backtest"]["chosen"]
    settings = dataclasses.replace(tp.lightgbm, **{k: chosen[k] for k in SEARCH_SPACE})
    if not summary["backtest"]["constrained"]:  # released by the backtest (src.models.constraints)
        params = with_constraints(params, "never")
    y = frame["label"].to_numpy()
    facts = {"rows": len(frame), "kappa": nowcast.kappa_from(frame["days_to_outcome"], y, tp.nowcast.days)}
    features = list(summary["features"])
    x = prepare_features(frame, features, categories)
    del frame
    booster = fit_booster(training_set(x, y), params_for(params, settings, y, features),  # empties x
                          summary["backtest"]["rounds"])  # fmt: skip
    calibrator = dataclasses.replace(calibrator, offset=raw_offset(y, tp))
    return CalibratedModel(booster, calibrator, categories), facts


def calibrator_on_test(dataset, evaluated: CalibratedModel, test_dates, params: Params,
                    categories: dict[str, list[str]]):  # fmt: skip
    """`train.calibration` fitted on the evaluated model's raw scores of the test period (every
    eligible row, no sampling), read one month at a time: only scores and labels are kept."""
    raw, y = [], []
    for day in test_dates:
        rows = read_cohort_rows(dataset, [day], evaluated.features, categories, labelled=True)
        raw.append(evaluated.raw_score(rows))
        y.append(rows["label"].to_numpy())
        del rows
    raw, y = np.concatenate(raw), np.concatenate(y)
    if len(np.unique(y)) < 2:
        raise SafetynetError("features.parquet: the test period has one label value; cannot calibrate the served model")
    return fit_calibrator(params.train.calibration, raw, y, 0.0)


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
    calibrator = calibrator_on_test(dataset, evaluated, test_dates, params, categories)
    # passed on without a reference here, so refit can free the rows once they are the model's input
    model, rows = refit(read_training_rows(dataset, labelled, params, features, categories),
                        calibrator, summary, params, categories)  # fmt: skip
    nc = params.train.nowcast
    targets = [d for d in facts.as_of_dates if d > test_dates[-1]]
    window = read_cohort_rows(dataset, nowcast.candidate_dates(targets, facts.as_of_dates, nc.days, nc.months),
                              features, categories)  # fmt: skip
    model.nowcast = nowcast.build(model, window, targets, rows["kappa"], nc)
    served = {
        "refit_on": [d.isoformat() for d in labelled],
        "rows": rows["rows"],
        "rounds": summary["backtest"]["rounds"],
        "calibrated_on": [d.isoformat() for d in test_dates],
        "evaluated_model_digest": decision["model_digest"],
        "features_sha256": file_sha256(features_path),
    }
    model.save(served_dir, served)
    log.info("served model: refitted on %d as-of dates (%s..%s, %d rows), calibrated on the test period",
             len(labelled), labelled[0], labelled[-1], rows["rows"])  # fmt: skip
    return served
