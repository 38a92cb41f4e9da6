import pytest

from src.linkage import screening_rules as sr


def test_every_rule_is_worded_in_both_languages_and_names_known_events():
    sr.check_rules()
    assert all(r.zh and r.en and r.all_of for r in sr.RULES)


def test_a_rule_on_an_unknown_event_is_refused():
    bad = (sr.Rule("x", "x", "x", (sr.Condition("not_an_event"),)),)
    with pytest.raises(ValueError, match="unknown event"):
        sr.check_rules(bad)
