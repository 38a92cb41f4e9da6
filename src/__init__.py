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
# pandera sets SPARK_LOCAL_IP=127.0.0.1 at import whenever PySpark is installed, which would bind
# a cluster job's driver to loopback where no executor reaches it: the user's own value (or
# None) is kept here, before any stage imports pandera (src/spark_session.py reads it).
USER_SPARK_LOCAL_IP = os.environ.get("SPARK_LOCAL_IP")
# pandera imports pyspark.pandas whenever PySpark is installed (the spark extra), and that warns
# about pandas 3 on every command; the pipeline never uses pandas-on-Spark.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
