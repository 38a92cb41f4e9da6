"""Generated rows -> contract tables (Arrow), injected defects, and CSV/Parquet files."""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

DEFECT_KINDS = (
    "duplicate",
    "unknown_code",
    "malformed_date",
    "future_date",
    "unknown_child",
    "negative_amount",
    "missing_required",
)
# Per table: the column each defect kind spoils (None = not applicable to that table).
DEFECT_COLUMNS = {
    "welfare_events": {
        "unknown_code": "event_type",
        "malformed_date": "event_date",
        "future_date": "event_date",
        "unknown_child": "child_id",
        "negative_amount": "amount_cny",
        "missing_required": "benefit",
    },
    "school_enrollment": {
        "unknown_code": "event_type",
        "malformed_date": "event_date",
        "future_date": "event_date",
        "unknown_child": "child_id",
        "missing_required": "school_id",
    },
    "school_absences": {
        "unknown_code": "absence_type",
        "malformed_date": "absence_date",
        "future_date": "absence_date",
        "unknown_child": "child_id",
        "missing_required": "absence_type",
    },
    "medical_events": {
        "unknown_code": "event_type",
        "malformed_date": "event_date",
        "future_date": "event_date",
        "unknown_child": "child_id",
        "negative_amount": "cost_cny",
        "missing_required": "event_type",
    },
    "casework_visits": {
        "unknown_code": "mode",
        "malformed_date": "visit_date",
        "future_date": "visit_date",
        "unknown_child": "child_id",
        "missing_required": "mode",
    },
    "protection_events": {
        "unknown_code": "event_type",
        "malformed_date": "event_date",
        "future_date": "event_date",
        "unknown_child": "child_id",
        "missing_required": "event_type",
    },
    "children": {
        "unknown_code": "category",
        "malformed_date": "birth_date",
        "future_date": "registered_date",
        "missing_required": "hukou",
    },
    "registry_history": {
        "unknown_code": "field",
        "malformed_date": "change_date",
        "future_date": "change_date",
        "unknown_child": "child_id",
        "missing_required": "new_value",
    },
    "persons": {  # other departments' persons (issue 17): no child_id, so no unknown_child
        "unknown_code": "sex",
        "malformed_date": "birth_date",
        "future_date": "birth_date",
        "missing_required": "name",
    },
    "department_events": {
        "unknown_code": "event_type",
        "malformed_date": "event_date",
        "future_date": "event_date",
        "negative_amount": "amount_cny",
        "missing_required": "event_type",
    },
    "school_calendar": {},  # a lost school day would shift dropout streaks: duplicates only
    "caseworkers": {},  # the name lookups: duplicates only
    "communities": {},
    "service_providers": {},  # the service directory: duplicates only
    "casework_reviews": {},  # reviews (none generated yet): duplicates only
}
MALFORMED_DATES = ("2024/13/45", "n/a", "2024-02-30", "31.12.2024", "20240115")
FUTURE_YEARS = (2090, 2099)  # far beyond any run date, so they never move the export date


def codes(values: np.ndarray, names: tuple) -> pa.Array:
    """Integer codes (-1 = missing) -> dictionary array over the contract's code list."""
    values = np.asarray(values, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(values, mask=values < 0), pa.array(list(names)))


def labels(values: np.ndarray, names: np.ndarray) -> pa.Array:
    """Integer indices into an array of strings (ids, schools) -> dictionary array."""
    values = np.asarray(values, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(values, mask=values < 0), pa.array(names.tolist())
    )


def dates(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype="datetime64[D]"))


def numbers(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.float64), from_pandas=True)


def integers(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.int64)
    return pa.array(values, mask=values < 0, type=pa.int8())


def inject_defects(
    table: pa.Table,
    name: str,
    shares: dict[str, float],
    eligible: dict[str, np.ndarray],
    rng,
    base_rows: int,
) -> tuple[pa.Table, pa.Table, list[dict]]:
    """Pick disjoint rows per defect kind; return (clean rows, defect rows as text, manifest).

    Counts are round(share x base_rows); kinds that get no row are not listed. Defect rows are
    written after the clean rows, kind by kind, so each kind is a contiguous block of data rows
    (0-based, header excluded). Every defect row carries exactly one fault and differs from every
    other row, so ingest quarantines it with the listed reason (or collapses it, for duplicates):
    a duplicated row stays clean, and no two spoiled rows are alike. With `eligible["copies"]`
    the spoiled rows are extra copies and the originals stay clean (for tables whose rows all
    change a status, e.g. school_enrollment).
    """
    used = np.zeros(table.num_rows, dtype=bool)
    spoiled, blocks, manifest, first_row = [], [], [], 0
    copies = bool(eligible.get("copies", False))
    for kind in DEFECT_KINDS:
        column = DEFECT_COLUMNS[name].get(kind, "*" if kind == "duplicate" else None)
        if column is None or shares.get(kind, 0.0) <= 0:
            continue
        pool = eligible.get(kind, eligible["default"]) & ~used
        count = min(int(round(shares[kind] * base_rows)), int(pool.sum()))
        if count == 0:
            continue
        rows, block = _distinct_defect_rows(table, kind, column, pool, count, rng)
        count = len(rows)
        used[rows] = True  # a duplicated row must stay clean, or its copy is no duplicate
        if kind != "duplicate" and not copies:
            spoiled.append(rows)
        blocks.append(block)
        manifest.append(_manifest_entry(kind, column, count, first_row))
        first_row += count
    keep = np.ones(table.num_rows, dtype=bool)
    keep[np.concatenate(spoiled) if spoiled else np.zeros(0, dtype=np.int64)] = False
    clean = table.filter(pa.array(keep))
    for entry in manifest:
        entry["first_row"] += clean.num_rows
    defects = pa.concat_tables(blocks) if blocks else as_text(table.slice(0, 0))
    return clean, defects, manifest


def _distinct_defect_rows(
    table: pa.Table, kind: str, column: str, pool: np.ndarray, count: int, rng
) -> tuple[np.ndarray, pa.Table]:
    """`count` rows from `pool`, spoiled, none identical to another (ingest would collapse it).

    Two rows can become alike once spoiled (same child and values, only the spoiled column
    differed). Such rows go back to the pool's excluded set and the draw is repeated.
    """
    pool = pool.copy()
    while True:
        rows = np.sort(rng.choice(np.flatnonzero(pool), size=count, replace=False))
        block = spoil(as_text(table.take(rows)), kind, column, rng)
        alike = block.to_pandas().fillna("").duplicated().to_numpy()
        if not alike.any():
            return rows, block
        pool[rows[alike]] = False
        count = min(count, int(pool.sum()))


def _manifest_entry(kind: str, column: str, count: int, first_row: int) -> dict:
    reason = {
        "duplicate": "duplicate",
        "unknown_child": "unknown_child",
        "negative_amount": f"out_of_range:{column}",
        "missing_required": f"missing_required:{column}",
        "unknown_code": f"unknown_code:{column}",
        "future_date": f"beyond_export_date:{column}",
        "malformed_date": f"malformed_date:{column}",
    }[kind]
    return {
        "kind": kind,
        "column": None if column == "*" else column,
        "reason": reason,
        "count": count,
        "first_row": first_row,
    }


def as_text(table: pa.Table) -> pa.Table:
    """Every column as plain text, the way a CSV reader sees it."""
    return pa.table({f.name: table[f.name].cast(pa.string()) for f in table.schema})


def spoil(text: pa.Table, kind: str, column: str, rng) -> pa.Table:
    """Apply one defect kind to every row of a text table."""
    n = text.num_rows
    if kind == "duplicate" or n == 0:
        return text
    if kind == "unknown_code":
        value = pa.array(["not_a_code"] * n)
    elif kind == "malformed_date":
        value = pa.array([MALFORMED_DATES[i % len(MALFORMED_DATES)] for i in range(n)])
    elif kind == "future_date":
        years = rng.integers(FUTURE_YEARS[0], FUTURE_YEARS[1] + 1, size=n)
        value = pa.array([f"{y}-0{1 + i % 9}-15" for i, y in enumerate(years)])
    elif kind == "unknown_child":
        value = pa.array([f"U{v:08d}" for v in rng.integers(0, 10**8, size=n)])
    elif kind == "negative_amount":
        value = pa.array(["-" + v for v in text[column].to_pylist()])
        if "out_of_pocket_cny" in text.column_names:  # keep the row's only fault the negative cost
            text = text.set_column(
                text.column_names.index("out_of_pocket_cny"),
                "out_of_pocket_cny",
                pa.nulls(n, pa.string()),
            )
    else:  # missing_required
        value = pa.nulls(n, pa.string())
    return text.set_column(text.column_names.index(column), column, value)


class _Transcoder:
    """A binary sink that re-encodes Arrow's UTF-8 output (chunk boundaries may split characters)."""

    def __init__(self, raw, encoding: str):
        self.raw, self.encoding = raw, encoding
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def write(self, data) -> int:
        self.raw.write(self.decoder.decode(bytes(data)).encode(self.encoding))
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    @property
    def closed(self) -> bool:
        return False


def write_table(
    path: Path, clean: pa.Table, defects: pa.Table, file_format: str, encoding: str
) -> Path:
    """Write `<path>.csv` or `.parquet`: clean rows then defect rows; return the file written."""
    if file_format == "parquet":
        target = path.with_suffix(".parquet")
        pq.write_table(pa.concat_tables([as_text(clean), defects]), target, compression="zstd")
        return target
    target = path.with_suffix(".csv")
    options = pa_csv.WriteOptions(quoting_style="all_valid", batch_size=100_000)
    with open(target, "wb") as raw:
        sink = raw if encoding == "utf-8" else _Transcoder(raw, encoding)
        pa_csv.write_csv(clean, sink, options)
        if defects.num_rows:
            tail = pa_csv.WriteOptions(quoting_style="all_valid", include_header=False)
            pa_csv.write_csv(defects, sink, tail)
    return target
