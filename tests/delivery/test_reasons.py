"""A reason is a risk: raises the score, beyond the normal range, a warning sign someone can act on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.delivery import reasons
from src.features import catalogue


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_a_normal_monthly_payment_is_not_a_warning_sign_but_a_long_gap_is():
    assert not reasons.can_be_reason(catalogue.spec("days_since_last_payment"))  # exposure
    entry = catalogue.spec("payment_gap_max_365d")
    values = pd.Series([12.0, 45.0, 46.0, 200.0, np.nan])
    assert reasons.on_risk_side(entry, values).tolist() == [False, False, True, True, False]


def test_direction_minus_one_uses_the_low_end_and_indicators_need_one():
    ratio = catalogue.spec("payment_ratio_180d")  # normal from 0.8 up
    assert reasons.on_risk_side(ratio, pd.Series([1.0, 0.8, 0.5])).tolist() == [False, False, True]
    overdue = catalogue.spec("recert_overdue")
    assert reasons.on_risk_side(overdue, pd.Series([0.0, 1.0, np.nan])).tolist() == [False, True, False]


def test_categorical_features_are_warning_signs_only_for_their_declared_values():
    status = catalogue.spec("enrollment_status")
    values = pd.Series(pd.Categorical(["enrolled", "dropped_out", "suspended", "no_record"]))
    assert reasons.on_risk_side(status, values).tolist() == [False, True, True, False]
    exposure = catalogue.spec("benefit_status")
    assert not reasons.on_risk_side(exposure, pd.Series(["suspended"])).any()


def test_only_actionable_risk_features_can_be_reasons():
    for name in ("age_years", "category", "guardian_type", "months_in_registry", "benefit_status",
                 "days_until_recert_due", "days_since_recert", "school_type", "insurance_status",
                 "days_since_last_payment"):
        entry = catalogue.spec(name)
        assert reasons.can_be_reason(entry) == (entry.role == "risk"), name  # fmt: skip
    assert not reasons.can_be_reason(catalogue.spec("mental_diagnosis_events_365d"))  # not actionable
    assert not reasons.can_be_reason(catalogue.spec("absence_rate_sick_90d"))  # no direction
    assert reasons.can_be_reason(catalogue.spec("unexcused_days_90d"))


def test_qualifying_needs_all_three_conditions():
    X = frame(
        payment_gap_max_365d=[32.0, 60.0, 60.0],
        age_years=[15.0, 15.0, 15.0],
        unexcused_days_90d=[6.0, 1.0, 6.0],
    )
    contrib = np.array([[0.9, 0.5, 0.3], [0.4, 0.5, 0.2], [-0.1, 0.5, 0.0]])
    allowed = reasons.qualifying(X, contrib)
    # row 0: payment normal; age background; absences beyond 2 days and raising -> only absences
    # row 1: payment late and raising; absences within normal
    # row 2: payment lowers the risk; absences contribute nothing
    assert allowed.tolist() == [[False, False, True], [True, False, False], [False, False, False]]


def test_benefit_facts_apply_only_to_children_in_the_benefit_system():
    X = frame(benefit_status=pd.Categorical(["active", "never", "suspended"]))
    assert reasons.applies(catalogue.spec("days_since_recert"), X).tolist() == [True, False, True]
    assert reasons.applies(catalogue.spec("unexcused_days_90d"), X).all()  # no condition


def test_pick_reasons_never_pads_and_keeps_shap_order():
    contrib = np.array([[0.2, 0.9, 0.5], [0.3, 0.1, 0.4], [0.3, 0.3, 0.0]])
    allowed = np.array([[True, True, False], [False, False, False], [True, True, False]])
    idx, valid = reasons.pick_reasons(contrib, allowed, top_n=3)
    assert idx[0, :2].tolist() == [1, 0] and valid[0].tolist() == [True, True, False]
    assert not valid[1].any()
    assert idx[2, :2].tolist() == [0, 1]  # equal SHAP keeps the feature order


def test_reason_text_gives_value_units_and_the_age_band_median():
    X = frame(unexcused_days_90d=[6.0, 0.0, 3.0, 0.0], recert_overdue=[1.0, 0.0, 0.0, 0.0])
    bands = pd.Series(["6-11", "6-11", "12-14", "6-11"])
    medians = reasons.cohort_medians(X.assign(age_band=bands), list(X.columns))
    assert "recert_overdue" not in medians  # an indicator has no median worth reading
    idx = np.array([[0, 1], [0, 1], [0, 1], [0, 1]])
    valid = np.array([[True, True], [False, False], [True, False], [False, False]])
    columns = reasons.reason_columns(X, idx, valid, bands, medians)
    assert columns["reason_1_zh"][0] == "近90天无故缺课 6.0 天（同龄中位 0.0 天）"
    assert columns["reason_1_en"][0] == "6.0 unexcused absence days in the last 90 days (median at ages 6-11: 0.0)"
    assert columns["reason_2_zh"][0] == "资格复核已逾期未办理"
    assert columns["reason_1_zh"][2] == "近90天无故缺课 3.0 天（同龄中位 3.0 天）"
    assert columns["reason_1_zh"][1] == reasons.NO_REASON["zh"] == "没有单一记录能解释该风险，请全面复核档案"
    assert columns["reason_1_en"][3] == "no single record explains this risk; review the whole file"
    assert columns["reason_1_feature"][1] == "" and columns["no_reason"].tolist() == [False, True, False, True]


@pytest.mark.parametrize("entry", [e for e in catalogue.CATALOGUE if reasons.can_be_reason(e)], ids=lambda e: e.name)
def test_every_numeric_reason_has_a_zh_unit_or_is_a_rate(entry):
    if entry.kind == "numeric":
        assert reasons.zh_unit(entry) or entry.fmt == "pct", entry.name


def test_context_line_holds_exposure_facts_only_for_children_in_the_system():
    f = frame(
        benefit_status=pd.Categorical(["active", "never"]),
        days_until_recert_due=[23.0, 100.0],
        school_type=pd.Categorical(["regular", "unknown"]),
        visits_180d=[2.0, 1.0],  # exposure, but not a line-worthy fact
        unexcused_days_90d=[6.0, 0.0],
        age_years=[10.0, 5.0],
    )
    zh, en = reasons.context_lines(f, list(f.columns))
    assert zh.tolist() == ["低保/津贴状态：正常领取；距下次资格复核还有 23 天；就学方式：普通学校", ""]
    assert en[0] == "benefit status: active; benefit recertification falls due in 23 days; school type: regular"
