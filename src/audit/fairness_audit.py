"""The fairness audit: who the watchlist fails, by how much, why, and whether it lasts.

`audit_fairness(predictions, fairness, evaluate, records)` is pure (no files): `fairness` is
`params.fairness` (`src.config.Fairness`), `evaluate` is `params.evaluate` (its `top_pcts` and
`ece_bins`), `records` the recording counts per child-month that later had the outcome (see
`src.audit.fairness_measurement.SOURCES`; None = no diagnostic). Every interval is a cluster
bootstrap by child (`src.audit.cluster_bootstrap`); cells too small to publish are suppressed
across all tables (`src.audit.fairness_suppression`). `audit_to_dict` gives fairness.json.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.atomic import json_numbers
from src.audit.cluster_bootstrap import child_codes, poisson_weights
from src.audit.fairness_cells import (
    JOIN,
    POOLED,
    SERVED_WORSE,
    VERDICTS,
    measure_cells,
)
from src.audit.fairness_context import context_tables
from src.audit.fairness_discovery import discover
from src.audit.fairness_measurement import (
    SOURCES,
    plain_finding,
    recording_rates,
    thin_record_finding,
)
from src.audit.fairness_metrics import (
    CAPACITY,
    CI_LEVEL,
    PRIMARY_METRIC,
    audited_attributes,
    operating_points,
    prepare_audit_frame,
    single_attributes,
)
from src.audit.fairness_primary import choose_references, monthly_points, persistent, primary_table
from src.audit.fairness_suppression import all_groupings, cell_sizes, suppress
from src.audit.fairness_units import capacity_explains, director_fifths, unit_table
from src.config import Evaluate, Fairness

TOP_FINDINGS = 5  # plain-words findings at the top of the page


@dataclass
class FairnessAudit:
    """Everything the report shows; tidy frames, one row per number."""

    fairness: Fairness
    evaluate: Evaluate
    overall: dict
    groups: pd.DataFrame  # attribute, group, operating_point ("" = threshold-free), metric, value, ci_low, ci_high
    context: pd.DataFrame  # attribute, group, operating_point, metric, ratio (to overall), ci_low, ci_high
    primary: pd.DataFrame  # recall vs reference per group, pooled and per month, with verdicts
    persistent: pd.DataFrame
    monthly_points: pd.DataFrame  # fairlearn MetricFrame: recall and selection rate per month and group
    discoveries: pd.DataFrame
    measurement: pd.DataFrame
    findings: list[str]
    thin_records: list[str]  # the largest record shortfalls (flagged sources), in plain words
    units: pd.DataFrame  # counties, need-adjusted
    directors: pd.DataFrame  # directors pooled by fifths of need covered
    sizes: pd.DataFrame  # published cell counts (children, child-months, ...) of the shown groupings
    suppressed: pd.DataFrame  # grouping, group, month, suppressed (reason)
    references: dict

    def headline(self) -> dict:
        return headline_figures(self)


def audit_fairness(
    predictions: pd.DataFrame,
    fairness: Fairness,
    evaluate: Evaluate,
    records: pd.DataFrame | None = None,
    source: str = "predictions",
) -> FairnessAudit:
    """Suppression, primary verdicts (pooled and per month), discovery, measurement, units, context."""
    frame = prepare_audit_frame(predictions, fairness, source)
    child, n_children = child_codes(frame["child_pid"])
    weights = poisson_weights(n_children, fairness.bootstrap_replicates, fairness.bootstrap_seed)
    attributes = single_attributes(fairness)
    shown = audited_attributes(fairness)
    sizes = suppress(cell_sizes(frame, all_groupings(attributes), child), fairness.min_group_size,
                     fairness.min_positives, attributes)  # fmt: skip
    published = sizes[sizes["suppressed"] == ""]
    reportable = set(published[["grouping", "group", "month"]].itertuples(index=False, name=None))
    rows = _cell_rows(frame, records)
    columns = ["positives", "caught", "score", "listed_score", *(c for c in SOURCES if c in rows.columns)]
    cells = measure_cells(rows, all_groupings(attributes), columns, child, weights)
    in_cells = set(cells.index.itertuples(index=False, name=None))
    mask = np.array([k in reportable for k in cells.index.itertuples(index=False, name=None)])
    references = choose_references(cells, shown, reportable, fairness)
    primary = primary_table(cells, references, reportable & in_cells, fairness.tolerance, CI_LEVEL)
    with_outcome = sizes.set_index(["grouping", "group", "month"])["children_with_outcome"]
    discoveries = discover(cells, mask, with_outcome.reindex(list(cells.index.itertuples(index=False, name=None)))
                           .fillna(0).to_numpy(), fairness.tolerance[0], fairness.fdr, CI_LEVEL,
                           fairness.min_positives)  # fmt: skip
    keys = [(g, v) for g, v, m in sorted(reportable) if m == POOLED and g in shown]
    keys += [(r.grouping, r.group) for r in discoveries[discoveries["discovered"]].itertuples()]
    measurement = recording_rates(cells, list(dict.fromkeys(keys)), fairness.recording_ratio, CI_LEVEL)
    top = discoveries[discoveries["discovered"] & (discoveries["explained_by"] == "")].head(TOP_FINDINGS)
    groups, context, overall = context_tables(frame, child, weights, shown, reportable,
                                              operating_points(frame, evaluate.top_pcts), evaluate.ece_bins)
    overall.update(_missed_children(frame, child))
    units = unit_table(frame, "county_code") if "county_code" in frame.columns else pd.DataFrame()
    units = units[[("county_code", str(u), POOLED) in reportable for u in units.get("unit", [])]]
    if len(units):
        units = units.assign(reading=capacity_explains(units, fairness.tolerance[0]))
    shown_sizes = sizes[sizes["grouping"].isin(["", *shown])]
    return FairnessAudit(
        fairness=fairness, evaluate=evaluate, overall=overall, groups=groups, context=context,
        primary=primary, persistent=persistent(primary, fairness.tolerance[0]),
        monthly_points=_published_points(monthly_points(frame, shown), reportable),
        discoveries=discoveries, measurement=measurement,
        findings=[plain_finding(row, measurement) for row in top.to_dict(orient="records")],
        thin_records=_thin_records(measurement, discoveries),
        units=units.reset_index(drop=True), directors=director_fifths(frame),
        sizes=shown_sizes[shown_sizes["suppressed"] == ""].drop(columns="suppressed").reset_index(drop=True),
        suppressed=sizes.loc[sizes["suppressed"] != "", ["grouping", "group", "month", "suppressed"]]
        .reset_index(drop=True),
        references=references,
    )  # fmt: skip


def _missed_children(frame: pd.DataFrame, child: np.ndarray) -> dict:
    """Children who later fell out (in any test month), and those of them no list ever caught."""
    positive = frame["label"].to_numpy() == 1
    kids = child[positive]
    caught = np.zeros(int(child.max()) + 1 if len(child) else 0, dtype=bool)
    caught[kids[frame["selected"].to_numpy()[positive] > 0]] = True
    with_outcome = np.unique(kids)
    return {"children_with_outcome": int(len(with_outcome)), "children_missed": int((~caught[with_outcome]).sum()),
            "child_months_missed": int(positive.sum() - (frame["selected"].to_numpy()[positive] > 0).sum())}  # fmt: skip


def _thin_records(measurement: pd.DataFrame, discoveries: pd.DataFrame) -> list[str]:
    """The flagged sources with the most records missing (expected - observed), in plain words."""
    flagged = measurement[measurement["flagged"]] if len(measurement) else measurement
    top = flagged.sort_values(["missing_records", "grouping", "group"], ascending=[False, True, True])
    return [thin_record_finding(row, discoveries) for row in top.head(TOP_FINDINGS).to_dict(orient="records")]


def _cell_rows(frame: pd.DataFrame, records: pd.DataFrame | None) -> pd.DataFrame:
    """The audited rows with the summed columns: positives, caught, score, listed_score and, on
    the child-months that later had the outcome, each source's record count (0 elsewhere)."""
    label, selected = frame["label"].to_numpy(dtype=float), frame["selected"].to_numpy(dtype=float)
    rows = frame.assign(positives=label, caught=label * selected, listed_score=frame["score"] * selected)
    if records is None:
        return rows
    sources = [c for c in SOURCES if c in records.columns]
    positive = np.flatnonzero(label == 1)
    keys = frame.iloc[positive][["child_pid", "as_of"]]
    merged = keys.merge(records[["child_pid", "as_of", *sources]], on=["child_pid", "as_of"],
                        how="left", validate="one_to_one")  # fmt: skip
    for column in sources:
        counts = np.zeros(len(frame))
        counts[positive] = merged[column].fillna(0).to_numpy(dtype=float)
        rows[column] = counts
    return rows


def _published_points(points: pd.DataFrame, reportable: set) -> pd.DataFrame:
    keep = [(a, str(g), m) in reportable for a, g, m in zip(points["attribute"], points["group"],
                                                            points["month"], strict=True)]  # fmt: skip
    return points[keep].reset_index(drop=True)


# ---------------------------------------------------------------------------- summaries


def headline_figures(audit: FairnessAudit) -> dict:
    """A small flat dict for `dvc metrics show`: recall at the watchlist cut, served worse first."""
    pooled = audit.primary[audit.primary["month"] == POOLED]
    ratios = pooled["ratio"].replace([np.inf, -np.inf], np.nan).dropna()
    counts = {v.replace(" ", "_"): int((pooled["verdict"] == v).sum()) for v in VERDICTS}
    found = audit.discoveries[audit.discoveries["discovered"]] if len(audit.discoveries) else audit.discoveries
    flagged = audit.measurement[audit.measurement["flagged"]] if len(audit.measurement) else audit.measurement
    return {
        **counts,
        "primary_comparisons": int(len(pooled)),
        "recall_ratio_min": json_numbers(ratios.min()) if len(ratios) else None,
        "recall_ratio_max": json_numbers(ratios.max()) if len(ratios) else None,
        "discoveries": int(len(found)),
        "subgroups_tested": int(len(audit.discoveries)),
        "persistent": int(len(audit.persistent)),
        "sources_flagged": int(len(flagged)),
        "suppressed_cells": int(len(audit.suppressed)),
    }


def primary_violations(audit: FairnessAudit) -> pd.DataFrame:
    """Groups served worse pooled, and discovered subgroups (for fairness.fail_on_violation)."""
    pooled = audit.primary[(audit.primary["month"] == POOLED) & (audit.primary["verdict"] == SERVED_WORSE)]
    found = audit.discoveries[audit.discoveries["discovered"]]
    extra = found.rename(columns={"grouping": "attribute"})[["attribute", "group", "ratio"]]
    return pd.concat([pooled[["attribute", "group", "ratio"]], extra]).drop_duplicates(["attribute", "group"])


def audit_to_dict(audit: FairnessAudit) -> dict:
    """fairness.json: every number of the audit, NaN as null, floats rounded to 6 digits."""
    f, e = audit.fairness, audit.evaluate
    return json_numbers({
        "settings": {
            "attributes": list(single_attributes(f)), "intersections": [a.split(JOIN) for a in
                                                                         audited_attributes(f) if JOIN in a],
            "reference": f.reference, "tolerance": list(f.tolerance), "bootstrap_replicates": f.bootstrap_replicates,
            "bootstrap_seed": f.bootstrap_seed, "bootstrap": "Poisson cluster bootstrap by child",
            "ci_level": CI_LEVEL, "min_group_size": f.min_group_size, "min_positives": f.min_positives,
            "size_unit": "children", "fdr": f.fdr, "recording_window_days": f.recording_window_days,
            "recording_ratio": f.recording_ratio, "top_pcts": list(e.top_pcts), "ece_bins": e.ece_bins,
            "primary_metric": PRIMARY_METRIC, "primary_operating_point": CAPACITY,
        },
        "headline": headline_figures(audit),
        "findings": audit.findings,
        "thin_records": audit.thin_records,
        "overall": audit.overall,
        "references": audit.references,
        "primary": _records(audit.primary),
        "persistent": _records(audit.persistent),
        "monthly_points": _records(audit.monthly_points),
        "discoveries": _records(audit.discoveries),
        "measurement": _records(audit.measurement),
        "units": _records(audit.units),
        "directors": _records(audit.directors),
        "sizes": _records(audit.sizes),
        "groups": _records(audit.groups),
        "context": _records(audit.context),
        "suppressed": _records(audit.suppressed),
    })  # fmt: skip


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]  # fmt: skip
