"""The train stage: honest calibration, deterministic boosters, sampling correction, MLflow."""

import datetime as dt
import hashlib
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.errors import SafetynetError
from src.features import catalogue
from src.models import train, training_data
from src.models.split import make_split
from tests.models import train_fixtures as fx


@pytest.fixture
def small_catalogue(monkeypatch):
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)


def fit(frame, **train_overrides):
    params = fx.small_params(**train_overrides)
    split = make_split(frame["as_of"].unique(), fx.EXPORT_DATE, 180, 3, 4, 1)
    features, categories = train.feature_categories(False)
    return train.train_model(frame, split, params, features, categories), split


def brier(p, y):
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))


@pytest.mark.parametrize("mode", ["always", "unless_costly"])
def test_costly_constraints_are_released_only_under_unless_costly(monkeypatch, mode):
    """A U-shaped truth in a feature declared rising: the backtest's unconstrained lists are
    significantly better, so unless_costly fits the final model without the constraints."""
    monkeypatch.setattr(catalogue, "CATALOGUE", fx.DIRECTIONAL_CATALOGUE)
    result, _ = fit(fx.u_shaped_frame(500), monotone_constraints=mode, backtest={"search_trials": 1})
    released = mode == "unless_costly"
    assert result.backtest["monotone_constraints"]["released"] is released
    assert result.backtest["constrained"] is not released
    assert ("monotone_constraints" in result.model.booster.params) is not released


def test_features_follow_the_catalogue(small_catalogue):
    features, categories = train.feature_categories(False)
    assert features == fx.MODEL_FEATURES  # protected `sex` only with protected_as_features
    assert categories == {"kind": list(fx.KINDS)}
    assert "sex" in train.feature_categories(True)[1]


def test_registry_fields_the_features_stage_excluded_are_no_model_inputs():
    excluded = catalogue.registry_excluded(
        {"registry": catalogue.registry_reading(False, "exclude")}
    )
    features, categories = train.feature_categories(False, excluded)
    assert {"guardian_type", "category"}.isdisjoint(features) and "category" not in categories
    assert "disability_level" in features  # updated only in the background, never by an outcome
    kept, _ = train.feature_categories(False, catalogue.registry_excluded({}))
    assert {"guardian_type", "category"} <= set(kept)  # a summary without the entry excludes none


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_improves_brier_on_held_out_period(small_catalogue, method):
    frame = fx.synthetic_features()
    result, split = fit(frame, calibration=method)
    test = frame.loc[
        split.period_of(frame["as_of"]).eq("test")
        & frame["label_observed"]
        & frame["already_out"].eq(0)
    ]
    booster_only = 1 / (
        1 + np.exp(-result.model.booster.predict(result.model.prepare(test), raw_score=True))
    )
    calibrated = result.model.predict_proba(test)
    assert brier(calibrated, test["label"]) < brier(booster_only, test["label"]) - 0.01
    assert abs(calibrated.mean() - test["label"].mean()) < 0.05


def test_same_data_gives_byte_identical_booster_in_any_row_order(small_catalogue):
    frame = fx.synthetic_features()
    first, _ = fit(frame)
    second, _ = fit(frame.sample(frac=1.0, random_state=1))
    assert first.model.booster.model_to_string() == second.model.booster.model_to_string()
    assert first.model.calibrator == second.model.calibrator


@pytest.mark.parametrize("weighting", ["none", "balanced"])
def test_down_sampling_correction_recovers_the_base_rate(small_catalogue, weighting):
    frame = fx.synthetic_features(n_children=400)
    result, split = fit(frame, negative_sample_rate=0.25, objective_weighting=weighting)
    assert (
        result.periods["train"]["positives"] / result.periods["train"]["rows"] > 0.3
    )  # really sampled
    val = frame.loc[  # the test period: rows the model never saw
        split.period_of(frame["as_of"]).eq("test")
        & frame["label_observed"]
        & frame["already_out"].eq(0)
    ]
    corrected = 1 / (1 + np.exp(-result.model.raw_score(val)))
    uncorrected = 1 / (1 + np.exp(-(result.model.raw_score(val) - result.model.calibrator.offset)))
    base_rate = val["label"].mean()
    assert result.model.calibrator.offset == pytest.approx(
        math.log(0.25) - math.log(result.scale_pos_weight)
    )
    assert corrected.mean() == pytest.approx(base_rate, rel=0.25)
    assert uncorrected.mean() > 1.5 * base_rate


def test_sampling_depends_on_the_row_not_its_position():
    frame = fx.synthetic_features(n_children=20)
    shuffled = frame.sample(frac=1.0, random_state=3)
    u = pd.Series(training_data.sample_uniform(frame, 7), index=frame.index)
    assert np.array_equal(u.loc[shuffled.index].to_numpy(), training_data.sample_uniform(shuffled, 7))
    assert 0.4 < u.mean() < 0.6 and not np.array_equal(u.to_numpy(), training_data.sample_uniform(frame, 8))


def test_the_backtest_child_sample_keeps_whole_children_in_any_row_order():
    frame = fx.synthetic_features(n_children=40)
    sample = training_data.sample_children(frame, 10, 7)
    shuffled = training_data.sample_children(frame.sample(frac=1.0, random_state=3), 10, 7)
    assert sample["child_pid"].nunique() == 10
    assert set(sample["child_pid"]) == set(shuffled["child_pid"])
    kept = frame.loc[frame["child_pid"].isin(sample["child_pid"])]
    assert len(sample) == len(kept)  # every row of a chosen child
    assert set(training_data.sample_children(frame, 10, 8)["child_pid"]) != set(sample["child_pid"])
    assert training_data.sample_children(frame, 0, 7) is frame
    assert training_data.sample_children(frame, 40, 7) is frame


def test_missing_feature_column_names_file_and_column(small_catalogue, tmp_path):
    path = tmp_path / "features.parquet"
    fx.synthetic_features(n_children=5).drop(columns=["noise"]).to_parquet(path, index=False)
    with pytest.raises(SafetynetError, match=r"features.parquet: missing column\(s\) noise"):
        train.run(path, fx.write_facts(path), tmp_path / "models", fx.small_params())


# --- the whole stage with a throw-away MLflow store (one store for all tests: ~10 s of migrations)


@pytest.fixture(scope="module")
def trained():
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="safetynet-train-", dir=shm if shm.is_dir() else None))
    frame = fx.synthetic_features()
    frame.to_parquet(root / "features.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalogue, "CATALOGUE", fx.SMALL_CATALOGUE)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        params = fx.small_params()
        facts = fx.write_facts(root / "features.parquet")
        first = train.run(root / "features.parquet", facts, root / "models", params)
        second = train.run(root / "features.parquet", facts, root / "models_again", params)
        yield {"root": root, "frame": frame, "first": first, "second": second}
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def test_stage_writes_the_model_folder(trained):
    root, frame = trained["root"], trained["frame"]
    summary = json.loads((root / "models" / "train_summary.json").read_text())
    assert sorted(p.name for p in (root / "models").iterdir()) == [
        "booster.txt",
        "calibrator.json",
        "nowcast.json",
        "train_summary.json",
    ]
    assert summary["features"] == fx.MODEL_FEATURES
    assert summary["categorical_features"] == {"kind": list(fx.KINDS)}
    assert (
        summary["features_sha256"]
        == hashlib.sha256((root / "features.parquet").read_bytes()).hexdigest()
    )
    assert "run_id" not in summary and "model_version" not in summary  # MLflow ids stay out of models/
    assert trained["first"]["model_version"] == "1"
    eligible = frame.loc[frame["label_observed"] & frame["already_out"].eq(0)]
    for period in ("train", "test"):
        rows = eligible.loc[eligible["as_of"].dt.date.astype(str).isin(summary["split"][period])]
        assert summary["periods"][period]["rows"] == len(rows)
        assert summary["periods"][period]["positives"] == int(rows["label"].sum())
    assert json.loads((root / "models" / "calibrator.json").read_text())["method"] == "isotonic"
    backtest = summary["backtest"]
    assert len(backtest["folds"]) == 4 and backtest["rounds"] == summary["best_iteration"]
    assert [f["window"] for f in backtest["folds"]] == [f["window"] for f in summary["split"]["folds"]]
    assert set(backtest["calibration_comparison"][0]) == {"isotonic", "platt", "beta"}
    assert backtest["folds"][0]["ece"] is None and backtest["folds"][1]["ece"] is not None
    assert backtest["summary"]["auc_roc"]["mean"] > 0.6 and backtest["summary"]["auc_roc"]["sd"] is not None


def test_retraining_is_byte_identical_and_reuses_the_registered_version(trained):
    root = trained["root"]
    for name in ("booster.txt", "calibrator.json", "nowcast.json", "train_summary.json"):
        assert (root / "models" / name).read_bytes() == (root / "models_again" / name).read_bytes()
    assert trained["second"]["run_id"] == trained["first"]["run_id"]
    assert trained["second"]["model_version"] == trained["first"]["model_version"]


def test_registered_model_loads_through_pyfunc_with_the_stage_scores(trained):
    import mlflow

    from src.models.scoring import CalibratedModel
    from src.models.tracking import (
        champion_version,
        find_model_run,
        load_champion,
        promote_champion,
    )

    frame = trained["frame"].tail(200)
    model = CalibratedModel.from_dir(trained["root"] / "models")
    expected = model.predict_proba(frame)
    version = trained["first"]["model_version"]
    loaded = mlflow.pyfunc.load_model(f"models:/safetynet-ews/{version}")
    # the pyfunc's input is the features alone: the calibrated probability, before the nowcast
    assert np.array_equal(np.asarray(loaded.predict(model.pyfunc_input(frame))), model.calibrated(frame))
    assert champion_version() is None  # train never promotes; evaluate's gate does
    promote_champion(version)
    assert champion_version() == version
    champion_version_, champion = load_champion()
    assert champion_version_ == version
    assert np.array_equal(champion.predict_proba(frame), expected)
    assert find_model_run(trained["root"] / "models") == {
        key: trained["first"][key] for key in ("run_id", "model_version", "model_uri")
    }  # the model in models/ is found in MLflow by its digest


def test_nothing_keyed_by_child_reaches_mlflow(trained):
    root, frame = trained["root"], trained["frame"]
    pids = [p.encode() for p in frame["child_pid"].unique()]
    files = [p for p in (root / "mlartifacts").rglob("*") if p.is_file()]
    assert any(p.name == "input_example.json" for p in files) and any(
        p.suffix == ".png" for p in files
    )
    for path in files:
        content = path.read_bytes()
        assert b"child_pid" not in content, path
        assert not any(pid in content for pid in pids), path
    database = (root / "mlflow.db").read_bytes()
    assert not any(pid in database for pid in pids)


def test_mlflow_input_example_is_one_synthetic_row_not_training_data(trained):
    from mlflow.models import Model

    from src.models.scoring import CalibratedModel

    root, frame = trained["root"], trained["frame"]
    expected = train.synthetic_input_example(CalibratedModel.from_dir(root / "models"))
    assert expected.shape == (1, len(fx.MODEL_FEATURES))
    assert expected.iloc[0]["kind"] == fx.KINDS[0]
    assert expected.drop(columns="kind").isna().all(axis=None)
    model_dirs = [p.parent for p in (root / "mlartifacts").rglob("MLmodel")]
    assert model_dirs
    for folder in model_dirs:
        example = Model.load(folder).load_input_example(folder)
        pd.testing.assert_frame_equal(example, expected, check_dtype=False)
        serving = json.loads((folder / "serving_input_example.json").read_text())
        rows = serving["dataframe_split"]["data"]
        assert len(rows) == 1
        cells = dict(zip(serving["dataframe_split"]["columns"], rows[0], strict=True))
        assert cells.pop("kind") == fx.KINDS[0]
        assert all(math.isnan(v) for v in cells.values())
    # no continuous feature value of any row (its first 6 decimals) is in an example file
    values = {f"{v:.9f}"[:-3] for v in frame[["risk_a", "noise"]].abs().stack().dropna()}
    for path in (root / "mlartifacts").rglob("*example*.json"):
        assert not any(v in path.read_text() for v in values), path


@pytest.mark.parametrize("queue", ["standalone", "celery"])
def test_dvc_temp_experiments_use_the_project_store(tmp_path, queue):
    from src.models.tracking import _artifact_root, project_root

    # DVC 3.67 runs `exp run --temp` / queued experiments in .dvc/tmp/exps/<queue>/tmpXXXX
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / queue / "tmpab12cd"
    assert project_root(workspace) == tmp_path.resolve()
    assert project_root(tmp_path) == tmp_path.resolve()
    assert (
        _artifact_root(f"sqlite:///{tmp_path}/x/mlflow.db", tmp_path)
        == tmp_path / "x" / "mlartifacts"
    )


def test_the_nowcast_covers_the_test_months_and_corrects_their_scores(trained):
    from src.models import nowcast
    from src.models.scoring import CalibratedModel

    root = trained["root"]
    summary = json.loads((root / "models" / "train_summary.json").read_text())
    model = CalibratedModel.from_dir(root / "models")
    assert sorted(model.nowcast["ratios"]) == summary["split"]["test"]
    test_month = summary["split"]["test"][-1]
    entry = model.nowcast["ratios"][test_month]
    # the window ends a nowcast.days before the month it scores
    assert all(dt.date.fromisoformat(d) + dt.timedelta(days=model.nowcast["days"])
               <= dt.date.fromisoformat(test_month) for d in entry["from"])  # fmt: skip
    rows = trained["frame"].loc[trained["frame"]["as_of"] == pd.Timestamp(test_month)]
    expected = nowcast.correct(model.calibrated(rows), entry["ratio"])
    assert np.array_equal(model.predict_proba(rows), expected)
