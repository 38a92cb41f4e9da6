"""Linkage and screening scored against the generator's true links (tests and benchmarks only).

The truth is data/synthetic/linkage_truth.parquet (src.data.synthetic.departments) plus the
registry's own records, whose person is their child_id (identity.parquet maps child_pid to it).
Pairwise: every two records in one predicted cluster is a predicted pair, every two records of
one true person a true pair; counted per cluster, never by listing pairs.
"""

from __future__ import annotations

import pandas as pd

from src.linkage.persons_spec import REGISTRY_SOURCE


def truth_records(linkage_truth: pd.DataFrame, identity: pd.DataFrame) -> pd.DataFrame:
    """unique_id -> person (and at_risk) for department and registry records."""
    departments = linkage_truth.assign(
        unique_id=linkage_truth["source"] + ":" + linkage_truth["source_person_id"]
    )[["unique_id", "person", "at_risk"]]
    at_risk = departments.groupby("person")["at_risk"].any()
    registry = pd.DataFrame(
        {
            "unique_id": REGISTRY_SOURCE + ":" + identity["child_pid"],
            "person": identity["child_id"],
        }
    )
    registry["at_risk"] = registry["person"].map(at_risk).fillna(False).astype(bool)
    return pd.concat([departments, registry], ignore_index=True)


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pairwise(linked: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Pairwise precision and recall of the clusters (linked: unique_id, child_pid)."""
    both = linked[["unique_id", "child_pid"]].merge(
        truth, on="unique_id", how="inner", validate="1:1"
    )
    predicted = _pairs(both.groupby("child_pid").size())
    true = _pairs(both.groupby("person").size())
    hits = _pairs(both.groupby(["child_pid", "person"]).size())
    return {
        "records_scored": len(both),
        "true_pairs": true,
        "predicted_pairs": predicted,
        "correct_pairs": hits,
        "precision": hits / predicted if predicted else 1.0,
        "recall": hits / true if true else 1.0,
    }


def screening(screened_pids: pd.Series, linked: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Recall over the unregistered at-risk children and precision of the screened list.

    A screened child_pid is right when its records' main true person is unregistered and at
    risk; an unregistered at-risk child is found when a screened cluster is mainly theirs.
    """
    both = linked[["unique_id", "child_pid"]].merge(truth, on="unique_id", how="inner")
    registered = set(truth.loc[truth["unique_id"].str.startswith(REGISTRY_SOURCE + ":"), "person"])
    per_person = both.groupby(["child_pid", "person"]).size().rename("n").reset_index()
    main = (  # each cluster's commonest true person (ties: the smallest), vectorised
        per_person.sort_values(["child_pid", "n", "person"], ascending=[True, False, True])
        .drop_duplicates("child_pid")
        .set_index("child_pid")["person"]
    )
    target = set(truth.loc[truth["at_risk"] & ~truth["person"].isin(registered), "person"])
    listed = main.reindex(pd.Index(screened_pids.unique())).dropna()
    right = listed[listed.isin(target)]
    return {
        "unregistered_at_risk": len(target),
        "screened": int(screened_pids.nunique()),
        "screened_right": len(right),
        "found": int(pd.Series(list(target)).isin(set(right)).sum()),
        "recall": len(set(right)) / len(target) if target else 1.0,
        "precision": len(right) / screened_pids.nunique() if len(screened_pids) else 1.0,
    }
