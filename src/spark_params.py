"""The ``spark:`` params section (validated at load with the rest, ``src/config.py``).

Its own module so that ``src/config.py``, which every stage imports, does not import the
session code (``src/spark_session.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from src.errors import SafetynetError


@dataclass(frozen=True)
class Spark:
    master: str  # local[*], spark://host:7077, yarn, k8s://...
    driver_memory: str  # JVM sizes: 4g, 512m
    executor_memory: str
    shuffle_partitions: int
    input_path: str | None  # folder or URI (hdfs://, s3a://) of <table>.parquet; null = interim

    def __post_init__(self) -> None:
        for key in ("driver_memory", "executor_memory"):
            value = getattr(self, key)
            if not re.fullmatch(r"[1-9][0-9]*[kmgt]", value):
                raise SafetynetError(
                    f"spark.{key} must be a JVM size such as 4g or 512m, got {value!r}"
                )
        if self.shuffle_partitions < 1:
            raise SafetynetError("spark.shuffle_partitions must be at least 1")
        if not self.master.strip():
            raise SafetynetError("spark.master must not be empty (local[*] runs on this machine)")
