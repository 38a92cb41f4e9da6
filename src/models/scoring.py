"""A trained model folder (booster + calibrator + nowcast) -> probabilities for a features frame.

`CalibratedModel` is what every later stage uses: `CalibratedModel.from_dir("models")`, the
model this run trained and evaluated. The same object sits inside the MLflow pyfunc model
(`CalibratedPyfunc`), so both give exactly the same scores.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightgbm as lgb
import mlflow.pyfunc
import numpy as np
import pandas as pd

from src.atomic import write_json, write_text
from src.errors import SafetynetError
from src.models import nowcast as nowcasting
from src.models.calibration import Calibrator

log = logging.getLogger(__name__)

BOOSTER_FILE = "booster.txt"
CALIBRATOR_FILE = "calibrator.json"
SUMMARY_FILE = "train_summary.json"


class CalibratedModel:
    """LightGBM booster + calibrator, with the exact feature list and category sets of training.

    `booster` is the plain LightGBM model (for SHAP: explain with `booster` on `prepare(df)`;
    its log-odds plus `calibrator.offset` is `raw_score`). `nowcast` (models/nowcast.json,
    src/models/nowcast.py) corrects the calibrated probability of the as-of dates it lists.
    """

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        categories: dict[str, list[str]],
        nowcast: dict | None = None,
    ):
        self.booster = booster
        self.calibrator = calibrator
        self.nowcast = nowcast
        self.features: list[str] = list(booster.feature_name())
        self.categories = {name: list(cats) for name, cats in categories.items()}
        unknown = sorted(set(self.categories) - set(self.features))
        if unknown:
            raise SafetynetError(
                f"{SUMMARY_FILE}: categorical '{unknown[0]}' is not a booster feature"
            )

    @classmethod
    def from_dir(cls, path: str | Path) -> CalibratedModel:
        path = Path(path)
        model = cls.from_files(path / BOOSTER_FILE, path / CALIBRATOR_FILE, path / SUMMARY_FILE)
        source = path / nowcasting.NOWCAST_FILE
        if not source.exists():
            raise SafetynetError(f"{source}: not found; run the train stage first (dvc repro train)")
        model.nowcast = nowcasting.check(json.loads(source.read_text(encoding="utf-8")), str(source))
        return model

    @classmethod
    def from_files(cls, booster_path, calibrator_path, summary_path) -> CalibratedModel:
        for file in (booster_path, calibrator_path, summary_path):
            if not Path(file).exists():
                raise SafetynetError(
                    f"{file}: not found; run the train stage first (dvc repro train)"
                )
        booster = lgb.Booster(model_str=Path(booster_path).read_text(encoding="utf-8"))
        calibrator = Calibrator.from_dict(
            json.loads(Path(calibrator_path).read_text(encoding="utf-8"))
        )
        summary = json.loads(Path(summary_path).read_text(encoding="utf-8"))
        model = cls(booster, calibrator, summary["categorical_features"])
        if summary["features"] != model.features:
            raise SafetynetError(
                f"{summary_path}: feature list differs from {booster_path}; retrain"
            )
        return model

    def save(self, path: str | Path, summary: dict | None = None) -> None:
        """Write booster.txt, calibrator.json and train_summary.json (`summary` plus the feature spec)."""
        path = Path(path)
        write_text(path / BOOSTER_FILE, self.booster.model_to_string())
        write_json(path / CALIBRATOR_FILE, self.calibrator.to_dict())
        write_json(path / SUMMARY_FILE, {**(summary or {}), **self.feature_spec()})
        write_json(path / nowcasting.NOWCAST_FILE, self.nowcast or {})

    def feature_spec(self) -> dict:
        return {"features": self.features, "categorical_features": self.categories}

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input frame: features in training order, categoricals with the fixed categories."""
        return prepare_features(frame, self.features, self.categories)

    def pyfunc_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Feature values only, categoricals as plain text: what the MLflow pyfunc model accepts
        (MLflow's schema check refuses pandas `category` columns for its `string` type)."""
        prepared = self.prepare(frame)
        for name in self.categories:
            prepared[name] = prepared[name].astype("string").astype(object)
        return prepared

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds after the down-sampling / class-weight correction (what the calibrator reads)."""
        raw = self.booster.predict(self.prepare(frame), raw_score=True)
        return np.asarray(raw, dtype=np.float64) + self.calibrator.offset

    def calibrated(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability at the calibration months' outcome level, one per row."""
        return self.calibrator.predict(self.raw_score(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the outcome within the horizon, one per row: calibrated, then
        corrected to the outcome level of the row's as-of date where the nowcast lists it."""
        return self.nowcasted(self.calibrated(frame), frame.get("as_of"))

    def nowcasted(self, proba: np.ndarray, as_of: pd.Series | None) -> np.ndarray:
        """Calibrated `proba` corrected to the outcome level of each as-of date the nowcast lists."""
        if not self.nowcast or as_of is None:
            return proba
        return nowcasting.correct(proba, nowcasting.ratio_lookup(self.nowcast, as_of))


def prepare_features(
    frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Model input: `features` in order; categoricals as pandas category with fixed `categories`.

    Values outside the fixed categories are scored as missing (and logged); numeric columns
    become float64 with NaN for unknown.
    """
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise SafetynetError(
            f"features frame: missing model feature column(s) {', '.join(missing[:5])}; "
            "rebuild features.parquet with the catalogue the model was trained on"
        )
    columns = {}
    for name in features:
        if name in categories:
            columns[name] = _as_category(frame[name], categories[name])
        else:
            columns[name] = pd.to_numeric(frame[name], errors="raise").astype("float64")
    # copy=False: float64 columns stay views of `frame` (copy-on-write keeps them safe), so
    # a million children's training rows are not held twice
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _as_category(values: pd.Series, categories: list[str]) -> pd.Categorical:
    """`values` as text coded against `categories` (factorised once: a few distinct values
    are looked up, not millions of strings)."""
    codes, uniques = pd.factorize(values.astype("string"))
    position = {category: i for i, category in enumerate(categories)}
    lookup = np.array([position.get(u, -1) for u in uniques], dtype=np.int64)
    coded = np.append(lookup, -1)[codes]  # factorize codes a missing value -1: the appended -1
    unknown = np.flatnonzero(lookup < 0)
    if unknown.size:
        log.warning(
            "%s: %d value(s) outside the trained categories (e.g. %s) are scored as missing",
            values.name,
            int(np.isin(codes, unknown).sum()),
            ", ".join(sorted(uniques[unknown])[:3]),
        )
    return pd.Categorical.from_codes(coded, categories=categories)


class CalibratedPyfunc(mlflow.pyfunc.PythonModel):
    """The MLflow face of CalibratedModel: `predict` returns calibrated probabilities.

    It holds no data: the booster, calibrator and feature spec are MLflow artifacts.
    """

    def load_context(self, context) -> None:
        self.model = CalibratedModel.from_files(
            context.artifacts["booster"],
            context.artifacts["calibrator"],
            context.artifacts["feature_spec"],
        )
        if "nowcast" in context.artifacts:
            source = Path(context.artifacts["nowcast"])
            self.model.nowcast = nowcasting.check(json.loads(source.read_text(encoding="utf-8")), str(source))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(pd.DataFrame(model_input))
