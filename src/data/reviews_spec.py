"""The optional `casework_reviews` contract table: what a child director recorded after a review.

One vocabulary: the outcome codes (`OUTCOMES`, with their Chinese and English labels) are the
ones the watchlist's XLSX dropdowns offer (src.delivery.review_codes reads them from here), and
`services` holds codes of src.data.service_vocabulary. A review row is keyed by child like the
event tables, so ingest applies the same checks (unknown_child, before_birth, beyond_export_date
on `review_date`) and moves child identity to identity.parquet. `next_review_date` may lie after
the export date (a follow-up planned ahead). `note` is free text a person typed about a child:
personal, like a name, it stays in data/interim/casework_reviews.parquet, is never written to a
quarantine file, and no feature, report or MLflow run reads it. `provider_id` (optional) names
the provider a referred child was matched to (the referral plan's continuity, src.delivery.matching).
"""

from __future__ import annotations

from src.data.service_vocabulary import CODES as SERVICE_CODES
from src.data.specs import CODE, DATE, TEXT, ColumnSpec, TableSpec

CASEWORK_REVIEWS = "casework_reviews"
# code -> (Chinese label, English label); order = the dropdown's order
OUTCOMES: dict[str, tuple[str, str]] = {
    "visited_risk": ("已走访，确认存在风险", "visited - risk confirmed"),
    "visited_no_risk": ("已走访，未发现风险", "visited - no risk found"),
    "referred": ("已转介相关服务", "referred to a service"),
    "unreachable": ("无法联系到儿童或监护人", "could not reach the child or guardian"),
    "already_known": ("相关部门已在跟进", "already known to services"),
}


def reviews_table(child_id: ColumnSpec) -> TableSpec:
    """The table's spec, with the contract's own `child_id` column."""
    return TableSpec(
        CASEWORK_REVIEWS,
        False,
        (
            child_id,
            ColumnSpec("review_date", DATE, True),
            ColumnSpec("caseworker_id", TEXT, False),
            ColumnSpec("outcome", CODE, True, tuple(OUTCOMES)),
            ColumnSpec("services", CODE, False, SERVICE_CODES, list=True),
            ColumnSpec("next_review_date", DATE, False, future_ok=True),
            ColumnSpec("provider_id", TEXT, False),
            ColumnSpec("note", TEXT, False, personal=True),
        ),
        "review_date",
    )


# whole-row rule (src.data.contract.ROW_RULES): a follow-up is planned on or after the review
ROW_RULES = {
    "next_before_review": (
        "next_review_date",
        lambda df: df["next_review_date"].isna() | df["review_date"].isna()
        | (df["next_review_date"] >= df["review_date"]),
    ),
}
