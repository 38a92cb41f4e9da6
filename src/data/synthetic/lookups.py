"""The optional name lookups of the synthetic export: a child director per village and the villages.

The generator's caseworker_id is ``CW<community_code>`` (one child director per village), so
`caseworkers` holds one row per village with a child: a plausible Chinese name (a share
`hostile_rate` CSV/HTML-hostile, like the children's) and a mobile number; `communities`
names each such village ``XX村`` with its county. Only villages with a registered child are
listed, so every county in the lookup is in the registry. Seeded by its own random stream.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from src.data.synthetic.providers import providers_table
from src.data.synthetic.registry import Registry, draw_names

VILLAGE_CHARS = list(
    "东西南北上下大小新旧前后高桥河湾坪坝沟岭山石柳杨李王张刘陈黄马龙凤花桃杏枣松竹梅兴旺和平安宁丰乐"
)
LOOKUP_NAMES = ("caseworkers", "communities")
OPTIONAL_NAMES = (*LOOKUP_NAMES, "service_providers")  # written only when their param is on


def optional_tables(registry: Registry, params, export_end: np.datetime64, streams: dict) -> dict[str, pa.Table]:
    """The optional tables switched on: the name lookups (synthetic.lookups) and the service
    directory (synthetic.service_providers, src.data.synthetic.providers)."""
    syn = params.synthetic
    tables = lookup_tables(registry, syn.hostile_name_rate, streams["lookups"]) if syn.lookups else {}
    if syn.service_providers:
        tables["service_providers"] = providers_table(
            registry, params.base.children_per_caseworker, syn.start_date, export_end, streams["providers"]
        )
    return tables


def lookup_tables(registry: Registry, hostile_rate: float, rng) -> dict[str, pa.Table]:
    """{"caseworkers": caseworker_id, name, phone; "communities": community_code, name, county_code}."""
    communities, first_child = np.unique(registry.community, return_index=True)
    codes = registry.community_codes[communities]
    n = len(codes)
    chars = np.array(VILLAGE_CHARS)
    villages = np.char.add(
        np.char.add(chars[rng.integers(0, len(chars), n)], chars[rng.integers(0, len(chars), n)]),
        "村",
    )
    phones = np.char.add("13", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9))
    directors = draw_names(n, hostile_rate, rng)
    return {
        "caseworkers": pa.table(
            {
                "caseworker_id": pa.array(np.char.add("CW", codes).tolist(), pa.string()),
                "name": pa.array(directors.tolist(), pa.string()),
                "phone": pa.array(phones.tolist(), pa.string()),
            }
        ),
        "communities": pa.table(
            {
                "community_code": pa.array(codes.tolist(), pa.string()),
                "name": pa.array(villages.tolist(), pa.string()),
                "county_code": pa.array(
                    registry.county_codes[registry.county[first_child]].tolist(), pa.string()
                ),
            }
        ),
    }
