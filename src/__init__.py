"""safetynet-ews: early warning for children in difficult circumstances.

Two process-wide settings are read once, when a library loads, so they are set here, before
any stage module imports that library (a value the user already set wins).
"""

import os

# mlflow/__init__.py creates its telemetry client at import unless this is set: no telemetry.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# libgomp reads this when LightGBM loads it; the default spinning wait made boosting 10-25x
# slower on a shared 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
