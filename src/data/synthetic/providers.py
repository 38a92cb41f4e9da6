"""The optional service directory of the synthetic export (contract table `service_providers`).

A plausible county directory, built to leave need unmet (issue 16):

- county-wide providers: the civil-affairs bureau (benefit recertification, guardian
  assessment), the county hospital (medical enrolment and rehab), the minors' protection
  station (child protection); a charity for guardian assessment in about two counties of
  three, and a psychological-support charity in about half;
- local providers, fewer in rural villages (a village is rural when most of its registered
  children hold rural hukou): schools (school follow-up), township civil-affairs offices and
  health centres, and volunteer groups (psychological support, school follow-up), each serving
  its village and a neighbour;
- monthly capacity scaled to the children a county's directors list (base.children_per_caseworker
  x villages) times a rough share of listed children with each system's need (NEED_SHARE, from
  a default run), times a supply factor below 1 (SUPPLY): mental health and guardianship are
  the least served. Capacities therefore never cover every need;
- validity: every provider active from the start of the history; about 10% ended before the
  export (they must not be matched) and the rest run to the end of the next year or are open.

Contacts are mobile numbers (personal: they stay in interim and the referral files). Seeded
by its own random stream.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from src.data.synthetic.registry import Registry

NEED_SHARE = {"basic_living": 0.7, "education": 0.4, "medical": 0.37, "safety": 0.27,
              "guardianship": 0.09, "mental_health": 0.05}  # fmt: skip
SUPPLY = {"basic_living": 0.8, "education": 0.85, "medical": 0.75, "safety": 0.6,
          "guardianship": 0.45, "mental_health": 0.35}  # fmt: skip
ENDED_SHARE = 0.1


def _capacity(system: str, listed: float, share: float, rng) -> int:
    """One provider's capacity: `share` of the county's supply of `system`, jittered +-30%."""
    supply = listed * NEED_SHARE[system] * SUPPLY[system] * share
    return max(1, int(round(supply * rng.uniform(0.7, 1.3))))


def _county_rows(county: str, villages: np.ndarray, rural: np.ndarray, listed: float, rng) -> list[tuple]:
    """(name, kind, community_codes, services, capacity) of one county's providers."""
    rows = [
        ("县民政局儿童福利股", "government", "", "benefit_recertification|guardian_assessment",
         _capacity("basic_living", listed, 0.6, rng)),
        ("县人民医院", "hospital", "", "medical_enrolment_rehab", _capacity("medical", listed, 0.6, rng)),
        ("县未成年人保护工作站", "government", "", "child_protection", _capacity("safety", listed, 1.0, rng)),
    ]  # fmt: skip
    if rng.random() < 2 / 3:
        rows.append(("护苗家庭支持中心", "charity", "", "guardian_assessment", _capacity("guardianship", listed, 1.0, rng)))
    if rng.random() < 0.5:
        rows.append(("心晴青少年心理援助中心", "charity", "", "psychological_support",
                     _capacity("mental_health", listed, 0.7, rng)))  # fmt: skip
    # local providers: a village hosts one with probability p (urban) or p / 2.5 (rural)
    n = len(villages)
    for kind, name, services, system, p in (
        ("school", "中心学校", "school_follow_up", "education", 0.6),
        ("government", "乡镇民政办", "benefit_recertification", "basic_living", 0.3),
        ("hospital", "乡镇卫生院", "medical_enrolment_rehab", "medical", 0.3),
        ("volunteer", "阳光志愿服务队", "psychological_support|school_follow_up", "mental_health", 0.15),
    ):
        hosts = np.flatnonzero(rng.random(n) < np.where(rural, p / 2.5, p))
        local_share = 0.4 if system in ("basic_living", "medical") else 1.0
        for i, v in enumerate(hosts):
            served = "|".join(villages[[v, (v + 1) % n]]) if n > 1 else villages[v]
            share = local_share / max(len(hosts), 1) * (1 if system != "mental_health" else 0.3)
            cap_system = "education" if kind == "volunteer" and rng.random() < 0.5 else system
            rows.append((f"{name}{i + 1}", kind, served, services, _capacity(cap_system, listed, share, rng)))
    return rows


def providers_table(registry: Registry, per_caseworker: int, start: dt.date, export_end: np.datetime64,
                    rng) -> pa.Table:  # fmt: skip
    """The `service_providers` table: one row per provider, ids P<county><nnn>."""
    columns: dict[str, list] = {k: [] for k in ("provider_id", "name", "kind", "county_code", "community_codes",
                                                "services", "monthly_capacity", "contact", "active_from",
                                                "active_to")}  # fmt: skip
    end_of_next_year = dt.date(int(str(export_end)[:4]) + 1, 12, 31)
    for county_index, county in enumerate(registry.county_codes):
        in_county = registry.county == county_index
        communities = np.unique(registry.community[in_county])
        if not len(communities):
            continue
        rural_share = np.array([1 - registry.hukou[registry.community == c].mean() for c in communities])
        villages = registry.community_codes[communities]
        rows = _county_rows(str(county), villages, rural_share > 0.5, per_caseworker * len(communities), rng)
        for j, (name, kind, served, services, capacity) in enumerate(rows):
            ended = rng.random() < ENDED_SHARE
            columns["provider_id"].append(f"P{county}{j + 1:03d}")
            columns["name"].append(name)
            columns["kind"].append(kind)
            columns["county_code"].append(str(county))
            columns["community_codes"].append(served or None)
            columns["services"].append(services)
            columns["monthly_capacity"].append(capacity)
            columns["contact"].append("13" + str(rng.integers(0, 10**9)).zfill(9))
            columns["active_from"].append(start)
            last_month = (export_end.astype("datetime64[M]") - 2).astype("datetime64[D]").astype(object)
            columns["active_to"].append(last_month if ended else (end_of_next_year if rng.random() < 0.5 else None))
    types = {"monthly_capacity": pa.int64(), "active_from": pa.date32(), "active_to": pa.date32()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in columns.items()})
