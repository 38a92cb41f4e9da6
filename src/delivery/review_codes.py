"""The outcome codes a child director records after reviewing a listed child, read back by the review loop.

One definition, the contract's (`src.data.reviews_spec.OUTCOMES`, the `outcome` column of
`casework_reviews`): the XLSX dropdowns offer these labels (in the watchlist's language), the
HTML legend explains them, and `code_of` turns whatever a director picked or typed (the
code itself, or its Chinese or English label) back into the code.
"""

from __future__ import annotations

from src.data.reviews_spec import OUTCOMES

REVIEW_CODES: dict[str, tuple[str, str]] = OUTCOMES  # code -> (zh, en); order = the dropdown's order


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
