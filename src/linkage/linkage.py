"""data/interim persons + registry -> data/linkage/ (child_pid per record, review queue) and reports/linkage.json.

The splink model (src.linkage.comparisons) scores every blocked pair; pairs at or above
`linkage.accept_probability` are links, pairs in [`review_probability`, accept) go to
data/linkage/clerical_review.csv with both records side by side (identity: it never leaves
data/linkage/). A clerk fills its `decision` column with `same` or `different`; the next run
reads the file back before replacing it (DVC keeps it: `persist`), applies the decisions and
keeps them in the new queue. Clusters and child_pids: src.linkage.clusters.

reports/linkage.json holds counts only (records per source; pairs compared, linked and sent to
review per pair of sources; clusters; registry conflicts) and the match-weight histogram, also
drawn as a figure: no name, ID number or id of any kind.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from src import figures
from src.atomic import atomic_dir, write_json
from src.data.pseudonymise import load_pid_key
from src.errors import SafetynetError
from src.linkage import clusters, comparisons, records
from src.linkage.persons_spec import REGISTRY_SOURCE
from src.spreadsheet import neutralise_formulas

log = logging.getLogger(__name__)

LINKED_FILE = "persons_linked.parquet"
REVIEW_FILE = "clerical_review.csv"
SIDE_BY_SIDE = ("source", "source_person_id", "name", "sex", "birth_date", "id_number", "county_code")  # fmt: skip
# the histogram's range of match weights (log2 Bayes factors); weights outside fall in the end bins
WEIGHT_RANGE = (-20.0, 40.0)
PAIR_KEY = ["unique_id_l", "unique_id_r"]


def score(linker, review: float, accept: float, bins: int) -> tuple[pd.DataFrame, dict]:
    """Pairs at or above `review` (ids, probability, weight) and the counts of all scored pairs."""
    predictions = linker.inference.predict()
    table = predictions.physical_name
    src = "split_part(unique_id_{}, ':', 1)"
    counts = linker.misc.query_sql(
        f"""SELECT least({src.format("l")}, {src.format("r")}) AS source_a,
                   greatest({src.format("l")}, {src.format("r")}) AS source_b,
                   count(*) AS compared,
                   sum(CASE WHEN match_probability >= {accept} THEN 1 ELSE 0 END) AS linked,
                   sum(CASE WHEN match_probability >= {review} AND match_probability < {accept}
                       THEN 1 ELSE 0 END) AS review
            FROM {table} GROUP BY 1, 2 ORDER BY 1, 2""",
        output_type="pandas",
    )
    lo, hi = WEIGHT_RANGE
    width = (hi - lo) / bins
    histogram = linker.misc.query_sql(
        f"""SELECT least(greatest(floor((match_weight - {lo}) / {width}), 0), {bins - 1}) AS bin,
                   count(*) AS pairs FROM {table} GROUP BY 1 ORDER BY 1""",
        output_type="pandas",
    )
    pairs = linker.misc.query_sql(
        f"""SELECT least(unique_id_l, unique_id_r) AS unique_id_l,
                   greatest(unique_id_l, unique_id_r) AS unique_id_r,
                   round(match_probability, 9) AS match_probability,
                   round(match_weight, 6) AS match_weight
            FROM {table} WHERE match_probability >= {review}""",
        output_type="pandas",
    )
    pairs = pairs.sort_values(PAIR_KEY, ignore_index=True)
    per_bin = np.zeros(bins, dtype=np.int64)
    per_bin[histogram["bin"].astype(int).to_numpy()] = histogram["pairs"].to_numpy()
    return pairs, {
        "by_source_pair": [
            {k: (int(v) if k not in ("source_a", "source_b") else v) for k, v in row.items()}
            for row in counts.to_dict("records")
        ],
        "match_weight_histogram": {
            "bin_edges": [lo + i * width for i in range(bins + 1)],
            "pairs": per_bin.tolist(),
        },
    }


def scored_pairs(recs: pd.DataFrame, params, scratch: str) -> tuple[pd.DataFrame, dict]:
    """Train the model and score the blocked pairs; DuckDB out of memory or spill space is one
    clear error (the blocking rules give more pairs than `linkage.memory_gb` and `temp_gb`)."""
    import duckdb

    lp = params.linkage
    try:
        api = comparisons.db_api(params, scratch)
        linker = comparisons.trained_linker(
            recs, api, params.base.seed, lp.u_max_pairs, lp.em_max_pairs
        )
        return score(linker, lp.review_probability, lp.accept_probability, lp.histogram_bins)
    except duckdb.OutOfMemoryException as exc:
        raise SafetynetError(
            f"linkage: the blocked pairs of {len(recs):,} records need more than "
            f"linkage.memory_gb ({lp.memory_gb} GB) of memory and linkage.temp_gb "
            f"({lp.temp_gb} GB) of spill; fix: raise them, or make the blocking rules in "
            "src/linkage/comparisons.py more selective (docs/linkage.md)"
        ) from exc


def review_queue(
    pairs: pd.DataFrame, recs: pd.DataFrame, decisions: pd.DataFrame, accept: float
) -> pd.DataFrame:
    """Undecided pairs in [review, accept) plus every decided pair, both records side by side."""
    queue = pairs.loc[pairs["match_probability"] < accept].merge(
        decisions, on=PAIR_KEY, how="outer"
    )
    queue["decision"] = queue["decision"].fillna("")
    side = recs.set_index("unique_id")[list(SIDE_BY_SIDE)]
    for end in ("l", "r"):
        queue = queue.join(side.add_suffix(f"_{end}"), on=f"unique_id_{end}")
    columns = ["match_probability", *(f"{c}_{e}" for c in SIDE_BY_SIDE for e in "lr"), "decision"]
    return queue.sort_values(["match_probability", *PAIR_KEY], ascending=[False, True, True])[
        PAIR_KEY + columns
    ].reset_index(drop=True)


def read_decisions(path: Path) -> pd.DataFrame:
    """The decisions a clerk wrote into the last review queue (none when there is no queue)."""
    empty = pd.DataFrame({c: pd.Series([], dtype=str) for c in [*PAIR_KEY, "decision"]})
    if not path.exists():
        return empty
    queue = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in [*PAIR_KEY, "decision"] if c not in queue]
    if missing:
        raise SafetynetError(
            f"{path}: column '{missing[0]}' missing; fix: restore the column or delete the file"
        )
    queue["decision"] = queue["decision"].str.strip().str.lower()
    bad = queue.loc[~queue["decision"].isin(("", *clusters.DECISIONS)), "decision"]
    if len(bad):
        raise SafetynetError(
            f"{path}: decision '{bad.iloc[0]}' is not one of same, different or empty; fix: correct it"
        )
    return queue.loc[queue["decision"].ne(""), [*PAIR_KEY, "decision"]].reset_index(drop=True)


def link(recs: pd.DataFrame, decisions: pd.DataFrame, params, pid_key: bytes) -> tuple:
    """(linked persons, review queue, report) for the normalised records."""
    lp = params.linkage
    if recs["source"].ne(REGISTRY_SOURCE).any():
        with tempfile.TemporaryDirectory(prefix="linkage_spill_") as scratch:
            pairs, counts = scored_pairs(recs, params, scratch)
    else:  # no department exported persons: nothing to link, every child is their own cluster
        pairs = pd.DataFrame(columns=[*PAIR_KEY, "match_probability", "match_weight"])
        counts = {"by_source_pair": [], "match_weight_histogram": {"bin_edges": [], "pairs": []}}
    joins = clusters.links(pairs, decisions, lp.accept_probability)
    linked, refused = clusters.cluster(recs, joins, pid_key)
    queue = review_queue(pairs, recs, decisions, lp.accept_probability)
    return linked, queue, {**counts, **summary(linked, refused, queue, lp)}


def summary(linked: pd.DataFrame, refused: int, queue: pd.DataFrame, lp) -> dict:
    """Counts without identity: records per source, clusters, conflicts, review queue."""
    per_cluster = linked.groupby("child_pid").agg(
        registered=("registered", "first"), sources=("source", "nunique")
    )
    return {
        "thresholds": {
            "accept_probability": lp.accept_probability,
            "review_probability": lp.review_probability,
        },
        "records_by_source": linked["source"].value_counts().sort_index().to_dict(),
        "records_linked_to_registry_by_source": linked.loc[linked["registered"], "source"]
        .value_counts()
        .sort_index()
        .to_dict(),
        "clusters": {
            "total": len(per_cluster),
            "with_registry_child": int(per_cluster["registered"].sum()),
            "without_registry_child": int((~per_cluster["registered"]).sum()),
            "spanning_several_sources": int((per_cluster["sources"] > 1).sum()),
        },
        "registry_conflicts_split": refused,
        "review_queue": {
            "pairs": len(queue),
            "decided_same": int(queue["decision"].eq(clusters.SAME).sum()),
            "decided_different": int(queue["decision"].eq(clusters.DIFFERENT).sum()),
        },
    }


def histogram_figure(report: dict, path: Path) -> None:
    hist = report["match_weight_histogram"]
    fig, ax = figures.figure(7, 4)
    edges = np.asarray(hist["bin_edges"])
    ax.bar(edges[:-1], hist["pairs"], width=np.diff(edges), align="edge", color=figures.PALETTE[0])
    ax.set_yscale("symlog")
    for key, style in (("review_probability", ":"), ("accept_probability", "--")):
        p = report["thresholds"][key]
        ax.axvline(np.log2(p / (1 - p)), color="k", linestyle=style, label=key)
    ax.set_xlabel("match weight (log2 Bayes factor)")
    ax.set_ylabel("scored pairs")
    ax.legend()
    figures.save(fig, path)


def run(interim_dir, out_dir, report_path, figure_path, params) -> dict:
    """Link the interim persons to the registry; write data/linkage/, the report and figure."""
    logging.getLogger("splink").setLevel(logging.WARNING)  # its INFO lines are per training step
    out_dir = Path(out_dir)
    decisions = read_decisions(out_dir / REVIEW_FILE)
    recs = records.read_records(Path(interim_dir))
    linked, queue, report = link(recs, decisions, params, load_pid_key().key)
    with atomic_dir(out_dir) as tmp:
        linked.to_parquet(tmp / LINKED_FILE, index=False, compression="zstd")
        queue.apply(neutralise_formulas).to_csv(
            tmp / REVIEW_FILE, index=False, encoding="utf-8-sig", lineterminator="\n"
        )
    write_json(report_path, report)
    histogram_figure(report, Path(figure_path))
    log.info(
        "linkage: %s records, %s clusters, %s pairs to review",
        len(linked),
        report["clusters"]["total"],
        len(queue),
    )
    return report
