"""The splink model: backend, blocking rules, comparisons and seeded training, in one place.

`db_api` is the one place the backend is chosen (`linkage.engine`; issue 18 adds Spark).
Comparison levels use splink's level library where one exists, else SQL written in DuckDB's
dialect and declared as such (`base_dialect_str`), so splink can transpile it to Spark SQL.

Blocking (pairs that are scored at all): the same birth date; the same first 14 ID characters
(area and birth date, as the ID states it: catches a swapped or mistyped birth date field); the
same last 4 ID characters (sequence and check digit) in the same county (catches a mistyped ID
head); the same county, sex, birth year and name pinyin (catches a missing or badly mistyped
ID together with a swapped or off-by-one birth date). Plain county x sex would score every pair
of a county's children of one sex; refined by birth year and the name's pinyin it keeps the
homophones and traditional forms (docs/linkage.md gives the sizes).
"""

from __future__ import annotations

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

BLOCKING_RULES = (
    ("birth_date",),
    ("id_head",),
    ("id_tail", "county_code"),
    ("county_code", "sex", "birth_year", "name_pinyin"),
)
# EM sessions: each estimates the m of every comparison its blocking rule does not use
TRAINING_RULES = (("birth_date",), ("county_code", "name_pinyin"))
DETERMINISTIC_RULE = "l.id_number = r.id_number"  # for the prior P(two records match)
TRANSPOSED_U = 1e-5  # P(two different children's ID numbers differ by one adjacent swap), about
DETERMINISTIC_RECALL = 0.8  # the share of true pairs that rule finds (IDs missing or mistyped)


def db_api(engine: str, threads: int, memory_gb: int, temp_dir: str | None = None):
    """splink's database API for `linkage.engine` (only DuckDB here)."""
    if engine != "duckdb":
        raise ValueError(f"linkage.engine {engine!r}: only duckdb is available")
    import duckdb

    con = duckdb.connect(config={"threads": threads, "memory_limit": f"{memory_gb}GB"})
    if temp_dir:
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return DuckDBAPI(connection=con)


def _swapped(col: str) -> str:
    left, right = f"{col}_l", f"{col}_r"
    return (
        f"substr({left}, 1, 4) = substr({right}, 1, 4) AND "
        f"substr({left}, 6, 2) = substr({right}, 9, 2) AND "
        f"substr({left}, 9, 2) = substr({right}, 6, 2)"
    )


def comparisons() -> list:
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name"),
            cll.ExactMatchLevel("name_pinyin").configure(label_for_charts="same pinyin"),
            cll.JaroWinklerLevel("name_pinyin", 0.9),
            cll.JaroWinklerLevel("name", 0.7),
            cll.ElseLevel(),
        ],
    )
    id_number = cl.CustomComparison(
        output_column_name="id_number",
        comparison_levels=[
            cll.NullLevel("id_number"),
            cll.ExactMatchLevel("id_number"),
            cll.LevenshteinLevel("id_number", 1).configure(label_for_charts="one digit off"),
            # random pairs almost never differ by a swap, so sampling leaves its u unestimated
            cll.DamerauLevenshteinLevel("id_number", 1).configure(
                label_for_charts="transposed", u_probability=TRANSPOSED_U, fix_u_probability=True
            ),
            cll.ElseLevel(),
        ],
    )
    birth = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(_swapped("birth_date"), "day and month swapped", "duckdb"),
            cll.CustomLevel(
                "abs(date_diff('day', CAST(birth_date_l AS DATE), CAST(birth_date_r AS DATE))) <= 1",
                "within a day",
                "duckdb",
            ),
            cll.ElseLevel(),
        ],
    )
    return [name, id_number, birth, cl.ExactMatch("county_code")]


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*r) for r in BLOCKING_RULES],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def trained_linker(records_table, api, seed: int, u_max_pairs: int) -> Linker:
    """A linker on the registered records, its m and u estimated (seeded, deterministic)."""
    linker = Linker(
        api.register(records_table, table_name="persons_for_linkage"), settings(), log_level=None
    )
    linker.training.estimate_probability_two_random_records_match(
        [DETERMINISTIC_RULE], recall=DETERMINISTIC_RECALL
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    for rule in TRAINING_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    return linker
