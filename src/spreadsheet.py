"""Cells that are safe to open in a spreadsheet: CSV formula-injection neutralising.

Excel, LibreOffice and WPS read a cell that starts with = + - @ (or a tab / carriage return
before one) as a formula, so a value a person typed could run as one when an analyst opens
a CSV we wrote. The OWASP remedy is a leading apostrophe: the spreadsheet shows the text
as typed and evaluates nothing. Every CSV the project writes for people goes through here.
"""

from __future__ import annotations

import pandas as pd

FORMULA_START = r"[=+\-@\t\r]"
# A signed number ("-3.5", "+2", "-1e-05") is a number to a spreadsheet, not a formula:
# leave it alone so negative amounts stay readable and sortable.
PLAIN_NUMBER = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """`values` with "'" before each text cell a spreadsheet would read as a formula.

    A text cell is risky when it starts with = + - @ TAB or CR and is not a plain number.
    Missing values stay missing; numeric and boolean columns are returned unchanged (their
    text is a number); the index, name and dtype of `values` are kept.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    text = values.astype("string")
    risky = text.str.match(FORMULA_START) & ~text.str.fullmatch(PLAIN_NUMBER)
    return values.mask(risky.fillna(False).astype(bool), "'" + text)
