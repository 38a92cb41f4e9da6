"""Corrected raw score (log-odds) -> calibrated probability: isotonic or Platt, as plain JSON.

The calibrator is applied to `booster raw score + offset`, where the offset undoes the
prior shift of negative down-sampling (+log(rate)) and of class weighting
(-log(scale_pos_weight)). It is fitted on the validation period only.
calibrator.json: {"method": "isotonic", "x": [...], "y": [...], "offset": o} or
{"method": "platt", "a": .., "b": .., "offset": o}; p = sigmoid(a * s + b) for Platt,
linear interpolation between the (x, y) knots (clipped at the ends) for isotonic.

Isotonic regression is a step function, so thousands of children would share one
probability and the ranking would lose the booster's resolution. Ties inside a step are
therefore broken by the raw score: the step is mixed with TIE_BREAK (1e-6) x sigmoid(raw), far below any reported precision, so every stage that ranks by the
calibrated probability ranks exactly as the booster does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from src.errors import SafetynetError

METHODS = ("isotonic", "platt")
TIE_BREAK = 1e-6


@dataclass(frozen=True)
class Calibrator:
    method: str
    offset: float
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def predict(self, corrected_raw: np.ndarray) -> np.ndarray:
        s = np.asarray(corrected_raw, dtype=np.float64)
        if self.method == "isotonic":
            stepped = np.interp(s, np.asarray(self.x), np.asarray(self.y))
            # a convex mix stays in [0, 1] and is strictly increasing in s
            return (1.0 - TIE_BREAK) * stepped + TIE_BREAK / (1.0 + np.exp(-s))
        return 1.0 / (1.0 + np.exp(-(self.a * s + self.b)))

    def to_dict(self) -> dict:
        if self.method == "isotonic":
            return {
                "method": "isotonic",
                "offset": self.offset,
                "x": list(self.x),
                "y": list(self.y),
            }
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
        return cls("platt", offset, a=float(raw["a"]), b=float(raw["b"]))


def fit_calibrator(
    method: str, corrected_raw: np.ndarray, labels: np.ndarray, offset: float
) -> Calibrator:
    """Fit the calibrator on (corrected raw score, 0/1 label) pairs of the validation period."""
    scores = np.asarray(corrected_raw, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise SafetynetError(
            "features.parquet: the validation period has only one label value, so the calibrator "
            "cannot be fitted; use more validation months (train.val_months)"
        )
    if method == "isotonic":

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
        return Calibrator(
            "isotonic",
            offset,
            x=tuple(iso.X_thresholds_.tolist()),
            y=tuple(iso.y_thresholds_.tolist()),
        )
    if method == "platt":
        # C=inf: plain maximum likelihood; two parameters need no regularisation.
        fit = LogisticRegression(C=np.inf).fit(scores.reshape(-1, 1), y)
        return Calibrator("platt", offset, a=float(fit.coef_[0, 0]), b=float(fit.intercept_[0]))
    raise SafetynetError(
        f"params.yaml: train.calibration '{method}' is not one of {', '.join(METHODS)}"
    )
