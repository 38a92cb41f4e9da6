"""Corrected raw score (log-odds) -> calibrated probability: isotonic, Platt or beta, as JSON.

The calibrator is applied to `booster raw score + offset`, where the offset undoes the
prior shift of negative down-sampling (+log(rate)) and of class weighting
(-log(scale_pos_weight)). It is fitted on out-of-fold scores of the latest backtest folds
(the most recent labelled months the model has not been fitted on, src/models/backtest.py).

- platt: p = sigmoid(a * s + b).
- beta (Kull et al. 2017): logit p = a * ln(q) - b * ln(1 - q) + c with q = sigmoid(s),
  a, b >= 0; it bends both tails, which Platt cannot.
- isotonic, centred (Oron & Flournoy 2017): plain isotonic regression is a step function,
  so hundreds of listed children would share one displayed probability. The knots are
  moved to the centre of each step (the outer steps keep their outer edge) and joined by
  straight lines, so the map is strictly increasing inside the fitted range.

calibrator.json: {"method": "isotonic", "x": [...], "y": [...], "offset": o},
{"method": "platt", "a": .., "b": .., "offset": o} or
{"method": "beta", "a": .., "b": .., "c": .., "offset": o}.

Ranks never depend on the calibrator's flat parts: every method is mixed with
TIE_BREAK (1e-6) x sigmoid(raw), far below any reported precision, so every stage that
ranks by the calibrated probability ranks exactly as the booster does. Remaining ties (the
same raw score) are broken by child_pid, a keyed hash, wherever a list is cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from src.errors import SafetynetError

METHODS = ("isotonic", "platt", "beta")
TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Calibrator:
    method: str
    offset: float
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    def predict(self, corrected_raw: np.ndarray) -> np.ndarray:
        s = np.asarray(corrected_raw, dtype=np.float64)
        if self.method == "isotonic":
            mapped = np.interp(s, np.asarray(self.x), np.asarray(self.y))
        elif self.method == "beta":
            mapped = _sigmoid(self.a * _log_q(s) + self.b * _log_1mq_neg(s) + self.c)
        else:
            mapped = _sigmoid(self.a * s + self.b)
        # a convex mix stays in [0, 1] and is strictly increasing in s
        return (1.0 - TIE_BREAK) * mapped + TIE_BREAK * _sigmoid(s)

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            return {"method": "isotonic", "offset": self.offset, "x": list(self.x), "y": list(self.y)}
        if self.method == "beta":
            return {"method": "beta", "offset": self.offset, "a": self.a, "b": self.b, "c": self.c}
        return {"method": "platt", "offset": self.offset, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, raw: dict, source: str = "calibrator.json") -> Calibrator:
        method = raw.get("method")
        if method not in METHODS:
            raise SafetynetError(f"{source}: method '{method}' is not one of {', '.join(METHODS)}")
        offset = float(raw.get("offset", 0.0))
        if method == "isotonic":
            return cls(
                "isotonic", offset, x=tuple(map(float, raw["x"])), y=tuple(map(float, raw["y"]))
            )
        return cls(method, offset, a=float(raw["a"]), b=float(raw["b"]), c=float(raw.get("c", 0.0)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _log_q(s: np.ndarray) -> np.ndarray:
    """ln sigmoid(s), stable for large |s|."""
    return -np.logaddexp(0.0, -s)


def _log_1mq_neg(s: np.ndarray) -> np.ndarray:
    """-ln(1 - sigmoid(s)), stable for large |s|."""
    return np.logaddexp(0.0, s)


def centred_knots(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic (x, y) knots -> one knot per step at its centre; outer steps keep their edge."""
    levels, first = np.unique(y, return_index=True)
    order = np.argsort(first)
    levels, first = levels[order], first[order]
    last = np.r_[first[1:] - 1, len(y) - 1]
    centres = (x[first] + x[last]) / 2.0
    if len(levels) > 1:
        centres[0], centres[-1] = x[first[0]], x[last[-1]]
    return centres, levels


def fit_calibrator(
    method: str, corrected_raw: np.ndarray, labels: np.ndarray, offset: float,
    negative_rate: float = 1.0,
) -> Calibrator:  # fmt: skip
    """Fit the calibrator on (corrected raw score, 0/1 label) pairs of rows the model never saw.

    Rows whose negatives were down-sampled at `negative_rate` (< 1) weigh each negative
    1 / negative_rate, so the calibrator learns the population's outcome rate, not the sample's.
    """
    scores = np.asarray(corrected_raw, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    weight = None if negative_rate >= 1.0 else np.where(y == 1, 1.0, 1.0 / negative_rate)
    if len(np.unique(y)) < 2:
        raise SafetynetError(
            "features.parquet: the calibration months have only one label value, so the "
            "calibrator cannot be fitted; use more (train.backtest.calibration_folds)"
        )
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y, sample_weight=weight)
        x, levels = centred_knots(iso.X_thresholds_, iso.y_thresholds_)
        return Calibrator("isotonic", offset, x=tuple(x.tolist()), y=tuple(levels.tolist()))
    if method == "platt":
        # C=inf: plain maximum likelihood; two parameters need no regularisation.
        fit = LogisticRegression(C=np.inf).fit(scores.reshape(-1, 1), y, sample_weight=weight)
        return Calibrator("platt", offset, a=float(fit.coef_[0, 0]), b=float(fit.intercept_[0]))
    if method == "beta":
        return _fit_beta(scores, y, offset, weight)
    raise SafetynetError(
        f"params.yaml: train.calibration '{method}' is not one of {', '.join(METHODS)}"
    )


def _fit_beta(scores: np.ndarray, y: np.ndarray, offset: float, weight: np.ndarray | None) -> Calibrator:
    """Beta calibration by maximum likelihood; a negative slope is fixed at 0 and refitted."""
    columns = np.column_stack([_log_q(scores), _log_1mq_neg(scores)])
    keep = [0, 1]
    while True:
        fit = LogisticRegression(C=np.inf).fit(columns[:, keep], y, sample_weight=weight)
        coef = dict(zip(keep, fit.coef_[0], strict=True))
        negative = [j for j, value in coef.items() if value < 0]
        if not negative or len(keep) == 1:
            break
        keep.remove(negative[0])
    a, b = (max(float(coef.get(j, 0.0)), 0.0) for j in (0, 1))
    return Calibrator("beta", offset, a=a, b=b, c=float(fit.intercept_[0]))
