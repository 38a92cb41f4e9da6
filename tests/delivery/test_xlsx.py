"""The XLSX watchlist: string cells only (never formulas), dropdowns, protection, determinism."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pandas as pd
import pytest

from src.delivery import xlsx
from src.delivery.review_codes import review_labels

HEADERS = {"rank": "排名", "name": "姓名", "reasons": "主要原因", "review": "复核结果",
           "review_date": "复核日期", "review_note": "备注"}  # fmt: skip
AS_OF = dt.date(2024, 6, 1)
HOSTILE = ["=1+1", "+86 123", "-2+3", "@SUM(A1)", "\t=cmd", "\r=cmd", '=HYPERLINK("http://x","y")']


def frame(names) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame({"rank": [str(i + 1) for i in range(n)], "name": names,
                         "reasons": ["近90天无故缺课 6 天\n低保/补贴复核已逾期"] * n,
                         "review": "", "review_date": "", "review_note": ""})  # fmt: skip


def open_book(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data))


@pytest.fixture
def book():
    sheets = {"儿童主任-01": frame(HOSTILE), "<b>bold</b>/x": frame(["王小明", "李欣怡"])}
    return xlsx.workbook_bytes(sheets, HEADERS, "zh", AS_OF)


def test_formula_like_names_are_neutralised_string_cells(book):
    ws = open_book(book)["儿童主任-01"]
    names = [row[1] for row in ws.iter_rows(min_row=2, values_only=True)]
    # as in the CSV (XML reads a bare CR back as LF; the cell is still text)
    assert names == ["'" + n.replace("\r", "\n") for n in HOSTILE]
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    assert ws["B2"].data_type == "s"


def test_one_sheet_per_director_frozen_header_and_dropdowns(book):
    wb = open_book(book)
    assert wb.sheetnames == ["儿童主任-01", "<b>bold<_b>_x", "复核结果说明"]
    ws = wb["儿童主任-01"]
    assert ws.freeze_panes == "A2" and [c.value for c in ws[1]] == list(HEADERS.values())
    lists = [v for v in ws.data_validations.dataValidation if v.type == "list"]
    assert len(lists) == 1 and str(lists[0].sqref) == "D2:D8"
    assert lists[0].formula1 == '"' + ",".join(review_labels("zh")) + '"'
    assert any(v.type == "date" and str(v.sqref) == "E2:E8" for v in ws.data_validations.dataValidation)
    # Chinese text gets room: the reasons column is wider than the rank column
    assert ws.column_dimensions["C"].width > 20 > ws.column_dimensions["A"].width


def test_identity_is_protected_and_review_columns_are_editable(book):
    ws = open_book(book)["儿童主任-01"]
    assert ws.protection.sheet
    assert ws["B2"].protection.locked and ws["A2"].protection.locked
    assert not any(ws[f"{c}2"].protection.locked for c in "DEF")


def test_same_inputs_same_bytes():
    sheets = {"a": frame(["王小明"])}
    first = xlsx.workbook_bytes(sheets, HEADERS, "en", AS_OF)
    assert first == xlsx.workbook_bytes(sheets, HEADERS, "en", AS_OF)
    assert open_book(first).properties.modified == dt.datetime(2024, 6, 1)


def test_sheet_names_are_safe_and_unique():
    names = xlsx.sheet_names(["a" * 40, "a" * 40, "x:y?", "A" * 40])
    assert names[0] == "a" * 31 and len(set(n.lower() for n in names)) == 4
    assert all(len(n) <= 31 for n in names) and names[2] == "x_y_"


def test_display_width_counts_chinese_twice():
    assert xlsx.display_width(pd.Series(["ab", "儿童主任\nx"])) == 8


def test_markup_and_spaces_round_trip_and_control_characters_are_refused():
    names = ["<b>&amp;</b> & Co", "  王小明 ", "李\n换行"]
    ws = open_book(xlsx.workbook_bytes({"a": frame(names)}, HEADERS, "zh", AS_OF))["a"]
    assert [row[1] for row in ws.iter_rows(min_row=2, values_only=True)] == names
    assert all(ws[f"{c}2"].alignment.wrap_text for c in "ABCDEF")
    with pytest.raises(openpyxl.utils.exceptions.IllegalCharacterError):
        xlsx.workbook_bytes({"a": frame(["bell\x07"])}, HEADERS, "zh", AS_OF)
