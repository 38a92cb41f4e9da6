"""The catalogue describes every feature column once, and every template renders."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from src.features import catalogue, queries
from tests.features.feature_frames import child, features_at, tables


def test_every_column_has_exactly_one_entry_and_vice_versa():
    names = catalogue.feature_names()
    assert [n for n, k in Counter(names).items() if k > 1] == []
    frame = features_at(tables(children=[child("a")]), "2024-07-01").reset_index()
    reserved = {*catalogue.KEY_COLUMNS, *catalogue.AUDIT_COLUMNS}
    assert [c for c in frame.columns if c not in reserved] == names
    assert list(queries.SELECT_FEATURES) == names


def test_names_other_stages_rely_on_exist():
    for name in (
        "absence_rate_all_90d",
        "absence_rate_unexcused_90d",
        "recert_overdue",
        "rehab_missed_180d",
        "visit_concerns_90d",
        "age_years",
        "category",
    ):
        catalogue.spec(name)
    assert catalogue.spec("category").kind == "categorical"


@pytest.mark.parametrize("entry", catalogue.CATALOGUE, ids=lambda e: e.name)
def test_entry_is_well_formed(entry):
    assert entry.system in catalogue.SYSTEMS
    assert entry.kind in catalogue.KINDS and entry.fmt in catalogue.FORMATS
    assert entry.description.endswith(".") and entry.missing
    assert (entry.kind == "categorical") == bool(entry.categories) == (entry.fmt == "code")
    assert entry.protected == (entry.name in catalogue.PROTECTED)


@pytest.mark.parametrize("entry", catalogue.CATALOGUE, ids=lambda e: e.name)
def test_direction_normal_range_and_role_are_consistent(entry):
    assert entry.role in catalogue.ROLES and entry.direction in (-1, 0, 1)
    assert set(entry.risk_values) <= set(entry.categories)
    if entry.kind == "categorical":  # categories get no direction: a risk-value list at most
        assert entry.direction == 0 and entry.normal is None
    if entry.direction != 0:  # a direction needs the bound on its risk side, and is a risk
        assert entry.role == "risk" and entry.normal is not None
        low, high = entry.normal
        assert (high if entry.direction > 0 else low) is not None
    if entry.role != "risk":  # exposure and background facts are never constrained or listed
        assert entry.direction == 0 and not entry.risk_values
    if entry.only_when is not None:
        feature, values = entry.only_when
        assert set(values) <= set(catalogue.spec(feature).categories)
    if entry.system == "static" or entry.protected:
        assert entry.role == "background" and not entry.actionable


def test_roles_a_social_worker_would_give():
    background = {"age_years", "category", "months_in_registry", "months_of_history", "month_of_year",
                  "guardian_type", "disability_level", "sex", "ethnicity", "hukou"}  # fmt: skip
    exposure = {"benefit_status", "days_until_recert_due", "days_since_recert", "school_type", "school_period"}
    assert {e.name for e in catalogue.CATALOGUE if e.role == "background"} == background
    assert exposure <= {e.name for e in catalogue.CATALOGUE if e.role == "exposure"}
    # paid monthly: among children in the benefit system, days since the last payment says
    # "receives the benefit" (exposure); a missed payment shows as a long gap
    payment = catalogue.spec("days_since_last_payment")
    assert (payment.role, payment.direction, payment.normal) == ("exposure", 0, (None, 35))
    gap = catalogue.spec("payment_gap_max_365d")
    assert (gap.role, gap.direction, gap.normal) == ("risk", 1, (None, 45))
    assert not catalogue.spec("visit_concerns_90d").routes
    assert catalogue.spec("enrollment_status").risk_values == ("suspended", "dropped_out")
    assert catalogue.spec("insurance_status").risk_values == ("lapsed",)


@pytest.mark.parametrize("entry", catalogue.CATALOGUE, ids=lambda e: e.name)
def test_templates_render_a_value_in_both_languages(entry):
    value = (
        entry.categories[0]
        if entry.kind == "categorical"
        else (1 if entry.kind == "indicator" else 0.25)
    )
    for language in ("zh", "en"):
        text = catalogue.render_reason(entry.name, value, language)
        assert "{" not in text and text.strip()
        if entry.fmt != "none":
            assert catalogue.format_value(entry, value, language) in text
    assert catalogue.render_reason(entry.name, math.nan, "en") or entry.fmt == "none"


def test_codes_have_chinese_labels():
    for entry in catalogue.CATALOGUE:
        for code in entry.categories:
            assert code in catalogue.CODE_LABELS_ZH, (entry.name, code)
    assert (
        catalogue.render_reason("absence_rate_unexcused_90d", 0.125, "zh") == "近90天无故缺课率 12%"
    )
    assert (
        catalogue.render_reason("unexcused_days_90d", 4, "en")
        == "4.0 unexcused absence days in the last 90 days"
    )
    assert catalogue.render_reason("category", "left_behind", "zh") == "儿童类别：留守儿童"


def test_protected_attributes_are_inputs_only_on_request():
    assert not set(catalogue.PROTECTED) & set(catalogue.model_features())
    assert set(catalogue.PROTECTED) <= set(catalogue.model_features(True))
    assert (
        "category" in catalogue.categorical_features()
        and "sex" not in catalogue.categorical_features()
    )
    assert all(system in {e.system for e in catalogue.CATALOGUE} for system in catalogue.SYSTEMS)


@pytest.mark.parametrize(
    ("history", "mode", "read", "excluded"),
    [
        (True, "exclude", "as_of_each_date", []),
        (True, "keep", "as_of_each_date", []),
        (False, "exclude", "as_of_export", ["guardian_type", "category"]),
        (False, "keep", "as_of_export", []),
    ],
)
def test_registry_reading_excludes_outcome_updated_fields_only_without_history(
    history, mode, read, excluded
):
    reading = catalogue.registry_reading(history, mode)
    assert reading == {"history": history, "read": read, "mode": mode, "excluded": excluded}
    assert catalogue.registry_excluded({"registry": reading}) == tuple(excluded)
    inputs = catalogue.model_features(False, catalogue.registry_excluded({"registry": reading}))
    assert set(catalogue.model_features()) - set(inputs) == set(excluded)
