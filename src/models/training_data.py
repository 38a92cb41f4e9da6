"""Reading training data from features.parquet: eligible rows, streamed, negatives sampled.

Only rows whose label is observed and who are not already out of a net are eligible. The
file's `label_observed` flags are checked against the run facts before anything is read.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from src.config import Params
from src.errors import SafetynetError
from src.models.scoring import prepare_features
from src.models.split import Split
from src.run_facts import RunFacts

KEYS = ["child_pid", "as_of"]
LABEL_INPUTS = ["label", "days_to_outcome", "label_observed", "already_out"]


def sample_uniform(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded uniform [0, 1) number per row from (child_pid, as_of): independent of row order."""
    key = hashlib.sha256(f"safetynet-sample-{seed}".encode()).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame[KEYS], index=False, hash_key=key).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


def sample_children(frame: pd.DataFrame, max_children: int, seed: int) -> pd.DataFrame:
    """Every row of at most `max_children` children (0 = all): those with the smallest seeded
    hash of child_pid, so the sample does not depend on row order."""
    children = pd.unique(frame["child_pid"])
    if not max_children or len(children) <= max_children:
        return frame
    key = hashlib.sha256(f"safetynet-children-{seed}".encode()).hexdigest()[:16]
    hashed = pd.util.hash_array(np.asarray(children, dtype=object), hash_key=key)
    chosen = children[np.argsort(hashed, kind="stable")[:max_children]]
    return frame.loc[frame["child_pid"].isin(chosen)]


def keep_for_training(frame: pd.DataFrame, dates, rate: float, seed: int) -> pd.Series:
    """Eligible labelled rows at `dates` (as-of dates); each negative kept with probability `rate`."""
    wanted = pd.to_datetime(pd.Series(list(dates))).dt.as_unit("us")
    eligible = (
        frame["label_observed"].astype(bool)
        & (frame["already_out"] == 0)
        & pd.to_datetime(frame["as_of"]).dt.as_unit("us").isin(wanted)
    )
    if rate >= 1.0:
        return eligible
    drop = (frame["label"] == 0) & (sample_uniform(frame, seed) >= rate)
    return eligible & ~drop


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_features(path: Path, features: list[str]) -> ds.Dataset:
    if not path.exists():
        raise SafetynetError(
            f"{path}: not found; run the features stage first (dvc repro features)"
        )
    dataset = ds.dataset(path, format="parquet")
    missing = [c for c in [*KEYS, *LABEL_INPUTS, *features] if c not in dataset.schema.names]
    if missing:
        raise SafetynetError(
            f"{path}: missing column(s) {', '.join(missing[:5])}; rebuild it with the current "
            "catalogue (dvc repro features)"
        )
    return dataset


def check_observed(dataset: ds.Dataset, facts: RunFacts, path: Path) -> None:
    """The file's `label_observed` flags must agree with the run facts (export date, horizon)."""
    table = dataset.to_table(columns=["as_of", "label_observed"])
    flags = pa.table({"as_of": table["as_of"], "obs": pc.cast(table["label_observed"], pa.int8())})
    per_date = flags.group_by("as_of").aggregate([("obs", "min"), ("obs", "max")]).to_pandas()
    if (per_date["obs_min"] != per_date["obs_max"]).any():
        raise SafetynetError(
            f"{path}: label_observed differs within one as-of date; rebuild features"
        )
    observed = sorted(pd.to_datetime(per_date.loc[per_date["obs_max"] == 1, "as_of"]).dt.date)
    if tuple(observed) != facts.observed_dates():
        raise SafetynetError(
            f"{path}: label_observed does not match the export date {facts.export_date} and the "
            f"{facts.horizon_days}-day horizon of features_summary.json; rebuild features "
            "(dvc repro features)"
        )


def read_training_rows(
    dataset: ds.Dataset,
    dates,
    params: Params,
    features: list[str],
    categories: dict[str, list[str]],
    ordered: bool = False,
) -> pd.DataFrame:
    """Eligible labelled rows, streamed in batches with negatives sampled on the way (bounds
    memory); `ordered`: sorted by KEYS, else in file order."""
    rate, seed = params.train.negative_sample_rate, params.base.seed
    frame = read_cohort_rows(dataset, dates, features, categories, labelled=True, ordered=ordered,
                             keep=lambda part: keep_for_training(part, dates, rate, seed))  # fmt: skip
    if frame.empty:
        raise SafetynetError("features.parquet: no eligible labelled rows to train on")
    return frame


def read_cohort_rows(
    dataset: ds.Dataset,
    dates,
    features: list[str],
    categories: dict[str, list[str]],
    labelled: bool = False,
    keep=None,
    ordered: bool = False,
) -> pd.DataFrame:
    """Rows of children not already out at `dates` (only label-observed ones when `labelled`),
    streamed in batches; `keep(batch)` may drop rows on the way (a boolean mask over the
    batch's KEYS and LABEL_INPUTS). `ordered`: sorted by KEYS, else in file order.

    The rows are gathered as Arrow columns (compact) and become pandas one column at a time,
    so a million children's history is never held twice."""
    as_of_type = dataset.schema.field("as_of").type
    wanted = pa.array([pd.Timestamp(d) for d in dates], type=as_of_type)
    condition = pc.field("as_of").isin(wanted) & (pc.field("already_out") == 0)
    if labelled:
        condition &= pc.field("label_observed")
    columns = [*KEYS, *LABEL_INPUTS, *features]
    # one batch read ahead: Arrow's default read-ahead holds gigabytes of decoded row groups
    scanner = dataset.scanner(columns=columns, filter=condition, batch_size=1 << 18,
                              batch_readahead=1, fragment_readahead=1)  # fmt: skip
    batches = []
    for batch in scanner.to_batches():
        if keep is not None:
            mask = keep(batch.select([*KEYS, *LABEL_INPUTS]).to_pandas())
            batch = batch.filter(pa.array(np.asarray(mask, dtype=bool)))
        batches.append(batch)
    table = pa.Table.from_batches(batches, schema=scanner.projected_schema)
    del batches
    if ordered:
        order = pc.sort_indices(table.select(KEYS), sort_keys=[(k, "ascending") for k in KEYS])
        arrays = table.columns
        del table
        for i, array in enumerate(arrays):  # one column at a time: the old one is freed
            arrays[i] = array.take(order)
            del array
        table = pa.table(arrays, names=columns)
        del arrays
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    return frame.assign(**{c: _fixed(frame[c], categories[c]) for c in categories})


def _fixed(values: pd.Series, categories: list[str]) -> pd.Categorical:
    return prepare_features(values.to_frame(), [values.name], {values.name: categories})[
        values.name
    ]


def eligible_counts(dataset: ds.Dataset, split: Split) -> dict[str, dict[str, float]]:
    """Rows, positives and prevalence per period before any sampling (the test period too)."""
    out = {}
    as_of_type = dataset.schema.field("as_of").type
    for name in ("train", "test"):
        dates = pa.array([pd.Timestamp(d) for d in getattr(split, name)], type=as_of_type)
        condition = (
            pc.field("as_of").isin(dates)
            & pc.field("label_observed")
            & (pc.field("already_out") == 0)
        )
        labels = dataset.to_table(columns=["label"], filter=condition)["label"]
        rows, positives = len(labels), int(pc.sum(labels).as_py() or 0)
        out[name] = {
            "rows": rows,
            "positives": positives,
            "prevalence": positives / rows if rows else math.nan,
        }
    return out
