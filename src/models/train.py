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

import dataclasses
import datetime as dt
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
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

log = logging.getLogger(__name__)

KEYS = ["child_pid", "as_of"]
LABEL_INPUTS = ["label", "label_observed", "already_out"]


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


def sample_uniform(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded uniform [0, 1) number per row from (child_pid, as_of): independent of row order."""
    key = hashlib.sha256(f"safetynet-sample-{seed}".encode()).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame[KEYS], index=False, hash_key=key).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


def keep_for_training(frame: pd.DataFrame, split: Split, rate: float, seed: int) -> pd.Series:
    """Eligible train/val rows; in train, each negative is kept with probability `rate`."""
    period = split.period_of(frame["as_of"])
    eligible = (
        frame["label_observed"].astype(bool)
        & (frame["already_out"] == 0)
        & period.isin(["train", "val"])
    )
    if rate >= 1.0:
        return eligible
    drop = (period == "train") & (frame["label"] == 0) & (sample_uniform(frame, seed) >= rate)
    return eligible & ~drop


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
    if not 0.0 < rate <= 1.0:
        raise SafetynetError(
            f"params.yaml: train.negative_sample_rate must be in (0, 1], got {rate}"
        )
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


# --- I/O: reading features.parquet -------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_features(path: Path, features: list[str]) -> ds.Dataset:
    if not path.exists():
        raise SafetynetError(
            f"{path}: not found; run the features stage first (dvc repro features)"
        )
    dataset = ds.dataset(path, format="parquet")
    missing = [c for c in [*KEYS, *LABEL_INPUTS, *features] if c not in dataset.schema.names]
    if missing:
        raise SafetynetError(
            f"{path}: missing column(s) {', '.join(missing[:5])}; rebuild it with the current "
            "catalogue (dvc repro features)"
        )
    return dataset


def observed_dates(dataset: ds.Dataset, horizon_days: int, export_date: dt.date | None, path: Path):
    """All as-of dates and the export date, checked against the file's `label_observed` flags."""
    table = dataset.to_table(columns=["as_of", "label_observed"])
    flags = pa.table({"as_of": table["as_of"], "obs": pc.cast(table["label_observed"], pa.int8())})
    per_date = flags.group_by("as_of").aggregate([("obs", "min"), ("obs", "max")]).to_pandas()
    if (per_date["obs_min"] != per_date["obs_max"]).any():
        raise SafetynetError(
            f"{path}: label_observed differs within one as-of date; rebuild features"
        )
    dates = sorted(pd.to_datetime(per_date["as_of"]).dt.date)
    observed = sorted(pd.to_datetime(per_date.loc[per_date["obs_max"] == 1, "as_of"]).dt.date)
    if not observed:
        raise SafetynetError(
            f"{path}: no as-of date has fully observed labels; supply a longer history"
        )
    horizon = dt.timedelta(days=horizon_days)
    export = export_date or observed[-1] + horizon  # latest export date consistent with the flags
    if observed != [d for d in dates if d + horizon <= export]:
        raise SafetynetError(
            f"{path}: label_observed does not match base.export_date {export} and label.horizon_days "
            f"{horizon_days}; rebuild features (dvc repro features)"
        )
    return dates, export


def read_training_rows(
    dataset: ds.Dataset,
    split: Split,
    params: Params,
    features: list[str],
    categories: dict[str, list[str]],
) -> pd.DataFrame:
    """Eligible train/val rows, streamed in batches with negatives sampled on the way (bounds memory)."""
    as_of_type = dataset.schema.field("as_of").type
    wanted = pa.array([pd.Timestamp(d) for d in (*split.train, *split.val)], type=as_of_type)
    condition = (
        pc.field("as_of").isin(wanted) & pc.field("label_observed") & (pc.field("already_out") == 0)
    )
    scanner = dataset.scanner(
        columns=[*KEYS, *LABEL_INPUTS, *features], filter=condition, batch_size=1 << 18
    )
    parts = []
    for batch in scanner.to_batches():
        part = batch.to_pandas()
        if part.empty:
            continue
        part = part.loc[
            keep_for_training(part, split, params.train.negative_sample_rate, params.base.seed)
        ]
        part = part.assign(**{c: _fixed(part[c], categories[c]) for c in categories})
        parts.append(part)
    if not parts:
        raise SafetynetError(
            "features.parquet: no eligible rows in the train and validation periods"
        )
    return pd.concat(parts, ignore_index=True)


def _fixed(values: pd.Series, categories: list[str]) -> pd.Categorical:
    return prepare_features(values.to_frame(), [values.name], {values.name: categories})[
        values.name
    ]


def eligible_counts(dataset: ds.Dataset, split: Split) -> dict[str, dict[str, float]]:
    """Rows, positives and prevalence per period before any sampling (the test period too)."""
    out = {}
    as_of_type = dataset.schema.field("as_of").type
    for name in ("train", "val", "test"):
        dates = pa.array([pd.Timestamp(d) for d in getattr(split, name)], type=as_of_type)
        condition = (
            pc.field("as_of").isin(dates)
            & pc.field("label_observed")
            & (pc.field("already_out") == 0)
        )
        labels = dataset.to_table(columns=["label"], filter=condition)["label"]
        rows, positives = len(labels), int(pc.sum(labels).as_py() or 0)
        out[name] = {
            "rows": rows,
            "positives": positives,
            "prevalence": positives / rows if rows else math.nan,
        }
    return out


# --- the stage ---------------------------------------------------------------------------


def run(features_path: str | Path, models_dir: str | Path, params: Params) -> dict:
    """Train, calibrate, write models/ atomically, log the MLflow run and register the model."""
    from src.models.tracking import log_training_run

    features_path, models_dir = Path(features_path), Path(models_dir)
    features, categories = feature_categories(params.features.protected_as_features)
    dataset = _open_features(features_path, features)
    dates, export = observed_dates(
        dataset, params.label.horizon_days, params.base.export_date, features_path
    )
    split = make_split(
        dates, export, params.label.horizon_days, params.train.val_months, params.train.test_months
    )
    log.info("split: train %s..%s, val %s..%s, test %s..%s", split.train[0], split.train[-1],
             split.val[0], split.val[-1], split.test[0], split.test[-1])  # fmt: skip
    frame = read_training_rows(dataset, split, params, features, categories)
    result = train_model(frame, split, params, features, categories)
    del frame
    summary = {
        "split": split.to_dict(),
        "export_date": export.isoformat(),
        "horizon_days": params.label.horizon_days,
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
        logged = log_training_run(tmp, result, params, summary)
        summary.update(logged)
        result.model.save(tmp, summary)
    log.info("model: best iteration %d, val AUC %.4f, registered as version %s",
             result.best_iteration, result.metrics["val_auc"], logged["model_version"])  # fmt: skip
    return {**logged, "best_iteration": result.best_iteration, **result.metrics}


def _merge_counts(eligible: dict, used: dict) -> dict:
    """Per period: eligible rows/positives/prevalence, plus the rows actually used for fitting."""
    return {
        name: {**counts, **({"rows_used": used[name]["rows"]} if name in used else {})}
        for name, counts in eligible.items()
    }


def flatten(section, prefix: str) -> dict[str, str]:
    """A params dataclass -> {"train.lightgbm.learning_rate": "0.05", ...} (MLflow params)."""
    return _flatten_dict(dataclasses.asdict(section), prefix)


def _flatten_dict(value: dict, prefix: str) -> dict[str, str]:
    out = {}
    for key, item in value.items():
        if isinstance(item, dict):
            out.update(_flatten_dict(item, f"{prefix}.{key}"))
        else:
            out[f"{prefix}.{key}"] = str(item)
    return out
