from src.data import contract
from src.data.interim import quarantine_columns
from src.linkage import persons_spec


def test_the_linkage_tables_are_contract_tables_keyed_by_source():
    for name in persons_spec.NAMES:
        spec = contract.TABLES[name]
        assert {"source", "source_person_id"} <= set(spec.column_names)
        assert "child_id" not in spec.column_names
        assert persons_spec.table_mode(spec.column_names).startswith("keyed by source")
    assert persons_spec.table_mode(contract.TABLES["medical_events"].column_names).startswith(
        "keyed by child_id"
    )
    assert (
        persons_spec.table_mode(contract.TABLES["caseworkers"].column_names)
        == "not keyed by person"
    )


def test_quarantine_files_never_carry_a_persons_identity():
    spec = contract.TABLES[persons_spec.PERSONS]
    header = quarantine_columns(persons_spec.PERSONS, spec.column_names)
    assert not {"name", "id_number", "source_person_id", "address_text"} & set(header)
    assert {"source", "sex", "birth_date", "county_code"} <= set(header)
