"""The measurement-bias diagnostic: is a group's life recorded as fully as everyone else's?

Under-recording cannot be seen in outcome metrics alone: the labels are true, the inputs thin.
Among the child-months that later had the outcome (so the need is the same), the recording
rate of a source is its records in the `fairness.recording_window_days` before the as-of date
per such child-month. Each group's rate is compared with the rest's, with a cluster-bootstrap
interval; a source is flagged when the ratio is below `fairness.recording_ratio` and its
interval lies below 1. Sources (`SOURCES`) are the interim tables' event rows that a records
system (school, caseworker, welfare office, rehabilitation centre) writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.audit.fairness_cells import POOLED, Cells, rate_and_reference, ratio_with_interval

# column -> (interim table, plain name): what each recording rate counts
SOURCES = {
    "records_absences": ("school_absences", "absences"),
    "records_visits": ("casework_visits", "casework visits"),
    "records_recert": ("welfare_events", "recertification events"),
    "records_rehab": ("medical_events", "rehabilitation sessions"),
}
MEASUREMENT_COLUMNS = [
    "grouping", "group", "source", "rate", "rest_rate", "ratio", "ci_low", "ci_high", "flagged",
]  # fmt: skip


def recording_rates(
    cells: Cells, keys: list[tuple[str, str]], threshold: float, level: float
) -> pd.DataFrame:
    """Per (grouping, group) in `keys` (pooled cells) and source: rate, rest's rate, ratio, interval, flag."""
    position = cells.position()
    found = [(g, v, position[(g, v, POOLED)]) for g, v in keys if (g, v, POOLED) in position]
    rows = []
    rest = np.full(len(cells.index), -1)
    for column in SOURCES:
        if column not in cells.point:
            continue
        rates = rate_and_reference(cells, column, "positives", rest)
        ratios = ratio_with_interval(rates, level)
        for grouping, group, i in found:
            ratio, low, high = ratios["ratio"][i], ratios["ci_low"][i], ratios["ci_high"][i]
            rows.append({
                "grouping": grouping, "group": group, "source": column,
                "rate": rates["point"][i], "rest_rate": rates["reference_point"][i],
                "ratio": ratio, "ci_low": low, "ci_high": high,
                "flagged": bool(np.isfinite(ratio) and ratio < threshold and high < 1),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=MEASUREMENT_COLUMNS)


def source_name(column: str) -> str:
    return SOURCES[column][1]


def plain_finding(discovery: dict, measurement: pd.DataFrame) -> str:
    """'rural children in county_code=522422: recall 0.45x the rest's; their absences are
    recorded at 0.21x the rate of others with the same outcome.' (flagged sources only)"""
    label = describe_group(discovery["grouping"], discovery["group"])
    text = f"{label}: recall {discovery['ratio']:.2f}× the rest's"
    mine = measurement[
        (measurement["grouping"] == discovery["grouping"])
        & (measurement["group"] == discovery["group"])
        & measurement["flagged"]
    ].sort_values("ratio")
    if len(mine):
        parts = [f"{source_name(r.source)} at {r.ratio:.2f}×" for r in mine.itertuples()]
        text += (
            f"; their {', '.join(parts)} the rate of others with the same outcome"
            " (recorded less: the model sees less of their need)"
        )
    else:
        text += "; no source is recorded markedly less for them than for others with the same outcome"
    return text + "."


def describe_group(grouping: str, group: str) -> str:
    """'county_code=522422, hukou=rural' for a pair, 'hukou=rural' for one attribute."""
    return ", ".join(
        f"{a}={v}" for a, v in zip(grouping.split("|"), group.split("|"), strict=True)
    )
