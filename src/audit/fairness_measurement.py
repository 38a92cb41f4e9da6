"""The measurement-bias diagnostic: is a group's life recorded as fully as that of others like it?

Under-recording cannot be seen in outcome metrics alone: the labels are true, the inputs thin.
The diagnostic compares like with like. Among the child-months that later had the outcome (the
same need), a source's recording rate is its records in the `fairness.recording_window_days`
before the as-of date per child-month, and it is compared within strata of children the source
applies to in the same way (`STRATA`): absences and casework visits by age band (the youngest
have no school), rehabilitation sessions by age band, disability and category (the "disabled" category gets most),
recertification events
by age band and category (the benefit a child receives sets its recertifications). For a group
g, the expected records are, over g's outcome child-months in each stratum, the rest's rate in
that stratum; strata the rest does not have are left out of both sides. The ratio is observed
/ expected, with a cluster-bootstrap interval; a source is flagged when the ratio is below
`fairness.recording_ratio` and its interval lies below 1. Sources (`SOURCES`) are the interim
tables' event rows that a records system (school, caseworker, welfare office, rehabilitation
centre) writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.audit.fairness_cells import ALL, JOIN, OVERALL, POOLED, Cells, interval, strata_sums

# column -> (interim table, plain name): what each recording rate counts
SOURCES = {
    "records_absences": ("school_absences", "absences"),
    "records_visits": ("casework_visits", "casework visits"),
    "records_recert": ("welfare_events", "recertification events"),
    "records_rehab": ("medical_events", "rehabilitation sessions"),
}
# column -> the attributes whose strata a source applies to alike, and how the page says it
STRATA = {
    "records_absences": (("age_band",), "of the same age"),
    "records_visits": (("age_band",), "of the same age"),
    "records_recert": (("age_band", "category"), "of the same age and category"),
    "records_rehab": (("age_band", "disability", "category"), "of the same age, disability and category"),
}
MEASUREMENT_COLUMNS = [
    "grouping", "group", "source", "child_months", "rate", "expected_rate", "ratio", "ci_low", "ci_high",
    "flagged", "missing_records",
]  # fmt: skip


def observed_and_expected(records: np.ndarray, positives: np.ndarray, cell: int, overall: int):
    """Observed and expected records of `cell` over the strata the rest has (last axis = strata;
    records and positives are (..., cells, K)), and the cell's outcome child-months in them."""
    mine_r, mine_n = records[..., cell, :], positives[..., cell, :]
    rest_r, rest_n = records[..., overall, :] - mine_r, positives[..., overall, :] - mine_n
    usable = rest_n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rest_rate = np.where(usable, rest_r / np.where(usable, rest_n, 1), 0.0)
    observed = np.where(usable, mine_r, 0.0).sum(axis=-1)
    expected = (np.where(usable, mine_n, 0.0) * rest_rate).sum(axis=-1)
    return observed, expected, np.where(usable, mine_n, 0.0).sum(axis=-1)


def recording_rates(
    cells: Cells, keys: list[tuple[str, str]], threshold: float, level: float
) -> pd.DataFrame:
    """Per (grouping, group) in `keys` (pooled cells) and source: rate, expected rate, ratio, interval, flag."""
    position = cells.position()
    overall = position[(OVERALL, ALL, POOLED)]
    found = [(g, v, position[(g, v, POOLED)]) for g, v in keys if (g, v, POOLED) in position]
    rows = []
    for column, (strata, _) in STRATA.items():
        if column not in cells.point:
            continue
        point = {c: strata_sums(cells, c, strata) for c in (column, "positives")}
        for grouping, group, i in found:
            observed, expected, n = observed_and_expected(point[column][0], point["positives"][0], i, overall)
            o_b, e_b, _ = observed_and_expected(point[column][1], point["positives"][1], i, overall)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio, samples = observed / expected, o_b / e_b
            low, high = interval(samples[:, None], level)
            rows.append({
                "grouping": grouping, "group": group, "source": column, "child_months": int(round(n)),
                "missing_records": max(expected - observed, 0.0), "rate": observed / n if n else np.nan, "expected_rate": expected / n if n else np.nan,
                "ratio": ratio, "ci_low": float(low[0]), "ci_high": float(high[0]),
                "flagged": bool(np.isfinite(ratio) and ratio < threshold and high[0] < 1),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=MEASUREMENT_COLUMNS)


def source_name(column: str) -> str:
    return SOURCES[column][1]


def plain_finding(discovery: dict, measurement: pd.DataFrame) -> str:
    """'county_code=522422, hukou=rural: recall 13%; the children the list passed over fell out
    1.41x as often as their probabilities promised (the rest: 0.97x); their absences are recorded
    at 0.21x the rate of others of the same age with the same outcome.' (flagged sources only)"""
    label = describe_group(discovery["grouping"], discovery["group"])
    text = f"{label}: recall {discovery['recall']:.0%}{_promise_words(discovery)}"
    mine = measurement[
        (measurement["grouping"] == discovery["grouping"])
        & (measurement["group"] == discovery["group"])
        & measurement["flagged"]
    ].sort_values("ratio")
    if len(mine):
        parts = [f"their {source_name(r.source)} are recorded at {r.ratio:.2f}× the rate of others "
                 f"{STRATA[r.source][1]} with the same outcome" for r in mine.itertuples()]  # fmt: skip
        text += "; " + "; ".join(parts) + " (recorded less: the model sees less of their need)"
    else:
        text += "; no source is recorded markedly less for them than for others like them with the same outcome"
    return text + "."


def thin_record_finding(row: dict, discoveries: pd.DataFrame) -> str:
    """'county_code=522423, hukou=rural: absences recorded at 0.13x the rate of others of the same
    age with the same outcome; recall 40%; the children the list passed over fell out 1.05x as
    often as their probabilities promised (the rest: 0.99x) (not served significantly worse).'"""
    text = (f"{describe_group(row['grouping'], row['group'])}: {source_name(row['source'])} recorded at "
            f"{row['ratio']:.2f}× the rate of others {STRATA[row['source']][1]} with the same outcome")  # fmt: skip
    mine = discoveries[(discoveries["grouping"] == row["grouping"]) & (discoveries["group"] == row["group"])]
    if len(mine):
        d = mine.iloc[0]
        text += f"; recall {d['recall']:.0%}{_promise_words(d)} (not served significantly worse at the cut)"
    return text + "."


def _promise_words(discovery) -> str:
    """', the children the list passed over fell out 1.41x as often as their probabilities
    promised (the rest: 0.97x)' ('' without the two figures)."""
    mine, rest = discovery.get("missed_per_promised"), discovery.get("rest_missed_per_promised")
    if mine is None or rest is None or not (np.isfinite(mine) and np.isfinite(rest)):
        return ""
    return (f"; the children the list passed over fell out {mine:.2f}× as often as their probabilities "
            f"promised (the rest: {rest:.2f}×)")


def describe_group(grouping: str, group: str) -> str:
    """'county_code=522422, hukou=rural' for a pair, 'hukou=rural' for one attribute."""
    return ", ".join(
        f"{a}={v}" for a, v in zip(grouping.split(JOIN), group.split(JOIN), strict=True)
    )
