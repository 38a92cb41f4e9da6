"""The Spark session's configuration and environment, without starting a JVM."""

from pathlib import Path

import pytest

from src.spark_params import Spark
from src.spark_session import driver_environment, session_conf


@pytest.mark.parametrize(
    ("master", "user_value", "expected"),
    [
        ("yarn", None, None),  # pandera's loopback removed: executors must reach the driver
        ("spark://head:7077", None, None),
        ("k8s://https://api:6443", "10.0.0.5", "10.0.0.5"),  # the user's own value stays
        ("local[*]", None, "127.0.0.1"),  # one JVM: loopback is right
    ],
)
def test_driver_environment_drops_only_panderas_loopback_on_a_cluster(master, user_value, expected):
    environ = {"SPARK_LOCAL_IP": user_value or "127.0.0.1"}
    driver_environment(master, environ, user_value)
    assert environ.get("SPARK_LOCAL_IP") == expected


@pytest.mark.spark  # splink's Spark backend, which locates the jar, imports PySpark
def test_session_conf_carries_the_params_and_never_fetches(tmp_path: Path):
    settings = Spark(master="local[2]", driver_memory="6g", executor_memory="3g",
                     shuffle_partitions=32, input_path=None)  # fmt: skip
    conf = session_conf(settings, tmp_path)
    assert conf["spark.driver.memory"] == "6g"
    assert conf["spark.executor.memory"] == "3g"
    assert conf["spark.sql.shuffle.partitions"] == "32"
    assert conf["spark.local.dir"] == tmp_path.as_posix()
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "spark.jars.packages" not in conf  # nothing is downloaded at run time
    assert Path(conf["spark.jars"]).is_file()  # splink's similarity jar, a local file
