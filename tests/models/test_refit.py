"""The served model: the chosen settings refitted on all labelled history, named after its parent."""

from __future__ import annotations

import dataclasses

import numpy as np

from src.features import catalogue
from src.models import promotion, refit, train
from src.models.backtest import SEARCH_SPACE
from src.models.calibration import fit_calibrator
from src.models.scoring import CalibratedModel
from src.models.split import make_split
from src.models.training_data import file_sha256, open_features
from tests.models import train_fixtures as fx


def test_the_served_model_is_refitted_on_every_labelled_date(tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)
    frame = fx.synthetic_features(n_children=200)
    path = tmp_path / "features.parquet"
    frame.to_parquet(path, index=False)
    facts = fx.write_facts(path)
    params = fx.small_params()
    split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
    features, categories = train.feature_categories(False)
    evaluated = train.train_model(frame, split, params, features, categories)
    models = tmp_path / "models"
    evaluated.model.save(models, {"split": split.to_dict(), "backtest": evaluated.backtest,
                                  "features_sha256": file_sha256(path)})  # fmt: skip
    gate = {"metric": "precision_at_k", "model": 0.5, "rules": 0.3, "passed": True, "reason": "r"}
    promotion.write_promotion(models, gate, [d.isoformat() for d in split.test])

    served = refit.run(path, facts, models, tmp_path / "served", params)

    observed = sorted(d.isoformat() for d in frame.loc[frame["label_observed"], "as_of"].dt.date.unique())
    assert served["refit_on"] == observed  # the test months and the gap before them included
    assert set(served["calibrated_on"]) == {d.isoformat() for d in split.test}
    assert served["evaluated_model_digest"] == promotion.model_digest(models)
    model = CalibratedModel.from_dir(tmp_path / "served")
    assert model.booster.current_iteration() == evaluated.backtest["rounds"]
    assert model.features == evaluated.model.features
    latest = frame.loc[frame["as_of"] == frame["as_of"].max()]
    assert not np.array_equal(model.predict_proba(latest), evaluated.model.predict_proba(latest))
    again = refit.run(path, facts, models, tmp_path / "again", params)
    assert again == served
    assert (tmp_path / "again" / "booster.txt").read_bytes() == (tmp_path / "served" / "booster.txt").read_bytes()


def test_the_served_calibrator_sees_every_test_row_once_whatever_the_sampling(tmp_path, monkeypatch):
    """Read month by month (bounded memory), it equals the calibrator fitted on all the test
    period's eligible rows at once, negatives unsampled even when training samples them."""
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)
    frame = fx.synthetic_features(n_children=300)
    path = tmp_path / "features.parquet"
    frame.to_parquet(path, index=False)
    params = fx.small_params()
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, negative_sample_rate=0.3))
    split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
    features, categories = train.feature_categories(False)
    evaluated = train.train_model(frame, split, params, features, categories).model
    dataset = open_features(path, features)

    fitted = refit.calibrator_on_test(dataset, evaluated, split.test, params, categories)

    rows = frame.loc[frame["as_of"].dt.date.isin(split.test) & frame["label_observed"] & (frame["already_out"] == 0)]
    assert len(rows) > 100 and rows["label"].nunique() == 2
    expected = fit_calibrator(params.train.calibration, evaluated.raw_score(rows), rows["label"].to_numpy(), 0.0)
    assert fitted == expected


def test_the_served_model_keeps_the_evaluated_models_constraints(monkeypatch):
    """Constraints the backtest released stay released in the refit (and kept ones kept)."""
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.DIRECTIONAL_CATALOGUE)
    frame = fx.synthetic_features(n_children=100)
    frame = frame.loc[frame["label_observed"]].reset_index(drop=True)
    params, categories = fx.small_params(monotone_constraints="unless_costly"), {"kind": list(fx.KINDS)}
    calibrator = fit_calibrator("platt", np.linspace(-2, 2, 50), np.tile([0, 1], 25), 0.0)
    for constrained in (True, False):
        chosen = {name: getattr(params.train.lightgbm, name) for name in SEARCH_SPACE}
        summary = {"features": fx.MODEL_FEATURES,
                   "backtest": {"chosen": chosen, "rounds": 5, "constrained": constrained}}  # fmt: skip
        model, _ = refit.refit(frame.copy(), calibrator, summary, params, categories)
        assert ("monotone_constraints" in model.booster.params) is constrained
