"""features.parquet + the model in models/ -> explanations.parquet (score, SHAP reasons, routing) and reports/explain/.

Scores every cohort child at the snapshot as-of date (and, for the watchlist's change
markers, at the month before), explains each snapshot score with LightGBM's native
TreeSHAP (`pred_contrib`, log-odds), turns the strongest risk-raising contributions into
plain-language reasons through the feature catalogue, and routes each child to the
protection systems whose features raise the risk most. Only child_pid leaves this stage:
no identity, and nothing per child under reports/ or in MLflow.

Rules (see docs/architecture.md and issue 5):
- reasons: the top `explain.top_n_reasons` features with positive SHAP; among those,
  actionable ones come first (each group keeps SHAP order; equal SHAP keeps catalogue order).
- systems: ranked by the sum of positive SHAP of their features; `static` (age, category...)
  is dropped from routing when any other system has positive SHAP; ties keep SYSTEMS order.
  A child with no risk-raising feature gets no systems and the `static` general review.
- already_out children are not scored as at risk (score NaN); their systems are the nets
  they have already left, for the watchlist's re-engage section.
- the previous month is scored only (no SHAP): the watchlist needs its scores, not reasons.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_dir, write_json, write_parquet
from src.delivery.importance import global_importance, plot_importance, system_matrix
from src.delivery.services import suggested_service
from src.errors import SafetynetError
from src.features import catalogue
from src.models import tracking
from src.models.scoring import CalibratedModel
from src.run_facts import read_facts, read_stage_json

log = logging.getLogger(__name__)

SHAP_CHUNK_ROWS = 20_000
OUTCOME_COLUMNS = ("already_out", "already_out_net")


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
    """Per-feature TreeSHAP contributions (n x F, log-odds) and the base value (n,), in chunks."""
    n = len(X)
    out = np.empty((n, X.shape[1] + 1), dtype=np.float64)
    if n == 0:
        return out[:, :-1], out[:, -1]
    starts = range(0, n, SHAP_CHUNK_ROWS)
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("TreeSHAP", total=n)
        for start in starts:
            chunk = X.iloc[start : start + SHAP_CHUNK_ROWS]
            out[start : start + len(chunk)] = booster.predict(chunk, pred_contrib=True)
            bar.advance(task, len(chunk))
    return out[:, :-1], out[:, -1]


def route_systems(positive_sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """'|'-joined systems with positive SHAP (largest first) and the primary system, per row."""
    systems = np.array(list(catalogue.SYSTEMS), dtype=object)
    sums = positive_sums.copy()
    static = list(catalogue.SYSTEMS).index("static")
    others_positive = (np.delete(sums, static, axis=1) > 0).any(axis=1)
    sums[others_positive, static] = 0.0
    order = np.argsort(-sums, axis=1, kind="stable")
    ranked = np.take_along_axis(sums, order, axis=1)
    names = np.where(ranked > 0, systems[order], "")
    joined = pd.Series(names[:, 0], dtype=object)
    for j in range(1, names.shape[1]):
        part = pd.Series(names[:, j], dtype=object)
        joined = joined + np.where(part != "", "|" + part, "")
    primary = np.where(names[:, 0] != "", names[:, 0], "static")
    return joined.to_numpy(dtype=object), primary.astype(object)


def pick_reasons(
    contrib: np.ndarray, actionable: np.ndarray, top_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices (n x top_n) of the reasons and whether each slot holds one.

    The top_n positive contributions; actionable before non-actionable, SHAP order within.
    """
    masked = np.where(contrib > 0, contrib, -np.inf)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :top_n]
    valid = np.isfinite(np.take_along_axis(masked, top, axis=1))
    group = np.where(valid, np.where(actionable[top], 0, 1), 2)
    order = np.argsort(group, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(valid, order, axis=1)


def render_values(name: str, values: pd.Series, language: str) -> np.ndarray:
    """catalogue.render_reason for many values of one feature, rendering each distinct value once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [catalogue.render_reason(name, value, language) for value in uniques]
    texts.append(catalogue.render_reason(name, math.nan, language))  # code -1 = missing
    return np.array(texts, dtype=object)[codes]


def reason_columns(X: pd.DataFrame, idx: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """reason_<k>_feature / _zh / _en columns, rendered with each child's actual values."""
    features = np.array(X.columns, dtype=object)
    columns: dict[str, np.ndarray] = {}
    for k in range(idx.shape[1]):
        columns[f"reason_{k + 1}_feature"] = np.where(valid[:, k], features[idx[:, k]], "")
        for language in ("zh", "en"):
            text = np.full(len(X), "", dtype=object)
            for j, name in enumerate(features):
                rows = np.flatnonzero(valid[:, k] & (idx[:, k] == j))
                if rows.size:
                    text[rows] = render_values(name, X[name].iloc[rows], language)
            columns[f"reason_{k + 1}_{language}"] = text
    return columns


# ----------------------------------------------------------------------------- core


def explanation_columns(top_n: int) -> list[str]:
    reasons = [
        f"reason_{k}_{part}" for k in range(1, top_n + 1) for part in ("feature", "zh", "en")
    ]
    shap = [f"shap_{system}" for system in catalogue.SYSTEMS]
    return [
        "child_pid", "as_of", "score", "already_out", "already_out_net", *reasons,
        "systems", "primary_system", "service_zh", "service_en", *shap,
    ]  # fmt: skip


def rows_to_explain(
    scores: np.ndarray, pids: pd.Series, at_risk: np.ndarray, share: float
) -> np.ndarray:
    """Boolean mask: the highest-risk `share` of the at-risk rows (ties by child_pid)."""
    n_keep = math.ceil(share * int(at_risk.sum()))
    order = np.lexsort((pids.to_numpy(), -np.nan_to_num(scores, nan=-np.inf)))
    order = order[at_risk[order]][:n_keep]
    mask = np.zeros(len(scores), dtype=bool)
    mask[order] = True
    return mask


def explain_snapshot(
    frame: pd.DataFrame, model, top_n: int, share: float = 1.0, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Explanations for one as-of date, and the SHAP matrix of the explained rows (for importance)."""
    features = model_feature_names(model.booster)
    frame = frame.sort_values("child_pid", kind="stable").reset_index(drop=True)
    at_risk = frame["already_out"].to_numpy() == 0
    out = empty_explanations(frame, top_n)
    scores = np.full(len(frame), np.nan)
    if at_risk.any():
        scores[at_risk] = predict(model, frame.loc[at_risk, features])
    out["score"] = scores
    explained = rows_to_explain(scores, frame["child_pid"], at_risk, share)
    X = model.prepare(
        frame.loc[explained]
    )  # the exact frame the booster scores (order, categories)
    contrib, _ = shap_contributions(model.booster, X, progress=progress)
    fill_reasons_and_routing(out, explained, X, contrib, features, top_n)
    fill_already_out(out, ~at_risk)
    shap_frame = pd.DataFrame(contrib, columns=features)
    return out[explanation_columns(top_n)], shap_frame


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
        elif column not in out.columns and column != "score":
            out[column] = ""
    return out


def fill_reasons_and_routing(out, explained, X, contrib, features, top_n) -> None:
    positive = np.clip(contrib, 0.0, None) @ system_matrix(features)
    for j, system in enumerate(catalogue.SYSTEMS):
        out.loc[explained, f"shap_{system}"] = positive[:, j]
    systems, primary = route_systems(positive)
    actionable = np.array([catalogue.spec(name).actionable for name in features], dtype=bool)
    idx, valid = pick_reasons(contrib, actionable, top_n)
    for column, values in reason_columns(X, idx, valid).items():
        out.loc[explained, column] = values
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
        mapping = {s: suggested_service(s, language) for s in catalogue.SYSTEMS}
        out.loc[mask, f"service_{language}"] = (
            out.loc[mask, "primary_system"]
            .map(mapping)
            .fillna(suggested_service("static", language))
        )


def score_previous(frame: pd.DataFrame, model, top_n: int) -> pd.DataFrame:
    """The previous month: scores and already_out only (reasons empty), for change markers."""
    features = model_feature_names(model.booster)
    frame = frame.sort_values("child_pid", kind="stable").reset_index(drop=True)
    out = empty_explanations(frame, top_n)
    at_risk = frame["already_out"].to_numpy() == 0
    scores = np.full(len(frame), np.nan)
    if at_risk.any():
        scores[at_risk] = predict(model, frame.loc[at_risk, features])
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
    columns = ["child_pid", "as_of", *OUTCOME_COLUMNS, *features]
    try:
        return pd.read_parquet(features_path, columns=columns, filters=[("as_of", "==", as_of)])
    except (KeyError, ValueError) as exc:
        raise SafetynetError(
            f"{features_path}: missing a column the model needs ({exc}); rerun `dvc repro features`"
        ) from None


def run(features_path, features_summary_path, models_dir, out_path, reports_dir, params) -> dict:
    """Score and explain the snapshot with the served model (`models_dir` = models/served: the
    evaluated model's settings refitted on all labelled history); write explanations.parquet
    and reports/explain/."""
    features_path, out_path, reports_dir = Path(features_path), Path(out_path), Path(reports_dir)
    if not features_path.exists():
        raise SafetynetError(f"{features_path}: not found; run `dvc repro features` first")
    facts = read_facts(features_summary_path)
    model = CalibratedModel.from_dir(models_dir)
    features = model_feature_names(model.booster)
    as_of, previous = choose_as_of(
        facts.as_of_dates, params.explain.as_of, facts.export_date
    )
    log.info("explaining the snapshot at %s (previous month %s)", as_of.date(), previous)
    top_n, share = params.explain.top_n_reasons, params.explain.reasons_top_share
    current, shap_frame = explain_snapshot(
        read_month(features_path, as_of, features), model, top_n, share, progress=True
    )
    parts = [current]
    if previous is not None:
        parts.insert(0, score_previous(read_month(features_path, previous, features), model, top_n))
    explanations = pd.concat(parts, ignore_index=True)
    write_parquet(out_path, explanations)
    importance = global_importance(shap_frame, as_of)
    with atomic_dir(reports_dir) as tmp:
        write_json(tmp / "importance.json", importance)
        plot_importance(importance, tmp / "importance.png")
    run_id = log_to_model_run(Path(models_dir), reports_dir)
    summary = {
        "as_of": as_of.date().isoformat(),
        "previous_as_of": previous.date().isoformat() if previous is not None else None,
        "n_scored": int(current["score"].notna().sum()),
        "n_already_out": int(current["already_out"].sum()),
        "n_explained": len(shap_frame),
        "mlflow_run_id": run_id,
    }
    log.info("explain: %s", summary)
    return summary
