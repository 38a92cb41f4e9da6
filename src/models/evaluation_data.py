"""Reading what the evaluate stage needs from features.parquet and interim/, and nothing more.

At a million children the labelled history holds tens of millions of child-months, so each
frame reads only its own columns and rows, with the filters pushed into the parquet scan:

- test candidates: every column the model and the baselines score, at the test as-of dates;
- train rows for the logistic and plain-LightGBM baselines: label-observed rows not already
  out before the test gap, a seeded sample of about `max_rows` of them when there are more
  (each row kept by a hash of (child_pid, as_of), decided while streaming, so the full
  history is never held);
- history for the community rate: as_of, label and the community key only;
- the generator's truth at the test as-of dates only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from src.errors import SafetynetError
from src.features import catalogue
from src.models import baselines
from src.models.training_data import KEYS, sample_uniform

COHORT_COLUMNS = ("child_pid", "as_of", "label", "label_observed", "already_out")
ATTRIBUTES = catalogue.AUDIT_ATTRIBUTES
BATCH_ROWS = 1 << 18


def _dataset(path: Path) -> ds.Dataset:
    if not Path(path).exists():
        raise SafetynetError(f"{path}: not found; run the features stage (dvc repro features)")
    return ds.dataset(path, format="parquet")


def _dates(dataset: ds.Dataset, dates) -> pa.Array:
    return pa.array([pd.Timestamp(d) for d in dates], type=dataset.schema.field("as_of").type)


def _scored(condition: pc.Expression) -> pc.Expression:
    """The population a list is drawn from: label observed, not already out."""
    return condition & pc.field("label_observed") & (pc.field("already_out") == 0)


def _read(dataset: ds.Dataset, columns, condition: pc.Expression, keep=None) -> pd.DataFrame:
    """The rows matching `condition`, in file order; `keep(keys frame)` (child_pid, as_of of a
    streamed batch) may drop rows on the way, so only the kept ones are ever held."""
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise SafetynetError(
            f"features.parquet: cannot read the column(s) evaluate needs ({', '.join(missing[:5])}); "
            "rebuild it (dvc repro features)"
        )
    scanner = dataset.scanner(columns=list(columns), filter=condition, batch_size=BATCH_ROWS,
                              batch_readahead=1, fragment_readahead=1)  # fmt: skip
    if keep is None:
        table = scanner.to_table()
    else:
        batches = [batch.filter(pa.array(np.asarray(keep(batch.select(KEYS).to_pandas()))))
                   for batch in scanner.to_batches()]  # fmt: skip
        table = pa.Table.from_batches(batches, schema=scanner.projected_schema)
    frame = table.to_pandas()
    frame["as_of"] = frame["as_of"].dt.as_unit("us")
    return frame


def load_frames(
    features_path: Path, summary: dict, max_train_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(test candidates, train rows for the baselines' fits, history for the community rate)."""
    dataset = _dataset(Path(features_path))
    features, split = list(summary["features"]), summary["split"]
    rules = (f for f, _ in baselines.RULES.values())
    test_cols = sorted({*COHORT_COLUMNS, *ATTRIBUTES, *features, *baselines.COMMUNITY_KEY, *rules})
    test = _read(dataset, test_cols, pc.field("as_of").isin(_dates(dataset, split["test"])))
    labelled = _scored(
        pc.field("as_of").isin(_dates(dataset, split["train"]))
    )  # before the test gap
    eligible = dataset.count_rows(filter=labelled)
    rate = max_train_rows / eligible if max_train_rows and eligible > max_train_rows else 1.0
    keep = None if rate >= 1.0 else (lambda part: sample_uniform(part, seed) < rate)
    train = _read(dataset, [*COHORT_COLUMNS, *features], labelled, keep)
    first_test = _dates(dataset, [min(split["test"])])[0]
    history = _read(dataset, ["as_of", "label", *baselines.COMMUNITY_KEY],
                    _scored(pc.field("as_of") < first_test))  # fmt: skip
    return test, train, history


def read_columns(features_path: Path, columns: list[str], dates) -> pd.DataFrame:
    """child_pid, as_of and `columns` at `dates` (another model's inputs)."""
    dataset = _dataset(Path(features_path))
    return _read(
        dataset, ["child_pid", "as_of", *columns], pc.field("as_of").isin(_dates(dataset, dates))
    )


def read_children(interim_dir: Path) -> pd.DataFrame:
    path = Path(interim_dir) / "children.parquet"
    if not path.exists():
        raise SafetynetError(f"{path}: not found; run the ingest stage (dvc repro ingest)")
    return pd.read_parquet(path, columns=["child_pid", "caseworker_id"])


def read_truth(interim_dir: Path, dates) -> pd.DataFrame | None:
    """The generator's truth at `dates` (None for a real export, which has none)."""
    path = Path(interim_dir) / "truth.parquet"
    if not path.exists():
        return None
    dataset = ds.dataset(path, format="parquet")
    return dataset.to_table(filter=pc.field("as_of").isin(_dates(dataset, dates))).to_pandas()
