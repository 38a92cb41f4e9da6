"""The referrals stage: listed children's needs matched to the service directory, per county.

Reads explanations.parquet and data/interim (the registry, identity, the name lookups and the
optional `service_providers` directory), takes the children above each child director's cut
(`src.delivery.watchlist.build_watchlists`, the lists the watchlist stage hands out), turns
their shown reasons into needs (`src.delivery.services.referred_codes`, primary first) and
matches them (`src.delivery.matching`) to the providers active on the scoring date
(active_from <= as_of <= active_to, a missing end open). The plan is checked before anything
is written (`matching.check_plan`: every referral points to a listed child, no provider over
capacity, none outside its coverage, needs = matched + unmet per county and service).

Writes, each folder replaced whole:

- data/referrals/ (identity: never under reports/): plan.parquet, directory.parquet and
  summary.json (`src.delivery.referral_plan`, read by the watchlist stage), and per county
  `<county>/referrals.{csv,xlsx}` for the child directors (the XLSX has a sheet per director)
  and `<county>/providers/<provider>.{csv,xlsx}`, each provider's own referred children only:
  name, village, their child director and phone (the contract holds no guardian contact),
  the need and the reasons shown (`src.delivery.referral_files`);
- reports/services/ (no identity, no contact): services.json (directory state, totals,
  reconciliation), unmet_need.csv (county x system x service) and providers.csv
  (utilisation), small cells suppressed by the fairness report's rule
  (`src.delivery.suppression`, fairness.min_group_size).

Without a directory (or with none of its rows valid) every need is unmet, the watchlist shows
the generic service, and services.json says which (`referral_plan.DIRECTORY_STATES`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from src.atomic import atomic_dir, write_json, write_parquet
from src.data import service_vocabulary as vocabulary
from src.data.contract import SERVICE_PROVIDERS
from src.delivery import matching
from src.delivery.referral_files import write_county
from src.delivery.referral_plan import (
    DIRECTORY_COLUMNS,
    DIRECTORY_FILE,
    PLAN_COLUMNS,
    PLAN_FILE,
    SUMMARY_FILE,
    provider_table,
    unmet_table,
)
from src.delivery.services import referred_codes
from src.delivery.suppression import suppress
from src.delivery.watchlist import (
    CHILD_COLUMNS,
    build_watchlists,
    check_served,
    read_interim,
    read_names,
)
from src.errors import SafetynetError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- core


def needs_frame(listed: pd.DataFrame) -> pd.DataFrame:
    """One row per listed child x referred service (matching.NEED_COLUMNS), need_rank 0 = primary."""
    codes = listed["systems"].fillna("").map(referred_codes)
    frame = listed[["child_pid", "county_code", "community_code", "score"]].assign(service_code=codes.to_numpy())
    frame = frame.explode("service_code").dropna(subset=["service_code"])
    frame["need_rank"] = frame.groupby("child_pid").cumcount()
    return frame[matching.NEED_COLUMNS].reset_index(drop=True)


def active_directory(providers: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The providers active on `as_of` (DIRECTORY_COLUMNS; lists '|'-joined, codes stripped)."""
    start, end = providers["active_from"], providers["active_to"]
    active = (start.isna() | (start <= as_of)) & (end.isna() | (end >= as_of))
    out = providers.loc[active, [*DIRECTORY_COLUMNS, "name", "contact"]].copy()
    for column in ("community_codes", "services"):
        out[column] = out[column].fillna("").map(lambda v: "|".join(x.strip() for x in v.split("|") if x.strip()))
    out["monthly_capacity"] = out["monthly_capacity"].astype(int)
    return out.sort_values("provider_id").reset_index(drop=True)


def for_matching(directory: pd.DataFrame) -> pd.DataFrame:
    """matching.PROVIDER_COLUMNS: the lists as frozensets (no villages = the whole county)."""
    return directory.assign(
        communities=directory["community_codes"].map(lambda v: frozenset(x for x in v.split("|") if x)),
        services=directory["services"].map(lambda v: frozenset(v.split("|"))),
    )[matching.PROVIDER_COLUMNS]


def build_plan(listed: pd.DataFrame, directory: pd.DataFrame, params) -> pd.DataFrame:
    """The checked referral plan (PLAN_COLUMNS), by county, child_pid and need_rank."""
    r = params.referrals
    weights = matching.Weights(r.weights.distance, r.weights.risk, r.weights.secondary, r.weights.continuity)
    providers = for_matching(directory)
    plan = matching.match(needs_frame(listed), providers, weights, r.county_fallback)
    matching.check_plan(plan, providers, listed["child_pid"], r.county_fallback)
    info = directory.set_index("provider_id")
    matched = plan["provider_id"].ne(matching.UNMET)
    plan["provider_name"] = plan["provider_id"].map(info["name"]).where(matched, "")
    plan["provider_contact"] = plan["provider_id"].map(info["contact"]).fillna("").where(matched, "")
    plan["system"] = plan["service_code"].map(lambda c: vocabulary.BY_CODE[c].system)
    plan["caseworker_id"] = plan["child_pid"].map(listed.set_index("child_pid")["caseworker_id"])
    return plan[PLAN_COLUMNS]


def services_report(plan: pd.DataFrame, directory: pd.DataFrame, state: str, as_of: str,
                    min_size: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(services.json, unmet_need.csv, providers.csv) of reports/services/: counts only, suppressed."""
    unmet = unmet_table(plan, directory)
    counts = ["needs", "matched", "unmet"]
    published = suppress(unmet, "needs", "county_code", counts, min_size)
    published["short"] = published["short"].where(published["suppressed"].eq(""), pd.NA)
    providers = suppress(provider_table(plan, directory), "referred", "county_code", ["referred"], min_size)
    providers["utilisation"] = providers["utilisation"].where(providers["suppressed"].eq(""), pd.NA)
    totals = {c: int(unmet[c].sum()) for c in counts}
    summary = {
        "as_of": as_of, "directory": state, "n_providers": len(directory),
        "totals": totals, "reconciles": totals["needs"] == totals["matched"] + totals["unmet"] == len(plan),
        "cells": len(unmet), "cells_suppressed": int(published["suppressed"].ne("").sum()),
        "cells_short": int(unmet["short"].sum()), "min_group_size": min_size,
    }  # fmt: skip
    return summary, published, providers


# ----------------------------------------------------------------------------- I/O


def read_directory(interim_dir: Path, as_of: pd.Timestamp) -> tuple[pd.DataFrame, str]:
    """The active directory and its state: absent (not in the export), empty (no valid row) or given."""
    path = interim_dir / f"{SERVICE_PROVIDERS}.parquet"
    columns = [*DIRECTORY_COLUMNS, "name", "contact", "active_from", "active_to"]
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    if not path.exists():
        return active_directory(empty, as_of), "absent"
    providers = read_interim(interim_dir, path.name, columns)
    if providers.empty:
        quarantine = interim_dir / "quarantine" / f"{SERVICE_PROVIDERS}.csv"
        given = quarantine.exists() and len(quarantine.read_text(encoding="utf-8-sig").splitlines()) > 1
        return active_directory(empty, as_of), "empty" if given else "absent"
    return active_directory(providers, as_of), "given"


def run(explanations_path, models_dir, served_dir, interim_dir, out_dir, reports_dir, params) -> dict:
    """Match, check and write data/referrals/ and reports/services/ (module docstring)."""
    explanations_path, interim_dir = Path(explanations_path), Path(interim_dir)
    check_served(Path(models_dir), Path(served_dir), params)
    if not explanations_path.exists():
        raise SafetynetError(f"{explanations_path}: not found; run `dvc repro explain` first")
    explanations = pd.read_parquet(explanations_path)
    identity = read_interim(interim_dir, "identity.parquet", ["child_pid", "child_id", "name"])
    children = read_interim(interim_dir, "children.parquet", CHILD_COLUMNS)
    ranked, _, summary = build_watchlists(explanations, identity, children, params)
    as_of = summary.attrs["as_of"]
    listed = ranked[ranked["above_cut"]].reset_index(drop=True)
    directory, state = read_directory(interim_dir, pd.Timestamp(as_of))
    plan = build_plan(listed, directory, params)
    report, unmet, providers = services_report(plan, directory, state, as_of, params.fairness.min_group_size)
    if not report["reconciles"]:
        raise SafetynetError("referrals: needs do not reconcile with matched + unmet")
    names = read_names(interim_dir)
    with atomic_dir(out_dir) as tmp:
        write_parquet(tmp / PLAN_FILE, plan)
        write_parquet(tmp / DIRECTORY_FILE, directory[DIRECTORY_COLUMNS])
        write_json(tmp / SUMMARY_FILE, report)
        for county, rows in plan.groupby("county_code", sort=True).groups.items():
            write_county(tmp / str(county), plan.loc[rows], listed, names, as_of, params.watchlist.language)
    with atomic_dir(reports_dir) as tmp:
        write_json(tmp / "services.json", report)
        unmet.to_csv(tmp / "unmet_need.csv", index=False, lineterminator="\n")
        providers.to_csv(tmp / "providers.csv", index=False, lineterminator="\n")
    log.info("referrals: %s", report)
    return report
