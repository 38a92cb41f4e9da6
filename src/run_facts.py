"""The facts of one run, written once and read here: export date, horizon, as-of dates, split.

Each fact has one writer:
- ingest decides the export date (`data/interim/manifest.json`);
- features records the export date it used, the label horizon and the as-of dates in
  `reports/features_summary.json` (`features_facts`);
- train records the split, and what it trained, in `models/train_summary.json`.

Every later stage reads them through `read_facts` / `read_train_summary`, never by parsing
the files itself, so no stage can re-derive a fact differently.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from src.errors import SafetynetError
from src.models.split import Split

TRAIN_SUMMARY = "train_summary.json"
MANIFEST = "manifest.json"
_TRAIN_KEYS = ("split", "features", "categorical_features")


@dataclass(frozen=True)
class RunFacts:
    export_date: dt.date
    horizon_days: int
    as_of_dates: tuple[dt.date, ...]
    split: Split | None = None  # None before train

    def observed_dates(self) -> tuple[dt.date, ...]:
        """As-of dates whose whole label window ends on or before the export date."""
        horizon = dt.timedelta(days=self.horizon_days)
        return tuple(d for d in self.as_of_dates if d + horizon <= self.export_date)


def read_stage_json(path: Path, stage: str) -> dict:
    """A JSON file another stage wrote; a missing or broken one names the stage to rerun."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SafetynetError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})") from None
    except json.JSONDecodeError as exc:
        raise SafetynetError(f"{path}: not valid JSON ({exc}); rerun dvc repro {stage}") from None


def read_monitoring_alerts(monitoring_dir) -> list[str]:
    """The crossed thresholds of the monitoring stage (reports/monitoring/monitoring.json), for
    the banners on the model card and the watchlist index; no folder given = none."""
    if monitoring_dir is None:
        return []
    return [str(line) for line in read_stage_json(Path(monitoring_dir) / "monitoring.json", "monitoring")["alerts"]]


def _date(raw, path: Path, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise SafetynetError(f"{path}: '{key}' is not a date ({raw!r}); rerun the pipeline") from None


def read_export_date(interim_dir: Path) -> dt.date:
    """The export date ingest decided."""
    path = Path(interim_dir) / MANIFEST
    manifest = read_stage_json(path, "ingest")
    if "export_date" not in manifest:
        raise SafetynetError(f"{path}: no 'export_date'; rerun `dvc repro ingest`")
    return _date(manifest["export_date"], path, "export_date")


def features_facts(export_date: dt.date, horizon_days: int, as_of_dates) -> dict:
    """The run-fact entries of features_summary.json."""
    return {
        "export_date": export_date.isoformat(),
        "horizon_days": int(horizon_days),
        "as_of_dates": [d.isoformat() for d in as_of_dates],
    }


def read_train_summary(models_dir: Path) -> dict:
    """models/train_summary.json, checked for the entries every reader relies on."""
    path = Path(models_dir) / TRAIN_SUMMARY
    summary = read_stage_json(path, "train")
    missing = [key for key in _TRAIN_KEYS if key not in summary]
    if missing:
        raise SafetynetError(f"{path}: no '{missing[0]}' entry; retrain (dvc repro train)")
    return summary


def read_facts(features_summary: Path, models_dir: Path | None = None) -> RunFacts:
    """The run facts from features_summary.json, plus the split when `models_dir` is given."""
    path = Path(features_summary)
    summary = read_stage_json(path, "features")
    missing = [k for k in ("export_date", "horizon_days", "as_of_dates") if k not in summary]
    if missing:
        raise SafetynetError(f"{path}: no '{missing[0]}' entry; rerun `dvc repro features`")
    split = Split.from_dict(read_train_summary(models_dir)["split"]) if models_dir else None
    return RunFacts(
        export_date=_date(summary["export_date"], path, "export_date"),
        horizon_days=int(summary["horizon_days"]),
        as_of_dates=tuple(_date(d, path, "as_of_dates") for d in summary["as_of_dates"]),
        split=split,
    )
