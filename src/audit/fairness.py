"""The fairness stage: test predictions + interim records -> reports/fairness/ (fairness.json, index.html, PNGs) + headline.

A thin I/O shell: the audit is `src.audit.fairness_audit.audit_fairness` (pure), the report
`src.audit.fairness_report.render_report`. `run()` reads the predictions, attaches each
child's director (interim children) and counts, with DuckDB, each recording source's rows in
the window before every child-month that later had the outcome (interim event tables), writes
the report and the flat headline JSON, and logs them to the model's MLflow run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from src.atomic import atomic_dir, write_json
from src.audit.fairness_audit import audit_fairness, audit_to_dict, primary_violations
from src.audit.fairness_measurement import SOURCES
from src.audit.fairness_report import render_report
from src.delivery.capacity import with_directors
from src.errors import SafetynetError
from src.models.tracking import find_model_run

log = logging.getLogger(__name__)


# the rows of each source that count as one record (table, optional filter)
SOURCE_FILTERS = {
    "records_absences": "",
    "records_visits": "",
    "records_recert": "AND e.event_type IN ('recert_due', 'recert_done')",
    "records_rehab": "AND e.event_type IN ('rehab_attended', 'rehab_missed')",
}
DATE_COLUMN = {"school_absences": "absence_date", "casework_visits": "visit_date",
               "welfare_events": "event_date", "medical_events": "event_date"}  # fmt: skip


def run(predictions_path, models_dir, out_dir, headline_path, params, interim_dir=None) -> dict:
    """Read the test predictions (and interim records), write the report and headline, log them to MLflow."""
    predictions_path, out_dir = Path(predictions_path), Path(out_dir)
    if not predictions_path.exists():
        raise SafetynetError(
            f"{predictions_path}: not found; run the evaluate stage first (dvc repro evaluate)"
        )
    predictions = pd.read_parquet(predictions_path)
    records = None
    if interim_dir is not None:
        predictions = with_caseworkers(predictions, Path(interim_dir))
        records = recording_counts(predictions, Path(interim_dir), params.fairness.recording_window_days)
    audit = audit_fairness(predictions, params.fairness, params.evaluate, records, source=str(predictions_path))
    report = audit_to_dict(audit)
    report["settings"]["synthetic"] = synthetic_export(Path(interim_dir)) if interim_dir is not None else None
    with atomic_dir(out_dir) as tmp:
        (tmp / "fairness.json").write_text(
            json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        render_report(report, tmp)
    write_json(headline_path, report["headline"])
    log_to_mlflow(Path(models_dir), out_dir, report["headline"])
    _log_summary(report["headline"])
    violations = primary_violations(audit)
    if params.fairness.fail_on_violation and len(violations):
        listed = "; ".join(f"recall ratio {r.ratio:.2f} for {r.attribute}={r.group}" for r in violations.itertuples())
        raise SafetynetError(
            f"fairness: {len(violations)} group(s) served worse ({listed}); see "
            f"{out_dir / 'index.html'} (set fairness.fail_on_violation: false to report only)"
        )
    return report["headline"]


def synthetic_export(interim: Path) -> bool | None:
    """Whether the export came from the project's generator: only the generator ships its truth
    table, and ingest lists every table it wrote in the interim manifest (None: no manifest)."""
    path = interim / "manifest.json"
    if not path.exists():
        return None
    return "truth" in json.loads(path.read_text(encoding="utf-8")).get("rows", {})


def with_caseworkers(predictions: pd.DataFrame, interim: Path) -> pd.DataFrame:
    """Each row's caseworker_id from the interim children table (NO_DIRECTOR = none), for the director view."""
    path = interim / "children.parquet"
    if not path.exists() or "caseworker_id" in predictions.columns:
        return predictions
    children = pd.read_parquet(path, columns=["child_pid", "caseworker_id"]).drop_duplicates("child_pid")
    return with_directors(predictions, children)


def recording_counts(predictions: pd.DataFrame, interim: Path, window_days: int) -> pd.DataFrame | None:
    """Per child-month that later had the outcome, each source's rows in [as_of - window, as_of)."""
    positive = predictions.loc[predictions["label"] == 1, ["child_pid", "as_of"]].drop_duplicates()
    sources = [c for c, (table, _) in SOURCES.items() if (interim / f"{table}.parquet").exists()]
    if not sources:
        return None
    con = duckdb.connect()
    try:
        con.register("positive", positive)
        out = positive.copy()
        for column in sources:
            table = SOURCES[column][0]
            counted = con.execute(f"""
                SELECT p.child_pid, p.as_of, count(e.child_pid) AS n
                FROM positive p LEFT JOIN read_parquet(?) e
                  ON e.child_pid = p.child_pid
                 AND e.{DATE_COLUMN[table]} >= p.as_of - to_days(CAST(? AS INTEGER))
                 AND e.{DATE_COLUMN[table]} < p.as_of {SOURCE_FILTERS[column]}
                GROUP BY p.child_pid, p.as_of
            """, [str(interim / f"{table}.parquet"), int(window_days)]).df()  # fmt: skip
            counted["as_of"] = counted["as_of"].astype(out["as_of"].dtype)
            out = out.merge(counted.rename(columns={"n": column}), on=["child_pid", "as_of"], how="left")
    finally:
        con.close()
    return out.fillna(dict.fromkeys(sources, 0)).sort_values(["child_pid", "as_of"]).reset_index(drop=True)


def _log_summary(headline: dict) -> None:
    log.info(
        "fairness: %d groups served worse, %d better, %d within, %d cannot tell; %d subgroups "
        "discovered of %d tested; %d cells suppressed",
        headline["served_worse"], headline["served_better"], headline["within_tolerance"],
        headline["cannot_tell"], headline["discoveries"], headline["subgroups_tested"],
        headline["suppressed_cells"],
    )  # fmt: skip


def log_to_mlflow(models_dir: Path, out_dir: Path, headline: dict) -> bool:
    """Attach the report to the MLflow run of the model in models/ (found by its digest);
    warn and skip when this MLflow store has no such run."""
    run = find_model_run(Path(models_dir))
    if run is None:
        log.warning("fairness: this MLflow store has no run for the model in %s; report not "
                    "logged to MLflow", models_dir)  # fmt: skip
        return False
    run_id = run["run_id"]
    try:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics(
                {f"fairness_{k}": float(v) for k, v in headline.items() if v is not None}
            )
            mlflow.log_artifacts(str(out_dir), artifact_path="fairness")
    except MlflowException as exc:
        log.warning(
            "fairness: MLflow run %s not available (%s); report not logged",
            run_id,
            exc.message[:200],
        )
        return False
    return True
