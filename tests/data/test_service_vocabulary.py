"""The service vocabulary: one service per protection system, codes unique, every code worded."""

from __future__ import annotations

from src.data import contract
from src.data import service_vocabulary as vocabulary
from src.features import catalogue


def test_one_service_per_protection_system_and_the_general_review():
    systems = [s.system for s in vocabulary.VOCABULARY]
    assert sorted(systems) == sorted({*catalogue.SYSTEMS, "static"}) and len(set(systems)) == len(systems)
    assert len(vocabulary.CODES) == len(set(vocabulary.CODES))
    assert vocabulary.service_of("no_such_system") is vocabulary.GENERAL and not vocabulary.GENERAL.referred


def test_every_code_is_worded_and_is_what_the_directory_accepts():
    for code in vocabulary.CODES:
        assert vocabulary.wording(code, "zh") and vocabulary.wording(code, "en")
    assert contract.TABLES["service_providers"].column("services").codes == vocabulary.CODES
