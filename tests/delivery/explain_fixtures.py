"""Small, realistic fixtures for the explain and watchlist tests (and the screenshots).

A nine-feature catalogue across the protection systems, a features frame with real signal,
a tiny LightGBM model wrapped like CalibratedModel, and identity/children tables with
Chinese names, including hostile ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from src.config import load_params
from src.features import catalogue
from src.features.catalogue import FeatureSpec
from tests.params import PARAMS_FILE

GUARDIANS = ("both_parents", "single_parent", "grandparents", "other_relatives", "none")
PARAMS_YAML = PARAMS_FILE
CATEGORIES = ("orphan", "left_behind", "low_income", "disabled")

SMALL_CATALOGUE = (
    FeatureSpec("absence_days_unexcused_90d", "education", "Unexcused absence days, last 90 days.", True,
                "numeric", "int", "近90天无故缺课 {value} 天", "{value} unexcused absence days in the last 90 days",
                "NaN when not enrolled", role="risk", direction=1, normal=(None, 2)),
    FeatureSpec("absence_rate_all_90d", "education", "Absence rate, last 90 days.", True, "numeric", "pct",
                "近90天缺课率 {value}", "absent {value} of school days in the last 90 days", "NaN when not enrolled",
                role="risk", direction=1, normal=(None, 0.1)),
    FeatureSpec("recert_overdue", "basic_living", "Recertification overdue.", True, "indicator", "none",
                "低保/补贴复核已逾期", "benefit recertification is overdue", role="risk", direction=1,
                normal=(None, 0)),
    FeatureSpec("rehab_missed_180d", "medical", "Missed rehab sessions, last 180 days.", True, "numeric", "int",
                "近180天康复训练缺席 {value} 次", "missed {value} rehabilitation sessions in the last 180 days",
                role="risk", direction=1, normal=(None, 0)),
    FeatureSpec("mental_health_events_365d", "mental_health", "Mental-health contacts, last year.", True,
                "numeric", "int", "近一年心理健康就诊 {value} 次", "{value} mental-health contacts in the last year",
                role="exposure"),
    FeatureSpec("visit_concerns_90d", "safety", "Visits with a concern, last 90 days.", True, "numeric", "int",
                "近90天走访发现问题 {value} 次", "{value} visits with a concern in the last 90 days",
                role="risk", direction=1, normal=(None, 0)),
    FeatureSpec("guardian_type", "guardianship", "Guardian type.", True, "categorical", "code",
                "监护情况：{value}", "guardian: {value}", categories=GUARDIANS, role="risk", risk_values=("none",)),
    FeatureSpec("age_years", "static", "Age in years.", False, "numeric", "float1",
                "年龄 {value} 岁", "aged {value}"),
    FeatureSpec("category", "static", "Registry category.", False, "categorical", "code",
                "困境类别：{value}", "registry category: {value}", categories=CATEGORIES),
)  # fmt: skip

CODE_LABELS_ZH = {
    "both_parents": "父母双全", "single_parent": "单亲", "grandparents": "祖父母监护",
    "other_relatives": "其他亲属监护", "none": "无人监护", "orphan": "孤儿",
    "left_behind": "留守儿童", "low_income": "低收入家庭", "disabled": "残疾儿童",
}  # fmt: skip

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
GIVEN = [
    "小明",
    "欣怡",
    "子轩",
    "雨桐",
    "浩然",
    "梓涵",
    "俊杰",
    "诗琪",
    "宇航",
    "佳怡",
    "思远",
    "一诺",
]
HOSTILE_NAMES = [
    "<script>alert('x')</script>",
    '=HYPERLINK("http://x","y")',
    'Zhang "Quote" O\'Neil',
    "李\n换行",
    "+86 123",
    "-2+3",
    "@SUM(A1)",
]


def use_small_catalogue(monkeypatch) -> None:
    monkeypatch.setattr(catalogue, "CATALOGUE", SMALL_CATALOGUE)
    monkeypatch.setattr(catalogue, "CODE_LABELS_ZH", CODE_LABELS_ZH)


def pid(child_id: str) -> str:
    return hashlib.sha256(child_id.encode()).hexdigest()


def child_ids(n: int) -> list[str]:
    return [f"C{i:05d}" for i in range(n)]


def features_frame(
    n: int, as_of: list[str], seed: int = 0, already_out_share: float = 0.05
) -> pd.DataFrame:
    """One row per child per as-of date, with signal in the actionable features."""
    rng = np.random.default_rng(seed)
    frames = []
    for step, date in enumerate(as_of):
        drift = rng.normal(0, 1, n) * 0.5 * step
        f = pd.DataFrame({"child_pid": [pid(c) for c in child_ids(n)], "as_of": pd.Timestamp(date)})
        f["as_of"] = f["as_of"].astype("datetime64[us]")
        f["absence_days_unexcused_90d"] = np.clip(rng.poisson(2, n) + drift, 0, None).round()
        f.loc[rng.random(n) < 0.1, "absence_days_unexcused_90d"] = np.nan
        f["absence_rate_all_90d"] = np.clip(
            f["absence_days_unexcused_90d"] / 60 + rng.random(n) * 0.05, 0, 1
        )
        f["recert_overdue"] = (rng.random(n) < 0.15).astype(float)
        f["rehab_missed_180d"] = rng.poisson(0.4, n).astype(float)
        f["mental_health_events_365d"] = rng.poisson(0.3, n).astype(float)
        f["visit_concerns_90d"] = rng.poisson(0.3, n).astype(float)
        f["guardian_type"] = pd.Categorical(rng.choice(GUARDIANS, n), categories=GUARDIANS)
        f["age_years"] = rng.uniform(0, 17.9, n).round(2)
        f["age_band"] = np.where(f["age_years"] < 12, "0-11", "12-17")
        f["category"] = pd.Categorical(rng.choice(CATEGORIES, n), categories=CATEGORIES)
        out = rng.random(n) < already_out_share
        f["already_out"] = out.astype("int8")
        f["already_out_net"] = np.where(
            out, rng.choice(["basic_living", "education", "basic_living|education"], n), ""
        )
        logit = (
            -3 + 0.35 * f["absence_days_unexcused_90d"].fillna(0) + 1.5 * f["recert_overdue"]
            + 0.8 * f["rehab_missed_180d"] + 0.6 * f["visit_concerns_90d"] + 0.08 * f["age_years"]
            + 0.7 * (f["guardian_type"] == "none")
        )  # fmt: skip
        f["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int8")
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


class StubModel:
    """The CalibratedModel interface: .booster, .raw_score(df), .predict_proba(df)."""

    def __init__(self, booster: lgb.Booster):
        self.booster = booster

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        return df[self.booster.feature_name()]

    def raw_score(self, df: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.prepare(df), raw_score=True)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-self.raw_score(df)))


def train_tiny_model(frame: pd.DataFrame, rounds: int = 30) -> StubModel:
    features = [s.name for s in SMALL_CATALOGUE]
    params = {"objective": "binary", "num_leaves": 7, "learning_rate": 0.1, "min_child_samples": 10,
              "verbose": -1, "num_threads": 1, "seed": 1, "deterministic": True}  # fmt: skip
    data = lgb.Dataset(frame[features], frame["label"])
    return StubModel(lgb.train(params, data, num_boost_round=rounds))


def people(
    n: int, n_counties: int = 2, hostile: bool = True, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(identity, children) for child_ids(n): realistic names, some hostile ones."""
    rng = np.random.default_rng(seed)
    ids = child_ids(n)
    names = [SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)] for i in range(n)]
    if hostile:
        for i, name in enumerate(HOSTILE_NAMES):
            names[(i * 5 + 1) % n] = name
    identity = pd.DataFrame({"child_pid": [pid(c) for c in ids], "child_id": ids, "name": names,
                             "id_number": [f"5301{i:014d}" for i in range(n)]})  # fmt: skip
    counties = [f"5301{k + 2:02d}" for k in range(n_counties)]
    county = np.array(counties)[np.arange(n) % n_counties]
    community = [f"{c}-村{rng.integers(1, 4)}" for c in county]
    caseworker = [f"儿童主任-{c[-2:]}-{rng.integers(1, 3)}" for c in county]
    if hostile:
        community[3 % n] = "=cmd|' /C calc'!A0"
        caseworker[2 % n] = "<b>bold</b>"
    children = pd.DataFrame({"child_pid": identity["child_pid"], "county_code": county,
                             "community_code": community, "caseworker_id": caseworker,
                             "sex": np.array(["f", "m"])[np.arange(n) % 2],
                             "birth_date": pd.to_datetime("2006-03-15") + pd.to_timedelta(np.arange(n) * 53 % 4000, "D"),
                             "guardian_type": np.array(GUARDIANS)[np.arange(n) % len(GUARDIANS)],
                             "category": np.array(CATEGORIES)[np.arange(n) % len(CATEGORIES)]})  # fmt: skip
    return identity, children


def params(**overrides):
    """The tests' params with overrides like `watchlist__language="en"`."""
    nested: dict = {}
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        nested.setdefault(section, {})[key] = value
    return load_params(PARAMS_YAML, nested)


def write_inputs(
    folder: Path, n: int = 60, n_counties: int = 3, hostile: bool = True, seed: int = 5
):
    """explanations.parquet + interim identity/children for `n` children; needs the small catalogue."""
    from src.delivery import explain

    dates = ["2024-05-01", "2024-06-01"]
    frame = features_frame(n, dates, seed=seed, already_out_share=0.08)
    model = train_tiny_model(frame, rounds=15)
    month = {d: frame[frame["as_of"] == pd.Timestamp(d)] for d in dates}
    parts = [
        explain.score_previous(month[dates[0]], model, 3),
        explain.explain_snapshot(month[dates[1]], model, 3).explanations,
    ]
    expl_path = folder / "explanations.parquet"
    pd.concat(parts, ignore_index=True).to_parquet(expl_path, index=False)
    contributions_frame(month[dates[1]], model).to_parquet(folder / "contributions.parquet", index=False)
    identity, children = people(n, n_counties=n_counties, hostile=hostile, seed=seed)
    interim = folder / "interim"
    interim.mkdir(parents=True, exist_ok=True)
    identity.to_parquet(interim / "identity.parquet", index=False)
    children.to_parquet(interim / "children.parquet", index=False)
    return expl_path, interim, identity, children


def contributions_frame(frame: pd.DataFrame, model, top: int = 3) -> pd.DataFrame:
    """contributions.parquet rows (the explain stage's schema) for the at-risk children of `frame`."""
    from src.delivery import explain

    frame = frame[frame["already_out"] == 0].reset_index(drop=True)
    X = model.prepare(frame)
    contrib, base = explain.shap_contributions(model.booster, X)
    rows = []
    for i, child in enumerate(frame["child_pid"]):
        order = np.argsort(-np.abs(contrib[i]), kind="stable")
        for rank, j in enumerate(order[:top], start=1):
            name = X.columns[j]
            rows.append((child, rank, name, contrib[i, j], catalogue.render_reason(name, X.iloc[i, j], "zh"),
                         catalogue.render_reason(name, X.iloc[i, j], "en"), base[i]))  # fmt: skip
        rows.append((child, top + 1, "other_features", contrib[i, order[top:]].sum(), "", "", base[i]))
    columns = ["child_pid", "rank", "feature", "shap", "value_zh", "value_en", "base_log_odds"]
    return pd.DataFrame(rows, columns=columns)


def served_dir(folder: Path, evaluated_digest: str = "m") -> Path:
    """models/served with the summary the watchlist checks against the gate decision."""
    served = folder / "served"
    served.mkdir(exist_ok=True)
    (served / "train_summary.json").write_text(json.dumps({"evaluated_model_digest": evaluated_digest}))
    return served
