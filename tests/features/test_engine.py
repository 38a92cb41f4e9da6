"""The two engines: Spark's labels and features equal DuckDB's, row for row.

Exact for integers, codes, dates and flags; within 1e-9 for floats. On the conformance export
(at its expected as-of dates) and on a 5,000-child generated export (as-of dates across its
whole span, the short-history ones included). PySpark runs in ``local[2]``
(``tests/conftest.py``); those tests are marked ``spark`` (``make test-all``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot

from src.config import load_params
from src.data import generate, ingest
from src.features import features
from src.features.engine import DuckDBEngine, as_engine, to_spark_sql
from src.features.labels import build_labels
from tests.conftest import TEST_SPARK
from tests.params import PARAMS_FILE, load_test_params

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance" / "raw"
CONFORMANCE_EXPORT = dt.date(2024, 12, 31)
CONFORMANCE_DATES = [dt.date(2024, m, 1) for m in (1, 3, 4, 7, 8)]


def test_decimal_literals_are_doubles_on_spark():
    """DuckDB divides by 30.44 in DOUBLE; Spark would keep DECIMAL and round to 6 places."""
    spark_sql = to_spark_sql("SELECT CEIL(x / 30.44) AS m, y / 12 AS n, 'a.b' AS s FROM t")
    assert "CAST(30.44 AS DOUBLE)" in spark_sql and "'a.b'" in spark_sql
    assert "CAST(12 AS DOUBLE)" not in spark_sql
    sqlglot.parse_one(spark_sql, read="spark")  # valid Spark SQL


def test_a_bare_duckdb_connection_is_wrapped():
    con = duckdb.connect()
    engine = as_engine(con)
    assert isinstance(engine, DuckDBEngine) and as_engine(engine) is engine
    engine.create_table("t", "SELECT 1 AS x UNION ALL SELECT 2")
    assert "t" in engine.relations() and engine.scalar("SELECT SUM(x) FROM t") == 3
    engine.close()


def assert_same_rows(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert spark.dtypes.to_dict() == duck.dtypes.to_dict()
    assert len(spark) == len(duck) > 0
    for column in duck.columns:
        if pd.api.types.is_float_dtype(duck[column]):
            np.testing.assert_allclose(
                spark[column].to_numpy(), duck[column].to_numpy(), rtol=0, atol=1e-9,
                equal_nan=True, err_msg=column,
            )  # fmt: skip
        else:
            pd.testing.assert_series_equal(spark[column], duck[column], check_exact=True)


def labels_and_features(engine, dates, export_date, params) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = build_labels(engine, dates, export_date, params.label)
    features.prepare_tables(engine)
    return labels, features.compute_features(engine, labels)


def compare_engines(interim: Path, dates, export_date, params, spark, tmp_path) -> None:
    duck = features.open_interim(interim)
    on_spark = dataclasses.replace(
        params, features=dataclasses.replace(params.features, engine="spark"), spark=TEST_SPARK
    )
    sparky = features.open_engine(interim, on_spark, tmp_path)  # the session of the fixture
    try:
        expected = labels_and_features(duck, dates, export_date, params)
        got = labels_and_features(sparky, dates, export_date, on_spark)
    finally:
        duck.close()
        sparky.close()
    for want, have in zip(expected, got, strict=True):
        assert_same_rows(want, have)


@pytest.mark.spark
def test_spark_equals_duckdb_on_the_conformance_export(spark, tmp_path):
    params = load_params(PARAMS_FILE, {"base": {"export_date": CONFORMANCE_EXPORT.isoformat()}})
    interim = tmp_path / "interim"
    ingest.run(CONFORMANCE, interim, tmp_path / "data_quality.json", params)
    compare_engines(interim, CONFORMANCE_DATES, CONFORMANCE_EXPORT, params, spark, tmp_path)


@pytest.mark.spark
def test_spark_equals_duckdb_on_a_generated_export(spark, tmp_path):
    params = load_test_params(
        {"synthetic": {"n_children": 5000, "departments": {"enabled": False}}}
    )
    generate.run(tmp_path / "synthetic", params)
    interim = tmp_path / "interim"
    ingest.run(tmp_path / "synthetic", interim, tmp_path / "data_quality.json", params)
    export_date = features.read_export_date(interim)
    con = features.open_interim(interim)
    dates = features.as_of_dates(con, export_date, params.features)[::7]  # first to last, one batch
    con.close()
    compare_engines(interim, dates, export_date, params, spark, tmp_path)
