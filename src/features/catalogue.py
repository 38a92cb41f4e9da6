"""The feature catalogue: every feature column described once.

Name, protection system, description, whether a caseworker can act on it, and the
plain-language reason templates (Chinese and English). Explanations, the model card and
the README's feature table all read from here; a test fails when a column of
features.parquet has no entry or an entry has no column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The six protection systems of the 2025 State Council opinion, plus static attributes.
SYSTEMS: dict[str, tuple[str, str]] = {
    "basic_living": ("基本生活保障", "basic living"),
    "medical": ("医疗康复保障", "medical care and rehabilitation"),
    "education": ("教育保障", "education"),
    "mental_health": ("心理健康", "mental health"),
    "safety": ("人身安全", "personal safety"),
    "guardianship": ("监护保障", "legal guardianship"),
    "static": ("基本情况", "background"),
}

KEY_COLUMNS = ("child_pid", "as_of")
RULE_COLUMNS = ("benefit_lapse", "school_dropout", "medical_lapse", "protection_crisis")
LABEL_COLUMNS = (*RULE_COLUMNS, "label", "label_observed", "already_out", "already_out_net")
# Travel beside the features for auditing and routing; never model inputs.
AUDIT_COLUMNS = ("county_code", "community_code", "age_band", "disability")
PROTECTED = ("sex", "ethnicity", "hukou")

KINDS = ("numeric", "indicator", "categorical")
FORMATS = ("int", "float1", "pct", "code", "none")


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    system: str
    description: str  # one English sentence for the docs and the model card
    actionable: bool  # can a caseworker do something about it?
    kind: str  # numeric | indicator | categorical
    fmt: str  # how {value} is rendered: int | float1 | pct | code | none
    template_zh: str  # e.g. "近90天无故缺课 {value} 天"
    template_en: str  # e.g. "{value} unexcused absence days in the last 90 days"
    missing: str = "never missing"  # how an unknown value is represented (NaN, indicator, ...)
    categories: tuple[str, ...] = ()  # fixed category order for categorical features
    protected: bool = False  # model input only when features.protected_as_features is true


CATALOGUE: tuple[FeatureSpec, ...] = ()

CODE_LABELS_ZH: dict[str, str] = {}


def spec(name: str) -> FeatureSpec:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    raise KeyError(f"feature '{name}' is not in the catalogue")


def feature_names() -> list[str]:
    return [entry.name for entry in CATALOGUE]


def model_features(protected_as_features: bool = False) -> list[str]:
    return [e.name for e in CATALOGUE if protected_as_features or not e.protected]


def categorical_features(protected_as_features: bool = False) -> list[str]:
    return [e.name for e in CATALOGUE if e.kind == "categorical" and (protected_as_features or not e.protected)]


def format_value(entry: FeatureSpec, value, language: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "未知" if language == "zh" else "unknown"
    if entry.fmt == "int":
        return f"{round(float(value)):d}"
    if entry.fmt == "float1":
        return f"{float(value):.1f}"
    if entry.fmt == "pct":
        return f"{100 * float(value):.0f}%"
    if entry.fmt == "code":
        return CODE_LABELS_ZH.get(str(value), str(value)) if language == "zh" else str(value).replace("_", " ")
    return ""


def render_reason(name: str, value, language: str) -> str:
    """The plain-language reason for one feature value, in 'zh' or 'en'."""
    entry = spec(name)
    template = entry.template_zh if language == "zh" else entry.template_en
    return template.format(value=format_value(entry, value, language))
