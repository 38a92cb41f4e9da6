"""Scored pairs + clerical decisions -> clusters of person records, one `child_pid` each.

A pair is a link when its match probability reaches `linkage.accept_probability`, or a clerk
decided `same`; a clerk's `different` removes it. Links join records strongest first
(probability, then ids: deterministic), and a link that would put two registry children in one
cluster is refused and counted: the cluster is split where its weakest link joined them.
A cluster holding a registry child takes that child's child_pid (so features keyed by child_pid
do not change); any other cluster gets a keyed hash of its smallest record id, never the id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.data.pseudonymise import child_pids
from src.linkage.persons_spec import REGISTRY_SOURCE

SAME, DIFFERENT = "same", "different"
DECISIONS = (SAME, DIFFERENT)


def links(pairs: pd.DataFrame, decisions: pd.DataFrame, accept: float) -> pd.DataFrame:
    """The pairs that join records: accepted or decided same, not decided different."""
    key = ["unique_id_l", "unique_id_r"]
    decided = pairs[key + ["match_probability"]].merge(
        decisions[key + ["decision"]], on=key, how="outer"
    )
    decided["match_probability"] = decided["match_probability"].fillna(0.0)
    same = decided["decision"].eq(SAME)
    keep = (decided["match_probability"].ge(accept) | same) & ~decided["decision"].eq(DIFFERENT)
    out = decided.loc[keep, key + ["match_probability"]].copy()
    out.loc[same[keep].to_numpy(), "match_probability"] = 1.0
    return out.sort_values(
        ["match_probability", *key], ascending=[False, True, True], ignore_index=True
    )


def cluster(records: pd.DataFrame, joins: pd.DataFrame, pid_key: bytes) -> tuple[pd.DataFrame, int]:
    """(unique_id, source, source_person_id, child_pid, registered), refused links."""
    ids = records["unique_id"].to_numpy()
    index = pd.Index(ids)
    parent = np.arange(len(ids))
    registered = records["source"].eq(REGISTRY_SOURCE).to_numpy().copy()

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    refused = 0
    left = index.get_indexer(joins["unique_id_l"])
    right = index.get_indexer(joins["unique_id_r"])
    for a, b in zip(left, right, strict=True):
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if registered[ra] and registered[rb]:
            refused += 1
            continue
        small, big = (ra, rb) if ra < rb else (rb, ra)
        parent[big] = small
        registered[small] |= registered[big]
    roots = np.array([root(i) for i in range(len(ids))])
    return _name_clusters(records, roots, pid_key), refused


def _name_clusters(records: pd.DataFrame, roots: np.ndarray, pid_key: bytes) -> pd.DataFrame:
    out = records[["unique_id", "source", "source_person_id"]].copy()
    out["cluster"] = roots
    is_registry = out["source"].eq(REGISTRY_SOURCE)
    registry_pid = out.loc[is_registry].groupby("cluster")["source_person_id"].first()
    first_id = out.groupby("cluster")["unique_id"].min()
    other = first_id[~first_id.index.isin(registry_pid.index)]
    hashed = pd.Series(child_pids(("link:" + other).tolist(), pid_key), index=other.index)
    names = pd.concat([registry_pid, hashed])
    out["child_pid"] = out["cluster"].map(names).astype(str)
    out["registered"] = out["cluster"].isin(registry_pid.index)
    return out.drop(columns="cluster").sort_values("unique_id", ignore_index=True)
