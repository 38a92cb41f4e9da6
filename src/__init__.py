"""safetynet-ews: early warning for children in difficult circumstances.

Process-wide settings read once, when a library loads, so they are set here, before
any stage module imports that library (a value the user already set wins).
"""

import os
import warnings

# mlflow/__init__.py creates its telemetry client at import unless this is set: no telemetry.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# libgomp reads this when LightGBM loads it; the default spinning wait made boosting 10-25x
# slower on a shared 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
# pandera imports pyspark.pandas whenever PySpark is installed (the spark extra), and that warns
# about pandas 3 on every command; the pipeline never uses pandas-on-Spark.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
