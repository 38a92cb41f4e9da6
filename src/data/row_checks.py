"""Row checks shared by ingest and validate: raw text rows -> typed values + one quarantine reason.

A quarantined row gets the FIRST reason that applies, in this fixed order
(`reason_order`), so that counts by reason add up to the quarantined total:

1. parse failures, by column in contract order: ``malformed_date:<col>``, ``malformed_number:<col>``
2. column checks, by column in contract order, each column's checks in the order
   ``missing_required, unknown_code, invalid_format, out_of_range, implausible_amount,
   beyond_export_date, date_before_1990``
3. row rules of the contract (``ROW_RULES`` order), e.g. ``amount_required:amount_cny``,
   ``before_birth:registered_date``
4. cross-table checks: ``duplicate_child_id`` (children), then ``unknown_child``,
   ``child_quarantined`` and ``before_birth:<date column>`` (event tables); for the lookups
   (a table with a ``key``), ``duplicate_id:<key>`` (``overlapping_duplicate:<key>`` for a table
   with a validity period) then ``not_in_children:<column>``
5. registry_history only, over the whole table (``chain_failures``): the changes of one child's
   field, in date order, must link up (each ``old_value`` the previous ``new_value``, no two on
   one day): else every change of that chain is ``inconsistent_chain:old_value``; the last
   ``new_value`` must be the value the children table exports: else
   ``inconsistent_chain:new_value``. A value outside its field's codes is
   ``unknown_code:old_value`` / ``unknown_code:new_value`` (``history_value_failures``).

Values are read as text first. Empty (or all-blank) values are missing. Codes, dates and
numbers are stripped of surrounding blanks; ids and free text are kept as typed.

Exact duplicate rows are collapsed before any check (`DuplicateFilter`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from src.data import contract
from src.data.contract import (
    DATE,
    INT,
    NUMBER,
    REGISTRY_HISTORY,
    REGISTRY_HISTORY_FIELDS,
    ROW_RULES,
    TABLES,
    build_schema,
)

COLUMN_CHECKS = (
    "missing_required",
    "unknown_code",
    "invalid_format",
    "out_of_range",
    "implausible_amount",
    "beyond_export_date",
    "date_before_1990",
)
EVENT_TABLES = tuple(
    t for t, s in TABLES.items() if "child_id" in s.column_names and t != "children"
)
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


# --------------------------------------------------------------------------- parsing


def reason_order(table: str) -> list[str]:
    """Every reason a row of `table` can get, first-wins order (see module docstring)."""
    spec = TABLES[table]
    order = [
        f"malformed_{'date' if c.kind == DATE else 'number'}:{c.name}"
        for c in spec.columns
        if c.kind in (DATE, INT, NUMBER)
    ]
    order += [f"{check}:{c.name}" for c in spec.columns for check in COLUMN_CHECKS]
    order += [f"{name}:{column}" for name, (column, _) in ROW_RULES.get(table, {}).items()]
    if table == "children":
        order.append("duplicate_child_id")
    elif "child_id" in spec.column_names:
        order += ["unknown_child", "child_quarantined", f"before_birth:{spec.date_column}"]
    if table == REGISTRY_HISTORY:
        order += list(CHAIN_REASONS)
    if spec.key is not None:
        order.append(f"{'overlapping_duplicate' if spec.period else 'duplicate_id'}:{spec.key}")
        order += [f"not_in_children:{c.name}" for c in spec.columns if c.registry_column]
    return order


def parse_text(raw: pd.DataFrame, table: str) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Text columns -> contract dtypes, plus a mask of malformed values per parse reason.

    Optional columns absent from the file become all-missing columns.
    """
    parsed, malformed = {}, {}
    for col in TABLES[table].columns:
        text = raw[col.name] if col.name in raw else pd.Series("", index=raw.index, dtype=str)
        if col.kind in (DATE, INT, NUMBER):
            stripped = text.str.strip()
            blank = stripped.eq("")
            values, ok = (parse_dates if col.kind == DATE else parse_numbers)(
                stripped, col.kind == INT
            )
            malformed[f"malformed_{'date' if col.kind == DATE else 'number'}:{col.name}"] = (
                ~blank & ~ok
            )
            parsed[col.name] = values
        else:
            value = text.str.strip() if col.kind == contract.CODE else text
            parsed[col.name] = value.where(text.str.strip().ne(""))
    return pd.DataFrame(parsed, index=raw.index), malformed


def parse_dates(text: pd.Series, _integer: bool = False) -> tuple[pd.Series, pd.Series]:
    """Strict YYYY-MM-DD: a real calendar date written with exactly that shape."""
    arr = _arrow_text(text)
    shaped = pc.if_else(pc.match_substring_regex(arr, DATE_PATTERN), arr, None)
    try:  # fast path: arrow's ISO cast, which fails as a whole on any impossible date
        days = (
            shaped.cast(pa_arrow.date32())
            .cast(pa_arrow.timestamp("us"))
            .to_numpy(zero_copy_only=False)
        )
        values = pd.Series(days, index=text.index, dtype="datetime64[us]")
    except pa_arrow.ArrowInvalid:  # e.g. 2024-02-30 somewhere in the chunk: pandas per value
        # positional: to_pandas() has a 0-based index, text.index is source_row (1-based)
        shaped_text = pd.Series(shaped.to_pandas().to_numpy(), index=text.index, dtype=str)
        values = pd.to_datetime(shaped_text, format="%Y-%m-%d", errors="coerce").astype(
            "datetime64[us]"
        )
    return values, values.notna()


def parse_numbers(text: pd.Series, integer: bool) -> tuple[pd.Series, pd.Series]:
    """Finite decimal numbers (1, -2.5, 1e3); for integer columns also a whole value ("3", "3.0")."""
    arr = _arrow_text(text)
    shaped = pc.if_else(pc.match_substring_regex(arr, NUMBER_PATTERN), arr, None)
    values = pd.Series(
        pc.cast(shaped, pa_arrow.float64()).to_numpy(zero_copy_only=False), index=text.index
    )
    ok = np.isfinite(values)
    if integer:
        ok &= values.eq(np.floor(values))
        return values.where(ok).round().astype("Int64"), ok
    return values.where(ok), ok


def _arrow_text(text: pd.Series) -> pa_arrow.Array:
    arr = pa_arrow.array(text, type=pa_arrow.large_string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa_arrow.ChunkedArray) else arr


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Registry:
    """The accepted children (id -> pid by position) and the ids whose rows were quarantined.

    Arrow hash look-ups: a million ids cost ~50 ms per chunk, without copying to Python objects.
    """

    ids: pa_arrow.Array
    pids: pa_arrow.Array
    quarantined: pa_arrow.Array
    birth_dates: np.ndarray | None = None  # datetime64[us] by position, for before_birth
    # exported value of each REGISTRY_HISTORY_FIELDS field as text, by position (chain ends)
    exported: dict[str, np.ndarray] | None = None
    # accepted values of the children columns the lookups refer to (contract.REGISTRY_REFERENCES)
    values: dict[str, pa_arrow.Array] = dataclass_field(default_factory=dict)

    @classmethod
    def build(cls, ids, pids, quarantined=(), birth_dates=None, exported=None, values=None) -> Registry:
        def as_text(v):
            return pa_arrow.array(np.asarray(v, dtype=object), type=pa_arrow.large_string())  # noqa: E731

        births = None if birth_dates is None else np.asarray(birth_dates, dtype="datetime64[us]")
        return cls(
            as_text(ids),
            pa_arrow.array(np.asarray(pids, dtype=object), type=pa_arrow.string()),
            as_text(quarantined),
            births,
            exported,
            {c: as_text(pd.unique(pd.Series(v).dropna())) for c, v in (values or {}).items()},
        )

    def positions(self, child_ids: pd.Series) -> np.ndarray:
        """Row of each id in the registry, -1 when absent."""
        found = pc.index_in(_arrow_text(child_ids), value_set=self.ids)
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False)

    def is_quarantined(self, child_ids: pd.Series) -> np.ndarray:
        return pc.is_in(_arrow_text(child_ids), value_set=self.quarantined).to_numpy(
            zero_copy_only=False
        )


def contract_failures(
    parsed: pd.DataFrame, table: str, export_date: dt.date
) -> dict[str, pd.Index]:
    """Source rows failing each pandera check of the contract, keyed by `<check>:<column>`."""
    try:
        build_schema(table, export_date).validate(parsed, lazy=True)
        return {}
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    column_level = cases["schema_context"].eq("Column")
    reasons = np.where(
        column_level, cases["check"] + ":" + cases["column"].astype(str), cases["check"]
    )
    known = set(reason_order(table))
    unknown = sorted(set(reasons) - known)
    if unknown:  # a dtype or column failure: our own parsing is broken, not the data
        raise RuntimeError(f"{table}: unexpected schema failure {unknown[0]}")
    found = pd.DataFrame({"reason": reasons, "row": cases["index"].to_numpy()})
    return {r: pd.Index(rows.unique()) for r, rows in found.groupby("reason")["row"]}


def cross_table_failures(parsed: pd.DataFrame, table: str, registry: Registry | None) -> dict:
    """duplicate_child_id within the registry; unknown_child / child_quarantined for events."""
    ids = parsed["child_id"]
    if table == "children":
        return {"duplicate_child_id": ids.notna() & ids.duplicated(keep=False)}
    if registry is None or "child_id" not in parsed:
        return {}
    positions = registry.positions(ids)
    known = positions >= 0
    quarantined = registry.is_quarantined(ids)
    failures = {
        "unknown_child": ids.notna() & ~known & ~quarantined,
        "child_quarantined": ids.notna() & quarantined,
    }
    if registry.birth_dates is not None and len(registry.birth_dates):
        date_column = TABLES[table].date_column
        births = registry.birth_dates[np.where(known, positions, 0)]
        before = known & (parsed[date_column].to_numpy() < births)  # NaT compares False
        failures[f"before_birth:{date_column}"] = pd.Series(before, index=parsed.index)
    return failures


def lookup_failures(parsed: pd.DataFrame, table: str, registry: Registry | None) -> dict:
    """A lookup's duplicate_id:<key> (every row of a repeated key: which is the truth?) and
    not_in_children:<column> (a value the accepted registry does not hold)."""
    spec = TABLES[table]
    keys = parsed[spec.key]
    if spec.period:
        failures = {f"overlapping_duplicate:{spec.key}": overlapping(parsed, spec.key, spec.period)}
    else:
        failures = {f"duplicate_id:{spec.key}": keys.notna() & keys.duplicated(keep=False)}
    for col in spec.columns:
        if col.registry_column and registry is not None and col.registry_column in registry.values:
            values = parsed[col.name]
            known = pc.is_in(_arrow_text(values.fillna("")), value_set=registry.values[col.registry_column])
            failures[f"not_in_children:{col.name}"] = values.notna() & ~pd.Series(
                known.to_numpy(zero_copy_only=False), index=parsed.index
            )
    return failures


def overlapping(parsed: pd.DataFrame, key: str, period: tuple[str, str]) -> pd.Series:
    """Rows whose key repeats with an overlapping (from, to) period, both ends inclusive and a
    missing end open; every row of an overlapping pair is flagged (which one is the truth?)."""
    start, end = (parsed[c].astype("datetime64[us]") for c in period)
    frame = pd.DataFrame({"key": parsed[key], "start": start.fillna(pd.Timestamp.min),
                          "end": end.fillna(pd.Timestamp.max), "row": np.arange(len(parsed))})  # fmt: skip
    frame = frame[frame["key"].notna() & frame["key"].duplicated(keep=False)]
    pairs = frame.merge(frame, on="key")
    pairs = pairs[(pairs["row_x"] != pairs["row_y"]) & (pairs["start_x"] <= pairs["end_y"])
                  & (pairs["start_y"] <= pairs["end_x"])]  # fmt: skip
    return pd.Series(np.isin(np.arange(len(parsed)), pairs["row_x"].to_numpy()), index=parsed.index)


def first_reasons(index: pd.Index, failures: dict, order: list[str]) -> pd.Series:
    """One reason per row: the first failing one in `order` (missing = valid)."""
    reasons = pd.Series(pd.NA, index=index, dtype="str")
    for reason in order:
        if reason not in failures:
            continue
        hit = failures[reason]
        mask = hit.to_numpy(bool) if isinstance(hit, pd.Series) else index.isin(hit)
        reasons = reasons.mask(mask & reasons.isna().to_numpy(), reason)
    return reasons


def validate_rows(
    raw: pd.DataFrame, table: str, export_date: dt.date, registry: Registry | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Parsed values and the quarantine reason of each raw text row (missing = accepted)."""
    parsed, failures = parse_text(raw, table)
    failures |= contract_failures(parsed, table, export_date)
    if table == REGISTRY_HISTORY:
        failures |= history_value_failures(parsed)
    if "child_id" in parsed:
        failures |= cross_table_failures(parsed, table, registry)
    if TABLES[table].key is not None:
        failures |= lookup_failures(parsed, table, registry)
    return parsed, first_reasons(raw.index, failures, reason_order(table))


# --------------------------------------------------------------------------- registry history

CHAIN_REASONS = ("inconsistent_chain:old_value", "inconsistent_chain:new_value")


def history_value_failures(parsed: pd.DataFrame) -> dict[str, pd.Series]:
    """old_value / new_value outside the codes of the row's field (an unknown field: not here)."""
    failures = {}
    for column in ("old_value", "new_value"):
        bad = pd.Series(False, index=parsed.index)
        for field, codes in REGISTRY_HISTORY_FIELDS.items():
            bad |= parsed["field"].eq(field) & parsed[column].notna() & ~parsed[column].isin(codes)
        failures[f"unknown_code:{column}"] = bad
    return failures


def chain_failures(
    parsed: pd.DataFrame, valid: np.ndarray, registry: Registry | None
) -> dict[str, pd.Series]:
    """Chains of registry changes (one child's field) that do not link up, among `valid` rows.

    Sorted by change_date (then source row), each old_value must be the previous new_value and
    no two changes may share a day (their order is unknown); the last new_value must be the
    children table's exported value. A broken chain is quarantined whole: which of its
    changes is wrong cannot be told, and a partial chain would misdate the others.
    """
    rows = parsed.loc[valid, ["child_id", "field", "old_value", "new_value", "change_date"]]
    rows = rows.assign(row_no=rows.index.to_numpy()).sort_values(
        ["child_id", "field", "change_date", "row_no"], kind="stable"
    )
    chain = [rows["child_id"], rows["field"]]
    groups = rows.groupby(chain, sort=False)
    previous_new, previous_date = groups["new_value"].shift(), groups["change_date"].shift()
    broken = previous_new.notna() & (
        rows["old_value"].ne(previous_new) | rows["change_date"].eq(previous_date)
    )
    broken = broken.groupby(chain, sort=False).transform("any")
    stale = pd.Series(False, index=rows.index)
    if registry is not None and registry.exported is not None and len(rows):
        last = groups.cumcount(ascending=False).eq(0).to_numpy()
        positions = registry.positions(rows["child_id"])
        exported = np.full(len(rows), None, dtype=object)
        for field, values in registry.exported.items():
            hit = rows["field"].eq(field).to_numpy() & (positions >= 0)
            exported[hit] = values[positions[hit]]
        stale = pd.Series(last & (rows["new_value"].to_numpy() != exported), index=rows.index)
        stale = stale.groupby(chain, sort=False).transform("any") & ~broken
    return {
        reason: mask.reindex(parsed.index, fill_value=False).astype(bool)
        for reason, mask in zip(CHAIN_REASONS, (broken, stale), strict=True)
    }


def exported_values(children: pd.DataFrame) -> dict[str, np.ndarray]:
    """The children table's value of each field a registry change can touch, as text."""
    out = {}
    for field in REGISTRY_HISTORY_FIELDS:
        values = children[field]
        text = values.astype("Int64").astype(str) if field == "disability_level" else values
        out[field] = np.asarray(text.astype(object).where(values.notna(), None), dtype=object)
    return out


# --------------------------------------------------------------------------- duplicates


class DuplicateFilter:
    """Exact duplicate rows (all raw text columns) across chunks, by 64-bit row hash.

    The hashes seen so far are kept sorted (8 bytes a row). A false collision needs two
    different rows with the same 64-bit hash: about 3e-5 for 36 million rows in one table.
    """

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def first_seen(self, raw: pd.DataFrame) -> np.ndarray:
        hashes = pd.util.hash_pandas_object(raw, index=False).to_numpy()
        keep = ~pd.Series(hashes).duplicated().to_numpy()
        if len(self.seen):
            pos = np.searchsorted(self.seen, hashes).clip(max=len(self.seen) - 1)
            keep &= self.seen[pos] != hashes
        new = np.sort(hashes[keep])
        self.seen = np.sort(
            np.concatenate([self.seen, new]), kind="stable"
        )  # merges two sorted runs
        return keep
