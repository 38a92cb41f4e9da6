"""Which contributions become reasons a child director can act on, and how they read.

Pure functions on frames and arrays; explain.py calls them. The rule (docs/architecture.md,
"Reasons"): a feature is a reason shown to a child director only when all three hold

1. its SHAP contribution raises the risk (> 0);
2. its value is a warning sign (`on_risk_side`): beyond its catalogue normal range on the
   side of its risk direction (direction +1: value > normal high; -1: value < normal low;
   an indicator's normal range is (None, 0), so 1 is the warning sign), or, for a
   categorical feature, one of its declared `risk_values` (e.g. enrollment_status
   dropped_out). A feature with neither (no direction or no normal range, no risk values)
   is never a reason; an unknown value (NaN) is never a warning sign; nor is a value whose
   catalogue `only_when` fails (days since the last payment of a child never paid);
3. its catalogue role is "risk" and it is actionable.

The top `explain.top_n_reasons` qualifying features by SHAP are shown (ties keep the model's
feature order); there is no padding with weaker ones. A child with none gets an honest line
instead (`NO_REASON`). Exposure features (being in a system: benefit status, recertification
schedule, school type ...) never become reasons; they make the context line. Background
features (age, category, guardian type, protected attributes) are neither.

Each reason reads its value with the catalogue template and, for numeric features, the
median of that feature among the scored children of the snapshot in the child's age band
(`age_band`), e.g. "近90天无故缺课 6.0 天（同龄中位 0.0 天）".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.features import catalogue

NO_REASON = {
    "zh": "没有单一记录能解释该风险，请全面复核档案",
    "en": "no single record explains this risk; review the whole file",
}
# zh measure words that follow {value} in the templates (the first one found is the unit).
ZH_UNITS = ("个上学日", "天", "次", "项", "级", "元", "岁", "个月")
NOT_IN_SYSTEM = ("never", "unknown", "no_record")  # category codes left out of the context line
# The exposure facts a director reads in one line: which systems the child is in and what
# falls due. Other exposure features (visit counts, days since the last absence ...) stay
# out of the line; the waterfall (contributions.parquet) shows them when they weigh.
CONTEXT_FEATURES = ("benefit_status", "days_until_recert_due", "school_type", "school_period")


# ----------------------------------------------------------------------------- the rule


def can_be_reason(entry: catalogue.FeatureSpec) -> bool:
    """Role risk, actionable, and a declared warning sign (directional range or risk values)."""
    declared = bool(entry.risk_values) or (entry.direction != 0 and entry.normal is not None)
    return entry.role == "risk" and entry.actionable and declared


def on_risk_side(entry: catalogue.FeatureSpec, values: pd.Series) -> np.ndarray:
    """True where the value is a warning sign (see the module docstring); NaN never is."""
    if entry.risk_values:
        return values.astype(object).isin(entry.risk_values).to_numpy()
    if entry.direction == 0 or entry.normal is None:
        return np.zeros(len(values), dtype=bool)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    low, high = entry.normal
    with np.errstate(invalid="ignore"):
        if entry.direction > 0:
            return v > high if high is not None else np.zeros(len(v), dtype=bool)
        return v < low if low is not None else np.zeros(len(v), dtype=bool)


def applies(entry: catalogue.FeatureSpec, frame: pd.DataFrame) -> np.ndarray:
    """True where the feature's `only_when` condition holds (or it has none, or the frame
    lacks the condition's feature)."""
    if entry.only_when is None or entry.only_when[0] not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    feature, values = entry.only_when
    return frame[feature].astype(object).isin(values).to_numpy()


def qualifying(X: pd.DataFrame, contrib: np.ndarray) -> np.ndarray:
    """(n x F) bool: the contributions that may be shown as reasons."""
    out = contrib > 0
    for j, name in enumerate(X.columns):
        entry = catalogue.spec(name)
        if not can_be_reason(entry):
            out[:, j] = False
        elif out[:, j].any():
            out[:, j] &= on_risk_side(entry, X[name]) & applies(entry, X)
    return out


def pick_reasons(contrib: np.ndarray, allowed: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices (n x top_n) of the largest allowed contributions, and which slots hold one."""
    masked = np.where(allowed, contrib, -np.inf)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :top_n]
    return top, np.isfinite(np.take_along_axis(masked, top, axis=1))


def warning_sign(entry: catalogue.FeatureSpec) -> str:
    """What makes the value a warning sign: risk direction and normal range, or risk values."""
    if entry.risk_values:
        return "risk values: " + ", ".join(f"`{v}`" for v in entry.risk_values)
    if entry.direction == 0:
        if entry.kind == "categorical":
            return "none"
        low, high = entry.normal or (None, None)
        usual = f"; usually ≤ {high:g}" if high is not None and low is None else ""
        return f"no direction{usual}"
    arrow = "↑ risk rises with the value" if entry.direction > 0 else "↓ risk falls with the value"
    low, high = entry.normal
    normal = f"≤ {high:g}" if low is None else (f"≥ {low:g}" if high is None else f"{low:g}..{high:g}")
    return f"{arrow}; normal {normal}"



# ----------------------------------------------------------------------------- the words


def zh_unit(entry: catalogue.FeatureSpec) -> str:
    """The measure word after {value} in the zh template ('' for rates and codes)."""
    after = entry.template_zh.split("{value}", 1)[-1].strip() if "{value}" in entry.template_zh else ""
    return next((unit for unit in ZH_UNITS if after.startswith(unit)), "")


def cohort_medians(frame: pd.DataFrame, features: list[str], band: str = "age_band") -> dict[str, pd.Series]:
    """Per numeric reason feature, its median per age band among `frame`'s rows (NaN skipped)."""
    out = {}
    for name in features:
        entry = catalogue.spec(name)
        if entry.kind == "numeric" and can_be_reason(entry):
            values = pd.to_numeric(frame[name], errors="coerce")
            out[name] = values.groupby(frame[band].astype(str), sort=True).median()
    return out


def reason_text(name: str, value, band: str | None, medians: dict[str, pd.Series], language: str) -> str:
    """The catalogue's reason, plus the age band's median when there is one."""
    text = catalogue.render_reason(name, value, language)
    median = medians.get(name, pd.Series(dtype=float)).get(band) if band is not None else None
    if median is None or pd.isna(median):
        return text
    entry = catalogue.spec(name)
    shown = catalogue.format_value(entry, median, language)
    if language == "zh":
        unit = zh_unit(entry)
        return f"{text}（同龄中位 {shown}{' ' + unit if unit else ''}）"
    return f"{text} (median at ages {band}: {shown})"


def reason_columns(
    X: pd.DataFrame, idx: np.ndarray, valid: np.ndarray, bands: pd.Series, medians: dict
) -> dict[str, np.ndarray]:
    """reason_<k>_feature / _zh / _en and no_reason, rendering each (feature, value, band) once.

    A row with no qualifying reason gets NO_REASON in reason_1_zh/en (reason_1_feature empty).
    """
    features = np.array(X.columns, dtype=object)
    band_values = bands.astype(str).to_numpy()
    columns: dict[str, np.ndarray] = {}
    for k in range(idx.shape[1]):
        columns[f"reason_{k + 1}_feature"] = np.where(valid[:, k], features[idx[:, k]], "")
        for language in ("zh", "en"):
            text = np.full(len(X), "", dtype=object)
            cache: dict = {}
            for row in np.flatnonzero(valid[:, k]):
                name = features[idx[row, k]]
                value = X[name].iat[row]
                key = (name, None if pd.isna(value) else value, band_values[row])
                if key not in cache:
                    cache[key] = reason_text(name, value, band_values[row], medians, language)
                text[row] = cache[key]
            if k == 0:  # nothing qualifies: say so in the first slot, never pad
                text[~valid.any(axis=1)] = NO_REASON[language]
            columns[f"reason_{k + 1}_{language}"] = text
    columns["no_reason"] = ~valid.any(axis=1)
    return columns


# ----------------------------------------------------------------------------- context


def context_features(features: list[str]) -> list[str]:
    return [name for name in CONTEXT_FEATURES if name in features and catalogue.spec(name).role == "exposure"]


def context_lines(frame: pd.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(zh, en) context lines from the exposure facts in CONTEXT_FEATURES, '；' / '; ' joined.

    Left out: unknown values, 'not in the system' codes, and facts whose catalogue
    `only_when` fails (the recertification schedule of a child outside the benefit system).
    """
    names = context_features(features)
    parts = {"zh": [], "en": []}
    for name in names:
        values = frame[name]
        show = values.notna().to_numpy() & ~values.astype(object).isin(NOT_IN_SYSTEM).to_numpy()
        show &= applies(catalogue.spec(name), frame)
        for language, sink in parts.items():
            texts = render_values(name, values, language)
            sink.append(np.where(show, texts, ""))
    return _join(parts["zh"], "；", len(frame)), _join(parts["en"], "; ", len(frame))


def render_values(name: str, values: pd.Series, language: str, missing: str = "") -> np.ndarray:
    """The catalogue wording of each value, rendered once per distinct value; `missing` for NaN."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = [catalogue.render_reason(name, value, language) for value in uniques] + [missing]
    return np.array(texts, dtype=object)[codes]


def _join(columns: list[np.ndarray], sep: str, n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for column in columns:
        out = np.where((out != "") & (column != ""), out + sep + column, out + column)
    return out
