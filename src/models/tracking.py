"""Where MLflow runs and models live: a local SQLite store in the project unless told otherwise.

MLFLOW_TRACKING_URI (e.g. http://tracking-server:5000) switches to a server. Otherwise the
store is `<project>/mlflow.db` with artifacts in `<project>/mlartifacts`, as absolute paths.
A SQLite URI given in the environment keeps its artifacts beside the database file.

`dvc exp run --temp` and queued experiments execute in a temporary clone at
`<project>/.dvc/tmp/exps/standalone/tmpXXXX/` or `<project>/.dvc/tmp/exps/celery/tmpXXXX/`
(DVC 3.67: `repo.tmp_dir/exps` + `standalone` | `celery`, then `mkdtemp`); a plain
`dvc exp run` runs in the project itself. `project_root()` maps all of them to the real
project, so every experiment lands in the same store.

Telemetry is switched off (MLFLOW_DISABLE_TELEMETRY / DO_NOT_TRACK=true unless the user set
them): MLflow decides at import, so `src/models/__init__.py` sets the same defaults.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from src.figures import barh
from src.models.scoring import CalibratedModel, CalibratedPyfunc
from src.run_facts import read_train_summary

log = logging.getLogger(__name__)

MODEL_NAME = "safetynet-ews"
CHAMPION = "champion"
EXPERIMENT = "safetynet-ews"
_DVC_EXPS = (".dvc", "tmp", "exps")
# Exact pins for the pyfunc model's environment: skips MLflow's ~10 s requirement inference.
_PYFUNC_PACKAGES = ("mlflow", "lightgbm", "pandas", "numpy", "cloudpickle")


def project_root(start: Path | None = None) -> Path:
    """The real project folder, also when DVC runs an experiment in a temporary copy."""
    here = (start or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - len(_DVC_EXPS), -1, -1):  # innermost match wins
        if parts[i : i + len(_DVC_EXPS)] == _DVC_EXPS:
            return Path(*parts[:i])
    return here


def _artifact_root(uri: str, root: Path) -> Path:
    """Artifacts beside an SQLite database file; the project's mlartifacts/ otherwise."""
    db_path = uri.removeprefix("sqlite:///")
    if db_path and db_path != ":memory:" and db_path != uri:
        return Path(db_path).absolute().parent / "mlartifacts"
    return root / "mlartifacts"


def configure_tracking(root: Path | None = None) -> str:
    """Point MLflow at the store (no telemetry, nothing on the network) and return its URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault(
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
    )  # keep stage logs readable
    root = project_root(root)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # also exports MLFLOW_TRACKING_URI to subprocesses
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        location = _artifact_root(uri, root).as_uri() if uri.startswith("sqlite:") else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return uri


def promote_champion(model_version: str | int) -> None:
    """Point the `champion` alias of the registered model at `model_version` (evaluate's gate)."""
    configure_tracking()
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, str(model_version))


def champion_version() -> str | None:
    """The registered version the `champion` alias points at, or None when there is none yet."""
    configure_tracking()
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def git_commit(root: Path | None = None) -> str:
    """The checked-out commit (under `dvc exp run --temp`: the experiment's base), or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


# --- one run per trained model ----------------------------------------------------------


def log_training_run(model_dir: Path, result, params, summary: dict) -> dict[str, str]:
    """Log the trained model (src.models.train.TrainingResult) as one run and register it.

    Logs params (base.seed + the flattened label, features and train sections), fit metrics,
    the features.parquet digest, the git commit, gain importance (JSON, CSV and PNG) and the
    pyfunc model. Nothing about any child reaches MLflow: the input example is one synthetic
    row (train.synthetic_input_example), not training data. An identical model (same booster,
    calibrator, feature spec and data digest) that is already registered is reused, so
    retraining the same data + params changes nothing.
    Returns run_id, model_version and model_uri.
    """
    configure_tracking()
    digest = model_digest(Path(model_dir), summary["features_sha256"])
    existing = _find_registered(digest)
    if existing:
        log.info(
            "identical model already registered as version %s; reusing it",
            existing["model_version"],
        )
        return existing
    logged_params = {"base.seed": str(params.base.seed)}
    for section in ("label", "features", "train"):
        logged_params.update(flatten(getattr(params, section), section))
    commit = git_commit()
    run_name = f"lgbm-{summary['features_sha256'][:8]}-{_digest(json.dumps(logged_params, sort_keys=True))[:8]}"
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(
            {
                "model_digest": digest,
                "git_commit": commit,
                "mlflow.source.git.commit": commit,
                "data.features_sha256": summary["features_sha256"],
                "data.export_date": summary["export_date"],
            }
        )
        mlflow.log_params({**logged_params, **_split_params(summary)})
        mlflow.log_metrics(_run_metrics(result, summary))
        mlflow.log_dict(summary["split"], "split.json")
        _log_importance(result.importance)
        info = _log_model(Path(model_dir), result)
    return {
        "run_id": run.info.run_id,
        "model_version": str(info.registered_model_version),
        "model_uri": f"models:/{MODEL_NAME}/{info.registered_model_version}",
    }


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def model_digest(model_dir: Path, data_digest: str) -> str:
    """What identifies a trained model: booster, calibrator, nowcast and the features it was fitted on."""
    parts = [(model_dir / name).read_bytes() for name in ("booster.txt", "calibrator.json", "nowcast.json")]
    return _digest(b"\0".join([*parts, data_digest.encode()]))


def _find_registered(digest: str) -> dict[str, str] | None:
    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.model_digest = '{digest}'",
        output_format="list",
    )
    client = MlflowClient()
    for run in runs:
        versions = [
            v
            for v in client.search_model_versions(f"run_id = '{run.info.run_id}'")
            if v.name == MODEL_NAME
        ]
        if versions:
            number = min(int(v.version) for v in versions)
            return {
                "run_id": run.info.run_id,
                "model_version": str(number),
                "model_uri": f"models:/{MODEL_NAME}/{number}",
            }
    return None


def _split_params(summary: dict) -> dict[str, str]:
    split = summary["split"]
    out = {
        f"split.{name}": f"{split[name][0]}..{split[name][-1]} ({len(split[name])} as-of dates)"
        for name in ("train", "test")
    }
    for k, fold in enumerate(split.get("folds", []), start=1):
        out[f"split.fold{k}"] = f"train ..{fold['train'][-1]}, window {fold['window'][0]}..{fold['window'][-1]}"
    return out


def _run_metrics(result, summary: dict) -> dict[str, float]:
    metrics = {k: v for k, v in result.metrics.items() if v is not None}
    metrics["best_iteration"] = result.best_iteration
    metrics["scale_pos_weight"] = result.scale_pos_weight
    for period, counts in summary["periods"].items():
        for key, value in counts.items():
            metrics[f"{period}_{key}"] = value
    return metrics


def _log_importance(importance) -> None:
    """Gain importance as JSON, CSV and a bar chart of the top 30 features."""
    mlflow.log_dict(importance.to_dict(orient="records"), "importance/feature_importance.json")
    mlflow.log_text(importance.to_csv(index=False), "importance/feature_importance.csv")
    top = importance.head(30)
    figure, _ = barh(top["feature"], top["gain"], "LightGBM feature importance (gain)", "total gain")
    mlflow.log_figure(figure, "importance/feature_importance_gain.png")


def _log_model(model_dir: Path, result):
    """The pyfunc model (booster + calibrator + nowcast + feature spec) with an explicit signature,
    registered. Its input is the features alone, so it returns the calibrated probability; the
    nowcast's per-month ratios travel with it as an artifact (`CalibratedModel.predict_proba`
    applies them to frames with an `as_of` column)."""
    model = result.model
    inputs = Schema(
        [
            ColSpec("string" if name in model.categories else "double", name, required=False)
            for name in model.features
        ]
    )
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1,))])
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "feature_spec.json"
        spec_path.write_text(
            json.dumps(model.feature_spec(), indent=2, sort_keys=True), encoding="utf-8"
        )
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=CalibratedPyfunc(),
            artifacts={
                "booster": str(model_dir / "booster.txt"),
                "calibrator": str(model_dir / "calibrator.json"),
                "nowcast": str(model_dir / "nowcast.json"),
                "feature_spec": str(spec_path),
            },
            signature=ModelSignature(inputs=inputs, outputs=outputs),
            input_example=result.input_example,
            pip_requirements=[f"{name}=={version(name)}" for name in _PYFUNC_PACKAGES],
            registered_model_name=MODEL_NAME,
        )


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


# --- the model in models/, as MLflow knows it -------------------------------------------


def folder_digest(models_dir: Path) -> str:
    """The digest of the model in `models_dir` (booster, calibrator, training data)."""
    summary = read_train_summary(models_dir)
    return model_digest(Path(models_dir), summary["features_sha256"])


def find_model_run(models_dir: Path) -> dict[str, str] | None:
    """The MLflow run and registered version of the model in `models_dir` (matched by its
    digest), or None when this store has never seen it (e.g. another machine trained it)."""
    return find_run_by_digest(folder_digest(models_dir))


def find_run_by_digest(digest: str) -> dict[str, str] | None:
    """The MLflow run and registered version of the model with this digest, or None."""
    configure_tracking()
    return _find_registered(digest) if digest else None


def load_champion() -> tuple[str, CalibratedModel] | None:
    """(version, model) of the current `champion`, or None when there is none or it cannot load."""
    version_ = champion_version()
    if version_ is None:
        return None
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    except (MlflowException, OSError) as exc:
        log.warning("champion version %s cannot be loaded (%s)", version_, str(exc).splitlines()[0])
        return None
    return version_, loaded.unwrap_python_model().model
