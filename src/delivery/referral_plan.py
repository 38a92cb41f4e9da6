"""The referral plan as the watchlists and reports read it: its file, its words, its aggregates.

`data/referrals/plan.parquet` (written by the referrals stage, `src.delivery.referrals`) holds
one row per need of a listed child (PLAN_COLUMNS): the service, the matched provider (name and
contact; '' = no provider with capacity) and the distance. `data/referrals/directory.parquet`
holds the active directory of the scoring date (capacity and coverage, no contact), and
`data/referrals/summary.json` says whether a directory was given (`DIRECTORY_STATES`).

`service_text` turns a child's plan rows into the watchlist's service cell; `unmet_table` and
`provider_table` are the aggregates of the county index page and of reports/services/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from src.data import service_vocabulary as vocabulary
from src.delivery.matching import UNMET
from src.errors import SafetynetError

PLAN_FILE, DIRECTORY_FILE, SUMMARY_FILE = "plan.parquet", "directory.parquet", "summary.json"
PLAN_COLUMNS = ["child_pid", "county_code", "community_code", "caseworker_id", "score", "need_rank",
                "service_code", "system", "provider_id", "provider_name", "provider_contact", "distance"]  # fmt: skip
DIRECTORY_COLUMNS = ["provider_id", "kind", "county_code", "community_codes", "services", "monthly_capacity"]
# given: matched against the directory; empty: a directory was given but no row was accepted
# (see data/interim/quarantine/service_providers.csv); absent: no directory in the export
DIRECTORY_STATES = ("given", "empty", "absent")
WORDS = {
    "zh": {"escalate": "无有接收能力的服务机构——请上报县民政部门", "sep": "；", "arrow": "→",
           "absent": "导出数据中没有服务机构目录（service_providers），以下为通用建议服务。",
           "empty": "服务机构目录中没有通过校验的记录（见隔离文件），以下为通用建议服务。"},
    "en": {"escalate": "no provider with capacity — escalate to county civil affairs", "sep": "; ", "arrow": "→",
           "absent": "No service directory (service_providers) was given: the generic services are shown.",
           "empty": "The service directory had no valid row (see its quarantine file): the generic services are shown."},
}  # fmt: skip
INDEX_HEADINGS = {
    "zh": {"title": "服务需求与未满足需求（本月）", "county": "县（市、区）", "system": "保障领域", "service": "服务",
           "needs": "需求", "matched": "已匹配", "unmet": "未满足", "capacity": "机构月接收能力", "short": "缺口",
           "yes": "是", "no": "否",
           "intro": "名单内儿童的服务需求与本县在册服务机构的匹配结果；“缺口”表示需求超出可用的接收能力，"
                    "可据此动员慈善组织和志愿服务力量。"},
    "en": {"title": "Service needs and unmet need (this month)", "county": "county", "system": "protection system",
           "service": "service", "needs": "needs", "matched": "matched", "unmet": "unmet",
           "capacity": "providers' monthly capacity", "short": "short", "yes": "yes", "no": "no",
           "intro": "Listed children's needs matched to the county's service directory; where need outruns "
                    "the capacity available, charities and volunteers can be recruited."},
}  # fmt: skip


def read_plan(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(plan, active directory, summary) from the referrals stage's folder."""
    folder = Path(folder)
    if not (folder / SUMMARY_FILE).exists():
        raise SafetynetError(f"{folder / SUMMARY_FILE}: not found; run `dvc repro referrals` first")
    summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    return pd.read_parquet(folder / PLAN_FILE), pd.read_parquet(folder / DIRECTORY_FILE), summary


def service_text(plan: pd.DataFrame, language: str) -> pd.Series:
    """child_pid -> "service → provider (contact)" per need, primary first; an unmet need reads
    "service → no provider with capacity — escalate to county civil affairs"."""
    words = WORDS[language]
    if plan.empty:
        return pd.Series(dtype=object)
    service = plan["service_code"].map(lambda c: vocabulary.wording(c, language))
    contact = plan["provider_contact"].fillna("").astype(str)
    provider = plan["provider_name"].fillna("").astype(str).where(contact.eq(""), plan["provider_name"] + " (" + contact + ")")
    target = provider.where(plan["provider_id"].ne(UNMET), words["escalate"])
    cells = (service + f" {words['arrow']} " + target).groupby(plan["child_pid"].to_numpy(), sort=True)
    return cells.agg(lambda parts: words["sep"].join(parts))


def unmet_table(plan: pd.DataFrame, directory: pd.DataFrame) -> pd.DataFrame:
    """county_code, system, service_code, needs, matched, unmet, capacity (monthly capacity of the
    county's active providers offering the service; a provider of two services counts in both),
    short (unmet > 0): every county x referred service with a need or a provider."""
    matched = plan["provider_id"].ne(UNMET)
    needs = plan.assign(matched=matched, unmet=~matched).groupby(["county_code", "service_code"])
    table = needs.agg(needs=("child_pid", "size"), matched=("matched", "sum"), unmet=("unmet", "sum"))
    offered = directory.assign(service_code=directory["services"].str.split("|")).explode("service_code")
    capacity = offered.groupby(["county_code", "service_code"])["monthly_capacity"].sum().rename("capacity")
    table = table.join(capacity, how="outer").fillna(0).astype(int).reset_index()
    table = table[table["service_code"].isin(vocabulary.REFERRED_CODES)]
    table.insert(1, "system", table["service_code"].map(lambda c: vocabulary.BY_CODE[c].system))
    table["short"] = table["unmet"] > 0
    return table.sort_values(["county_code", "system", "service_code"]).reset_index(drop=True)


def provider_table(plan: pd.DataFrame, directory: pd.DataFrame) -> pd.DataFrame:
    """provider_id, county_code, kind, services, monthly_capacity, referred, utilisation (referred /
    capacity) of every active provider, by county and provider_id."""
    referred = plan.loc[plan["provider_id"].ne(UNMET)].groupby("provider_id").size()
    table = directory[["provider_id", "county_code", "kind", "services", "monthly_capacity"]].copy()
    table["referred"] = table["provider_id"].map(referred).fillna(0).astype(int)
    table["utilisation"] = (table["referred"] / table["monthly_capacity"]).round(3)
    return table.sort_values(["county_code", "provider_id"]).reset_index(drop=True)


def watchlist_services(folder: Path, language: str) -> tuple[pd.Series, pd.DataFrame, str]:
    """For the watchlist stage: child_pid -> service cell (empty unless a directory was given),
    the unmet-need table for the index page, and the note on the directory's state."""
    plan, directory, summary = read_plan(folder)
    state = summary["directory"]
    cells = service_text(plan, language) if state == "given" else pd.Series(dtype=object)
    return cells, unmet_table(plan, directory), WORDS[language].get(state, "")
