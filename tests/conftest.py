"""Fixtures shared across rooms: the one SparkSession of the spark-marked tests."""

from __future__ import annotations

import pytest

from src.spark_params import Spark
from src.spark_session import spark_session

# local[2], as on CI; small shuffles: the test exports are tiny.
TEST_SPARK = Spark(
    master="local[2]",
    driver_memory="2g",
    executor_memory="2g",
    shuffle_partitions=4,
    input_path=None,
)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local SparkSession, started once for the whole run (the JVM takes seconds to start)."""
    pytest.importorskip("pyspark")
    session = spark_session(TEST_SPARK, tmp_path_factory.mktemp("spark-local"))
    yield session
    session.stop()
