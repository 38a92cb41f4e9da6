"""The reviews that came back (contract table `casework_reviews`) shape the next list.

Pure core, read by `build_watchlists` (so the watchlist and the referral plan list the same
children). The reference date is the export date: every review in the export is known when
the list is handed out. Per child only the latest review counts (review_date, then file order):

- **cooldown**: latest outcome `visited_no_risk`, at most `watchlist.cooldown_days` before the
  export date, and the risk did not rise by `watchlist.cooldown_override` or more since: the
  child takes no capacity slot (ranked after every other child of the director, never above
  the cut) and is shown in the "recently reviewed" section. The risk at the review is the
  previous month's score (the list the review most likely came from; a child not scored then
  counts as not risen).
- **escalated**: latest outcome `unreachable`: listed first in the director's list (before any
  risk order), until a later review records another outcome.
- **follow-up due**: the latest review's `next_review_date` (a referral's follow-up) falls
  before the next list (export date + 1 month): shown in the "follow-up due" section and
  added to the XLSX sheet for a review, wherever the child ranks.
- **coverage**: per director, of the children above their cut on the previous month's list
  (re-cut from the previous scores), how many have a review in the month up to the export date.
- **continuity** (the referral plan): a child whose latest review is `referred` with a
  `provider_id` keeps that provider where it still has capacity (`matching`, weight continuity).

Review notes are never read here: `REVIEW_COLUMNS` leaves the `note` column in interim.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from src.data.reviews_spec import CASEWORK_REVIEWS

REVIEW_COLUMNS = ["child_pid", "review_date", "caseworker_id", "outcome", "services", "next_review_date",
                  "provider_id"]  # fmt: skip  (never `note`)
FLAGS = ("escalated", "follow_up", "cooldown")
PRIORITY = {"escalated": 1, "cooldown": -1}  # sort key within a director's list (higher first)


def list_ref(child_pids: pd.Series, list_date: str) -> pd.Series:
    """The watchlist row's reference: 16 hex chars of sha256(child_pid | list date). child_pid is
    keyed (SAFETYNET_PID_KEY), so only a row handed out on that list carries a matching reference:
    the import checks it to refuse a child who was not on that watchlist."""
    return child_pids.astype(str).map(lambda p: ref_of(p, list_date))


def ref_of(child_pid: str, list_date: str) -> str:
    return hashlib.sha256(f"{child_pid}|{list_date}".encode()).hexdigest()[:16]


def empty_reviews() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c.endswith("date") else object)
                         for c in REVIEW_COLUMNS})  # fmt: skip


def latest_reviews(reviews: pd.DataFrame) -> pd.DataFrame:
    """One row per child: the latest review (by review_date; on one day, the later file row)."""
    ordered = reviews.reset_index(drop=True).sort_values("review_date", kind="stable")
    return ordered.drop_duplicates("child_pid", keep="last").set_index("child_pid")


def review_flags(at_risk: pd.DataFrame, reviews: pd.DataFrame, export_date, cooldown_days: int,
                 override: float) -> pd.DataFrame:  # fmt: skip
    """Per at_risk row (child_pid, score, previous_score): review_flag ('' or one of FLAGS, in that
    precedence), review_priority (int), last_review (ISO date or ''), last_outcome (code or '')."""
    export = pd.Timestamp(export_date)
    latest = latest_reviews(reviews).reindex(at_risk["child_pid"].to_numpy())
    outcome = latest["outcome"].fillna("").to_numpy(dtype=object)
    date = pd.to_datetime(latest["review_date"]).to_numpy()
    age_days = (export.to_datetime64() - date) / np.timedelta64(1, "D")
    score = at_risk["score"].to_numpy(dtype=float)
    rise = score - at_risk["previous_score"].fillna(at_risk["score"]).to_numpy(dtype=float)
    cooled = (outcome == "visited_no_risk") & (age_days <= cooldown_days) & (rise < override - 1e-9)
    due_by = (export + pd.DateOffset(months=1)).to_datetime64()
    follow = pd.to_datetime(latest["next_review_date"]).to_numpy() < due_by  # NaT -> False
    flag = np.select([outcome == "unreachable", follow, cooled], list(FLAGS), "")
    last = pd.Series(date).dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object)
    return pd.DataFrame({"review_flag": flag, "review_priority": [PRIORITY.get(f, 0) for f in flag],
                         "last_review": last, "last_outcome": outcome}, index=at_risk.index)  # fmt: skip


def coverage(previous_list: pd.DataFrame, reviews: pd.DataFrame, export_date) -> pd.DataFrame:
    """Per (county_code, caseworker_id) of the previous list's children above the cut: listed,
    reviewed (a review dated in the month up to the export date), share (0 when none listed)."""
    export = pd.Timestamp(export_date)
    recent = reviews.loc[(reviews["review_date"] > export - pd.DateOffset(months=1))
                         & (reviews["review_date"] <= export), "child_pid"]  # fmt: skip
    listed = previous_list.loc[previous_list["above_cut"], ["county_code", "caseworker_id", "child_pid"]]
    listed = listed.assign(reviewed=listed["child_pid"].isin(set(recent)))
    table = listed.groupby(["county_code", "caseworker_id"]).agg(listed=("child_pid", "size"),
                                                                 reviewed=("reviewed", "sum"))  # fmt: skip
    table["share"] = (table["reviewed"] / table["listed"].where(table["listed"] > 0)).fillna(0.0)
    return table


def continuity(reviews: pd.DataFrame) -> pd.DataFrame:
    """(child_pid, provider_id) of each child whose latest review referred them to a named provider."""
    latest = latest_reviews(reviews).reset_index()
    referred = latest[(latest["outcome"] == "referred") & latest["provider_id"].fillna("").ne("")]
    pairs = referred.assign(provider_id=referred["provider_id"].str.split("|")).explode("provider_id")
    pairs["provider_id"] = pairs["provider_id"].str.strip()
    return pairs.loc[pairs["provider_id"].ne(""), ["child_pid", "provider_id"]].reset_index(drop=True)


def read_reviews(interim_dir) -> pd.DataFrame:
    """data/interim/casework_reviews.parquet without the note; empty when the export had none."""
    path = interim_dir / f"{CASEWORK_REVIEWS}.parquet"
    if not path.exists():
        return empty_reviews()
    return pd.read_parquet(path, columns=REVIEW_COLUMNS)


def read_export_date(interim_dir) -> pd.Timestamp | None:
    """The export date ingest decided (data/interim/manifest.json); None without a manifest."""
    path = interim_dir / "manifest.json"
    if not path.exists():
        return None
    return pd.Timestamp(json.loads(path.read_text(encoding="utf-8"))["export_date"])
