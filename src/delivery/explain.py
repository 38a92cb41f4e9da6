"""features.parquet + the served model + interim/children -> explanations.parquet,
contributions.parquet and reports/explain/.

Scores every cohort child at the snapshot as-of date (and, for the watchlist's change
markers, at the month before). SHAP (`shap.TreeExplainer` on the booster: tree-path-dependent,
log-odds, equal to LightGBM's `pred_contrib`) is computed only for the children a list can
show (`rows_to_explain`): per county, the top capacity x (1 + `explain.shap_margin`) by
score, and per caseworker, the top `base.children_per_caseworker` x (1 + margin) of their own
children. Their contributions become reasons through `src.delivery.reasons` (a reason is a
warning sign the child director can act on, never exposure or background), their services
come from the reasons shown (`src.delivery.services`), and their top contributions go to
contributions.parquet for the watchlist's waterfall. Only child_pid leaves this stage: no
identity, and no identifier under reports/ or in MLflow (reports/explain/ holds global
importance, and a SHAP beeswarm and dependence plots: unlabelled points, one per explained
child).

- already_out children are not scored as at risk (score NaN); their systems are the nets
  they have already left (one service per net), for the watchlist's re-engage section.
- the previous month is scored only (no SHAP): the watchlist needs its scores, not reasons.
- shap_<system>: the sum of the positive contributions of a system's features (an
  aggregate for analysts; routing does not use it).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shap
from mlflow import MlflowClient
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_dir, write_json, write_parquet
from src.delivery import reasons
from src.delivery.capacity import list_capacity
from src.delivery.contributions import contribution_table
from src.delivery.importance import global_importance, plot_importance, system_sums
from src.delivery.services import services_for, systems_from_reasons
from src.delivery.shap_plots import plot_beeswarm, plot_dependence
from src.errors import SafetynetError
from src.features import catalogue
from src.models import tracking
from src.models.scoring import CalibratedModel
from src.models.spark_scoring import SparkScoredModel
from src.run_facts import read_facts, read_stage_json
from src.spark_session import spark_session

log = logging.getLogger(__name__)

SHAP_CHUNK_ROWS = 20_000
OUTCOME_COLUMNS = ("already_out", "already_out_net")
PLACE_COLUMNS = ("child_pid", "county_code", "caseworker_id")
TOP_CONTRIBUTIONS = 10  # per child in contributions.parquet, plus the remainder row

# ----------------------------------------------------------------------------- snapshot


def choose_as_of(
    available, requested: dt.date | None, export_date: dt.date | None
) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """The snapshot as-of date and the previous month's (None when it is not in the features)."""
    dates = sorted(pd.Timestamp(d) for d in pd.unique(pd.Series(available)))
    if not dates:
        raise SafetynetError("features.parquet: no rows; run the features stage first")
    span = f"{dates[0].date()}..{dates[-1].date()}"
    if requested is not None:
        as_of = pd.Timestamp(requested)
        if as_of not in dates:
            raise SafetynetError(
                f"params.yaml explain.as_of: {requested} is not an as-of date in features.parquet "
                f"({span}); set a month start in that range, or null for the latest"
            )
    else:
        usable = [d for d in dates if export_date is None or d.date() <= export_date]
        if not usable:
            raise SafetynetError(
                f"features.parquet: no as-of date on or before the export date {export_date} ({span})"
            )
        as_of = usable[-1]
    previous = as_of - pd.DateOffset(months=1)
    return as_of, (previous if previous in dates else None)


# ----------------------------------------------------------------------------- SHAP


def model_feature_names(booster) -> list[str]:
    names = list(booster.feature_name())
    missing = [n for n in names if n not in catalogue.feature_names()]
    if missing:
        raise SafetynetError(
            f"models/: model feature '{missing[0]}' has no entry in src/features/catalogue.py; "
            "retrain the model (dvc repro train) or add the catalogue entry"
        )
    return names


def shap_contributions(
    booster, X: pd.DataFrame, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature SHAP contributions (n x F, log-odds) and the base value (n,), in chunks."""
    n = len(X)
    contrib = np.empty((n, X.shape[1]), dtype=np.float64)
    if n == 0:
        return contrib, np.empty(0)
    explainer = shap.TreeExplainer(booster)  # tree-path-dependent: no background data
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("TreeSHAP", total=n)
        for start in range(0, n, SHAP_CHUNK_ROWS):
            chunk = X.iloc[start : start + SHAP_CHUNK_ROWS]
            with warnings.catch_warnings():  # "output has changed to a list": it is one array
                warnings.simplefilter("ignore", UserWarning)
                contrib[start : start + len(chunk)] = explainer.shap_values(chunk)
            bar.advance(task, len(chunk))
    base = float(np.ravel(explainer.expected_value)[-1])
    return contrib, np.full(n, base)


def rows_to_explain(
    scores: np.ndarray, places: pd.DataFrame, at_risk: np.ndarray, per_caseworker: int,
    margin: float,
) -> np.ndarray:  # fmt: skip
    """Boolean mask of the children a list can show, plus the margin (module docstring).

    `places` (aligned with `scores`) holds county_code and caseworker_id; ties by child_pid.
    """
    frame = places.assign(score=scores, at_risk=at_risk, row=np.arange(len(scores)))
    frame = frame[at_risk].sort_values(["score", "child_pid"], ascending=[False, True], kind="stable")
    capacity = list_capacity(frame, per_caseworker, keys=["county_code"])
    county_keep = np.ceil(frame["county_code"].map(capacity).fillna(0) * (1 + margin))
    own_keep = math.ceil(per_caseworker * (1 + margin))
    county_rank = frame.groupby("county_code", sort=False, dropna=False).cumcount()
    own_rank = frame.groupby(["county_code", "caseworker_id"], sort=False, dropna=True).cumcount()  # as director_cut
    keep = (county_rank < county_keep) | (frame["caseworker_id"].notna() & (own_rank < own_keep))
    mask = np.zeros(len(scores), dtype=bool)
    mask[frame.loc[keep, "row"].to_numpy()] = True
    return mask


# ----------------------------------------------------------------------------- core


def explanation_columns(top_n: int) -> list[str]:
    texts = [
        f"reason_{k}_{part}" for k in range(1, top_n + 1) for part in ("feature", "zh", "en")
    ]
    shap_columns = [f"shap_{system}" for system in catalogue.SYSTEMS]
    return [
        "child_pid", "as_of", "score", "already_out", "already_out_net", *texts, "no_reason",
        "context_zh", "context_en", "systems", "primary_system", "service_zh", "service_en",
        *shap_columns,
    ]  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    explanations: pd.DataFrame  # explanation_columns, one row per child
    shap: pd.DataFrame  # the explained rows' contributions (features as columns), for reports
    X: pd.DataFrame  # the explained rows as the booster saw them
    contributions: pd.DataFrame  # contributions.COLUMNS, long


def explain_snapshot(
    frame: pd.DataFrame, model, top_n: int, places: pd.DataFrame | None = None,
    per_caseworker: int = 5, margin: float = 1.0, progress: bool = False,
) -> Snapshot:  # fmt: skip
    """Explanations for one as-of date. `places` None = explain every at-risk child."""
    features = model_feature_names(model.booster)
    frame = frame.sort_values("child_pid", kind="stable").reset_index(drop=True)
    at_risk = frame["already_out"].to_numpy() == 0
    out = empty_explanations(frame, top_n)
    scores = np.full(len(frame), np.nan)
    if at_risk.any():
        scores[at_risk] = predict(model, frame.loc[at_risk, [*features, "as_of"]])  # as_of: the nowcast
    out["score"] = scores
    if places is None:
        explained = at_risk
    else:
        aligned = frame[["child_pid"]].merge(places, on="child_pid", how="left")
        explained = rows_to_explain(scores, aligned, at_risk, per_caseworker, margin)
    X = model.prepare(frame.loc[explained])  # the exact frame the booster scores
    contrib, base = shap_contributions(model.booster, X, progress=progress)
    bands = band_of(frame)
    medians = reasons.cohort_medians(frame.loc[at_risk].assign(age_band=bands[at_risk]), features)
    fill_reasons_and_routing(out, explained, X, contrib, bands[explained], medians)
    out["context_zh"], out["context_en"] = reasons.context_lines(frame, features)
    fill_already_out(out, ~at_risk)
    table = contribution_table(frame.loc[explained, "child_pid"], X, contrib, base, TOP_CONTRIBUTIONS)
    shap_frame = pd.DataFrame(contrib, columns=features)
    return Snapshot(out[explanation_columns(top_n)], shap_frame, X.reset_index(drop=True), table)


def band_of(frame: pd.DataFrame) -> pd.Series:
    """The age band the reason medians compare with ('all' when the features carry none)."""
    if "age_band" in frame.columns:
        return frame["age_band"].astype(object).fillna("all").astype(str)
    return pd.Series("all", index=frame.index, dtype=object)


def predict(model, frame: pd.DataFrame) -> np.ndarray:
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    return proba[:, -1] if proba.ndim == 2 else proba


def empty_explanations(frame: pd.DataFrame, top_n: int) -> pd.DataFrame:
    out = frame[["child_pid", "as_of", "already_out", "already_out_net"]].copy()
    out["already_out"] = out["already_out"].astype("int8")
    out["already_out_net"] = out["already_out_net"].fillna("").astype(str)
    for column in explanation_columns(top_n):
        if column.startswith("shap_"):
            out[column] = np.nan
        elif column == "no_reason":
            out[column] = False
        elif column not in out.columns and column != "score":
            out[column] = ""
    return out


def fill_reasons_and_routing(out, explained, X, contrib, bands, medians) -> None:
    positive = system_sums(np.clip(contrib, 0.0, None), list(X.columns))
    for j, system in enumerate(catalogue.SYSTEMS):
        out.loc[explained, f"shap_{system}"] = positive[:, j]
    top_n = sum(c.endswith("_feature") for c in out.columns)
    idx, valid = reasons.pick_reasons(contrib, reasons.qualifying(X, contrib), top_n)
    columns = reasons.reason_columns(X, idx, valid, bands, medians)
    for column, values in columns.items():
        out.loc[explained, column] = values
    shown = np.column_stack([columns[f"reason_{k}_feature"] for k in range(1, top_n + 1)])
    systems, primary = systems_from_reasons(shown.reshape(len(X), top_n))
    out.loc[explained, "systems"] = systems
    out.loc[explained, "primary_system"] = primary
    set_services(out, explained)


def fill_already_out(out: pd.DataFrame, mask: np.ndarray) -> None:
    """Route lapsed children to the nets they left (re-engage), never to an at-risk score."""
    nets = out.loc[mask, "already_out_net"]
    out.loc[mask, "systems"] = nets
    out.loc[mask, "primary_system"] = nets.str.split("|").str[0].replace("", "static")
    set_services(out, mask)


def set_services(out: pd.DataFrame, mask) -> None:
    for language in ("zh", "en"):
        out.loc[mask, f"service_{language}"] = services_for(out.loc[mask, "systems"], language)


def score_previous(frame: pd.DataFrame, model, top_n: int) -> pd.DataFrame:
    """The previous month: scores and already_out only (reasons empty), for change markers."""
    features = model_feature_names(model.booster)
    frame = frame.sort_values("child_pid", kind="stable").reset_index(drop=True)
    out = empty_explanations(frame, top_n)
    at_risk = frame["already_out"].to_numpy() == 0
    scores = np.full(len(frame), np.nan)
    if at_risk.any():
        scores[at_risk] = predict(model, frame.loc[at_risk, [*features, "as_of"]])  # as_of: the nowcast
    out["score"] = scores
    fill_already_out(out, ~at_risk)
    return out[explanation_columns(top_n)]


# ----------------------------------------------------------------------------- I/O


def log_to_model_run(models_dir: Path, reports_dir: Path) -> str | None:
    """Attach reports/explain/ to the MLflow run of the model the served one was refitted from."""
    served = read_stage_json(Path(models_dir) / "train_summary.json", "refit")
    run = tracking.find_run_by_digest(served.get("evaluated_model_digest", ""))
    if run is None:
        log.warning("this MLflow store has no run for the model in %s; explain reports not logged",
                    models_dir)  # fmt: skip
        return None
    MlflowClient().log_artifacts(run["run_id"], str(reports_dir), artifact_path="explain")
    return run["run_id"]


def read_month(features_path: Path, as_of: pd.Timestamp, features: list[str]) -> pd.DataFrame:
    columns = ["child_pid", "as_of", "age_band", *OUTCOME_COLUMNS, *features]
    try:
        return pd.read_parquet(features_path, columns=columns, filters=[("as_of", "==", as_of)])
    except (KeyError, ValueError) as exc:
        raise SafetynetError(
            f"{features_path}: missing a column the model needs ({exc}); rerun `dvc repro features`"
        ) from None


def read_places(interim_dir: Path) -> pd.DataFrame:
    """county_code and caseworker_id per child_pid (interim/children.parquet)."""
    path = Path(interim_dir) / "children.parquet"
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run `dvc repro ingest` first")
    try:
        return pd.read_parquet(path, columns=list(PLACE_COLUMNS))
    except (KeyError, ValueError) as exc:
        raise SafetynetError(f"{path}: missing a column ({exc}); rerun `dvc repro ingest`") from None


def write_reports(reports_dir: Path, snapshot: Snapshot, as_of: pd.Timestamp) -> None:
    """Aggregates only: importance (JSON + PNG), the SHAP beeswarm and dependence plots."""
    importance = global_importance(snapshot.shap, as_of)
    with atomic_dir(reports_dir) as tmp:
        write_json(tmp / "importance.json", importance)
        plot_importance(importance, tmp / "importance.png")
        if len(snapshot.shap):
            plot_beeswarm(snapshot.shap, snapshot.X, tmp / "shap_beeswarm.png")
            plot_dependence(snapshot.shap, snapshot.X, tmp / "dependence")


def run(features_path, features_summary_path, models_dir, interim_dir, out_path, contributions_path,
        reports_dir, params) -> dict:  # fmt: skip
    """Score the snapshot with the served model (`models_dir` = models/served: the evaluated
    model's settings refitted on all labelled history; on Spark with `features.engine: spark`)
    and explain the children a list can show; write explanations.parquet,
    contributions.parquet and reports/explain/."""
    features_path, out_path, reports_dir = Path(features_path), Path(out_path), Path(reports_dir)
    if not features_path.exists():
        raise SafetynetError(f"{features_path}: not found; run `dvc repro features` first")
    facts = read_facts(features_summary_path)
    model = CalibratedModel.from_dir(models_dir)
    if params.features.engine == "spark":  # batch scoring on Spark; SHAP stays on the driver
        model = SparkScoredModel(model, spark_session(params.spark))
    features = model_feature_names(model.booster)
    as_of, previous = choose_as_of(facts.as_of_dates, params.explain.as_of, facts.export_date)
    log.info("explaining the snapshot at %s (previous month %s)", as_of.date(), previous)
    top_n = params.explain.top_n_reasons
    snapshot = explain_snapshot(
        read_month(features_path, as_of, features), model, top_n, read_places(interim_dir),
        params.base.children_per_caseworker, params.explain.shap_margin, progress=True,
    )  # fmt: skip
    parts = [snapshot.explanations]
    if previous is not None:
        parts.insert(0, score_previous(read_month(features_path, previous, features), model, top_n))
    write_parquet(out_path, pd.concat(parts, ignore_index=True))
    write_parquet(Path(contributions_path), snapshot.contributions)
    write_reports(reports_dir, snapshot, as_of)
    run_id = log_to_model_run(Path(models_dir), reports_dir)
    current = snapshot.explanations
    summary = {
        "as_of": as_of.date().isoformat(),
        "previous_as_of": previous.date().isoformat() if previous is not None else None,
        "n_scored": int(current["score"].notna().sum()),
        "n_already_out": int(current["already_out"].sum()),
        "n_explained": len(snapshot.shap),
        "n_no_reason": int(current["no_reason"].sum()),
        "mlflow_run_id": run_id,
    }
    log.info("explain: %s", summary)
    return summary
