"""The outcome codes a child director records after reviewing a listed child, read back by the review loop.

One definition: the XLSX dropdowns offer these labels (in the watchlist's language), the
HTML legend explains them, and `code_of` turns whatever a director picked or typed (the
code itself, or its Chinese or English label) back into the code.
"""

from __future__ import annotations

# code -> (Chinese label, English label); order = the dropdown's order
REVIEW_CODES: dict[str, tuple[str, str]] = {
    "visited_risk": ("已走访，确认存在风险", "visited - risk confirmed"),
    "visited_no_risk": ("已走访，未发现风险", "visited - no risk found"),
    "referred": ("已转介相关服务", "referred to a service"),
    "unreachable": ("无法联系到儿童或监护人", "could not reach the child or guardian"),
    "already_known": ("相关部门已在跟进", "already known to services"),
}


def review_labels(language: str) -> list[str]:
    """The dropdown's labels in `language` ('zh' or 'en'), in code order."""
    position = 0 if language == "zh" else 1
    return [labels[position] for labels in REVIEW_CODES.values()]


def code_of(text: str) -> str | None:
    """The code for a code or a label in either language (blanks ignored); None when unknown."""
    cleaned = str(text).strip()
    for code, labels in REVIEW_CODES.items():
        if cleaned == code or cleaned in labels:
            return code
    return None
