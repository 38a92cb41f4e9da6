"""Model stages: split, train, evaluate, explain, watchlist, fairness, model card.

MLflow decides at import whether to send telemetry, so the switch is set here, before any
stage module imports mlflow (a user's own setting wins).
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
