"""Cells that are safe to open in a spreadsheet or print to a terminal.

`printable` / `escape_controls`: control and format characters (NUL, CR, ESC, bidi
overrides...) are shown as escapes (`\x1b`), so a value can neither break a CSV row, nor
drive a terminal, nor reorder text on screen.

CSV formula-injection neutralising:

Excel, LibreOffice and WPS read a cell that starts with = + - @ (or a tab / carriage return
before one) as a formula, so a value a person typed could run as one when an analyst opens
a CSV we wrote. The OWASP remedy is a leading apostrophe: the spreadsheet shows the text
as typed and evaluates nothing. Every CSV the project writes for people goes through here.
"""

from __future__ import annotations

import re
import unicodedata

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


# Cc (controls) and the Cf (format) characters that change how text displays
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def printable(text: object) -> str:
    """`text` with control and format characters (ESC, CR, bidi overrides...) escaped."""
    return "".join(
        ch if unicodedata.category(ch) not in ("Cc", "Cf") else ascii(ch)[1:-1] for ch in str(text)
    )


def escape_controls(values: pd.Series) -> pd.Series:
    """`printable` on every text cell that holds a control or format character."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    text = values.astype("string")
    risky = text.str.contains(CONTROL).fillna(False).astype(bool)
    if not risky.any():
        return values
    return values.mask(risky, text[risky].map(printable))
