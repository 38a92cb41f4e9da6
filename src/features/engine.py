"""The SQL engines the cohort, labels and features run on: DuckDB (default) and Spark.

The SQL is written once, in DuckDB's dialect kept portable (see ``src/features/queries.py``).
Both engines offer the same small interface, so the stage never branches on the engine:
``read_parquet`` (a view over a parquet file), ``register`` (a pandas frame as a view),
``create_table`` (a query materialised once), ``create_view``, ``arrow_batches`` / ``df`` /
``scalar`` (a query's result), ``exists``, ``relations`` and ``close``.

``SparkEngine`` transpiles every query with sqlglot (read="duckdb", write="spark") plus one
transform, ``decimal_literals_as_double``: a literal such as ``365.25`` is DECIMAL in both
engines, but DuckDB divides decimals in DOUBLE while Spark keeps DECIMAL and rounds the
quotient to 6 places, so the literal is cast to DOUBLE first. Materialised tables are
persisted (memory, then disk) and counted once; results are collected to the driver as Arrow.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from src.errors import SafetynetError


def table_path(source: str | Path, table: str) -> str:
    """``<source>/<table>.parquet``; ``source`` may be a folder or a URI (hdfs://, s3a://)."""
    return f"{str(source).rstrip('/')}/{table}.parquet"


class DuckDBEngine:
    """An in-process DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def read_parquet(self, name: str, path: str) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path}')")

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(name, frame)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def create_table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def create_view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def relations(self) -> set[str]:
        rows = self.con.sql("SELECT table_name FROM information_schema.tables").fetchall()
        return {row[0] for row in rows}

    def arrow_batches(self, sql: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        yield from self.con.sql(sql).to_arrow_reader(chunk_rows)

    def df(self, sql: str) -> pd.DataFrame:
        return self.con.sql(sql).df()

    def scalar(self, sql: str):
        return self.con.sql(sql).fetchall()[0][0]

    def close(self) -> None:
        self.con.close()


def decimal_literals_as_double(node: exp.Expression) -> exp.Expression:
    """``365.25`` -> ``CAST(365.25 AS DOUBLE)``: DuckDB's arithmetic on such literals (module docstring)."""
    if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
        return exp.cast(node.copy(), exp.DataType.build("double"))
    return node


@functools.lru_cache(maxsize=512)
def to_spark_sql(sql: str) -> str:
    """One DuckDB-dialect query as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(decimal_literals_as_double)
    return tree.sql(dialect="spark")


def _plain_types(table: pa.Table) -> pa.Table:
    """Spark's Arrow as DuckDB's: large strings as strings (timestamps are NTZ already)."""
    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


class SparkEngine:
    """A SparkSession; queries are transpiled (``to_spark_sql``) and results collected as Arrow."""

    def __init__(self, session):
        self.session = session
        self._views: dict[str, object] = {}  # name -> DataFrame

    def _replace(self, name: str, frame, persist: bool = False) -> None:
        old = self._views.pop(name, None)
        if persist:
            frame = frame.persist()
            frame.count()  # materialise now: later queries read it many times
        frame.createOrReplaceTempView(name)
        if old is not None and old.is_cached:
            old.unpersist()
        self._views[name] = frame

    def exists(self, path: str) -> bool:
        jvm = self.session._jvm  # Hadoop's FileSystem reads local paths and URIs alike
        target = jvm.org.apache.hadoop.fs.Path(path)
        conf = self.session._jsc.hadoopConfiguration()
        return bool(target.getFileSystem(conf).exists(target))

    def read_parquet(self, name: str, path: str) -> None:
        self._replace(name, self.session.read.parquet(path))

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self._replace(name, self.session.createDataFrame(frame))

    def unregister(self, name: str) -> None:
        self._views.pop(name, None)
        self.session.catalog.dropTempView(name)

    def create_table(self, name: str, sql: str) -> None:
        self._replace(name, self.session.sql(to_spark_sql(sql)), persist=True)

    def create_view(self, name: str, sql: str) -> None:
        self._replace(name, self.session.sql(to_spark_sql(sql)))

    def relations(self) -> set[str]:
        return set(self._views)

    def _arrow(self, sql: str) -> pa.Table:
        return _plain_types(self.session.sql(to_spark_sql(sql)).toArrow())

    def arrow_batches(self, sql: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """The whole result reaches the driver at once: the batch of as-of dates bounds it."""
        yield from self._arrow(sql).to_batches(max_chunksize=chunk_rows)

    def df(self, sql: str) -> pd.DataFrame:
        return self._arrow(sql).to_pandas()

    def scalar(self, sql: str):
        row = self.session.sql(to_spark_sql(sql)).first()
        return None if row is None else row[0]

    def close(self) -> None:
        """Drop this engine's views and cached tables; the session stays for its owner to stop."""
        for name in list(self._views):
            frame = self._views[name]
            if frame.is_cached:
                frame.unpersist()
            self.unregister(name)


def as_engine(con) -> DuckDBEngine | SparkEngine:
    """An engine as is; a bare DuckDB connection wrapped (callers may hand either)."""
    if isinstance(con, DuckDBEngine | SparkEngine):
        return con
    if isinstance(con, duckdb.DuckDBPyConnection):
        return DuckDBEngine(con)
    raise SafetynetError(f"not a SQL engine: {type(con).__name__}")
