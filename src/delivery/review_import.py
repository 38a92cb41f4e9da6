"""`safetynet reviews import PATH`: filled watchlists (XLSX or CSV, as Excel or WPS saved them)
-> rows appended to the export's `casework_reviews` table (contract: src/data/reviews_spec.py).

Each data row of every director sheet (or of the CSV) is read as text under the headings the
watchlist wrote, in either language (or the column keys). A row whose review outcome is blank
was not reviewed and is skipped. Otherwise, one clear error per row, and the row is not recorded:

- an outcome that is neither a code nor a dropdown label (`review_codes.code_of`);
- a child not on that watchlist: no child_id, or a list reference that does not match
  sha256(child_pid | list date) (`review_loop.list_ref`; child_pid is keyed, so a row typed
  in by hand or copied from another month's list does not match);
- a list date, review date or next review date that is not a date.

A recorded row: the review date as typed, else the list's own date (a stale list is imported
with its date); the list's service codes and matched providers when the outcome is `referred`,
and its next review date, else review date + `watchlist.follow_up_days`; the note as typed.
Rows are appended to `casework_reviews.csv` in `data.reviews_dir` (null: the export folder,
`data.raw_dir`), in that file's encoding and column order, only when the same row (every
contract column) is not there yet: importing a file twice changes nothing, byte for byte, and a
changed outcome is a new row (history kept). The next ingest validates them like any table.
Counts reconcile: rows read = recorded + already present + not reviewed + errors.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from python_calamine import CalamineWorkbook

from src.data.contract import TABLES
from src.data.export_check import reviews_folder
from src.data.pseudonymise import PidKey, child_pids, load_pid_key
from src.data.raw_files import detect_encoding
from src.data.reviews_spec import CASEWORK_REVIEWS
from src.delivery.review_codes import REVIEW_CODES, code_of
from src.delivery.review_loop import ref_of
from src.delivery.wording import TEXT
from src.errors import SafetynetError

log = logging.getLogger(__name__)

COLUMNS = TABLES[CASEWORK_REVIEWS].column_names
KEYS = ("child_id", "review", "review_date", "next_review_date", "review_note", "list_date", "list_ref",
        "caseworker_id", "service_codes", "provider_id")  # fmt: skip
NEEDED = ("child_id", "review", "list_date", "list_ref")
HEADINGS = {heading: key for text in TEXT.values() for key, heading in text["columns"].items() if key in KEYS}
HEADINGS.update({key: key for key in KEYS})
DATE_TEXT = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*(\d{1,2}:\d{2}(:\d{2})?)?\s*$")


# ----------------------------------------------------------------------------- core


def as_text(value) -> str:
    """A cell as text: dates as YYYY-MM-DD, whole numbers without '.0', None as ''."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_dates(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(dates, malformed): YYYY-MM-DD, YYYY/M/D, YYYY.M.D or YYYY年M月D日 (a time is ignored)."""
    parts = text.fillna("").astype(str).str.extract(DATE_TEXT)
    iso = parts[0] + "-" + parts[1].str.zfill(2) + "-" + parts[2].str.zfill(2)
    dates = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
    blank = text.fillna("").astype(str).str.strip().eq("")
    return dates, ~blank & dates.isna()


def review_rows(filled: pd.DataFrame, key: PidKey, follow_up_days: int) -> tuple[pd.DataFrame, list[str], dict]:
    """Filled rows (KEYS as text, `where` = sheet and row) -> (contract rows as text, errors, counts)."""
    filled = filled.reindex(columns=[*KEYS, "where"], fill_value="").fillna("").astype(str)
    reviewed = filled["review"].str.strip().ne("")
    rows = filled[reviewed].reset_index(drop=True)
    outcome = rows["review"].map({text: code_of(text) for text in rows["review"].unique()})  # once per label
    list_date, bad_list = parse_dates(rows["list_date"])
    review_date, bad_review = parse_dates(rows["review_date"])
    next_date, bad_next = parse_dates(rows["next_review_date"])
    ids = rows["child_id"].str.strip()
    pids = pd.Series("", index=rows.index, dtype=object)
    if ids.ne("").any():
        pids[ids.ne("")] = child_pids(ids[ids.ne("")], key.key)
    iso_list = list_date.dt.strftime("%Y-%m-%d").fillna("")
    expected = pd.Series([ref_of(p, d) if p and d else "" for p, d in zip(pids, iso_list, strict=True)],
                         index=rows.index, dtype=object)  # fmt: skip
    labels = "; ".join(f"{code} ({zh} / {en})" for code, (zh, en) in REVIEW_CODES.items())
    problems = [
        (outcome.isna(), lambda r: f"unknown review outcome '{r.review}'; use one of: {labels}"),
        (ids.eq("") | bad_list | list_date.isna() | rows["list_ref"].str.strip().ne(expected) | expected.eq(""),
         lambda r: f"child '{r.child_id}' is not on the watchlist of {r.list_date or '(no list date)'}: its list "
                   "reference does not match; record reviews only on the rows the list handed out"),
        (bad_review, lambda r: f"review date '{r.review_date}' is not a date (YYYY-MM-DD)"),
        (bad_next, lambda r: f"next review date '{r.next_review_date}' is not a date (YYYY-MM-DD)"),
    ]  # fmt: skip
    failed = pd.Series(False, index=rows.index)
    errors = []
    for mask, message in problems:
        new = mask & ~failed
        errors += [f"{r.where}: {message(r)}" for r in rows[new].itertuples()]
        failed |= new
    good = ~failed
    date = review_date.fillna(list_date)
    referred = outcome.eq("referred")
    next_date = next_date.where(next_date.notna() | ~referred, date + pd.Timedelta(days=follow_up_days))
    out = pd.DataFrame({
        "child_id": ids, "review_date": date.dt.strftime("%Y-%m-%d"),
        "caseworker_id": rows["caseworker_id"].str.strip(), "outcome": outcome,
        "services": rows["service_codes"].str.strip().where(referred, ""),
        "next_review_date": next_date.dt.strftime("%Y-%m-%d").fillna(""),
        "provider_id": rows["provider_id"].str.strip().where(referred, ""), "note": rows["review_note"],
    })[good].reset_index(drop=True)  # fmt: skip
    counts = {"rows_read": len(filled), "not_reviewed": int((~reviewed).sum()), "errors": int(failed.sum())}
    return out[COLUMNS], errors, counts


def new_rows(existing: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` not already in `existing` (every contract column, as text), each once, in order."""
    def keys(frame):
        text = frame.reindex(columns=COLUMNS, fill_value="").fillna("").astype(str)
        return text[COLUMNS[0]].str.cat([text[c] for c in COLUMNS[1:]], sep="\x1f")

    seen = set(keys(existing)) if len(existing) else set()
    row_keys = keys(rows) if len(rows) else pd.Series(dtype=str)
    fresh = ~row_keys.isin(seen) & ~row_keys.duplicated()
    return rows[fresh.to_numpy(dtype=bool)] if len(rows) else rows


# ----------------------------------------------------------------------------- I/O


def read_filled(path: Path) -> pd.DataFrame:
    """Every data row of a filled watchlist (KEYS as text, `where`); XLSX sheets without the
    watchlist's headings (the outcome codes sheet) are skipped."""
    if not path.is_file():
        raise SafetynetError(f"{path}: not found; pass a filled watchlist.xlsx or watchlist.csv")
    if path.suffix.lower() == ".xlsx":
        parts = []
        workbook = CalamineWorkbook.from_path(str(path))
        for title in workbook.sheet_names:
            rows = workbook.get_sheet_by_name(title).to_python(skip_empty_area=False)
            header = [HEADINGS.get(as_text(h).strip(), "") for h in (rows[0] if rows else [])]
            if not set(NEEDED) <= set(header):
                continue
            body = [[as_text(v) for v in row] for row in rows[1:] if any(v not in (None, "") for v in row)]
            frame = pd.DataFrame(body, columns=range(len(header))) if body else pd.DataFrame(columns=range(len(header)))
            frame = frame.iloc[:, [j for j, k in enumerate(header) if k]].set_axis([k for k in header if k], axis=1)
            frame["where"] = [f"{path.name} sheet '{title}' row {i}" for i in range(2, len(frame) + 2)]
            parts.append(frame)
        if not parts:
            raise SafetynetError(f"{path}: no sheet has the watchlist's columns ({', '.join(NEEDED)})")
        return pd.concat(parts, ignore_index=True)
    raw = path.read_bytes()
    frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding=detect_encoding(raw[:65536]))
    frame = frame.rename(columns=lambda h: HEADINGS.get(str(h).strip(), f"_{h}"))
    missing = [k for k in NEEDED if k not in frame.columns]
    if missing:
        raise SafetynetError(f"{path}: not a filled watchlist (missing column(s) {', '.join(missing)})")
    frame["where"] = [f"{path.name} row {i}" for i in range(2, len(frame) + 2)]
    return frame


def append_reviews(target: Path, rows: pd.DataFrame) -> int:
    """Append the rows not yet in `target` (casework_reviews.csv), in its encoding and column order."""
    if target.with_suffix(".parquet").exists():
        raise SafetynetError(f"{target.with_suffix('.parquet')}: reviews are appended to a CSV table; convert "
                             "it to casework_reviews.csv or set data.reviews_dir to another folder")  # fmt: skip
    encoding, columns, existing = "utf-8", COLUMNS, pd.DataFrame(columns=COLUMNS)
    if target.exists():
        raw = target.read_bytes()
        encoding = detect_encoding(raw[:65536])
        existing = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding=encoding)
        columns = list(existing.columns)
        unknown = [c for c in COLUMNS if c not in columns and c != "note"]
        if unknown:
            raise SafetynetError(f"{target}: no column {unknown[0]}; fix the file's header first")
    fresh = new_rows(existing, rows)
    if fresh.empty:
        return 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if not target.exists():
        writer.writerow(columns)
    writer.writerows(fresh.reindex(columns=columns, fill_value="").to_numpy(dtype=object).tolist())
    ends_cleanly = not target.exists() or target.read_bytes()[-1:] in (b"\n", b"")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab") as out:  # appended in place: earlier rows are never rewritten
        out.write(("" if ends_cleanly else "\n").encode(encoding) + buffer.getvalue().encode(encoding))
    return len(fresh)


def run(paths, params) -> dict:
    """Import each filled watchlist in `paths`; print every row error; counts per file reconcile."""
    key = load_pid_key()
    target = reviews_folder(Path(params.data.raw_dir), params) / f"{CASEWORK_REVIEWS}.csv"
    summary = {"target": str(target), "files": {}}
    for path in map(Path, paths):
        rows, errors, counts = review_rows(read_filled(path), key, params.watchlist.follow_up_days)
        recorded = append_reviews(target, rows)
        counts.update(recorded=recorded, already_present=len(rows) - recorded)
        accounted = counts["recorded"] + counts["already_present"] + counts["not_reviewed"] + counts["errors"]
        if accounted != counts["rows_read"]:
            raise RuntimeError(f"{path}: {counts['rows_read']} rows read but {accounted} accounted for")
        summary["files"][str(path)] = {**counts, "reconciles": True, "error_lines": errors}
        for line in errors:
            log.error("%s", line)
        log.info("reviews import %s -> %s: %s", path, target, counts)
    summary["errors"] = int(np.sum([f["errors"] for f in summary["files"].values()]))
    return summary
