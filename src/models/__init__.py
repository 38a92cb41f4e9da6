"""Model stages: split, train, evaluate, explain, watchlist, fairness, model card.

Process-wide settings that libraries read once, when they load, so they are set here,
before any stage module imports them (a value the user already set wins):
- MLflow decides at import whether to send telemetry: off.
- LightGBM's OpenMP threads spin while waiting by default; on a busy or shared machine
  (2 cores, several processes) that made boosting 10-25x slower. Passive waiting costs
  little on an idle machine.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
