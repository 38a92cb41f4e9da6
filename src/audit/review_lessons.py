"""What the reviews teach (issue 15): pure aggregates of casework_reviews against the lists.

A flag is a child above their director's cut (`capacity.director_cut`, risk alone) on the list
of a scored month (explanations' as-of dates). A review answers the latest flag of its child
on or before the review date, so a review of a child never flagged in those months is counted
as `unlinked` and left out of the rest. Aggregates only: no child, no note, and directors as
counts (the distribution of their coverage per county), never by name or id.

- coverage: per county and month, flagged children and those reviewed on or after the flag
  (up to the next scored month, or any time after the latest one);
- days from flag to review: median and quartiles of the first review after each flag;
- confirmed precision by risk band (`watchlist.risk_bands` on the calibrated score at the
  flag): of the reviews where the child was reached (every outcome but `unreachable`), the
  share confirmed (`visited_risk`, `referred`, `already_known`), beside the band's mean
  calibrated probability;
- services referred per protection system (the flag's `primary_system`), counts per code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.delivery.capacity import director_cut

CONFIRMED = ("visited_risk", "referred", "already_known")  # a reached child whose risk was real
NOT_REACHED = ("unreachable",)
BANDS = ("low", "medium", "high")


def flags_of(scored: pd.DataFrame, per_caseworker: int) -> pd.DataFrame:
    """Children above their director's cut per as_of (`scored`: child_pid, as_of, score,
    county_code, caseworker_id, primary_system)."""
    parts = [director_cut(month, per_caseworker) for _, month in scored.groupby("as_of", sort=True)]
    if not parts:
        return scored.iloc[:0].assign(above_cut=pd.Series(dtype=bool))
    cut = pd.concat(parts, ignore_index=True)
    return cut.loc[cut["above_cut"], ["child_pid", "as_of", "score", "county_code", "caseworker_id",
                                      "primary_system"]].reset_index(drop=True)  # fmt: skip


def link(flags: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Each review with the latest flag of its child on or before the review date (NaT when none)."""
    left = reviews.assign(review_date=pd.to_datetime(reviews["review_date"]).astype("datetime64[us]"))
    left = left.sort_values("review_date", kind="stable").reset_index(drop=True)
    right = flags.assign(flag_date=pd.to_datetime(flags["as_of"]).astype("datetime64[us]"))
    right = right.sort_values("flag_date", kind="stable")
    right = right[["child_pid", "flag_date", "score", "county_code", "caseworker_id", "primary_system"]]
    linked = pd.merge_asof(left.drop(columns=["caseworker_id"], errors="ignore"), right, left_on="review_date",
                           right_on="flag_date", by="child_pid", direction="backward")  # fmt: skip
    return linked


def band_of(scores: pd.Series, thresholds) -> pd.Series:
    return pd.Series(np.array(BANDS, dtype=object)[np.searchsorted(np.asarray(thresholds), scores, side="right")],
                     index=scores.index)  # fmt: skip


def coverage(flags: pd.DataFrame, linked: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Per (county, month): flagged, reviewed, share; and per county the distribution of
    their directors' coverage (counts only)."""
    answered = linked.dropna(subset=["flag_date"])[["child_pid", "flag_date"]].drop_duplicates()
    answered["reviewed"] = True
    table = flags.assign(flag_date=pd.to_datetime(flags["as_of"]).astype("datetime64[us]")).merge(
        answered, on=["child_pid", "flag_date"], how="left")  # fmt: skip
    table["reviewed"] = table["reviewed"].astype("boolean").fillna(False).astype(bool)
    by_county = table.groupby(["county_code", "flag_date"], sort=True).agg(
        flagged=("child_pid", "size"), reviewed=("reviewed", "sum"))  # fmt: skip
    counties = [{"county_code": str(c), "as_of": d.date().isoformat(), "flagged": int(r["flagged"]),
                 "reviewed": int(r["reviewed"]), "share": round(float(r["reviewed"] / r["flagged"]), 6)}
                for (c, d), r in by_county.iterrows()]  # fmt: skip
    per_director = table.groupby(["county_code", "flag_date", "caseworker_id"]).agg(
        flagged=("child_pid", "size"), reviewed=("reviewed", "sum"))  # fmt: skip
    per_director["share"] = per_director["reviewed"] / per_director["flagged"]
    directors = []
    for (county, date), group in per_director.groupby(level=["county_code", "flag_date"], sort=True):
        share = group["share"]
        directors.append({
            "county_code": str(county), "as_of": date.date().isoformat(), "directors": int(len(group)),
            "none_reviewed": int((share == 0).sum()), "all_reviewed": int((share == 1).sum()),
            "median_share": round(float(share.median()), 6),
        })  # fmt: skip
    return counties, directors


def days_to_review(linked: pd.DataFrame) -> dict:
    """Days from a flag to its first review: count, median, quartiles (None without reviews)."""
    first = linked.dropna(subset=["flag_date"]).groupby(["child_pid", "flag_date"])["review_date"].min()
    days = (first - first.index.get_level_values("flag_date")).dt.days.to_numpy(dtype=float) if len(first) else []
    if not len(days):
        return {"n": 0, "median": None, "p25": None, "p75": None}
    p25, median, p75 = np.percentile(days, [25, 50, 75])
    return {"n": int(len(days)), "median": float(median), "p25": float(p25), "p75": float(p75)}


def precision_by_band(linked: pd.DataFrame, thresholds) -> list[dict]:
    """Per risk band: reviews where the child was reached, confirmed share, mean calibrated score."""
    reached = linked.dropna(subset=["flag_date"])
    reached = reached[~reached["outcome"].isin(NOT_REACHED)]
    bands = band_of(reached["score"], thresholds)
    rows = []
    for band in BANDS:
        part = reached[bands == band]
        rows.append({
            "band": band, "reached": int(len(part)),
            "confirmed": int(part["outcome"].isin(CONFIRMED).sum()),
            "confirmed_precision": round(float(part["outcome"].isin(CONFIRMED).mean()), 6) if len(part) else None,
            "mean_calibrated": round(float(part["score"].mean()), 6) if len(part) else None,
        })  # fmt: skip
    return rows


def services_by_system(linked: pd.DataFrame) -> list[dict]:
    """Referred reviews' service codes per protection system of the flag: counts."""
    referred = linked.dropna(subset=["flag_date"])
    referred = referred[referred["outcome"] == "referred"]
    codes = referred.assign(service=referred["services"].map(_codes)).explode("service")
    codes = codes[codes["service"].notna() & codes["service"].ne("")]
    counts = codes.groupby(["primary_system", "service"], sort=True).size()
    return [{"system": str(s), "service_code": str(c), "referrals": int(n)} for (s, c), n in counts.items()]


def _codes(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|")]
    return [str(v).strip() for v in value]


def build(scored: pd.DataFrame, reviews: pd.DataFrame, per_caseworker: int, thresholds) -> dict:
    """The whole report (pure); with no reviews it says so and every table is empty or zero."""
    flags = flags_of(scored, per_caseworker)
    linked = link(flags, reviews) if len(reviews) else reviews.assign(flag_date=pd.NaT)
    counties, directors = coverage(flags, linked if len(reviews) else linked.iloc[:0])
    n_linked = int(linked["flag_date"].notna().sum()) if len(reviews) else 0
    return {
        "has_reviews": bool(len(reviews)), "n_reviews": int(len(reviews)), "n_linked": n_linked,
        "n_unlinked": int(len(reviews)) - n_linked,
        "months": sorted({d.date().isoformat() for d in pd.to_datetime(scored["as_of"]).unique()}),
        "risk_bands": list(thresholds), "confirmed_outcomes": list(CONFIRMED),
        "coverage_by_county": counties, "directors_by_county": directors,
        "days_flag_to_review": days_to_review(linked) if len(reviews) else days_to_review(linked.iloc[:0]),
        "precision_by_band": precision_by_band(linked, thresholds) if len(reviews) else [],
        "services_by_system": services_by_system(linked) if len(reviews) else [],
    }  # fmt: skip


def metrics_of(report: dict) -> dict:
    """The small dvc metrics file."""
    flagged = sum(r["flagged"] for r in report["coverage_by_county"])
    reviewed = sum(r["reviewed"] for r in report["coverage_by_county"])
    reached = sum(r["reached"] for r in report["precision_by_band"])
    confirmed = sum(r["confirmed"] for r in report["precision_by_band"])
    return {
        "reviews": report["n_reviews"], "review_coverage": round(reviewed / flagged, 6) if flagged else 0.0,
        "confirmed_precision": round(confirmed / reached, 6) if reached else None,
        "median_days_flag_to_review": report["days_flag_to_review"]["median"],
    }  # fmt: skip
