"""The watchlist as an XLSX workbook for child directors who work in Excel or WPS.

One sheet per child director (their visit list and their already-out children: the rows a
review outcome is expected for), a frozen header, column widths that fit Chinese text,
identity and list columns protected (sheet protection without a password: it prevents
accidental edits, not a determined user), and review columns left editable: the outcome is
a dropdown of `review_codes` labels (an inline list, which Excel and WPS both read), the
date must be a date. Every text cell is formula-neutralised exactly as in the CSV and
stored as a string cell, never a formula. The bytes are the same for the same inputs: fixed
document timestamps and fixed zip entry times. openpyxl (write-only mode) writes the
workbook, styles, header rows, frozen panes, widths, dropdowns and protection; the data rows
are formatted here as the inline-string cells openpyxl writes (`rows_xml`) and put into each
sheet's sheetData: openpyxl's normal mode cost ~1 ms a row and its cell writer ~50 us a cell,
minutes for a province's ~80,000 rows.
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
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import IllegalCharacterError
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.writer.excel import ExcelWriter

from src.delivery.review_codes import REVIEW_CODES, review_labels
from src.spreadsheet import neutralise_formulas

REVIEW_COLUMNS = ("review", "review_date", "next_review_date", "review_note")  # editable; the rest locked
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


def column_widths(content: list[int], headers: list[str]) -> list[int]:
    """Sheet column widths from each column's widest cell and its heading."""
    heads = cell_widths(pd.Series(headers, dtype=object)).tolist()
    return [max(min(max(w, h) + 2, MAX_WIDTH), MIN_WIDTH) for w, h in zip(content, heads, strict=True)]


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


def fill_sheet(ws, n_rows: int, columns: list[str], headers: list[str], widths: list[int], language: str) -> list[int]:
    """Freeze, size, write the header, validate and protect a sheet of `n_rows` data rows; the
    style id of each column's data cells (wrapped; review columns unlocked)."""
    ws.freeze_panes = "A2"
    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    head = WriteOnlyCell(ws)
    head.font, head.fill = Font(bold=True), PatternFill("solid", fgColor="F0F0F0")
    ws.append([styled(ws, h, head) for h in headers])
    wrap = Alignment(wrap_text=True, vertical="top")
    body, review = WriteOnlyCell(ws), WriteOnlyCell(ws)
    body.alignment = review.alignment = wrap
    review.protection = Protection(locked=False)
    add_validations(ws, columns, max(n_rows + 1, 2), language)
    ws.protection.sheet = True
    ws.protection.formatCells = ws.protection.formatColumns = ws.protection.formatRows = False
    return [review.style_id if c in REVIEW_COLUMNS else body.style_id for c in columns]


def styled(ws, value: str, like: WriteOnlyCell) -> WriteOnlyCell:
    """A string cell styled like `like`: never a formula, whatever a person typed."""
    cell = WriteOnlyCell(ws, value)
    if cell.data_type == "f":
        cell.data_type = "s"
    cell._style = like._style
    return cell


def rows_xml(rows: list[list[str]], styles: list[int]) -> str:
    """`<row>` elements from row 2 on, each cell an inline string, as openpyxl's writer spells them.

    openpyxl's per-cell writer costs ~50 us a cell (minutes for a province); this is the same
    XML by string formatting. Text is XML-escaped (`rows_workbook` first refuses the
    characters XML cannot hold, as openpyxl does)."""
    letters = [get_column_letter(j) for j in range(1, len(styles) + 1)]
    out = []
    for r, row in enumerate(rows, start=2):
        cells = []
        for letter, style, value in zip(letters, styles, row, strict=True):
            if value == "":
                cells.append(f'<c r="{letter}{r}" s="{style}" t="inlineStr" />')
                continue
            text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            space = ' xml:space="preserve"' if value.strip() and value != value.strip() else ""
            cells.append(f'<c r="{letter}{r}" s="{style}" t="inlineStr"><is><t{space}>{text}</t></is></c>')
        out.append(f'<row r="{r}">{"".join(cells)}</row>')
    return "".join(out)


def add_validations(ws, columns: list[str], last: int, language: str) -> None:
    if "review" in columns:
        letter = get_column_letter(columns.index("review") + 1)
        outcome = DataValidation(type="list", formula1='"' + ",".join(review_labels(language)) + '"',
                                 allow_blank=True, showDropDown=False, showErrorMessage=True)  # fmt: skip
        outcome.add(f"{letter}2:{letter}{last}")
        ws.data_validations.append(outcome)
    for column in ("review_date", "next_review_date"):
        if column in columns:
            letter = get_column_letter(columns.index(column) + 1)
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
    for name, rows in sheets.items():
        if any(ILLEGAL_CHARACTERS_RE.search(value) for row in rows for value in row):
            raise IllegalCharacterError(f"sheet {name}: a cell holds a control character XML cannot store")
    wb = Workbook(write_only=True)
    bodies = {}
    for i, (name, rows) in enumerate(zip(sheet_names(list(sheets)), sheets.values(), strict=True), start=1):
        styles = fill_sheet(wb.create_sheet(name), len(rows), list(headers), list(headers.values()), widths,
                            language)  # fmt: skip
        bodies[f"xl/worksheets/sheet{i}.xml"] = rows_xml(rows, styles)
    codes_sheet(wb, language)
    wb.security = WorkbookProtection(lockStructure=True)
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.creator = "safetynet-ews"
    return deterministic_zip(wb, bodies)


def deterministic_zip(wb: Workbook, bodies: dict[str, str]) -> bytes:
    """Save `wb` and rewrite the zip with fixed entry times (openpyxl stamps the current time),
    each sheet of `bodies` (zip entry -> rows XML) getting its data rows after its header row."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    fixed = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(info.filename)
            if info.filename in bodies:
                head, end, tail = data.decode("utf-8").partition("</sheetData>")
                if not end or "</sheetData>" in tail:
                    raise ValueError(f"{info.filename}: openpyxl wrote no single sheetData to fill")
                data = (head + bodies.pop(info.filename) + end + tail).encode("utf-8")
            out.writestr(entry, data)
    if bodies:
        raise ValueError(f"xlsx: no sheet {', '.join(bodies)} in the workbook openpyxl wrote")
    return fixed.getvalue()
