"""The linkage stage: review queue, decisions read back; slow: the real model on a small export."""

import json
import shutil

import pandas as pd
import pytest

from src.data import generate, ingest
from src.errors import SafetynetError
from src.linkage import linkage, scoring
from tests.params import load_test_params

PAIRS = pd.DataFrame({"unique_id_l": ["a:1", "a:2"], "unique_id_r": ["b:1", "b:2"],
                      "match_probability": [0.995, 0.7], "match_weight": [7.6, 1.2]})  # fmt: skip
RECS = pd.DataFrame({"unique_id": ["a:1", "a:2", "b:1", "b:2"], "source": ["a", "a", "b", "b"],
                     "source_person_id": ["1", "2", "1", "2"], "name": ["张三", "李四", "张三", "李泗"],
                     "sex": "f", "birth_date": "2012-01-02", "id_number": None, "county_code": "110101"})  # fmt: skip


def test_the_queue_shows_both_records_and_keeps_decisions():
    decided = pd.DataFrame(
        {"unique_id_l": ["a:1"], "unique_id_r": ["b:1"], "decision": ["different"]}
    )
    queue = linkage.review_queue(PAIRS, RECS, decided, accept=0.99)
    assert queue["unique_id_l"].tolist() == [
        "a:2",
        "a:1",
    ]  # undecided in-between pair, then the decision
    assert queue.loc[0, ["name_l", "name_r", "decision"]].tolist() == ["李四", "李泗", ""]
    assert queue.loc[1, "decision"] == "different"


def test_decisions_are_read_back_and_a_bad_one_is_one_clear_error(tmp_path):
    path = tmp_path / linkage.REVIEW_FILE
    assert linkage.read_decisions(path).empty
    pd.DataFrame(
        {"unique_id_l": ["a:1", "a:2"], "unique_id_r": ["b:1", "b:2"], "decision": [" Same", ""]}
    ).to_csv(path, index=False, encoding="utf-8-sig")
    assert linkage.read_decisions(path).values.tolist() == [["a:1", "b:1", "same"]]
    path.write_text("unique_id_l,unique_id_r,decision\na:1,b:1,maybe\n", encoding="utf-8")
    with pytest.raises(Exception, match="'maybe' is not one of"):
        linkage.read_decisions(path)


@pytest.mark.slow
def test_linkage_on_a_small_export_meets_the_targets_and_is_reproducible(tmp_path):
    params = load_test_params({"synthetic": {"n_children": 800, "months": 12}})
    generate.run(tmp_path / "raw", params)
    ingest.run(tmp_path / "raw", tmp_path / "interim", tmp_path / "dq.json", params)
    out = tmp_path / "linkage"
    report = linkage.run(tmp_path / "interim", out, tmp_path / "l.json", tmp_path / "l.png", params)
    truth = scoring.truth_records(pd.read_parquet(tmp_path / "raw/linkage_truth.parquet"),
                                  pd.read_parquet(tmp_path / "interim/identity.parquet"))  # fmt: skip
    quality = scoring.pairwise(pd.read_parquet(out / linkage.LINKED_FILE), truth)
    assert quality["precision"] >= 0.99 and quality["recall"] >= 0.97, quality
    text = (tmp_path / "l.json").read_text()
    assert "XJ" not in text and "YB" not in text and report["clusters"]["with_registry_child"] > 0
    first = {
        p.name: p.read_bytes() for p in [*out.iterdir(), tmp_path / "l.json", tmp_path / "l.png"]
    }
    shutil.copy(out / linkage.REVIEW_FILE, tmp_path / "queue.csv")
    linkage.run(tmp_path / "interim", out, tmp_path / "l.json", tmp_path / "l.png", params)
    again = {
        p.name: p.read_bytes() for p in [*out.iterdir(), tmp_path / "l.json", tmp_path / "l.png"]
    }
    assert again == first
    # a clerk says the first queued pair is the same child: the next run links it and keeps the decision
    queue = pd.read_csv(
        tmp_path / "queue.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    assert len(queue), "the small export should queue a pair for review"
    queue.loc[0, "decision"] = "same"
    queue.to_csv(out / linkage.REVIEW_FILE, index=False, encoding="utf-8-sig")
    decided = linkage.run(
        tmp_path / "interim", out, tmp_path / "l.json", tmp_path / "l.png", params
    )
    linked = pd.read_parquet(out / linkage.LINKED_FILE).set_index("unique_id")["child_pid"]
    assert linked[queue.loc[0, "unique_id_l"]] == linked[queue.loc[0, "unique_id_r"]]
    assert decided["review_queue"]["decided_same"] == 1
    assert json.loads((tmp_path / "l.json").read_text())["review_queue"]["decided_same"] == 1


def test_without_department_records_each_registry_child_is_their_own_cluster():
    recs = RECS.assign(source="registry", unique_id=["registry:1", "registry:2", "registry:3", "registry:4"],
                       source_person_id=["1", "2", "3", "4"])  # fmt: skip
    no_decisions = pd.DataFrame(columns=["unique_id_l", "unique_id_r", "decision"])
    linked, queue, report = linkage.link(recs, no_decisions, load_test_params(), b"k")
    assert linked["child_pid"].tolist() == ["1", "2", "3", "4"] and linked["registered"].all()
    assert queue.empty and report["clusters"]["total"] == 4 and report["by_source_pair"] == []


def test_duckdb_out_of_memory_or_spill_is_one_clear_error(monkeypatch, tmp_path):
    import duckdb

    def exhausted(*args):
        raise duckdb.OutOfMemoryException("failed to offload data block (max_temp_directory_size)")

    monkeypatch.setattr(linkage.comparisons, "trained_linker", exhausted)
    with pytest.raises(SafetynetError, match=r"linkage.temp_gb \(20 GB\) of spill; fix:"):
        linkage.scored_pairs(RECS, load_test_params(), str(tmp_path))
