"""A raw file's header -> the contract's column names, or a one-line error naming the fix.

Header cells are matched to contract columns ignoring case, surrounding blanks, and with
inner runs of blanks read as ``_`` (``Name`` -> ``name``, `` Birth Date`` -> ``birth_date``);
each such match is reported. A header cell that is not a contract column but looks like one
that is missing (``birthdate`` for ``birth_date``) is an error naming the expected column,
since reading it as an extra column would silently drop its values.

Column names come from the file and may hold anything: `printable` escapes control and
format characters before a name is shown in a message.
"""

from __future__ import annotations

import difflib
import re

import pandas as pd

from src.data.contract import TABLES
from src.errors import SafetynetError
from src.spreadsheet import printable

NEAR_MISS_RATIO = 0.8  # difflib similarity at which an unknown header cell is a misspelt column
DELIMITERS = {"\t": "tab", ";": "semicolon", "|": "pipe"}
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"  # BOM and zero-width characters


def header_key(cell: str) -> str:
    """The matching key: blanks and zero-width characters stripped, inner blanks -> '_', lower case."""
    trimmed = cell.strip().strip(INVISIBLE).strip()
    return re.sub(r"\s+", "_", trimmed).casefold()


def check_delimiter(header: list[str], file_name: str) -> None:
    """A one-cell header holding a tab, semicolon or pipe: the file uses another separator."""
    if len(header) != 1:
        return
    for delimiter, name in DELIMITERS.items():
        if header[0].count(delimiter) >= 1:
            raise SafetynetError(
                f"{file_name}: this file is {name}-delimited; the contract expects commas; "
                f"fix: export it again as CSV with ',' between fields"
            )


def normalise_header(
    table: str, columns: list[str], file_name: str
) -> tuple[tuple[str, ...], dict[str, str]]:
    """(contract names of `columns`, {cell as typed: contract name} for each cell renamed).

    A cell that matches no contract column keeps its name (an extra column).
    """
    known = set(TABLES[table].column_names)
    names, renamed = [], {}
    for cell in columns:
        key = header_key(cell)
        if key in known and key != cell:
            renamed[cell] = key
        names.append(key if key in known else cell)
    check_header(table, names, file_name, columns)
    return tuple(names), renamed


def check_header(
    table: str, columns: list[str], file_name: str, as_typed: list[str] | None = None
) -> None:
    """Raise when the header cannot be the table's: duplicates, another table, a missing or
    misspelt column. `columns` are the contract names, `as_typed` the cells as in the file."""
    as_typed = as_typed or columns
    index = pd.Index(columns)
    duplicated = index[index.duplicated()].tolist()
    if duplicated:
        cells = [printable(t) for t, c in zip(as_typed, columns, strict=True) if c == duplicated[0]]
        raise SafetynetError(
            f"{file_name}: column '{printable(duplicated[0])}' appears twice in the header "
            f"(as {' and '.join(repr(c) for c in cells)}); fix: rename or drop one"
        )
    spec = TABLES[table]
    present = set(columns)
    missing = [c for c in spec.required_columns if c not in present]
    identifying = [c for c in spec.required_columns if c != "child_id"]
    other = resembled_table(table, columns)
    if other or (missing and not present & set(identifying)):
        looks = f" (its columns look like the '{other}' table)" if other else ""
        raise SafetynetError(
            f"{file_name}: column '{missing[0] if missing else identifying[0]}' missing: this file is not the "
            f"'{table}' table{looks}; fix: put the {table} export under this name"
            f"{f' and name this file {other}' if other else ''}"
        )
    near = near_misses(table, columns)
    if near:
        cell, expected = next(iter(near.items()))
        raise SafetynetError(
            f"{file_name}: column '{printable(cell)}' is not a contract column but looks like "
            f"'{expected}'; fix: rename it to '{expected}' in the header"
        )
    if missing:
        raise SafetynetError(
            f"{file_name}: required column '{missing[0]}' is missing; fix: add it to the header "
            f"(required for {table}: {', '.join(spec.required_columns)})"
        )


def near_misses(table: str, columns: list[str]) -> dict[str, str]:
    """{unknown cell: the absent contract column it resembles} (a misspelling, not an extra)."""
    names = TABLES[table].column_names
    absent = [c for c in names if c not in set(columns)]
    found = {}
    for cell in columns:
        if cell in names:
            continue
        key = header_key(cell)
        squashed = re.sub(r"[\W_]+", "", key)
        close = [c for c in absent if re.sub(r"[\W_]+", "", c) == squashed]
        close = close or difflib.get_close_matches(key, absent, n=1, cutoff=NEAR_MISS_RATIO)
        if close:
            found[cell] = close[0]
    return found


def resembled_table(table: str, columns: list[str]) -> str | None:
    """Another table whose required columns are all present and which matches more columns."""
    present = set(columns)
    own = len(present & set(TABLES[table].column_names))
    for name, spec in TABLES.items():
        if name == table or not set(spec.required_columns) <= present:
            continue
        if len(present & set(spec.column_names)) > own:
            return name
    return None
