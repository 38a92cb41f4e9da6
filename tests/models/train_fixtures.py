"""A small catalogue and a synthetic features frame for the split/train/scoring tests.

The outcome depends on two informative features (`risk_a`, a numeric, and `kind`, a
categorical), so a model can learn something in a few dozen boosting rounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from src.atomic import write_json
from src.config import load_params
from src.features.catalogue import FeatureSpec
from src.run_facts import features_facts
from tests.params import PARAMS_FILE

KINDS = ("low", "mid", "high")
EXPORT_DATE = dt.date(2024, 6, 30)
FIRST_AS_OF = "2022-01-01"


def _spec(
    name: str, kind: str = "numeric", categories: tuple[str, ...] = (), protected: bool = False
):
    return FeatureSpec(
        name=name,
        system="static",
        description=f"test feature {name}",
        actionable=False,
        kind=kind,
        fmt="code" if kind == "categorical" else "float1",
        template_zh="{value}",
        template_en="{value}",
        categories=categories,
        protected=protected,
    )


SMALL_CATALOGUE = (
    _spec("risk_a"),
    _spec("kind", "categorical", KINDS),
    _spec("noise"),
    _spec("flag", "indicator"),
    _spec("sex", "categorical", ("f", "m"), protected=True),
)
MODEL_FEATURES = ["risk_a", "kind", "noise", "flag"]


# risk_a declared as risk rising with the value, though its true effect in u_shaped_frame is a U
DIRECTIONAL_CATALOGUE = tuple(
    dataclasses.replace(e, role="risk", direction=1, normal=(None, 1.0)) if e.name == "risk_a" else e
    for e in SMALL_CATALOGUE
)


def pid(i: int) -> str:
    return hashlib.sha256(f"test-child-{i}".encode()).hexdigest()


def synthetic_features(n_children: int = 150, n_dates: int = 30, seed: int = 0) -> pd.DataFrame:
    """One row per (child, month-start as-of date), labels observed up to EXPORT_DATE - 180 days."""
    rng = np.random.default_rng(seed)
    as_of = pd.date_range(FIRST_AS_OF, periods=n_dates, freq="MS").as_unit("us")
    n = n_children * n_dates
    frame = pd.DataFrame(
        {
            "child_pid": np.repeat([pid(i) for i in range(n_children)], n_dates),
            "as_of": np.tile(as_of, n_children),
        }
    )
    frame["risk_a"] = rng.normal(size=n)
    frame.loc[rng.random(n) < 0.05, "risk_a"] = np.nan
    frame["kind"] = pd.Categorical(rng.choice(KINDS, size=n), categories=KINDS)
    frame["noise"] = rng.normal(size=n)
    frame["flag"] = (rng.random(n) < 0.3).astype("float64")
    frame["sex"] = pd.Categorical(rng.choice(["f", "m"], size=n), categories=["f", "m"])
    logit = (
        -2.2
        + 1.3 * frame["risk_a"].fillna(0)
        + frame["kind"].map({"low": -0.8, "mid": 0.0, "high": 1.0}).astype(float)
    )
    frame["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
    horizon = pd.Timedelta(days=180)
    frame["label_observed"] = (frame["as_of"] + horizon) <= pd.Timestamp(EXPORT_DATE)
    frame["already_out"] = (rng.random(n) < 0.03).astype("int8")
    days = rng.integers(1, 181, size=n).astype("float64")  # the first outcome, uniform in the horizon
    frame["days_to_outcome"] = np.where(frame["label"] == 1, days, np.nan)
    frame["county_code"] = "c1"
    return frame


def u_shaped_frame(n_children: int = 200) -> pd.DataFrame:
    """The small features frame with a U-shaped truth in risk_a: a monotone model cannot follow
    the low end."""
    frame = synthetic_features(n_children=n_children, seed=4)
    u = frame["risk_a"].fillna(0)
    rng = np.random.default_rng(1)
    frame["label"] = (rng.random(len(frame)) < 1 / (1 + np.exp(-(-2.5 + 1.5 * u**2)))).astype("int8")
    return frame


def small_params(**train_overrides):
    """The tests' params with a fast LightGBM (few rounds, small trees) plus `train` overrides."""
    lightgbm = {
        "max_rounds": 80,
        "early_stopping_rounds": 20,
        "num_leaves": 7,
        "min_child_samples": 20,
    }
    lightgbm["learning_rate"] = 0.1
    lightgbm.update(train_overrides.pop("lightgbm", {}))
    train = {"num_threads": 2, "lightgbm": lightgbm, **train_overrides}
    return load_params(
        PARAMS_FILE,
        {"train": train, "base": {"export_date": EXPORT_DATE}},
    )


def write_facts(features_path: Path, horizon_days: int = 180, export_date=EXPORT_DATE) -> Path:
    """The features stage's run facts for a features file: features_summary.json beside it."""
    dates = sorted(pd.to_datetime(pd.read_parquet(features_path, columns=["as_of"])["as_of"]).dt.date.unique())
    path = Path(features_path).with_name("features_summary.json")
    write_json(path, features_facts(export_date, horizon_days, dates))
    return path
