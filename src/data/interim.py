"""Ingest's outputs: interim parquet, quarantine files, per-table counts and the chunk sinks.

A sink receives each chunk's accepted and quarantined rows: `InterimSink` writes them to
data/interim/, `ExampleSink` (validate) writes nothing and keeps a few source rows per reason.

A quarantine file row says where the row is and why it failed: ``source_file``, ``source_row``
(1-based record after the header), ``child_pid`` (tables keyed by child; the keyed hash of the
child_id as typed, empty when it is empty), ``reason``, then the row's other contract columns as
typed so that an analyst can see what to fix. Raw identity (``child_id``, ``name``,
``id_number``) and the values of extra columns are never written; every cell, header cells
included, is formula-neutralised (src.spreadsheet). A raw column named like one of the first
four (welfare_events has ``reason``) is written as ``raw_<name>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa_arrow
import pyarrow.parquet as pq

from src.data import contract
from src.data.contract import DATE, INT, NUMBER, TABLES
from src.data.pseudonymise import PidKey, child_pids
from src.data.row_checks import Registry
from src.errors import SafetynetError
from src.spreadsheet import escape_controls, neutralise_formulas

IDENTITY_COLUMNS = ("child_id", "name", "id_number")
QUARANTINE_KEYS = ("source_file", "source_row", "child_pid", "reason")
EXAMPLES_PER_REASON = 5


# --------------------------------------------------------------------------- outputs


def interim_dtypes(table: str) -> dict[str, str]:
    """Pandas dtypes of data/interim/<table>.parquet (docs/architecture.md)."""
    if table == "identity":
        return {c: "str" for c in ("child_pid", *IDENTITY_COLUMNS)}
    if table == "truth":
        return {"child_pid": "str", "as_of": "datetime64[us]", "p_true": "float64"}
    kinds = {DATE: "datetime64[us]", INT: "Int64", NUMBER: "float64"}
    dtypes = {"child_pid": "str"} if _keyed_by_child(table) else {}
    for col in TABLES[table].columns:
        if col.name not in identity_columns(table):
            dtypes[col.name] = (
                "int8" if col.name in contract.CONCERNS else kinds.get(col.kind, "str")
            )
    return dtypes


def interim_schema(table: str) -> pa_arrow.Schema:
    """Arrow schema (plain `string`) carrying the pandas metadata, so readers get Int64 back."""
    empty = pd.DataFrame({c: pd.Series([], dtype=d) for c, d in interim_dtypes(table).items()})
    pandas_schema = pa_arrow.Schema.from_pandas(empty, preserve_index=False)
    fields = [
        pa_arrow.field(
            f.name, pa_arrow.string() if pa_arrow.types.is_large_string(f.type) else f.type
        )
        for f in pandas_schema
    ]
    return pa_arrow.schema(fields, metadata=pandas_schema.metadata)


def interim_table(
    accepted: pd.DataFrame, table: str, pids: pa_arrow.Array | None
) -> pa_arrow.Table:
    """Accepted parsed rows in interim form: child_pid instead of identity, contract dtypes."""
    schema = interim_schema(table)
    frame = accepted.drop(columns=[c for c in identity_columns(table) if c in accepted])
    frame = frame.reset_index(drop=True)
    for col in contract.CONCERNS:
        if col in frame:
            frame[col] = frame[col].astype("int8")
    if pids is None:
        return pa_arrow.Table.from_pandas(frame, schema=schema, preserve_index=False)
    rest = pa_arrow.schema([f for f in schema if f.name != "child_pid"])
    out = pa_arrow.Table.from_pandas(frame, schema=rest, preserve_index=False)
    return out.add_column(
        0, schema.field("child_pid"), pids.cast(pa_arrow.string())
    ).replace_schema_metadata(schema.metadata)


def quarantine_columns(table: str, raw_columns: Iterable[str]) -> list[str]:
    """The header of quarantine/<table>.csv for a file with `raw_columns`."""
    keys = [k for k in QUARANTINE_KEYS if k != "child_pid" or _keyed_by_child(table)]
    return keys + [_raw_name(c) for c in _kept_columns(table, raw_columns)]


def quarantine_frame(
    raw: pd.DataFrame, reasons: pd.Series, table: str, source_file: str, key: PidKey
) -> pd.DataFrame:
    """Quarantined raw text rows as written to quarantine/<table>.csv (module docstring)."""
    out = {"source_file": np.full(len(raw), source_file, dtype=object)}
    out["source_row"] = raw.index.to_numpy()
    if _keyed_by_child(table):
        out["child_pid"] = quarantine_pids(raw["child_id"], key)
    out["reason"] = reasons.to_numpy()
    for col in _kept_columns(table, raw.columns):
        out[_raw_name(col)] = raw[col].to_numpy()
    frame = pd.DataFrame(out).apply(escape_controls).apply(neutralise_formulas)
    frame.columns = neutralise_formulas(pd.Series(frame.columns, dtype=str)).tolist()
    return frame


def quarantine_pids(child_ids: pd.Series, key: PidKey) -> np.ndarray:
    """child_pid of each id as typed; "" for an empty id."""
    pids = np.full(len(child_ids), "", dtype=object)
    typed = child_ids.fillna("").astype(str).ne("").to_numpy()
    if typed.any():
        pids[typed] = child_pids(child_ids[typed].astype(str), key.key)
    return pids


def _keyed_by_child(table: str) -> bool:
    return "child_id" in TABLES[table].column_names


def identity_columns(table: str) -> tuple[str, ...]:
    """The columns moved to identity.parquet: child identity, for tables keyed by child. A
    lookup (no child) keeps its names in its own interim file, read only by the watchlists."""
    return IDENTITY_COLUMNS if _keyed_by_child(table) else ()


def _kept_columns(table: str, raw_columns: Iterable[str]) -> list[str]:
    withheld = set(IDENTITY_COLUMNS) | {c.name for c in TABLES[table].columns if c.personal}
    known = set(TABLES[table].column_names) - withheld
    return [c for c in raw_columns if c in known]


def _raw_name(column: str) -> str:
    return f"raw_{column}" if column in QUARANTINE_KEYS else column


# --------------------------------------------------------------------------- counting


@dataclass
class TableCounts:
    rows_read: int = 0
    rows_accepted: int = 0
    duplicates_collapsed: int = 0
    by_reason: Counter = field(default_factory=Counter)

    def add(self, n_read: int, n_duplicates: int, reasons: pd.Series) -> None:
        self.rows_read += n_read
        self.duplicates_collapsed += n_duplicates
        self.rows_accepted += int(reasons.isna().sum())
        self.by_reason.update(reasons.dropna().value_counts().to_dict())

    @property
    def rows_quarantined(self) -> int:
        return sum(self.by_reason.values())

    def check_reconciles(self, table: str) -> None:
        """rows read = accepted + quarantined + duplicates, or the stage is wrong and must stop."""
        total = self.rows_accepted + self.rows_quarantined + self.duplicates_collapsed
        if self.rows_read != total:
            raise RuntimeError(f"{table}: {self.rows_read} rows read but {total} accounted for")

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": {
                "total": self.rows_quarantined,
                "by_reason": dict(sorted(self.by_reason.items())),
            },
            "duplicates_collapsed": self.duplicates_collapsed,
        }


# --------------------------------------------------------------------------- sinks


class InterimSink:
    """Writes accepted rows to parquet and quarantined rows to CSV, chunk by chunk."""

    def __init__(
        self, out_dir: Path, table: str, raw_columns: Iterable[str], source_file: str, key: PidKey
    ) -> None:
        self.table, self.source_file, self.key = table, source_file, key
        self.path = out_dir / f"{table}.parquet"
        self.writer = pq.ParquetWriter(self.path, interim_schema(table), compression="zstd")
        quarantine_dir = out_dir / "quarantine"
        quarantine_dir.mkdir(exist_ok=True)
        self.quarantine = (quarantine_dir / f"{table}.csv").open(
            "w", encoding="utf-8-sig", newline=""
        )
        header = quarantine_columns(table, raw_columns)
        pd.DataFrame(columns=neutralise_formulas(pd.Series(header, dtype=str)).tolist()).to_csv(
            self.quarantine, index=False, lineterminator="\n"
        )

    def accept(self, accepted: pd.DataFrame, pids: pa_arrow.Array | None) -> None:
        self.writer.write_table(interim_table(accepted, self.table, pids))

    def reject(self, raw: pd.DataFrame, reasons: pd.Series) -> None:
        if len(raw):
            quarantine_frame(raw, reasons, self.table, self.source_file, self.key).to_csv(
                self.quarantine, index=False, header=False, lineterminator="\n"
            )

    def close(self) -> None:
        self.writer.close()
        self.quarantine.close()


class ExampleSink:
    """Writes nothing; keeps the first few source rows per reason for validate_export."""

    def __init__(self) -> None:
        self.examples: dict[str, list[int]] = {}

    def accept(self, accepted: pd.DataFrame, pids: pa_arrow.Array | None) -> None:
        pass

    def reject(self, raw: pd.DataFrame, reasons: pd.Series) -> None:
        for reason, rows in reasons.groupby(reasons, sort=False).groups.items():
            kept = self.examples.setdefault(reason, [])
            kept.extend(int(r) for r in rows[: EXAMPLES_PER_REASON - len(kept)])

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- truth and manifest


def write_truth(path: Path, out: Path, registry: Registry, key: PidKey) -> int | None:
    """Generator truth with child_pid instead of child_id (only tests and benchmarks read it)."""
    if not path.is_file():
        return None
    source = pq.ParquetFile(path)
    missing = [c for c in ("child_id", "as_of", "p_true") if c not in source.schema_arrow.names]
    if missing:
        raise SafetynetError(
            f"{path}: column '{missing[0]}' missing; fix: regenerate the synthetic data"
        )
    rows = 0
    with pq.ParquetWriter(
        out / "truth.parquet", interim_schema("truth"), compression="zstd"
    ) as writer:
        for batch in source.iter_batches(
            batch_size=1 << 21, columns=["child_id", "as_of", "p_true"]
        ):
            ids = batch.column("child_id").to_pandas().astype(str)
            truth = pa_arrow.table(
                {
                    "child_pid": _pids_for_any(ids, registry, key),
                    "as_of": batch.column("as_of").cast(pa_arrow.timestamp("us")),
                    "p_true": batch.column("p_true").cast(pa_arrow.float64()),
                },
                schema=interim_schema("truth"),
            )
            writer.write_table(truth)
            rows += truth.num_rows
    return rows


def _pids_for_any(ids: pd.Series, registry: Registry, key: PidKey) -> pa_arrow.Array:
    """Registry pids, hashing directly the (rare) ids outside the accepted registry."""
    pos = registry.positions(ids)
    if (pos >= 0).all():
        return registry.pids.take(pos)
    pids = np.asarray(child_pids(ids, key.key), dtype=object)
    return pa_arrow.array(pids, type=pa_arrow.string())


def write_manifest(out: Path, export_date: dt.date, key: PidKey) -> dict:
    """manifest.json: export date, pid key status, rows and sha256 of every interim parquet."""
    files = sorted(out.glob("*.parquet"))
    manifest = {
        "export_date": export_date.isoformat(),
        "pid_key": key.status,
        "rows": {p.stem: pq.ParquetFile(p).metadata.num_rows for p in files},
        "sha256": {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest
