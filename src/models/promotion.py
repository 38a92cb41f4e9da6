"""The gate: may the model this run trained reach child directors? And the MLflow mirror.

Two decisions, kept apart on purpose:

1. The gate (DVC-tracked, `models/promotion.json`). The model in `models/` passes when, on
   the test rows, it strictly beats the practitioners' rules on `evaluate.gate_metric`, and
   its lists are not significantly worse than the plain LightGBM peer's. The peer sees the
   same features and history, so the two lists often tie within noise, and a gate that
   refused every statistical tie would refuse lists at random. So the lists are compared
   pairwise (`paired_lists`, McNemar-style): only the children one list holds and the other
   does not differ; the gate fails when the peer's exclusive picks hold significantly more
   positives (one-sided z test at `evaluate.peer_alpha`). The file names the model by its digest, so the watchlist stage can check that the
   decision it obeys is about the model it serves. It depends only on this run's data and
   params, so a fresh clone reproduces it byte for byte.
2. The mirror (MLflow alias `champion`, for consumers outside DVC). It moves to this model
   only when the gate passed *and* the model is at least as good as the current champion on
   `evaluate.gate_metric`, scored on the same test rows with the same director lists. The
   champion lives in one machine's MLflow store, so this comparison is logged to MLflow and
   the stage log, never written into a DVC output.

The pipeline itself never reads the alias: every stage uses the model in `models/`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import mlflow
import numpy as np

from src.atomic import write_json
from src.errors import SafetynetError
from src.models import tracking
from src.models.tracking import folder_digest as model_digest

log = logging.getLogger(__name__)

PROMOTION_FILE = "promotion.json"


GATE_BASELINES = ("rules", "lightgbm_peer")


def paired_lists(y: np.ndarray, model_selected: np.ndarray, peer_selected: np.ndarray) -> dict:
    """The two lists compared on the children only one of them holds (equal list sizes, so
    the difference of their positives / list size is the difference in precision)."""
    y = np.asarray(y).astype(bool)
    only_model, only_peer = model_selected & ~peer_selected, peer_selected & ~model_selected
    a, b = int((y & only_model).sum()), int((y & only_peer).sum())
    n_a, n_b = int(only_model.sum()), int(only_peer.sum())
    pooled = (a + b) / (n_a + n_b) if n_a + n_b else 0.0  # one positive rate under "no difference"
    variance = (n_a + n_b) * pooled * (1 - pooled)
    z = (a - b) / math.sqrt(variance) if variance > 0 else 0.0
    return {"model_only": n_a, "peer_only": n_b, "model_only_positive": a, "peer_only_positive": b,
            "z": z}  # fmt: skip


def gate_result(
    model_block: dict, baseline_blocks: dict, metric: str, peer: dict | None = None, alpha: float = 0.05
) -> dict:
    """The gate: strictly above the rules on `metric`; lists not significantly worse than the
    peer's (`peer` = `paired_lists`; z >= the one-sided critical value at `alpha`)."""
    model = model_block[metric]
    rivals = {name: baseline_blocks[name][metric] for name in GATE_BASELINES if name in baseline_blocks}
    rules = rivals.get("rules")
    lost = [] if model is not None and rules is not None and model > rules else ["rules"]
    critical = -NormalDist().inv_cdf(1 - alpha)
    if peer is not None and not peer["z"] >= critical:
        lost.append("lightgbm_peer")
    versus = ", ".join(f"{name} {value}" for name, value in rivals.items())
    paired = f"; lists vs the peer: z {peer['z']:.2f}, fails below {critical:.2f}" if peer else ""
    verdict = f"does not beat {', '.join(lost)}" if lost else "passes against"
    return {"metric": metric, "model": model, **rivals, "peer_lists": peer, "passed": not lost,
            "reason": f"model {metric} {model} {verdict} ({versus}{paired})"}  # fmt: skip


def write_promotion(models_dir: Path, gate: dict, test_dates: list[str]) -> dict:
    """models/promotion.json: the gate decision about exactly this model."""
    decision = {**gate, "model_digest": model_digest(models_dir), "test_as_of": list(test_dates)}
    write_json(Path(models_dir) / PROMOTION_FILE, decision)
    return decision


def read_promotion(models_dir: Path) -> dict:
    """The gate decision for the model in `models_dir`; refuses one made for another model."""
    path = Path(models_dir) / PROMOTION_FILE
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SafetynetError(f"{path}: not found; run the evaluate stage (dvc repro evaluate)") from None
    if decision.get("model_digest") != model_digest(models_dir):
        raise SafetynetError(
            f"{path}: the gate decision is about another model than the one in {models_dir}; "
            "rerun the evaluate stage (dvc repro evaluate)"
        )
    return decision


def require_passed(decision: dict, allow_failed_gate: bool) -> None:
    """Refuse to hand out a list from a model that failed the gate (unless explicitly allowed)."""
    if decision["passed"]:
        return
    if allow_failed_gate:
        log.warning("GATE FAILED (%s); serving it anyway: watchlist.allow_failed_gate is true",
                    decision["reason"])  # fmt: skip
        return
    raise SafetynetError(
        f"the model in models/ failed the evaluation gate ({decision['reason']}); no watchlist "
        "is written. Improve the model, or set watchlist.allow_failed_gate: true to override"
    )


# --- the mirror --------------------------------------------------------------------------


def mlflow_metrics(result: dict) -> dict[str, float]:
    """Pooled metrics as MLflow names (no '@': precision@5_pct -> test.precision_at_5_pct)."""
    blocks = {
        "test": result["test"],
        **{f"baseline.{b}": v for b, v in result["baselines"].items()},
    }
    flat = {
        f"{prefix}.{name.replace('@', '_at_')}": value
        for prefix, block in blocks.items()
        for name, value in block.items()
        if name != "per_month" and value is not None
    }
    flat.update(
        {
            f"ratio.{name.replace('@', '_at_')}": v
            for name, v in result["ratios"].get("model_to_oracle", {}).items()
            if v is not None
        }
    )
    flat["gate.passed"] = float(result["gate"]["passed"])
    return flat


def mirror(
    models_dir: Path,
    result: dict,
    flat_metrics: dict[str, float],
    artifacts: dict[str, Path],
    champion_metric: Callable[[object], float | None],
) -> dict:
    """Log the evaluation to the model's MLflow run; move `champion` when the gate passed and
    the model is at least as good as the current champion (`champion_metric(model)` scores a
    model on the same test rows). Returns what happened, for the log."""
    run = tracking.find_model_run(models_dir)
    if run is None:
        log.warning("this MLflow store has no run for the model in %s: evaluation not logged, "
                    "champion unchanged (rerun `dvc repro -f train` to register it)", models_dir)  # fmt: skip
        return {"alias": "unchanged", "why": "model not registered in this MLflow store"}
    gate = result["gate"]
    with mlflow.start_run(run_id=run["run_id"]):
        mlflow.log_metrics(flat_metrics)
        mlflow.set_tag("gate_passed", str(gate["passed"]).lower())
        for name, path in artifacts.items():
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=f"evaluation/{name}")
            else:
                mlflow.log_artifact(str(path), artifact_path="evaluation")
        outcome = _challenge(run, gate, champion_metric)
        mlflow.set_tags({f"champion.{k}": str(v) for k, v in outcome.items()})
    if outcome["alias"] == "moved":
        tracking.promote_champion(run["model_version"])
    log.info("champion alias: %s (%s)", outcome["alias"], outcome["why"])
    return outcome


def _challenge(run: dict, gate: dict, champion_metric: Callable[[object], float | None]) -> dict:
    if not gate["passed"]:
        return {"alias": "unchanged", "why": f"gate failed: {gate['reason']}"}
    current = tracking.load_champion()
    if current is None:
        return {"alias": "moved", "why": "there was no champion"}
    version, champion = current
    if version == run["model_version"]:
        return {"alias": "kept", "why": f"version {version} already is the champion"}
    metric, candidate = gate["metric"], gate["model"]
    theirs = champion_metric(champion)
    if theirs is None or np.isnan(theirs):
        return {"alias": "moved", "why": f"champion v{version} cannot score these test rows"}
    if candidate >= theirs:
        return {"alias": "moved", "why": f"{metric} {candidate} >= champion v{version}'s {theirs}"}
    return {"alias": "unchanged", "why": f"{metric} {candidate} < champion v{version}'s {theirs}"}
