"""`safetynet reviews import`: XLSX/CSV round trip, per-row errors, idempotence, history, stale lists."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import openpyxl
import pandas as pd
import pytest

from src.data import contract
from src.delivery import review_import, watchlist
from src.delivery.review_codes import REVIEW_CODES
from src.delivery.wording import TEXT
from tests.delivery import explain_fixtures as fx

NOTE = "奶奶说孩子常去网吧，=SUM(A1) 需要复查"


@pytest.fixture
def lists(tmp_path, monkeypatch):
    """A written watchlist folder (fixture pids are sha256(child_id)) and the params to import with."""
    fx.use_small_catalogue(monkeypatch)
    expl_path, interim, _, _ = fx.write_inputs(tmp_path)
    monkeypatch.setattr(watchlist, "read_promotion", lambda models: {"passed": True, "reason": "ok", "model_digest": "m"})
    monkeypatch.setattr(review_import, "child_pids", lambda ids, key: np.array([fx.pid(i) for i in ids], dtype=object))
    params = fx.params(data__raw_dir=str(tmp_path / "export"))
    out = tmp_path / "watchlists"
    watchlist.run(expl_path, tmp_path / "contributions.parquet", tmp_path / "models", fx.served_dir(tmp_path),
                  interim, out, params)  # fmt: skip
    return out, params, tmp_path / "export" / "casework_reviews.csv"


def column(ws, key, language="zh"):
    headers = [c.value for c in ws[1]]
    return headers.index(TEXT[language]["columns"][key]) + 1


def fill_xlsx(source, target, outcome_of):
    """Fill the review column of every director sheet: outcome_of(row number) -> label or None."""
    wb = openpyxl.load_workbook(source)
    filled = []
    for ws in wb.worksheets[:-1]:
        review, when, note = column(ws, "review"), column(ws, "review_date"), column(ws, "review_note")
        for r in range(2, ws.max_row + 1):
            label = outcome_of(len(filled))
            if label is None:
                filled.append(None)
                continue
            ws.cell(r, review).value = label
            ws.cell(r, note).value = NOTE
            if len(filled) % 2:
                ws.cell(r, when).value = dt.datetime(2024, 6, 20)
            filled.append((ws.title, r, ws.cell(r, column(ws, "child_id")).value, label))
    wb.save(target)
    return [f for f in filled if f]


def test_xlsx_round_trip_keeps_every_outcome_and_chinese_note_and_is_idempotent(lists, tmp_path):
    out, params, target = lists
    county = sorted(p for p in out.iterdir() if p.is_dir())[0]
    labels = [zh for zh, _ in REVIEW_CODES.values()] + [en for _, en in REVIEW_CODES.values()] + list(REVIEW_CODES)
    filled = fill_xlsx(county / "watchlist.xlsx", tmp_path / "filled.xlsx", lambda i: labels[i % len(labels)])
    assert len(filled) >= 10  # every dropdown label (zh list) and every code at least once
    summary = review_import.run([tmp_path / "filled.xlsx"], params)
    counts = summary["files"][str(tmp_path / "filled.xlsx")]
    assert counts["recorded"] == len(filled) and counts["errors"] == 0 and counts["reconciles"]
    table = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(table.columns) == contract.TABLES["casework_reviews"].column_names
    assert table["outcome"].tolist() == [review_import.code_of(f[3]) for f in filled]
    assert set(table["outcome"]) == set(REVIEW_CODES) and (table["note"] == NOTE).all()
    as_of = pd.read_csv(county / "watchlist.csv", dtype=str).iloc[0][TEXT["zh"]["columns"]["list_date"]]
    assert set(table["review_date"]) == {"2024-06-20", as_of}  # typed, else the list's own date
    referred = table[table["outcome"] == "referred"]
    assert (referred["next_review_date"] != "").all() and (table.loc[table["outcome"] != "referred", "services"] == "").all()
    before = target.read_bytes()
    again = review_import.run([tmp_path / "filled.xlsx"], params)["files"][str(tmp_path / "filled.xlsx")]
    assert again["recorded"] == 0 and again["already_present"] == len(filled) and target.read_bytes() == before
    # a changed outcome is a new review; the old one stays
    assert review_import.code_of(filled[0][3]) != "already_known"
    fill_xlsx(county / "watchlist.xlsx", tmp_path / "changed.xlsx", lambda i: "already_known" if i == 0 else None)
    review_import.run([tmp_path / "changed.xlsx"], params)
    history = pd.read_csv(target, dtype=str)
    assert target.read_bytes().startswith(before) and len(history) == len(filled) + 1
    assert history.loc[history["child_id"] == filled[0][2], "outcome"].tolist()[-1] == "already_known"


def test_bad_codes_and_children_not_on_the_list_are_row_errors(lists, tmp_path):
    out, params, target = lists
    county = sorted(p for p in out.iterdir() if p.is_dir())[0]
    wb = openpyxl.load_workbook(county / "watchlist.xlsx")
    ws = wb.worksheets[0]
    ws.cell(2, column(ws, "review")).value = "去过了"
    ws.cell(3, column(ws, "review")).value = "visited_risk"
    ws.cell(3, column(ws, "child_id")).value = "C99999"  # typed over: not on this list
    ws.cell(4, column(ws, "review")).value = "visited_no_risk"
    ws.cell(4, column(ws, "review_date")).value = "2024-13-01"
    ws.cell(5, column(ws, "review")).value = "unreachable"
    wb.save(tmp_path / "bad.xlsx")
    counts = review_import.run([tmp_path / "bad.xlsx"], params)["files"][str(tmp_path / "bad.xlsx")]
    errors = counts["error_lines"]
    assert counts["errors"] == 3 and counts["recorded"] == 1 and len(errors) == 3
    assert "row 2: unknown review outcome '去过了'" in errors[0]
    assert "row 3: child 'C99999' is not on the watchlist" in errors[1]
    assert "row 4: review date '2024-13-01' is not a date" in errors[2]
    assert counts["rows_read"] == counts["recorded"] + counts["not_reviewed"] + counts["errors"]


def test_a_csv_saved_by_wps_in_gb18030_imports_too(lists, tmp_path):
    out, params, target = lists
    county = sorted(p for p in out.iterdir() if p.is_dir())[0]
    rows = list(csv.reader(io.StringIO((county / "watchlist.csv").read_text(encoding="utf-8-sig"))))
    header = rows[0]
    review, note = header.index(TEXT["zh"]["columns"]["review"]), header.index(TEXT["zh"]["columns"]["review_note"])
    for row in rows[1:4]:
        row[review], row[note] = "已走访，确认存在风险", NOTE
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (tmp_path / "filled.csv").write_bytes(buffer.getvalue().encode("gb18030"))
    counts = review_import.run([tmp_path / "filled.csv"], params)["files"][str(tmp_path / "filled.csv")]
    assert counts["recorded"] == 3 and counts["errors"] == 0
    assert (pd.read_csv(target, dtype=str)["note"] == NOTE).all()
