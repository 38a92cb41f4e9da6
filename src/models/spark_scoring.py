"""Batch scoring on Spark: rows of features -> the served model's probabilities, on executors.

With ``features.engine: spark`` the explain stage scores the scoring month here: the
``CalibratedModel`` (booster, calibrator, nowcast) is broadcast once and applied by a pandas
UDF (``mapInPandas``) to each partition, so every executor runs exactly the code the pipeline
serves and the scores equal the local ones. SHAP is not computed here: it stays on the
driver, for the listed children only (``src/delivery/explain.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from src.models.scoring import CalibratedModel

KEY = "_row"  # the row's position in the frame: scores come back in any order


def score_partitions(model_holder, columns: list[str]):
    """The mapInPandas function: each pandas batch -> (row, score)."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = model_holder.value
        for batch in batches:
            proba = np.asarray(model.predict_proba(batch[columns]), dtype=np.float64)
            yield pd.DataFrame({KEY: batch[KEY].to_numpy(), "score": proba})

    return score


def spark_predict(session, model: CalibratedModel, frame: pd.DataFrame) -> np.ndarray:
    """``model.predict_proba(frame)`` computed on Spark, one score per row of ``frame``, in order."""
    if frame.empty:
        return np.empty(0)
    columns = [*model.features, *(["as_of"] if "as_of" in frame.columns else [])]  # as_of: nowcast
    rows = frame[columns].copy()
    for name in model.categories:  # Spark has no category type: codes travel as text
        rows[name] = rows[name].astype("string").astype(object)
    rows[KEY] = np.arange(len(rows), dtype=np.int64)
    holder = session.sparkContext.broadcast(model)
    try:
        scored = (
            session.createDataFrame(rows)
            .mapInPandas(score_partitions(holder, columns), schema=f"{KEY} long, score double")
            .toPandas()
        )
    finally:
        holder.unpersist()
    out = np.full(len(frame), np.nan)
    out[scored[KEY].to_numpy()] = scored["score"].to_numpy()
    return out


class SparkScoredModel:
    """A CalibratedModel whose ``predict_proba`` runs on Spark; everything else (``booster``,
    ``prepare``, ``features``: SHAP on the driver) is the model's own."""

    def __init__(self, model: CalibratedModel, session):
        self.model = model
        self.session = session

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return spark_predict(self.session, self.model, frame)
