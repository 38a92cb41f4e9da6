"""params.yaml ``spark:`` -> the pipeline's one SparkSession (``features.engine: spark``).

PySpark is an optional extra (``pip install -e ".[spark]"``, Java 17). Nothing is fetched at
run time: no ``spark.jars.packages`` (splink's jar is a local file), no UI, no console progress. Times are UTC and
``TIMESTAMP`` means ``TIMESTAMP_NTZ``, as in DuckDB, so dates never shift with the machine's
time zone. ``getOrCreate`` returns a session already running in this process (the tests'),
so its settings win there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import src
from src.errors import SafetynetError
from src.spark_params import Spark


def session_conf(settings: Spark, local_dir: Path | None = None) -> dict[str, str]:
    """The Spark configuration of ``settings`` (plus ``spark.local.dir`` for shuffle spill), with
    splink's Scala similarity UDFs (a jar inside the splink package) on the class path, so the
    linkage stage can use the same session."""
    from splink.backends.spark import similarity_jar_location

    conf = {
        "spark.jars": similarity_jar_location(),
        "spark.driver.memory": settings.driver_memory,
        "spark.executor.memory": settings.executor_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.driver.maxResultSize": "0",  # the driver collects a batch: its memory is the bound
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if local_dir is not None:
        conf["spark.local.dir"] = Path(local_dir).as_posix()
    return conf


def driver_environment(master: str, environ: dict, user_local_ip: str | None) -> None:
    """Undo pandera's ``SPARK_LOCAL_IP=127.0.0.1`` (set at its import) for a cluster master, so the
    driver binds to an address the executors can reach; a value the user set stays. Local
    masters keep loopback (driver and executor are one JVM)."""
    if not master.startswith("local") and user_local_ip is None:
        environ.pop("SPARK_LOCAL_IP", None)


def spark_session(settings: Spark, local_dir: Path | None = None):
    """A SparkSession built from the ``spark:`` params (or the one already running)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SafetynetError(
            'features.engine: spark needs PySpark and Java 17: pip install -e ".[spark]"'
        ) from None
    driver_environment(settings.master, os.environ, src.USER_SPARK_LOCAL_IP)
    if settings.master.startswith("local"):  # workers run this interpreter; a cluster sets its own
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("safetynet-ews").master(settings.master)
    for key, value in session_conf(settings, local_dir).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
