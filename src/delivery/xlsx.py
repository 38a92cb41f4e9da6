"""The watchlist as an XLSX workbook for child directors who work in Excel or WPS.

One sheet per child director (their visit list and their already-out children: the rows a
review outcome is expected for), a frozen header, column widths that fit Chinese text,
identity and list columns protected (sheet protection without a password: it prevents
accidental edits, not a determined user), and review columns left editable: the outcome is
a dropdown of `review_codes` labels (an inline list, which Excel and WPS both read), the
date must be a date. Every text cell is formula-neutralised exactly as in the CSV and
stored as a string cell, never a formula. The bytes are the same for the same inputs: fixed
document timestamps and fixed zip entry times.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.writer.excel import ExcelWriter

from src.delivery.review_codes import REVIEW_CODES, review_labels
from src.spreadsheet import neutralise_formulas

REVIEW_COLUMNS = ("review", "review_date", "review_note")
WIDE = r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]"
SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f']")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MAX_WIDTH, MIN_WIDTH = 48, 6


def display_width(values: pd.Series) -> int:
    """Widest line of any cell, counting a CJK character as two columns."""
    lines = values.astype(str).str.split("\n").explode()
    widths = lines.str.len() + lines.str.count(WIDE)
    return int(widths.max()) if len(widths) else 0


def sheet_names(directors: list[str]) -> list[str]:
    """Excel-safe, unique sheet titles (<= 31 characters, no []:*?/\\ or quotes)."""
    names: list[str] = []
    for director in directors:
        base = SHEET_FORBIDDEN.sub("_", str(director)).strip() or "_"
        name, n = base[:31], 1
        while name.lower() in {m.lower() for m in names}:
            n += 1
            name = f"{base[: 31 - len(str(n)) - 1]}~{n}"
        names.append(name)
    return names


def fill_sheet(ws, cells: pd.DataFrame, headers: list[str], widths: list[int], language: str) -> None:
    """Write header + rows as string cells, then freeze, size, validate and protect."""
    ws.append(headers)
    for row in cells.itertuples(index=False, name=None):
        ws.append(list(row))
    for row in ws.iter_rows(min_row=1):
        for cell in row:
            if cell.data_type == "f":  # never a formula, whatever a person typed
                cell.data_type = "s"
    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font, cell.fill = bold, PatternFill("solid", fgColor="F0F0F0")
    ws.freeze_panes = "A2"
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    unlocked = Protection(locked=False)
    review = [j for j, c in enumerate(cells.columns, start=1) if c in REVIEW_COLUMNS]
    last = max(len(cells) + 1, 2)
    for row in ws.iter_rows(min_row=2, max_row=last):
        for cell in row:
            cell.alignment = wrap
            if cell.column in review:
                cell.protection = unlocked
    add_validations(ws, cells, last, language)
    ws.protection.sheet = True
    ws.protection.formatCells = ws.protection.formatColumns = ws.protection.formatRows = False


def add_validations(ws, cells: pd.DataFrame, last: int, language: str) -> None:
    columns = list(cells.columns)
    if "review" in columns:
        letter = get_column_letter(columns.index("review") + 1)
        outcome = DataValidation(type="list", formula1='"' + ",".join(review_labels(language)) + '"',
                                 allow_blank=True, showDropDown=False, showErrorMessage=True)  # fmt: skip
        outcome.add(f"{letter}2:{letter}{last}")
        ws.add_data_validation(outcome)
    if "review_date" in columns:
        letter = get_column_letter(columns.index("review_date") + 1)
        date = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True,
                              showErrorMessage=True)  # fmt: skip
        date.add(f"{letter}2:{letter}{last}")
        ws.add_data_validation(date)


def codes_sheet(wb: Workbook, language: str) -> None:
    """A sheet naming every review outcome: the label the dropdown shows, in both languages, and its code."""
    ws = wb.create_sheet("review_codes" if language == "en" else "复核结果说明")
    ws.append(["code", "中文", "English"])
    for code, (zh, en) in REVIEW_CODES.items():
        ws.append([code, zh, en])
    for letter, width in zip("ABC", (18, 26, 40), strict=True):
        ws.column_dimensions[letter].width = width
    ws.protection.sheet = True


def workbook_bytes(sheets: dict[str, pd.DataFrame], headers: dict[str, str], language: str,
                   as_of: dt.date) -> bytes:  # fmt: skip
    """The XLSX of `sheets` (director -> text cells; columns = keys of `headers`)."""
    wb = Workbook()
    wb.remove(wb.active)
    combined = pd.concat(list(sheets.values()), keys=range(len(sheets)))
    cells = pd.DataFrame(
        {c: neutralise_formulas(combined[c].fillna("").astype(str)) for c in headers}
    )
    widths = [
        min(max(display_width(cells[c]), display_width(pd.Series([headers[c]]))) + 2, MAX_WIDTH)
        for c in headers
    ]
    widths = [max(w, MIN_WIDTH) for w in widths]
    parts = dict(iter(cells.groupby(level=0, sort=True)))
    for i, name in enumerate(sheet_names(list(sheets))):
        fill_sheet(wb.create_sheet(name), parts[i], list(headers.values()), widths, language)
    codes_sheet(wb, language)
    wb.security = WorkbookProtection(lockStructure=True)
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.creator = "safetynet-ews"
    return deterministic_zip(wb)


def deterministic_zip(wb: Workbook) -> bytes:
    """Save `wb` and rewrite the zip with fixed entry times (openpyxl stamps the current time)."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    fixed = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(entry, source.read(info.filename))
    return fixed.getvalue()
