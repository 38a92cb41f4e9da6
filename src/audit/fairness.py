"""The fairness stage: test predictions -> reports/fairness/ (fairness.json, index.html, PNGs) + headline.

A thin I/O shell: the audit is `src.audit.fairness_audit.audit_fairness` (pure), the report
`src.audit.fairness_report.render_report`. `run()` reads the predictions, writes the report and
the flat headline JSON, and logs them to the model's MLflow run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from src.atomic import atomic_dir, write_json
from src.audit.fairness_audit import audit_fairness, audit_to_dict, primary_violations
from src.audit.fairness_report import render_report
from src.errors import SafetynetError
from src.models.tracking import find_model_run

log = logging.getLogger(__name__)


def run(predictions_path, models_dir, out_dir, headline_path, params) -> dict:
    """Read the test predictions, write the fairness report and headline, log them to MLflow."""
    predictions_path, out_dir = Path(predictions_path), Path(out_dir)
    if not predictions_path.exists():
        raise SafetynetError(
            f"{predictions_path}: not found; run the evaluate stage first (dvc repro evaluate)"
        )
    audit = audit_fairness(
        pd.read_parquet(predictions_path),
        params.fairness,
        params.evaluate,
        source=str(predictions_path),
    )
    report = audit_to_dict(audit)
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
        listed = "; ".join(
            f"{r.metric} ratio {r.ratio:.2f} for {r.attribute}={r.group}"
            for r in violations.itertuples()
        )
        raise SafetynetError(
            f"fairness: {len(violations)} primary comparison(s) outside tolerance {list(params.fairness.tolerance)} "
            f"({listed}); see {out_dir / 'index.html'} (set fairness.fail_on_violation: false to report only)"
        )
    return report["headline"]


def _log_summary(headline: dict) -> None:
    log.info(
        "fairness: %d primary comparisons, %d outside, %d inconclusive; %d cells suppressed",
        headline["primary_comparisons"], headline["primary_outside"], headline["primary_inconclusive"],
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
