"""Where MLflow runs and models live: a local SQLite store in the project unless told otherwise.

MLFLOW_TRACKING_URI (e.g. http://tracking-server:5000) switches to a server. Otherwise the
store is `<project>/mlflow.db` with artifacts in `<project>/mlartifacts`, as absolute paths,
so runs from `dvc exp run --temp` (which execute in .dvc/tmp/exps/...) land in the same store.
"""

from __future__ import annotations

import os
from pathlib import Path

MODEL_NAME = "safetynet-ews"
CHAMPION = "champion"
EXPERIMENT = "safetynet-ews"


def project_root(start: Path | None = None) -> Path:
    """The real project folder, also when DVC runs an experiment in a temporary copy."""
    here = (start or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return here


def configure_tracking(root: Path | None = None) -> str:
    """Point MLflow at the store (no telemetry, nothing on the network) and return its URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        root = project_root(root)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:"):
        artifacts = (project_root(root) / "mlartifacts").as_uri()
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    elif mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT)
    mlflow.set_experiment(EXPERIMENT)
    return uri
