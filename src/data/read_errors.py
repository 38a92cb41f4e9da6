"""A failure while reading a raw file -> one SafetynetError naming the file, the row when it can
be found, and the fix. The offending row's text is never echoed (it may hold personal data).

Finding the row means reading the file again with Python's csv module up to the bad record,
which happens only on this error path and stops after `LOCATE_MAX_BYTES`.
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

import pyarrow as pa

from src.errors import SafetynetError
from src.spreadsheet import printable

LOCATE_MAX_BYTES = 1 << 30
ENCODING_FIX = (
    "set data.encoding in params.yaml (utf-8, utf-8-sig or gb18030) or export again as UTF-8"
)
CSV_FIX = (
    "quote every value that contains a comma, a quote or a line break (doubling quotes inside "
    "it), close every quote, and export again"
)


def read_error(path: Path, encoding: str, exc: BaseException) -> SafetynetError:
    """The SafetynetError for `exc`, raised while reading `path` (CSV or Parquet)."""
    if isinstance(exc, UnicodeDecodeError):
        where = _decode_error_line(path, encoding)
        return SafetynetError(f"{path}: not valid {encoding} text{where}; fix: {ENCODING_FIX}")
    message = str(exc)
    fields = re.search(r"Expected (\d+) columns, got (\d+)", message)
    if fields:
        return SafetynetError(
            f"{path}: not readable as CSV: {_bad_record(path, encoding)}; fix: {CSV_FIX}"
        )
    if encoding != "parquet" and ("invalid UTF8" in message or "decode" in message.lower()):
        text_encoding = "utf-8" if "UTF8" in message else encoding
        where = _decode_error_line(path, text_encoding)
        return SafetynetError(f"{path}: not valid {text_encoding} text{where}; fix: {ENCODING_FIX}")
    if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
        return SafetynetError(
            f"{path}: found but could not be read ({type(exc).__name__}: "
            f"{printable(exc.strerror or message)}); fix: make it a readable file and export again"
        )
    first = printable(message.splitlines()[0][:120]) if message else type(exc).__name__
    return SafetynetError(f"{path}: not readable ({first}); fix: export the file again")


def unsupported_column(path: Path, column: str, type_name: str) -> SafetynetError:
    return SafetynetError(
        f"{path}: column '{printable(column)}' holds {type_name} values, not plain values; "
        f"fix: export it with one text, number or date value per cell"
    )


def _bad_record(path: Path, encoding: str) -> str:
    """Which record breaks the CSV structure, found by re-reading with the csv module."""
    if path.stat().st_size > LOCATE_MAX_BYTES:
        return "a row has a different number of fields than the header (row not located: file too large)"
    python_encoding = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
    with path.open(encoding=python_encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        row_number = first_line = 0
        try:
            width = len(next(reader))
            first_line = reader.line_num  # the header's last line
            for record in reader:
                row_number, first_line = row_number + 1, first_line + 1
                if len(record) != width:
                    return (
                        f"row {row_number} (line {first_line}) has {len(record)} fields where "
                        f"the header has {width}"
                    )
                first_line = reader.line_num
        except csv.Error as exc:
            row = f"row {row_number + 1}, line {first_line + 1}"
            if "end of data" in str(exc):
                return f"a quote opened in {row} is never closed"
            return f"{row} is malformed ({printable(exc)})"
    return "a row has a different number of fields than the header"


def _decode_error_line(path: Path, encoding: str) -> str:
    """' at byte N (line L)' for the first byte that does not decode, or ''."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset, lines = 0, 1
    with path.open("rb") as fh:
        while offset < LOCATE_MAX_BYTES:
            piece = fh.read(1 << 20)
            try:
                decoder.decode(piece, final=not piece)
            except UnicodeDecodeError as exc:
                pending = len(exc.object) - len(piece)  # bytes the decoder had buffered
                bad = offset - pending + exc.start
                lines += piece[: max(0, exc.start - pending)].count(b"\n")
                return f" at byte {bad} (line {lines})"
            if not piece:
                break
            offset += len(piece)
            lines += piece.count(b"\n")
    return ""
