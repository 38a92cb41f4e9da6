"""Stage `features`: data/interim/*.parquet -> data/processed/features.parquet + reports/features_summary.json.

One row per (child_pid, as_of) for every month-start as-of date and every child in the
cohort at that date (``labels.build_labels``), with the label columns, the audit columns and
the features of ``catalogue.CATALOGUE``. Features at ``as_of`` read only records dated on or
before ``as_of``; windows end at ``as_of`` and old events age out of them ("days since"
features are capped at 365 days), so no event marks a child forever. The registry attributes
(category, guardian type, disability level, sex, ethnicity, hukou) are the registry's
snapshot at export: the registry keeps no history.

The heavy work is DuckDB SQL (``queries``); as-of dates are processed in batches of
``features.dates_per_batch`` and streamed into one parquet file, so memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from src.atomic import atomic_path, write_json
from src.config import Features, Params
from src.errors import SafetynetError
from src.features import catalogue, queries
from src.features.cohort import month_starts
from src.features.labels import build_labels

log = logging.getLogger(__name__)

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
EVENT_DATES = {
    "welfare_events": "event_date",
    "school_enrollment": "event_date",
    "school_absences": "absence_date",
    "medical_events": "event_date",
    "casework_visits": "visit_date",
    "protection_events": "event_date",
}


def open_interim(interim_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per interim table (and ``truth`` when present)."""
    con = duckdb.connect()
    for table in INTERIM_TABLES:
        path = interim_dir / f"{table}.parquet"
        if not path.exists():
            raise SafetynetError(
                f"{path}: missing interim table; run `safetynet ingest` (dvc repro ingest) first"
            )
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path.as_posix()}')")
    truth = interim_dir / "truth.parquet"
    if truth.exists():
        con.execute(f"CREATE VIEW truth AS SELECT * FROM read_parquet('{truth.as_posix()}')")
    return con


def read_export_date(interim_dir: Path) -> dt.date:
    manifest = interim_dir / "manifest.json"
    try:
        return dt.date.fromisoformat(
            json.loads(manifest.read_text(encoding="utf-8"))["export_date"]
        )
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise SafetynetError(
            f"{manifest}: no valid 'export_date' ({exc}); rerun `safetynet ingest`"
        ) from None


def as_of_dates(
    con: duckdb.DuckDBPyConnection, export_date: dt.date, params: Features
) -> list[dt.date]:
    """Month starts from first_as_of (default: 12 months after the earliest record month) to last_as_of."""
    first = params.first_as_of
    if first is None:
        union = " UNION ALL ".join(
            f"SELECT MIN({col}) AS d FROM {table}" for table, col in EVENT_DATES.items()
        )
        earliest = con.sql(f"SELECT MIN(d) FROM ({union}) AS u").fetchall()[0][0]
        if earliest is None:
            raise SafetynetError(
                "interim event tables are all empty: nothing to build features from"
            )
        first = (pd.Timestamp(earliest).to_period("M") + 12).to_timestamp().date()
    last = min(params.last_as_of or export_date, export_date)
    dates = month_starts(first, last)
    if not dates:
        raise SafetynetError(
            f"params.yaml features: no month start between {first} and {last}; set first_as_of/last_as_of"
        )
    return dates


def check_windows(params: Features) -> None:
    if tuple(params.windows_days) != catalogue.WINDOWS_DAYS:
        raise SafetynetError(
            f"params.yaml features.windows_days: {list(params.windows_days)} differs from the catalogue's "
            f"{list(catalogue.WINDOWS_DAYS)}; feature names carry their window, so change "
            "src/features/catalogue.py and src/features/queries.py together with it"
        )


def prepare_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Materialise the event tables with integer child keys and DATE columns (once per run)."""
    for name, sql in queries.PREPARE.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")


def compute_features(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> pd.DataFrame:
    """Audit columns + catalogue features for each row of ``keys`` (child_pid, as_of, passthrough...).

    ``prepare_tables`` must have run on ``con``. Rows come back ordered by as_of, child_pid,
    with every column of ``keys`` kept.
    """
    passthrough = [c for c in keys.columns if c not in catalogue.KEY_COLUMNS]
    con.register("f_keys_in", keys)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE f_dates AS {queries.as_of_table_sql('f_keys_in')}"
        )
        frame = con.sql(queries.feature_query("f_keys_in", passthrough)).to_arrow_table().to_pandas()
    finally:
        con.unregister("f_keys_in")
    return cast_columns(frame, keys.dtypes.to_dict())


def cast_columns(frame: pd.DataFrame, key_dtypes: dict) -> pd.DataFrame:
    """Fixed dtypes: categoricals with the catalogue's categories, float64 numerics, str audit columns."""
    out = {
        "child_pid": frame["child_pid"].astype("str"),
        "as_of": frame["as_of"].astype("datetime64[us]"),
    }
    for col, dtype in key_dtypes.items():
        if col not in catalogue.KEY_COLUMNS:
            out[col] = frame[col].astype(dtype)
    for col in catalogue.AUDIT_COLUMNS:
        out[col] = frame[col].astype("str")
    for entry in catalogue.CATALOGUE:
        if entry.kind == "categorical":
            values = frame[entry.name].astype("str")
            unknown = set(values.unique()) - set(entry.categories)
            if unknown:
                raise SafetynetError(
                    f"feature {entry.name}: codes {sorted(unknown)} are not in the catalogue's categories; "
                    "fix the interim data or add them to src/features/catalogue.py"
                )
            out[entry.name] = pd.Categorical(values, categories=list(entry.categories))
        else:
            out[entry.name] = frame[entry.name].astype("float64")
    return pd.DataFrame(out)


def batches(dates: list[dt.date], size: int) -> list[list[dt.date]]:
    size = max(1, size)
    return [dates[i : i + size] for i in range(0, len(dates), size)]


class SummaryCounter:
    """Accumulates the summary over batches: rows per date, label rates, missing shares, truth AUC."""

    def __init__(self, rules: list[str]):
        self.rules = rules
        self.rows_per_as_of: dict[str, int] = {}
        self.missing = dict.fromkeys(catalogue.feature_names(), 0)
        self.rows = 0
        self.observed = 0
        self.positives = dict.fromkeys([*rules, "label"], 0)
        self.truth_scores: list[np.ndarray] = []
        self.truth_labels: list[np.ndarray] = []

    def add(self, frame: pd.DataFrame, truth: pd.DataFrame | None) -> None:
        counts = frame["as_of"].dt.strftime("%Y-%m-%d").value_counts()
        self.rows_per_as_of.update({k: int(v) for k, v in counts.items()})
        self.rows += len(frame)
        for name in self.missing:
            self.missing[name] += int(frame[name].isna().sum())
        observed = frame[frame["label_observed"]]
        self.observed += len(observed)
        for col in self.positives:
            self.positives[col] += int(observed[col].sum())
        if truth is not None and len(truth):
            self.truth_scores.append(truth["p_true"].to_numpy(dtype="float64"))
            self.truth_labels.append(truth["label"].to_numpy(dtype="int8"))

    def result(self, export_date: dt.date, has_truth: bool) -> dict:
        rates = {
            col: (n / self.observed if self.observed else None) for col, n in self.positives.items()
        }
        return {
            "export_date": export_date.isoformat(),
            "rows": self.rows,
            "rows_per_as_of": dict(sorted(self.rows_per_as_of.items())),
            "observed_rows": self.observed,
            "label_rates_observed": rates,
            "missing_share": {
                k: (v / self.rows if self.rows else None) for k, v in self.missing.items()
            },
            "truth_auc": self._truth_auc() if has_truth else None,
        }

    def _truth_auc(self) -> float | None:
        from sklearn.metrics import roc_auc_score

        if not self.truth_labels:
            return None
        labels = np.concatenate(self.truth_labels)
        if labels.min() == labels.max():
            return None
        return float(roc_auc_score(labels, np.concatenate(self.truth_scores)))


def truth_rows(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pd.DataFrame | None:
    """p_true beside the composite label on observed, not-already-out rows (None without truth)."""
    if "truth" not in {
        r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()
    }:
        return None
    rows = frame.loc[
        frame["label_observed"] & (frame["already_out"] == 0), ["child_pid", "as_of", "label"]
    ]
    con.register("f_truth_keys", rows)
    try:
        return con.sql(
            """SELECT t.p_true, k.label FROM f_truth_keys AS k
               JOIN truth AS t ON t.child_pid = k.child_pid AND CAST(t.as_of AS DATE) = CAST(k.as_of AS DATE)
               ORDER BY k.as_of, k.child_pid"""
        ).df()
    finally:
        con.unregister("f_truth_keys")


def build_batch(con, dates: list[dt.date], export_date: dt.date, params: Params) -> pd.DataFrame:
    """Labels for the cohort at ``dates``, then their features: the rows of features.parquet."""
    labels = build_labels(con, dates, export_date, params.label)
    frame = compute_features(con, labels)
    label_cols = [c for c in labels.columns if c not in catalogue.KEY_COLUMNS]
    order = [
        *catalogue.KEY_COLUMNS,
        *label_cols,
        *catalogue.AUDIT_COLUMNS,
        *catalogue.feature_names(),
    ]
    return frame[order]


def run(interim_dir, out_path, summary_path, params: Params) -> dict:
    """Build features.parquet and features_summary.json from the interim folder; return the summary."""
    interim_dir, out_path = Path(interim_dir), Path(out_path)
    check_windows(params.features)
    export_date = read_export_date(interim_dir)
    con = open_interim(interim_dir)
    has_truth = (interim_dir / "truth.parquet").exists()
    dates = as_of_dates(con, export_date, params.features)
    log.info("features: %d as-of dates %s .. %s", len(dates), dates[0], dates[-1])
    prepare_tables(con)
    counter = SummaryCounter(params.label.rules.enabled())
    writer, schema = None, None
    with (
        atomic_path(out_path) as tmp,
        Progress(console=Console(file=sys.stderr), transient=True) as bar,
    ):
        task = bar.add_task("features", total=len(dates))
        try:
            for batch in batches(dates, params.features.dates_per_batch):
                frame = build_batch(con, batch, export_date, params)
                counter.add(frame, truth_rows(con, frame) if has_truth else None)
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                writer.write_table(table)
                bar.advance(task, len(batch))
        finally:
            if writer is not None:
                writer.close()
    con.close()
    summary = counter.result(export_date, has_truth)
    write_json(summary_path, summary)
    log.info("features: %d rows -> %s", summary["rows"], out_path)
    return summary
