"""Simulated child directors: watchlists filled back (XLSX, openpyxl) from the generator's truth.

A director reviews a share `synthetic.review_loop.visit_share` of the children on their visit
list (the XLSX rows of the sections above the cut, escalated and follow-up due; the rows of
children already out are left blank). A review cannot reach the child with probability
`unreachable_share`; otherwise the risk is confirmed with the child's true probability of an
outcome in the horizon at the list's date (p_true in the export's truth.parquet, the untreated
world's), so the confirmed share among reached children estimates the mean p_true, the
quantity the calibrated score claims. A confirmed risk is referred to a service with
probability `referral_share`, else recorded as `visited_risk`; an unconfirmed one is
`visited_no_risk`. (`already_known` is never drawn: the generator has no other service.)

The outcome is written as the dropdown's label in the list's language, with a review date
(uniform over the `REVIEW_DAYS` days before `until`, never before the list date) and a note;
the next review date is left to the import (`watchlist.follow_up_days`). `safetynet reviews
import` then reads the files like any filled list, into the contract's `casework_reviews`.
A referral lowers the child's hazard from the month after the review (`interventions_of`,
`synthetic.review_loop.referral_hazard_ratio`; src/data/synthetic/interventions.py).
Every child's draws are fixed by the seed and the child's position in the files: the same
lists and seed give the same reviews. `referral_effect` runs one loop month on an oracle list
and measures what the referrals do to the labels (docs/architecture.md, "The feedback problem";
benchmarks/bench_review_loop.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

from src.atomic import atomic_path
from src.data import generate
from src.data.reviews_spec import OUTCOMES
from src.data.synthetic import interventions as ix
from src.delivery.wording import TEXT

REVIEW_DAYS = 28  # reviews fall in the four weeks before they come back
VISIT_SECTIONS = ("above_cut", "escalated", "follow_up")  # a director's visit list
NOTE = "模拟复核记录：{label}"  # a review note (personal data in real exports; synthetic here)


def draw_outcomes(p_true: np.ndarray, loop, rng) -> np.ndarray:
    """One outcome code per listed child ('' = not reviewed); four uniforms per child, always."""
    u = rng.random((len(p_true), 4))
    confirmed = u[:, 2] < p_true
    outcome = np.where(confirmed, np.where(u[:, 3] < loop.referral_share, "referred", "visited_risk"),
                       "visited_no_risk").astype(object)  # fmt: skip
    outcome[u[:, 1] < loop.unreachable_share] = "unreachable"
    outcome[u[:, 0] >= loop.visit_share] = ""
    return outcome


def review_dates(list_dates: pd.Series, until: dt.date, rng) -> pd.Series:
    """Uniform over the REVIEW_DAYS days before `until`, never before the child's list date."""
    offsets = rng.integers(1, REVIEW_DAYS + 1, size=len(list_dates))
    dates = pd.Timestamp(until) - pd.to_timedelta(offsets, unit="D")
    return pd.Series(
        np.maximum(dates, pd.to_datetime(list_dates).to_numpy()), index=list_dates.index
    )


def interventions_of(decisions: pd.DataFrame, hazard_ratio: float) -> pd.DataFrame:
    """The generator's interventions: each referred child, from the month after the review."""
    referred = decisions[decisions["outcome"] == "referred"]
    month = (pd.to_datetime(referred["review_date"]).dt.to_period("M") + 1).dt.start_time
    return pd.DataFrame({"child_id": referred["child_id"].to_numpy(), "month": month.dt.strftime("%Y-%m-%d").to_numpy(),
                         "hazard_ratio": hazard_ratio})  # fmt: skip


# ----------------------------------------------------------------------------- I/O


def _layout(header: list) -> tuple[str, dict[str, int]] | None:
    """(language, column key -> 1-based column) of a director sheet; None for other sheets."""
    for language, text in TEXT.items():
        at = {key: header.index(h) + 1 for key, h in text["columns"].items() if h in header}
        if {"section", "child_id", "review", "review_date", "review_note", "list_date"} <= set(at):
            return language, at
    return None


def fill_watchlists(paths, truth: pd.DataFrame, loop, until: dt.date, seed: int) -> pd.DataFrame:
    """Fill every director sheet of the watchlist.xlsx files in `paths` in place, as directors would.

    `truth`: the export's truth.parquet (child_id, as_of, p_true). Returns the reviews written:
    child_id, list_date, p_true, outcome, review_date (one row per reviewed child)."""
    rng = np.random.default_rng([seed, 15])
    list_date = pd.to_datetime(truth["as_of"]).dt.strftime("%Y-%m-%d")
    p_true = truth.set_index(["child_id", list_date])["p_true"]
    written = []
    for path in sorted(map(Path, paths)):
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            layout = _layout([c.value for c in sheet[1]])
            if layout is not None:
                written.append(_fill_sheet(sheet, *layout, p_true, loop, until, rng))
        with atomic_path(path) as tmp:
            book.save(tmp)
    columns = ["child_id", "list_date", "p_true", "outcome", "review_date"]
    return pd.concat(written, ignore_index=True) if written else pd.DataFrame(columns=columns)


def _fill_sheet(
    sheet, language: str, at: dict, p_true: pd.Series, loop, until, rng
) -> pd.DataFrame:
    visit = {TEXT[language]["sections"][s] for s in VISIT_SECTIONS}
    rows = [r for r in range(2, sheet.max_row + 1) if sheet.cell(r, at["section"]).value in visit]
    listed = pd.DataFrame({
        "row": rows, "child_id": [str(sheet.cell(r, at["child_id"]).value) for r in rows],
        "list_date": [pd.Timestamp(sheet.cell(r, at["list_date"]).value).strftime("%Y-%m-%d") for r in rows],
    })  # fmt: skip
    listed["p_true"] = p_true.reindex(
        pd.MultiIndex.from_frame(listed[["child_id", "list_date"]])
    ).to_numpy()
    if listed["p_true"].isna().any():
        raise ValueError(
            f"{sheet.title}: listed children without a p_true at their list date (another export?)"
        )
    listed["outcome"] = draw_outcomes(listed["p_true"].to_numpy(dtype=float), loop, rng)
    listed["review_date"] = review_dates(listed["list_date"], until, rng)
    done = listed[listed["outcome"] != ""]
    label = {code: labels[0 if language == "zh" else 1] for code, labels in OUTCOMES.items()}
    for r in done.itertuples():
        sheet.cell(r.row, at["review"]).value = label[r.outcome]  # as picked from the dropdown
        sheet.cell(r.row, at["review_date"]).value = r.review_date.to_pydatetime()
        sheet.cell(r.row, at["review_note"]).value = NOTE.format(label=label[r.outcome])
    return done.drop(columns="row")


# ----------------------------------------------------------------------------- the loop, measured


def referral_effect(params, month: int, list_share: float, seed: int) -> dict:
    """One loop month in the synthetic world, untreated and treated (same seed, `interventions`).

    The list: the top `list_share` of the cohort by p_true at month start `month` (an oracle
    list: the model's is noisier). The simulated directors review it during that month, their
    referrals lower the hazard from the next month, and the world is drawn again with them.
    Returned per group, the share with an outcome in the horizon after the next month's start
    (the label a model trains on there), in the treated world and the same children's in the
    untreated one: `referred`; `confirmed_not_referred` (reached, risk confirmed, not referred:
    the same selection, only the referral draw differs); `listed` (all); `not_listed`.
    """
    horizon, loop = params.label.horizon_days, params.synthetic.review_loop
    untreated = generate.simulated_world(params)
    registry, model, sim, _ = untreated
    starts = sim.starts
    if starts[month + 1] + horizon > sim.span_end:
        raise ValueError(f"month {month}: the next month's labels would not mature inside the span")
    truth = generate.truth_table(registry, model, sim, horizon)
    cohort = truth[truth["as_of"] == starts[month]].sort_values(
        ["p_true", "child_id"], ascending=[False, True]
    )
    listed = cohort.iloc[: int(np.ceil(list_share * len(cohort)))].reset_index(drop=True)
    rng = np.random.default_rng([seed, 16])
    listed["outcome"] = draw_outcomes(listed["p_true"].to_numpy(), loop, rng)
    days = int((starts[month + 1] - starts[month]).astype(int))
    listed["review_date"] = pd.Timestamp(starts[month]) + pd.to_timedelta(
        rng.integers(0, days, len(listed)), "D"
    )
    table = interventions_of(listed, loop.referral_hazard_ratio)
    treated = ix.splice(untreated, generate.simulated_world(params, ix.hazard_ratios(table)))
    later = cohort[["child_id"]].assign(as_of=pd.Timestamp(starts[month + 1]))
    labels = {}
    for name, (world_registry, _, world_sim, _) in (("untreated", untreated), ("treated", treated)):
        fired = generate.fired_outcomes(world_registry, world_sim)
        labels[name] = pd.Series(
            generate.realised_labels(later, fired, horizon), index=later["child_id"].to_numpy()
        )
    groups = {
        "referred": listed.loc[listed["outcome"] == "referred", "child_id"],
        "confirmed_not_referred": listed.loc[listed["outcome"] == "visited_risk", "child_id"],
        "listed": listed["child_id"],
        "not_listed": cohort["child_id"].iloc[len(listed) :],
    }
    p_true = cohort.set_index("child_id")["p_true"]
    return {
        name: {
            "children": len(ids),
            "mean_p_true": round(float(p_true[ids].mean()), 4),
            **{world: round(float(rate[ids].mean()), 4) for world, rate in labels.items()},
        }
        for name, ids in groups.items()
    }
