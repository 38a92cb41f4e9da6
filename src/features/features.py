"""Stage `features`: data/interim/*.parquet -> data/processed/features.parquet + reports/features_summary.json.

One row per (child_pid, as_of) for every month-start as-of date and every child in the
cohort at that date (``labels.build_labels``), with the label columns, the audit columns and
the features of ``catalogue.CATALOGUE``. Features at ``as_of`` read only records dated on or
before ``as_of``; windows end at ``as_of`` and old events age out of them ("days since"
features are capped at 365 days), so no event marks a child forever. The registry attributes
sex, ethnicity and hukou are the registry's snapshot at export. category, guardian_type and
disability_level are read as of each as-of date when the export has a registry_history table;
without it they are as of export, and the summary's ``registry`` entry says so and names the
fields left out of the model (``catalogue.registry_reading``).

As-of dates start one month after the export's history start (``as_of_dates``), so the early
ones have short histories: a window reaching before the history start is unknown (NaN), and
``months_of_history`` says how much there is (see the catalogue's docstring).

The heavy work is SQL (``queries``), run by DuckDB or, with ``features.engine: spark``, by
Spark on the same SQL transpiled (``src/features/engine.py``); as-of dates are processed in
batches of whole dates holding about ``features.batch_rows`` child-months each
(``dates_per_batch``) and streamed into one parquet file, so memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_path, scratch_dir, write_json
from src.config import Features, Params, check_split
from src.data.contract import REGISTRY_HISTORY
from src.errors import SafetynetError
from src.features import catalogue, queries
from src.features.cohort import month_starts
from src.features.engine import DuckDBEngine, SparkEngine, as_engine, table_path
from src.features.labels import build_labels, prepare_labels
from src.run_facts import features_facts, read_export_date
from src.spark_session import spark_session  # imports PySpark (an optional extra) only when called

log = logging.getLogger(__name__)

# At most this many rows per Arrow chunk pulled from DuckDB (one parquet row group each): bounds memory.
CHUNK_ROWS = 1_000_000
FEATURE_SPECS = {entry.name: entry for entry in catalogue.CATALOGUE}

# Without registry_history (optional, absent from interim then) the registry is as of export.
NO_REGISTRY_CHANGES = (
    "SELECT CAST(NULL AS VARCHAR) AS child_pid, CAST(NULL AS VARCHAR) AS field, "
    "CAST(NULL AS VARCHAR) AS old_value, CAST(NULL AS VARCHAR) AS new_value, "
    "CAST(NULL AS TIMESTAMP) AS change_date WHERE 1 = 0"
)

INTERIM_TABLES = (
    "children",
    "welfare_events",
    "school_calendar",
    "school_enrollment",
    "school_absences",
    "medical_events",
    "casework_visits",
    "protection_events",
)


def open_interim(
    interim_dir: Path, memory_gb: float | None = None, spill_dir: Path | None = None
) -> DuckDBEngine:
    """An in-memory DuckDB with one view per interim table (``attach_interim``).

    ``memory_gb`` caps DuckDB's memory; beyond it joins, aggregates and sorts spill to ``spill_dir``.
    """
    con = duckdb.connect()
    if memory_gb is not None:
        con.execute(f"SET memory_limit = '{int(memory_gb * 1024)}MB'")
    if spill_dir is not None:
        con.execute(f"SET temp_directory = '{spill_dir.as_posix()}'")
    return attach_interim(DuckDBEngine(con), interim_dir)


def open_engine(interim_dir: Path, params: Params, scratch: Path) -> DuckDBEngine | SparkEngine:
    """The engine of ``features.engine`` over the interim tables (Spark: from ``spark.input_path``
    when set, so tables already on HDFS or S3 are read in place)."""
    if params.features.engine == "duckdb":
        return open_interim(interim_dir, params.features.duckdb_memory_gb, scratch)
    session = spark_session(params.spark, scratch)
    return attach_interim(
        SparkEngine(session), params.spark.input_path or Path(interim_dir).absolute()
    )


def attach_interim(engine, source: str | Path):
    """One view per interim table of the folder or URI ``source`` (and registry_history when present)."""
    for table in INTERIM_TABLES:
        path = table_path(source, table)
        if not engine.exists(path):
            raise SafetynetError(
                f"{path}: missing interim table; run `safetynet ingest` (dvc repro ingest) first"
            )
        engine.read_parquet(table, path)
    history = table_path(source, REGISTRY_HISTORY)
    if engine.exists(history):
        engine.read_parquet(REGISTRY_HISTORY, history)
    return engine


def history_start(con) -> dt.date:
    """The export's history start: the first day of the month of the latest first record among
    the tables an export fills month by month (``catalogue.HISTORY_TABLES``) that have one."""
    start = as_engine(con).scalar(
        f"SELECT MAX(start_month) FROM ({queries.history_starts_sql()}) AS s"
    )
    if start is None:
        raise SafetynetError(
            f"interim tables {', '.join(catalogue.HISTORY_TABLES)} are all empty: "
            "nothing to build features from"
        )
    return pd.Timestamp(start).date()


def as_of_dates(con, export_date: dt.date, params: Features) -> list[dt.date]:
    """Month starts from first_as_of to last_as_of.

    first_as_of defaults to the first month start after the history start (``history_start``):
    as early as every month-by-month table is recording, so all labelled history is used; a
    status record carried over from before the export (an old school enrolment) cannot pull
    the as-of dates into months whose outcomes the export does not hold. Windows that reach
    before the history start are unknown (NaN), and ``months_of_history`` says how much there is.
    """
    first = params.first_as_of
    if first is None:
        first = (pd.Timestamp(history_start(con)).to_period("M") + 1).to_timestamp().date()
    last = min(params.last_as_of or export_date, export_date)
    dates = month_starts(first, last)
    if not dates:
        raise SafetynetError(
            f"params.yaml features: no month start between {first} and {last}; set first_as_of/last_as_of"
        )
    return dates


def prepare_tables(con) -> None:
    """Materialise the event tables with integer child keys and DATE columns (once per run).

    Without a ``registry_history`` relation the registry has no recorded change (as of export)."""
    engine = as_engine(con)
    if REGISTRY_HISTORY not in engine.relations():
        engine.create_view(REGISTRY_HISTORY, NO_REGISTRY_CHANGES)
    for name, sql in queries.PREPARE.items():
        engine.create_table(name, sql)


def feature_chunks(con, keys: pd.DataFrame, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """Audit columns + catalogue features for each row of ``keys`` (child_pid, as_of, passthrough...).

    Streams Arrow tables of at most ``chunk_rows`` rows, ordered by as_of, child_pid, with the
    columns of ``keys`` first, then the audit columns, then the catalogue's features (fixed
    types: categoricals dictionary-encoded with the catalogue's categories, numerics float64).
    ``prepare_tables`` must have run on ``con``.
    """
    engine = as_engine(con)
    passthrough = [c for c in keys.columns if c not in catalogue.KEY_COLUMNS]
    engine.register("f_keys_in", keys)
    try:
        engine.create_table("f_dates", queries.as_of_table_sql("f_keys_in"))
        query = queries.feature_query("f_keys_in", passthrough)
        for batch in engine.arrow_batches(query, chunk_rows):
            yield cast_table(pa.Table.from_batches([batch]))
    finally:
        engine.unregister("f_keys_in")


def compute_features(con, keys: pd.DataFrame) -> pd.DataFrame:
    """``feature_chunks`` as one pandas frame (categoricals as pandas ``category``)."""
    tables = list(feature_chunks(con, keys))
    if not tables:
        return pd.DataFrame(
            columns=[*keys.columns, *catalogue.AUDIT_COLUMNS, *catalogue.feature_names()]
        )
    return pa.concat_tables(tables).to_pandas()


def _categorical(
    column: pa.ChunkedArray, name: str, categories: tuple[str, ...]
) -> pa.ChunkedArray:
    dictionary = pa.array(categories, pa.string())
    indices = pc.index_in(column, value_set=dictionary)
    if indices.null_count:
        unknown = pc.unique(pc.filter(column, pc.is_null(indices))).to_pylist()
        raise SafetynetError(
            f"feature {name}: codes {sorted(map(str, unknown))} are not in the catalogue's categories; "
            "fix the interim data or add them to src/features/catalogue.py"
        )
    index_type = pa.int8() if len(categories) < 128 else pa.int16()
    chunks = [
        pa.DictionaryArray.from_arrays(c.cast(index_type), dictionary) for c in indices.chunks
    ]
    return pa.chunked_array(chunks, pa.dictionary(index_type, pa.string()))


def cast_table(table: pa.Table) -> pa.Table:
    """Fixed types: strings as string, numerics float64, categoricals with the catalogue's categories."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if name in FEATURE_SPECS and FEATURE_SPECS[name].kind == "categorical":
            column = _categorical(column, name, FEATURE_SPECS[name].categories)
        elif name in FEATURE_SPECS:
            column = column.cast(pa.float64())
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        columns[name] = column
    return pa.table(columns)


def batches(dates: list[dt.date], size: int) -> list[list[dt.date]]:
    size = max(1, size)
    return [dates[i : i + size] for i in range(0, len(dates), size)]


def dates_per_batch(con, batch_rows: int) -> int:
    """As many whole as-of dates as keep every registered child x dates within ``batch_rows``
    (at least one): the batch, not the export, sets the size of every join and sort, so the
    stage's memory stays flat as the export grows."""
    children = int(as_engine(con).scalar("SELECT COUNT(*) FROM f_kids") or 0)
    return max(1, batch_rows // max(1, children))


def _count_true(column: pa.ChunkedArray) -> int:
    return int(pc.sum(column.cast(pa.int64())).as_py() or 0)


class SummaryCounter:
    """Accumulates the summary over chunks: rows per date, label rates, missing shares, truth AUC."""

    def __init__(self, rules: list[str]):
        self.rows_per_as_of: dict[str, int] = {}
        self.missing = dict.fromkeys(catalogue.feature_names(), 0)
        self.rows = 0
        self.observed = 0
        self.positives = dict.fromkeys([*rules, "label"], 0)

    def add(self, table: pa.Table) -> None:
        for item in pc.value_counts(table.column("as_of")).to_pylist():
            day = item["values"].strftime("%Y-%m-%d")
            self.rows_per_as_of[day] = self.rows_per_as_of.get(day, 0) + item["counts"]
        self.rows += table.num_rows
        for name in self.missing:
            column = table.column(name)
            self.missing[name] += column.null_count
            if pa.types.is_floating(column.type):
                self.missing[name] += _count_true(pc.is_nan(column))
        observed = table.filter(table.column("label_observed"))
        self.observed += observed.num_rows
        for col in self.positives:
            self.positives[col] += _count_true(observed.column(col))

    def result(self) -> dict:
        rates = {
            col: (n / self.observed if self.observed else None) for col, n in self.positives.items()
        }
        return {
            "rows": self.rows,
            "rows_per_as_of": dict(sorted(self.rows_per_as_of.items())),
            "observed_rows": self.observed,
            "label_rates_observed": rates,
            "missing_share": {
                k: (v / self.rows if self.rows else None) for k, v in self.missing.items()
            },
        }


def truth_auc(interim_dir: Path, features_path: Path) -> float | None:
    """AUC of the generator's p_true against the composite label on observed, not-already-out rows.

    A check that generator and label rules agree, on the local files (DuckDB whatever the
    engine); None without interim ``truth.parquet`` or with one class only. Computed in the
    database as the Mann-Whitney rank sum, exact in integers (tied scores share their mean
    rank): twice the positives' rank sum is sum(pos * (2 * below + n + 1)) over the distinct
    p_true values, with n rows at the value and `below` rows under it. No row leaves DuckDB.
    """
    truth = Path(interim_dir) / "truth.parquet"
    if not truth.exists():
        return None
    with duckdb.connect() as con:
        twice_rank_sum, positives, rows = con.sql(
            f"""WITH pairs AS (
                    SELECT t.p_true, k.label FROM read_parquet('{features_path.as_posix()}') AS k
                    JOIN read_parquet('{truth.as_posix()}') AS t
                      ON t.child_pid = k.child_pid AND CAST(t.as_of AS DATE) = CAST(k.as_of AS DATE)
                    WHERE k.label_observed AND k.already_out = 0),
                by_score AS (SELECT p_true, CAST(SUM(label) AS BIGINT) AS pos, COUNT(*) AS n
                             FROM pairs GROUP BY p_true),
                ranked AS (SELECT pos, n, SUM(n) OVER (ORDER BY p_true ROWS UNBOUNDED PRECEDING) - n AS below
                           FROM by_score)
                SELECT CAST(SUM(pos * (2 * below + n + 1)) AS HUGEINT), CAST(SUM(pos) AS BIGINT),
                       CAST(SUM(n) AS BIGINT) FROM ranked"""
        ).fetchall()[0]
    positives, rows = int(positives or 0), int(rows or 0)
    if positives in (0, rows):
        return None
    return (int(twice_rank_sum) - positives * (positives + 1)) / (2 * positives * (rows - positives))


def write_features(
    con, dates: list[dt.date], export_date: dt.date, params: Params, out: Path
) -> dict:
    """Labels then features, batch by batch of as-of dates, streamed into one parquet file."""
    counter = SummaryCounter(params.label.rules.enabled())
    writer = None
    with Progress(console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("features", total=len(dates))
        try:
            prepare_labels(con, dates, params.label)
            parts = batches(dates, dates_per_batch(con, params.features.batch_rows))
            for number, batch in enumerate(parts, start=1):
                start = time.perf_counter()
                labels = build_labels(con, batch, export_date, params.label, prepared=True)
                labelled = time.perf_counter()
                for table in feature_chunks(con, labels):
                    counter.add(table)
                    if writer is None:
                        writer = pq.ParquetWriter(out, table.schema, compression="zstd")
                    writer.write_table(table.cast(writer.schema))
                bar.advance(task, len(batch))
                log.info("features: batch %d/%d (%s .. %s, %d rows): labels %.1f s, features %.1f s",
                         number, len(parts), batch[0], batch[-1], len(labels), labelled - start,
                         time.perf_counter() - labelled)  # fmt: skip
        finally:
            if writer is not None:
                writer.close()
    return {**counter.result(), **features_facts(export_date, params.label.horizon_days, dates)}


def has_registry_history(interim_dir: Path) -> bool:
    """Whether the export held a registry_history table (ingest writes it only then)."""
    return (Path(interim_dir) / f"{REGISTRY_HISTORY}.parquet").exists()


def run(interim_dir, out_path, summary_path, params: Params) -> dict:
    """Build features.parquet and features_summary.json from the interim folder; return the summary."""
    interim_dir, out_path = Path(interim_dir), Path(out_path)
    export_date = read_export_date(interim_dir)
    with scratch_dir(f"{params.features.engine}-features") as spill_dir:
        con = open_engine(interim_dir, params, spill_dir)
        try:
            dates = as_of_dates(con, export_date, params.features)
            check_split(params, dates, export_date)
            log.info("features: %d as-of dates %s .. %s", len(dates), dates[0], dates[-1])
            start = time.perf_counter()
            prepare_tables(con)
            log.info("features: event tables prepared in %.1f s", time.perf_counter() - start)
            with atomic_path(out_path) as tmp:
                summary = write_features(con, dates, export_date, params, tmp)
                start = time.perf_counter()
                summary["truth_auc"] = truth_auc(interim_dir, tmp) if summary["rows"] else None
                log.info("features: truth AUC check in %.1f s", time.perf_counter() - start)
        finally:
            con.close()
    if summary["rows"] == 0:
        raise SafetynetError(
            f"{interim_dir}: no child is in the cohort at any as-of date; check children.parquet"
        )
    summary["registry"] = catalogue.registry_reading(
        has_registry_history(interim_dir), params.features.registry_as_of_export
    )
    write_json(summary_path, summary)
    log.info("features: %d rows -> %s", summary["rows"], out_path)
    return summary
