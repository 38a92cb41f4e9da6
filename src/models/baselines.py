"""The baselines the model must beat, each a score per test row (higher = more at risk).

(a) `rule_scores`: the rules practitioners use today. A child is flagged when any holds:

    - chronic absence: `absence_rate_all_90d >= 0.10` (absent 10 % or more of school days
      in the last 90 days; unknown when not enrolled, which does not fire the rule)
    - overdue recertification: `recert_overdue == 1`
    - missed rehabilitation: `rehab_missed_180d >= 1`
    - a recent concern: `visit_concerns_90d >= 1` (a visit in the last 90 days recorded one)

    The score is the number of rules met (0-4), so the top k ranks by how many rules fire;
    ties are handled like every other score (see src/models/metrics.py). It is a ranking,
    not a probability, so it has no Brier score or ECE.

(b) `fit_logistic`: logistic regression on the model's own features (impute + missing
    indicators, standardised numerics, one-hot categoricals), fitted on train rows only.
(c) `community_scores`: each child gets its community's past outcome rate, from labels
    whose horizon closed before the test period starts, smoothed toward the global rate.
    It asks whether an individual score adds anything to targeting places.
(d) `oracle_scores`: the generator's true probability p_true (synthetic data only).
(e) `fit_lightgbm_peer`: what an analyst would write in an afternoon: LightGBM with its
    default parameters on the same features, trained on every labelled as-of date before
    the test period (the horizon gap kept), uncalibrated. The gate requires the model to
    beat it as well as the rules.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from src.errors import SafetynetError
from src.models.scoring import prepare_features

log = logging.getLogger(__name__)

CHRONIC_ABSENCE_RATE = 0.10
RULES: dict[str, tuple[str, float]] = {
    # name -> (feature, threshold): the rule fires when feature >= threshold
    "chronic_absence": ("absence_rate_all_90d", CHRONIC_ABSENCE_RATE),
    "recert_overdue": ("recert_overdue", 1.0),
    "rehab_missed": ("rehab_missed_180d", 1.0),
    "recent_concern": ("visit_concerns_90d", 1.0),
}
MISSING_CATEGORY = "__missing__"
PEER = "lightgbm_peer"
COMMUNITY_KEY = ("county_code", "community_code")
SCORE_ROWS = 250_000  # test rows a baseline scores at a time (in_chunks)


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SafetynetError(
            f"features.parquet: column '{missing[0]}' is needed by {what} but missing; "
            "rebuild the features with `dvc repro features`"
        )


def rules_fired(frame: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per rule; an unknown (NaN) value never fires a rule."""
    _require(frame, [feature for feature, _ in RULES.values()], "the rule baseline")
    return pd.DataFrame(
        {
            name: frame[feature].astype("float64").to_numpy() >= threshold
            for name, (feature, threshold) in RULES.items()
        },
        index=frame.index,
    )


def rule_scores(frame: pd.DataFrame) -> np.ndarray:
    """Number of practitioners' rules met (0-4) per row."""
    return rules_fired(frame).sum(axis=1).to_numpy(dtype="float64")


# ---------------------------------------------------------------- (b) logistic regression


def categories_as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categorical columns as plain strings, with an explicit level for missing values."""
    return np.column_stack(
        [
            frame[c].astype("object").where(frame[c].notna(), MISSING_CATEGORY).astype(str)
            for c in frame.columns
        ]
    ).astype(object)


def logistic_pipeline(numeric: list[str], categorical: list[str], c: float, seed: int) -> Pipeline:
    """Impute (+ missing indicators) and standardise numerics, one-hot categoricals, then LR."""
    numeric_steps = Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
        ]
    )
    categorical_steps = Pipeline(
        [
            ("as_text", FunctionTransformer(categories_as_text)),
            ("one_hot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    prepare = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        remainder="drop",
    )
    return Pipeline(
        [("prepare", prepare), ("model", LogisticRegression(C=c, max_iter=2000, random_state=seed))]
    )


def split_feature_kinds(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) by dtype: pandas category or text columns are categorical."""
    _require(frame, features, "the logistic baseline")
    categorical = [
        f
        for f in features
        if isinstance(frame[f].dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(frame[f].dtype)
    ]
    return [f for f in features if f not in categorical], categorical


def fit_logistic(
    train: pd.DataFrame,
    features: list[str],
    *,
    c: float,
    seed: int,
    categorical: list[str] | None = None,
    max_rows: int | None = None,
) -> Pipeline:
    """Fit the logistic baseline on train-period rows (a seeded sample of max_rows if larger).

    `categorical` names the one-hot columns (default: category or text dtype). Unweighted, so
    its probabilities stay comparable (Brier, ECE) with the calibrated model's.
    """
    if train["label"].nunique() < 2:
        raise SafetynetError(
            "features.parquet: the train period has only one label class; cannot fit the logistic baseline"
        )
    if max_rows is not None and len(train) > max_rows:
        train = train.sample(n=max_rows, random_state=seed)
    if categorical is None:
        numeric, categorical = split_feature_kinds(train, features)
    else:
        _require(train, features, "the logistic baseline")
        numeric = [f for f in features if f not in categorical]
    pipeline = logistic_pipeline(numeric, categorical, c, seed)
    return pipeline.fit(train[features], train["label"].astype("int64"))


def logistic_scores(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    features = list(pipeline.feature_names_in_)
    return in_chunks(lambda part: pipeline.predict_proba(part[features])[:, 1], frame)


def in_chunks(score, frame: pd.DataFrame) -> np.ndarray:
    """`score(part)` over `frame` a block of rows at a time: each row's score is its own, and
    the dense copies a model makes of its input (2M test rows x 170 imputed and scaled
    columns are 2.7 GB for the logistic) stay one block's size."""
    starts = range(0, max(len(frame), 1), SCORE_ROWS)
    return np.concatenate([score(frame.iloc[begin : begin + SCORE_ROWS]) for begin in starts])


# ---------------------------------------------------------------- (e) the plain LightGBM peer


def fit_lightgbm_peer(
    train: pd.DataFrame,
    features: list[str],
    categories: dict[str, list[str]],
    *,
    seed: int,
    max_rows: int | None = None,
    threads: int = 1,
) -> lgb.LGBMClassifier:
    """LightGBM with default parameters (seeded; deterministic on a fixed thread count, the
    model's `train.num_threads`, so its scores are byte-stable on any machine)."""
    if train["label"].nunique() < 2:
        raise SafetynetError(
            "features.parquet: the labelled history has only one label class; cannot fit the "
            "plain LightGBM baseline"
        )
    if max_rows is not None and len(train) > max_rows:
        train = train.sample(n=max_rows, random_state=seed)
    peer = lgb.LGBMClassifier(random_state=seed, n_jobs=threads, deterministic=True, force_row_wise=True,
                              verbose=-1)
    return peer.fit(prepare_features(train, features, categories), train["label"].astype("int64"))


def lightgbm_peer_scores(
    peer: lgb.LGBMClassifier, frame: pd.DataFrame, categories: dict[str, list[str]]
) -> np.ndarray:
    features = list(peer.feature_name_)
    return in_chunks(
        lambda part: peer.predict_proba(prepare_features(part, features, categories))[:, 1], frame
    )


# ---------------------------------------------------------------- (c) community targeting


def community_scores(
    history: pd.DataFrame,
    target: pd.DataFrame,
    *,
    test_start: pd.Timestamp,
    horizon_days: int,
    prior_strength: float,
) -> np.ndarray:
    """Smoothed past outcome rate of each target row's community.

    Only history rows whose label window closed by the start of the test period
    (as_of + horizon <= test_start) count, so no test-period outcome can leak in. The rate
    is (positives + m x global rate) / (rows + m), m = prior_strength child-months; a
    community with no usable history gets the global rate.
    """
    _require(history, [*COMMUNITY_KEY, "as_of", "label"], "the community baseline")
    _require(target, list(COMMUNITY_KEY), "the community baseline")
    closed = history["as_of"] + pd.Timedelta(days=horizon_days) <= pd.Timestamp(test_start)
    known = history.loc[closed, [*COMMUNITY_KEY, "label"]]
    if known.empty:
        raise SafetynetError(
            "features.parquet: no label closes before the test period starts; the community "
            "baseline needs history (more months of data, or fewer test/val months)"
        )
    global_rate = float(known["label"].mean())
    stats = known.groupby(list(COMMUNITY_KEY), observed=True)["label"].agg(["sum", "count"])
    rates = (stats["sum"] + prior_strength * global_rate) / (stats["count"] + prior_strength)
    keys = pd.MultiIndex.from_frame(target[list(COMMUNITY_KEY)].astype(str))
    rates.index = pd.MultiIndex.from_arrays(
        [rates.index.get_level_values(i).astype(str) for i in range(2)]
    )
    return rates.reindex(keys).fillna(global_rate).to_numpy(dtype="float64")


# ---------------------------------------------------------------- (d) the oracle


def oracle_scores(target: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """p_true per target row from the generator's truth (NaN where truth has no row)."""
    _require(truth, ["child_pid", "as_of", "p_true"], "the oracle baseline (truth.parquet)")
    truth = truth[["child_pid", "as_of", "p_true"]].assign(
        child_pid=lambda t: t["child_pid"].astype(str),
        as_of=lambda t: pd.to_datetime(t["as_of"]).dt.as_unit("us"),
    )
    keys = target[["child_pid", "as_of"]].assign(
        child_pid=lambda t: t["child_pid"].astype(str),
        as_of=lambda t: pd.to_datetime(t["as_of"]).dt.as_unit("us"),
    )
    if truth.duplicated(["child_pid", "as_of"]).any():
        raise SafetynetError(
            "truth.parquet: duplicate (child_pid, as_of) rows; regenerate the synthetic data"
        )
    merged = keys.merge(truth, on=["child_pid", "as_of"], how="left", validate="many_to_one")
    return merged["p_true"].to_numpy(dtype="float64")


def all_scores(test, train, history, truth, summary: dict, params) -> dict[str, np.ndarray]:
    """Every baseline's scores on the test rows (the oracle only when `truth` covers some)."""
    logistic = fit_logistic(
        train,
        list(summary["features"]),
        c=params.train.logistic_c,
        seed=params.base.seed,
        categorical=list(summary.get("categorical_features", {})),
        max_rows=params.evaluate.logistic_max_rows,
    )
    categories = summary.get("categorical_features", {})
    peer = fit_lightgbm_peer(train, list(summary["features"]), categories, seed=params.base.seed,
                             max_rows=params.evaluate.peer_max_rows, threads=params.train.num_threads)  # fmt: skip
    scores = {
        "rules": rule_scores(test),
        "logistic": logistic_scores(logistic, test),
        PEER: lightgbm_peer_scores(peer, test, categories),
        "community": community_scores(
            history,
            test,
            test_start=test["as_of"].min(),
            horizon_days=params.label.horizon_days,
            prior_strength=params.evaluate.community_prior_strength,
        ),
    }
    if truth is not None:
        oracle = oracle_scores(test, truth)
        covered = int((~np.isnan(oracle)).sum())
        if covered == 0:
            log.warning("oracle skipped: truth.parquet has no row for any test (child_pid, as_of)")
        else:
            if covered < len(oracle):
                log.info("oracle: truth.parquet covers %d of %d test rows", covered, len(oracle))
            scores["oracle"] = oracle
    return scores
