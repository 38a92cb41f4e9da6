import pandas as pd

from src.linkage import clusters

KEY = b"test key"


def _records(ids):
    return pd.DataFrame({"unique_id": ids, "source": [i.split(":")[0] for i in ids],
                         "source_person_id": [i.split(":")[1] for i in ids]})  # fmt: skip


def _pairs(rows):
    return pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "match_probability"])


NO_DECISIONS = pd.DataFrame(columns=["unique_id_l", "unique_id_r", "decision"])


def test_links_take_accepted_pairs_and_clerical_decisions():
    pairs = _pairs([["a:1", "b:1", 0.999], ["a:2", "b:2", 0.7], ["a:3", "b:3", 0.995]])
    decisions = pd.DataFrame({"unique_id_l": ["a:2", "a:3"], "unique_id_r": ["b:2", "b:3"],
                              "decision": ["same", "different"]})  # fmt: skip
    joins = clusters.links(pairs, decisions, accept=0.99)
    assert joins[["unique_id_l", "match_probability"]].values.tolist() == [
        ["a:2", 1.0],
        ["a:1", 0.999],
    ]


def test_a_cluster_never_holds_two_registry_children():
    recs = _records(["registry:p1", "registry:p2", "school:s1", "health:h1"])
    # s1 is p1 (strong), h1 joins s1 and, weakly, p2: the weakest link to p2 is refused
    joins = clusters.links(_pairs([["registry:p1", "school:s1", 0.9999], ["health:h1", "school:s1", 0.999],
                                   ["health:h1", "registry:p2", 0.995]]), NO_DECISIONS, 0.99)  # fmt: skip
    linked, refused = clusters.cluster(recs, joins, KEY)
    pid = linked.set_index("unique_id")["child_pid"]
    assert refused == 1
    assert pid["school:s1"] == pid["health:h1"] == pid["registry:p1"] == "p1"
    assert pid["registry:p2"] == "p2"
    assert linked["registered"].all()


def test_unregistered_clusters_get_a_keyed_hash_not_an_id():
    recs = _records(["school:s1", "health:h1", "school:s2"])
    joins = clusters.links(_pairs([["health:h1", "school:s1", 0.999]]), NO_DECISIONS, 0.99)
    linked, _ = clusters.cluster(recs, joins, KEY)
    pid = linked.set_index("unique_id")["child_pid"]
    assert pid["school:s1"] == pid["health:h1"] != pid["school:s2"]
    assert len(pid["school:s1"]) == 64 and "s1" not in pid["school:s1"]
    again, _ = clusters.cluster(recs, joins, b"another key")
    assert again.set_index("unique_id")["child_pid"]["school:s1"] != pid["school:s1"]
    assert not linked["registered"].any()
