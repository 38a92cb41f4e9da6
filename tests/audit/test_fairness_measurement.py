"""The recording diagnostic compares like with like: within age bands, a group with fewer records
is flagged; a group that is simply younger (no school yet) is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.audit.cluster_bootstrap import child_codes, poisson_weights
from src.audit.fairness_cells import measure_cells
from src.audit.fairness_measurement import plain_finding, recording_rates


def test_stratified_rates_flag_thin_records_and_not_structural_zeros():
    rng = np.random.default_rng(0)
    n = 3000
    hukou = rng.choice(["rural", "urban"], n)
    family = rng.choice(["young", "mixed"], n)  # "young" families are mostly under six
    age = np.where(family == "young", np.where(rng.random(n) < 0.8, "0-5", "6-11"), rng.choice(["0-5", "6-11"], n))
    per_month = np.where(age == "0-5", 0.0, np.where(hukou == "rural", 1.0, 4.0))
    rows = pd.DataFrame({"hukou": hukou, "family": family, "age_band": age, "month": "2025-01",
                         "positives": 1.0, "records_absences": rng.poisson(per_month).astype(float)})  # fmt: skip
    child, k = child_codes(np.arange(n))
    cells = measure_cells(rows, [("hukou",), ("family",), ("age_band",)], ["positives", "records_absences"],
                          child, poisson_weights(k, 50, 1), monthly=False)  # fmt: skip
    keys = [("hukou", "rural"), ("family", "young"), ("age_band", "0-5")]
    out = recording_rates(cells, keys, 0.8, 0.95).set_index(["grouping", "group"])
    rural = out.loc[("hukou", "rural")]
    assert rural["ratio"] == pytest.approx(0.25, rel=0.1) and rural["flagged"]
    young = out.loc[("family", "young")]
    raw = rows.groupby("family")["records_absences"].mean()
    assert raw["young"] < 0.6 * raw["mixed"]  # raw rates would call them under-recorded
    assert 0.8 < young["ratio"] < 1.25 and not young["flagged"]
    assert np.isnan(out.loc[("age_band", "0-5"), "ratio"]) and not out.loc[("age_band", "0-5"), "flagged"]
    finding = plain_finding({"grouping": "hukou", "group": "rural", "recall": 0.2, "ratio": 0.6,
                             "missed_per_promised": 1.5, "rest_missed_per_promised": 0.9}, out.reset_index())  # fmt: skip
    assert "absences are recorded at 0.2" in finding and "of the same age" in finding
    assert "fell out 1.50× as often as their probabilities promised (the rest: 0.90×)" in finding
