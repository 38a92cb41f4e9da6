"""The watchlist as an XLSX workbook for child directors who work in Excel or WPS.

One sheet per child director (their visit list and their already-out children: the rows a
review outcome is expected for), a frozen header, column widths that fit Chinese text,
identity and list columns protected (sheet protection without a password: it prevents
accidental edits, not a determined user), and review columns left editable: the outcome is
a dropdown of `review_codes` labels (an inline list, which Excel and WPS both read), the
date must be a date. Every text cell is formula-neutralised exactly as in the CSV and
stored as a string cell, never a formula. The bytes are the same for the same inputs: fixed
document timestamps and fixed zip entry times. Written in openpyxl's write-only mode (each
sheet streamed, rows appended as cells sharing one style per column): the normal mode cost
~1 ms per row, minutes for a province.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
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


def cell_widths(values: pd.Series) -> np.ndarray:
    """Each cell's widest line, counting a CJK character as two columns."""
    lines = values.astype(str).str.split("\n").explode()
    widths = (lines.str.len() + lines.str.count(WIDE)).astype("int64")
    return widths.groupby(level=0, sort=False).max().reindex(values.index, fill_value=0).to_numpy()


def display_width(values: pd.Series) -> int:
    """Widest line of any cell, counting a CJK character as two columns."""
    values = values.reset_index(drop=True)
    return int(cell_widths(values).max()) if len(values) else 0


def text_width(text: str) -> int:
    """`display_width` of one text."""
    return max(len(line) + len(re.findall(WIDE, line)) for line in text.split("\n"))


def column_widths(content: list[int], headers: list[str]) -> list[int]:
    """Sheet column widths from each column's widest cell and its heading."""
    return [max(min(max(w, text_width(h)) + 2, MAX_WIDTH), MIN_WIDTH)
            for w, h in zip(content, headers, strict=True)]  # fmt: skip


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


def fill_sheet(ws, rows: list[list[str]], columns: list[str], headers: list[str], widths: list[int],
               language: str) -> None:  # fmt: skip
    """Write header + rows as string cells (write-only: freeze, sizes first), then validate and protect."""
    ws.freeze_panes = "A2"
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    head = WriteOnlyCell(ws)
    head.font, head.fill = Font(bold=True), PatternFill("solid", fgColor="F0F0F0")
    ws.append([styled(ws, h, head._style) for h in headers])
    wrap = Alignment(wrap_text=True, vertical="top")
    body, review = WriteOnlyCell(ws), WriteOnlyCell(ws)
    body.alignment = review.alignment = wrap
    review.protection = Protection(locked=False)
    styles = [review._style if c in REVIEW_COLUMNS else body._style for c in columns]
    for row in rows:
        ws.append([styled(ws, v, style) for v, style in zip(row, styles, strict=True)])
    add_validations(ws, columns, max(len(rows) + 1, 2), language)
    ws.protection.sheet = True
    ws.protection.formatCells = ws.protection.formatColumns = ws.protection.formatRows = False


def styled(ws, value: str, style) -> WriteOnlyCell:
    """A string cell with a shared style: never a formula, whatever a person typed."""
    cell = WriteOnlyCell(ws, value)
    if cell.data_type == "f":
        cell.data_type = "s"
    cell._style = style  # the same StyleArray for a whole column: openpyxl indexes it once per cell
    return cell


def add_validations(ws, columns: list[str], last: int, language: str) -> None:
    if "review" in columns:
        letter = get_column_letter(columns.index("review") + 1)
        outcome = DataValidation(type="list", formula1='"' + ",".join(review_labels(language)) + '"',
                                 allow_blank=True, showDropDown=False, showErrorMessage=True)  # fmt: skip
        outcome.add(f"{letter}2:{letter}{last}")
        ws.data_validations.append(outcome)
    if "review_date" in columns:
        letter = get_column_letter(columns.index("review_date") + 1)
        date = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True,
                              showErrorMessage=True)  # fmt: skip
        date.add(f"{letter}2:{letter}{last}")
        ws.data_validations.append(date)


def codes_sheet(wb: Workbook, language: str) -> None:
    """A sheet naming every review outcome: the label the dropdown shows, in both languages, and its code."""
    ws = wb.create_sheet("review_codes" if language == "en" else "复核结果说明")
    for letter, width in zip("ABC", (18, 26, 40), strict=True):  # write-only: before the rows
        ws.column_dimensions[letter].width = width
    ws.append(["code", "中文", "English"])
    for code, (zh, en) in REVIEW_CODES.items():
        ws.append([code, zh, en])
    ws.protection.sheet = True


def workbook_bytes(sheets: dict[str, pd.DataFrame], headers: dict[str, str], language: str,
                   as_of: dt.date) -> bytes:  # fmt: skip
    """The XLSX of `sheets` (director -> text cells; columns = keys of `headers`), formula-neutralised here."""
    combined = pd.concat(list(sheets.values()), keys=range(len(sheets)))
    cells = pd.DataFrame({c: neutralise_formulas(combined[c].fillna("").astype(str)) for c in headers})
    widths = column_widths([display_width(cells[c]) for c in headers], list(headers.values()))
    parts = {i: part.to_numpy(dtype=object).tolist() for i, part in cells.groupby(level=0, sort=True)}
    rows = {name: parts[i] for i, name in enumerate(sheets)}
    return rows_workbook(rows, headers, widths, language, as_of)


def rows_workbook(sheets: dict[str, list[list[str]]], headers: dict[str, str], widths: list[int], language: str,
                  as_of: dt.date) -> bytes:  # fmt: skip
    """The XLSX of already neutralised text rows (director -> rows; columns = keys of `headers`)."""
    wb = Workbook(write_only=True)
    for name, rows in zip(sheet_names(list(sheets)), sheets.values(), strict=True):
        fill_sheet(wb.create_sheet(name), rows, list(headers), list(headers.values()), widths, language)
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
