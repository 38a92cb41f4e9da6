"""The linkage-ready contract tables (issue 17): `persons` and `department_events`.

Other departments export their own keys, not the registry's `child_id`. `persons` holds one row
per person record of each department (`source`: school, health, police, ...; `source_person_id`:
the department's own id, e.g. the 学籍号 or a patient id), with the shared fields the linkage
compares (src.linkage.linkage). `department_events` holds their records keyed by the same
(`source`, `source_person_id`); the screening rules (src.linkage.screening_rules) read them.

Both go through ingest's ordinary path (src.data.export_check): no `child_id`, so no cross-table
check against the registry and no move to identity.parquet. Names, ID numbers, addresses and
the source ids are personal: they stay in data/interim/<table>.parquet and are never written to
a quarantine file (src.data.interim withholds personal columns); only the linkage stage and the
screening lists read them.
"""

from __future__ import annotations

from src.data.specs import CODE, DATE, ID, NUMBER, TEXT, ColumnSpec, TableSpec

PERSONS = "persons"
DEPARTMENT_EVENTS = "department_events"
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
REGISTRY_SOURCE = "registry"  # the registry's own persons (children), never a department's
SEX = ("f", "m")  # src.data.contract.SEX (not imported: contract imports this module)
DEPARTMENT_EVENT = (
    "enrolled",
    "dropped_out",
    "disability_certified",
    "outpatient",
    "serious_illness",
    "medical_assistance",
    "guardian_death",
)
MAX_EVENT_AMOUNT_CNY = 10_000_000


def _source_key() -> tuple[ColumnSpec, ColumnSpec]:
    return (
        ColumnSpec("source", TEXT, True, pattern=SOURCE_PATTERN),
        ColumnSpec("source_person_id", ID, True, personal=True),
    )


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        PERSONS,
        False,
        (
            *_source_key(),
            ColumnSpec("name", TEXT, True, personal=True),
            ColumnSpec("sex", CODE, True, SEX),
            ColumnSpec("birth_date", DATE, True),
            ColumnSpec("id_number", TEXT, False, personal=True),
            ColumnSpec("county_code", TEXT, True, pattern=r"^[0-9]{6}$"),
            ColumnSpec("address_text", TEXT, False, personal=True),
        ),
        None,  # a person record has no record date: it never votes on the export date
    ),
    TableSpec(
        DEPARTMENT_EVENTS,
        False,
        (
            *_source_key(),
            ColumnSpec("event_date", DATE, True),
            ColumnSpec("event_type", CODE, True, DEPARTMENT_EVENT),
            ColumnSpec(
                "amount_cny", NUMBER, False, min_value=0, plausible_max=MAX_EVENT_AMOUNT_CNY
            ),
        ),
        "event_date",
    ),
)
NAMES = tuple(t.name for t in TABLES)


def table_mode(columns: list[str]) -> str:
    """How a table is keyed, as `safetynet validate` explains it."""
    if "child_id" in columns:
        return "keyed by child_id (the registry's id)"
    if "source_person_id" in columns:
        return "keyed by source + source_person_id (a department's own id; joined by linkage)"
    return "not keyed by person"
