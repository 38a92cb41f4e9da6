"""Discovery compares like with like: capacity and base risk do not make a group "served worse";
a group whose high-risk children the model under-predicts does, named at its pair cell."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from src.audit.fairness_audit import audit_fairness
from src.config import load_params
from tests.params import PARAMS_FILE

PARAMS = load_params(PARAMS_FILE)


def world(hidden: bool, n: int = 8000, seed: int = 0) -> pd.DataFrame:
    """Calibrated scores; county y has twice the places per child; the youngest rarely fall out.
    hidden: in county x, rural children whose risk shows (p > 0.15) get the score of a child
    whose risk does not (their records are thin), so the list passes them over."""
    rng = np.random.default_rng(seed)
    county = rng.choice(["x", "y"], n)
    hukou = rng.choice(["rural", "urban"], n)
    age = rng.choice(["0-5", "6-17"], n)
    p = np.where(age == "0-5", rng.beta(1, 40, n), rng.beta(1.2, 6, n))
    label = (rng.random(n) < p).astype(int)
    score = p.copy()
    if hidden:
        thin = (county == "x") & (hukou == "rural") & (p > 0.15)
        score[thin] = 0.05
    frame = pd.DataFrame({"child_pid": [f"{i:064x}" for i in range(n)], "as_of": pd.Timestamp("2025-03-01"),
                          "score": score, "label": label, "county_code": county, "hukou": hukou, "age_band": age})  # fmt: skip
    places = np.where(county == "y", 0.2, 0.1) * n / 2
    rank = frame.groupby("county_code")["score"].rank(ascending=False, method="first")
    frame["selected"] = rank <= places
    return frame


def settings(attributes=("county_code", "hukou", "age_band")):
    fairness = replace(PARAMS.fairness, attributes=attributes,
                       intersections=(("county_code", "hukou"),), reference_groups={}, bootstrap_replicates=100,
                       min_group_size=30, min_positives=5)  # fmt: skip
    return fairness, replace(PARAMS.evaluate, top_pcts=(10.0,))


def test_capacity_and_base_risk_are_not_discoveries():
    audit = audit_fairness(world(hidden=False), *settings())
    primary = audit.primary[audit.primary["month"] == ""].set_index(["attribute", "group"])
    assert primary.loc[("age_band", "0-5"), "verdict"] == "served worse"  # raw recall: low base risk
    assert primary.loc[("county_code", "x"), "ratio"] < 0.8  # raw recall: fewer places
    assert audit.headline()["discoveries"] == 0
    tested = audit.discoveries.set_index(["grouping", "group"])
    assert tested.loc[("age_band", "0-5"), "ratio"] > 0.8 and tested.loc[("county_code", "x"), "ratio"] > 0.8


def test_the_under_predicted_cell_is_the_top_discovery_and_explains_its_margins():
    audit = audit_fairness(world(hidden=True), *settings(("county_code", "hukou")))
    found = audit.discoveries[audit.discoveries["discovered"]]
    top = found.iloc[0]
    assert (top["grouping"], top["group"], top["explained_by"]) == ("county_code|hukou", "x|rural", "")
    margins = found[found["depth"] == 1]
    assert (margins["explained_by"] == "county_code|hukou=x|rural").all()
    assert audit.findings and audit.findings[0].startswith("county_code=x, hukou=rural: recall")
    assert "hukou=rural" in set(margins["grouping"] + "=" + margins["group"])


def test_an_overlapping_pair_is_explained_by_the_cell_that_fails():
    """The county's girls overlap the failed cell (its rural children): the cell is named, the
    girls' pair is explained by it."""
    frame = world(hidden=True, n=12000, seed=1)
    frame["sex"] = np.random.default_rng(5).choice(["f", "m"], len(frame))
    fairness, evaluate = settings(("county_code", "hukou", "sex"))
    fairness = replace(fairness, intersections=(("county_code", "hukou"), ("county_code", "sex")))
    found = audit_fairness(frame, fairness, evaluate).discoveries
    found = found[found["discovered"]].set_index(["grouping", "group"])
    assert found.index[0] == ("county_code|hukou", "x|rural") and found.iloc[0]["explained_by"] == ""
    assert found.loc[("county_code|sex", "x|f"), "explained_by"] == "county_code|hukou=x|rural"
