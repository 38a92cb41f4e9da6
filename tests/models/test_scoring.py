"""CalibratedModel and its calibrators: saved and loaded models score exactly alike."""

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from src.errors import SafetynetError
from src.features import catalogue
from src.models import train
from src.models.calibration import TIE_BREAK, Calibrator, fit_calibrator
from src.models.scoring import CalibratedModel, CalibratedPyfunc, prepare_features
from src.models.split import make_split
from tests.models import train_fixtures as fx


@pytest.fixture(scope="module")
def model():
    frame = fx.synthetic_features(n_children=60)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)
        split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
        features, categories = train.feature_categories(False)
        result = train.train_model(frame, split, fx.small_params(), features, categories)
    return result.model


@pytest.fixture
def rows():
    return fx.synthetic_features(n_children=10, seed=5).head(40)


def scores_and_labels(n=300, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n) * 2
    return s, (rng.random(n) < 1 / (1 + np.exp(-(0.7 * s - 1)))).astype(int)


def test_centred_isotonic_passes_through_sklearn_steps_without_plateaus():
    s, y = scores_and_labels()
    calibrator = fit_calibrator("isotonic", s, y, offset=0.0)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y)
    # every knot is a step of sklearn's fit, at the step's centre (outer steps: outer edge)
    knots = np.asarray(calibrator.x)
    np.testing.assert_allclose(np.asarray(calibrator.y), reference.predict(knots), atol=1e-12)
    assert knots[0] == s.min() and knots[-1] == s.max()
    inside = np.sort(s)
    shown = np.round(calibrator.predict(inside), 2)  # what a list displays, to the percent
    steps = np.round(reference.predict(inside), 2)
    assert len(np.unique(shown)) > 2 * len(np.unique(steps))  # far fewer shared percentages
    grid = np.linspace(-8, 8, 101)  # includes values outside the fitted range
    assert (np.diff(calibrator.predict(grid)) > 0).all()  # ranks exactly as the raw score
    assert abs(calibrator.predict(s).mean() - y.mean()) < 0.02  # still calibrated in the large
    assert Calibrator.from_dict(calibrator.to_dict()) == calibrator


def test_beta_calibration_fits_a_skewed_map_and_survives_json():
    rng = np.random.default_rng(3)
    s = rng.normal(-1.5, 1.5, 20000)
    q = 1 / (1 + np.exp(-s))
    truth = 1 / (1 + np.exp(-(1.6 * np.log(q) - 0.6 * np.log(1 - q) + 0.4)))  # a beta map
    y = (rng.random(len(s)) < truth).astype(int)
    calibrator = fit_calibrator("beta", s, y, offset=0.0)
    assert abs(calibrator.a - 1.6) < 0.15 and abs(calibrator.b - 0.6) < 0.15
    assert np.abs(calibrator.predict(s) - truth).max() < 0.03
    assert Calibrator.from_dict(calibrator.to_dict()) == calibrator


def test_platt_matches_sklearn_and_survives_json():
    s, y = scores_and_labels(seed=1)
    calibrator = fit_calibrator("platt", s, y, offset=-0.5)
    reference = LogisticRegression(C=np.inf).fit(s.reshape(-1, 1), y)
    np.testing.assert_allclose(
        calibrator.predict(s), reference.predict_proba(s.reshape(-1, 1))[:, 1], atol=TIE_BREAK
    )
    assert Calibrator.from_dict(calibrator.to_dict()) == calibrator
    assert calibrator.to_dict()["offset"] == -0.5


def test_bad_calibrator_inputs_are_clear_errors():
    with pytest.raises(SafetynetError, match="only one label value"):
        fit_calibrator("isotonic", np.arange(5.0), np.zeros(5), 0.0)
    with pytest.raises(SafetynetError, match="calibrator.json: method 'sigmoid'"):
        Calibrator.from_dict({"method": "sigmoid"})


def test_scores_are_calibrated_corrected_raw_scores(model, rows):
    raw = model.booster.predict(model.prepare(rows), raw_score=True)
    np.testing.assert_array_equal(model.raw_score(rows), raw + model.calibrator.offset)
    np.testing.assert_array_equal(
        model.predict_proba(rows), model.calibrator.predict(model.raw_score(rows))
    )
    assert ((model.predict_proba(rows) >= 0) & (model.predict_proba(rows) <= 1)).all()


def test_save_and_load_give_identical_scores(model, rows, tmp_path):
    model.save(tmp_path / "models", {"note": "kept"})
    loaded = CalibratedModel.from_dir(tmp_path / "models")
    assert np.array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert loaded.features == fx.MODEL_FEATURES and loaded.categories == {"kind": list(fx.KINDS)}
    context = SimpleNamespace(
        artifacts={
            "booster": tmp_path / "models" / "booster.txt",
            "calibrator": tmp_path / "models" / "calibrator.json",
            "feature_spec": tmp_path / "models" / "train_summary.json",
        }
    )
    wrapper = CalibratedPyfunc()
    wrapper.load_context(context)
    assert np.array_equal(
        wrapper.predict(context, model.pyfunc_input(rows)), model.predict_proba(rows)
    )


def test_prepare_fixes_order_and_categories(model, rows, caplog):
    shuffled = rows[list(reversed(rows.columns))].copy()
    shuffled["kind"] = shuffled["kind"].astype("str")  # text works like category
    shuffled.loc[shuffled.index[:3], "kind"] = "unheard_of"
    with caplog.at_level(logging.WARNING):
        prepared = model.prepare(shuffled)
    assert list(prepared.columns) == fx.MODEL_FEATURES
    assert list(prepared["kind"].cat.categories) == list(fx.KINDS)
    assert prepared["kind"].isna().sum() == 3 and "unheard_of" in caplog.text
    assert np.array_equal(model.raw_score(rows.iloc[3:]), model.raw_score(shuffled.iloc[3:]))


def test_missing_inputs_are_clear_errors(model, rows, tmp_path):
    with pytest.raises(SafetynetError, match="missing model feature column"):
        model.prepare(rows.drop(columns=["risk_a"]))
    with pytest.raises(SafetynetError, match="run the train stage first"):
        CalibratedModel.from_dir(tmp_path / "nothing")
    assert isinstance(model.pyfunc_input(rows)["kind"].iloc[0], str)
    assert "child_pid" not in model.pyfunc_input(rows).columns


def test_pyfunc_input_keeps_missing_categoricals(model, rows):
    rows = rows.assign(kind=pd.Categorical([None] * len(rows), categories=fx.KINDS))
    assert model.pyfunc_input(rows)["kind"].isna().all()


@pytest.mark.parametrize("dtype", [object, "string[pyarrow]", "category"])
def test_categories_are_coded_as_pandas_codes_them_with_unknowns_missing(dtype, caplog):
    rng = np.random.default_rng(3)
    kinds = ["b", "a", "c"]
    values = pd.Series(rng.choice(["a", "b", "c", "zz", "yy", None], 500), dtype=dtype, name="kind")
    with caplog.at_level(logging.WARNING):
        coded = prepare_features(values.to_frame(), ["kind"], {"kind": kinds})["kind"]
    text = values.astype("string")
    expected = pd.Categorical(text.where(text.isin(kinds)), categories=kinds)
    assert np.array_equal(coded.cat.codes.to_numpy(), expected.codes) and list(coded.cat.categories) == kinds
    unknown = int(text.isin(["zz", "yy"]).sum())
    assert f"kind: {unknown} value(s) outside the trained categories (e.g. yy, zz)" in caplog.text
