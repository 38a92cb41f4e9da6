"""Tiny interim tables for the feature tests, registered on an in-memory DuckDB connection.

Each table takes a list of dicts; missing columns are filled with nulls, dates are ISO strings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from src.data.contract import default_school_calendar
from src.features import features
from src.features.engine import SparkEngine

COLUMNS = {
    "children": {
        "child_pid": "str",
        "sex": "str",
        "birth_date": "datetime64[us]",
        "ethnicity": "str",
        "hukou": "str",
        "county_code": "str",
        "community_code": "str",
        "caseworker_id": "str",
        "category": "str",
        "disability_level": "Int64",
        "guardian_type": "str",
        "registered_date": "datetime64[us]",
    },
    "welfare_events": {
        "child_pid": "str",
        "event_date": "datetime64[us]",
        "event_type": "str",
        "benefit": "str",
        "amount_cny": "float64",
        "reason": "str",
    },
    "school_calendar": {"date": "datetime64[us]"},
    "school_enrollment": {
        "child_pid": "str",
        "event_date": "datetime64[us]",
        "school_id": "str",
        "event_type": "str",
        "school_type": "str",
        "grade": "Int64",
    },
    "school_absences": {
        "child_pid": "str",
        "absence_date": "datetime64[us]",
        "school_id": "str",
        "absence_type": "str",
        "days": "float64",
    },
    "medical_events": {
        "child_pid": "str",
        "event_date": "datetime64[us]",
        "event_type": "str",
        "diagnosis_group": "str",
        "cost_cny": "float64",
        "out_of_pocket_cny": "float64",
    },
    "casework_visits": {
        "child_pid": "str",
        "visit_date": "datetime64[us]",
        "caseworker_id": "str",
        "mode": "str",
        **{
            f"concern_{c}": "int8"
            for c in (
                "basic_needs",
                "health",
                "education",
                "mental_health",
                "safety",
                "guardianship",
            )
        },
    },
    "protection_events": {"child_pid": "str", "event_date": "datetime64[us]", "event_type": "str"},
    "registry_history": {
        "child_pid": "str",
        "field": "str",
        "old_value": "str",
        "new_value": "str",
        "change_date": "datetime64[us]",
    },
}


def child(pid: str = "a", **values) -> dict:
    row = {
        "child_pid": pid,
        "sex": "f",
        "birth_date": "2012-05-05",
        "ethnicity": "han",
        "hukou": "rural",
        "county_code": "110101",
        "community_code": "c1",
        "caseworker_id": "w1",
        "category": "low_income",
        "disability_level": 0,
        "guardian_type": "grandparents",
        "registered_date": "2020-01-01",
    }
    return {**row, **values}


def visit(pid: str, date: str, **concerns: int) -> dict:
    row = {"child_pid": pid, "visit_date": date, "mode": "home"}
    for name in COLUMNS["casework_visits"]:
        if name.startswith("concern_"):
            row[name] = concerns.get(name.removeprefix("concern_"), 0)
    return row


def frame(table: str, rows: list[dict]) -> pd.DataFrame:
    columns = COLUMNS[table]
    out = (
        pd.DataFrame.from_records(rows, columns=list(columns))
        if rows
        else pd.DataFrame(columns=list(columns))
    )
    for col, dtype in columns.items():
        if dtype.startswith("datetime"):
            out[col] = pd.to_datetime(out[col]).astype(dtype)
        elif dtype == "str":
            out[col] = out[col].astype("object").where(out[col].notna(), None)
        else:
            out[col] = out[col].astype(dtype)
    return out


# A pid outside the registry: its rows move the history start and no child's features.
EXPORT_MARKER = "_export_"
HISTORY_FROM = "2021-01-01"


def history_rows(day: str) -> dict[str, list[dict]]:
    """One row dated ``day`` in each history table, for no registered child: "the export
    records from ``day`` on" (the history start is that month's first day)."""
    return {
        "welfare_events": [
            {"child_pid": EXPORT_MARKER, "event_date": day, "event_type": "payment",
             "benefit": "dibao", "amount_cny": 500.0}
        ],
        "school_absences": [
            {"child_pid": EXPORT_MARKER, "absence_date": day, "absence_type": "excused", "days": 1.0}
        ],
        "medical_events": [
            {"child_pid": EXPORT_MARKER, "event_date": day, "event_type": "outpatient"}
        ],
        "casework_visits": [visit(EXPORT_MARKER, day)],
    }  # fmt: skip


def tables(history_from: str | None = HISTORY_FROM, **rows: list[dict]) -> dict[str, pd.DataFrame]:
    """Every interim table (empty unless given); the default contract calendar for 2021-2025.

    ``history_from``: every history table also holds a row of no registered child on that
    day, so the export's history starts that month (None: the given rows decide it).
    """
    if history_from is not None:
        marks = history_rows(history_from)
        rows = {**rows, **{t: [*rows.get(t, []), *marks[t]] for t in marks}}
    out = {name: frame(name, rows.get(name, [])) for name in COLUMNS if name != "school_calendar"}
    calendar = rows.get("school_calendar")
    if calendar is None or (not isinstance(calendar, pd.DataFrame) and not calendar):
        calendar = default_school_calendar(dt.date(2021, 1, 1), dt.date(2025, 12, 31))
    out["school_calendar"] = calendar
    if not isinstance(out["school_calendar"], pd.DataFrame):
        out["school_calendar"] = frame("school_calendar", out["school_calendar"])
    return out


def connect(data: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in data.items():
        con.register(f"_{name}_frame", table)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}_frame")
    return con


ARROW_TYPES = {"str": pa.string(), "datetime64[us]": pa.timestamp("us"), "float64": pa.float64(),
               "Int64": pa.int64(), "int8": pa.int8()}  # fmt: skip


def spark_engine(session, data: dict[str, pd.DataFrame], folder: Path) -> SparkEngine:
    """The tables as Parquet files in ``folder`` (typed: an all-null column keeps its type),
    attached to a Spark engine as the features stage attaches the interim folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in data.items():
        types = COLUMNS[name]
        dates = {c: t for c, t in types.items() if t.startswith("datetime")}
        arrow = pa.Table.from_pandas(
            table.astype(dates), preserve_index=False,
            schema=pa.schema([(c, ARROW_TYPES[t]) for c, t in types.items()]),
        )  # fmt: skip
        pq.write_table(arrow, folder / f"{name}.parquet")
    return features.attach_interim(SparkEngine(session), folder.absolute())


def features_at(
    data: dict[str, pd.DataFrame], as_of: str, pids: list[str] | None = None, engine=None
) -> pd.DataFrame:
    """Features of the given children (default: all) at one as-of date, indexed by child_pid;
    on ``engine`` over ``data`` (``spark_engine``) or, by default, on DuckDB."""
    con = engine if engine is not None else connect(data)
    features.prepare_tables(con)
    pids = pids if pids is not None else list(data["children"]["child_pid"])
    keys = pd.DataFrame({"child_pid": pids, "as_of": pd.Timestamp(as_of)}).astype(
        {"as_of": "datetime64[us]"}
    )
    out = features.compute_features(con, keys)
    con.close()
    return out.set_index("child_pid")
