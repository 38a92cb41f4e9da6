"""The splink model: backend, blocking rules, comparisons and seeded training, in one place.

`db_api` is the one place the backend is chosen (`engine`: `features.engine` when params have
it, else `linkage.engine`; issue 18). Comparison levels use splink's level library where one
exists, else SQL written in DuckDB's dialect and declared as such (`base_dialect_str`), so
splink transpiles it to Spark SQL.

Blocking (pairs that are scored at all). Every rule carries geography, so that the pairs grow
about linearly with the children when the counties grow with the population (a rule without
it, e.g. the birth date alone, grows with the square: docs/linkage.md):
- the same county and birth date;
- the same first 14 ID characters (the ID's own area code and birth date: catches a swapped or
  mistyped birth-date field, and a child recorded in another county);
- the same last 4 ID characters (sequence and check digit) in the same county (catches a
  mistyped ID head);
- the same county, sex, birth year and name pinyin (catches a missing or badly mistyped ID
  together with a swapped or off-by-one birth date);
- the same prefecture (the county code's first 4 characters), birth date and name pinyin:
  a child without a usable ID recorded in a neighbouring county's school or hospital.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from src.spark_session import spark_session

BLOCKING_RULES = (
    ("county_code", "birth_date"),
    ("id_head",),
    ("county_code", "id_tail"),
    ("county_code", "sex", "birth_year", "name_pinyin"),
    ("prefecture", "birth_date", "name_pinyin"),
)
GEOGRAPHY = ("county_code", "prefecture", "id_head")  # one of these is in every blocking rule
# EM sessions, each on at most `em_max_pairs` of its blocked pairs (splink's deterministic hash
# sample): each estimates the m of every comparison its blocking rule does not use. County x
# birth date: name and ID; county x pinyin: birth date and ID; prefecture x birth date x
# pinyin: ID and county. (An ID-head session instead lowers the recall: docs/linkage.md.)
TRAINING_RULES = (
    ("county_code", "birth_date"),
    ("county_code", "name_pinyin"),
    ("prefecture", "birth_date", "name_pinyin"),
)
DETERMINISTIC_RULE = "l.id_number = r.id_number"  # for the prior P(two records match)
TRANSPOSED_U = 1e-5  # P(two different children's ID numbers differ by one adjacent swap), about
DETERMINISTIC_RECALL = 0.8  # the share of true pairs that rule finds (IDs missing or mistyped)


def engine(params) -> str:
    """`features.engine` when the params have one (issue 18's one switch), else `linkage.engine`."""
    return getattr(params.features, "engine", None) or params.linkage.engine


def db_api(params, scratch: str):
    """splink's database API for the engine, its spill in `scratch`: DuckDB with its memory
    (`linkage.memory_gb`) and spill (`linkage.temp_gb`) capped, or Spark."""
    lp = params.linkage
    if engine(params) == "spark":
        return spark_api(params, scratch)
    import duckdb

    con = duckdb.connect(config={"threads": lp.threads, "memory_limit": f"{lp.memory_gb}GB"})
    con.execute(f"SET temp_directory = '{scratch}'")
    con.execute(f"SET max_temp_directory_size = '{lp.temp_gb}GB'")
    return DuckDBAPI(connection=con)


def spark_api(params, scratch: str):
    """splink's SparkAPI on the pipeline's SparkSession (`src/spark_session.py`, params `spark:`,
    which puts splink's Scala UDFs on the class path); its checkpoints in `scratch`."""
    from splink.backends.spark import SparkAPI

    spark = spark_session(params.spark, Path(scratch))
    spark.sparkContext.setCheckpointDir(scratch)
    return SparkAPI(spark_session=spark)


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


def rule_pairs(recs: pd.DataFrame) -> dict[str, int]:
    """Pairs each blocking rule forms (a record with a key missing forms none); their sum
    bounds the pairs scored, as splink scores a pair that several rules form once."""
    pairs = {}
    for rule in BLOCKING_RULES:
        sizes = recs.dropna(subset=list(rule)).groupby(list(rule)).size().to_numpy()
        pairs[" x ".join(rule)] = int((sizes * (sizes - 1) // 2).sum())
    return pairs


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*r) for r in BLOCKING_RULES],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def trained_linker(records_table, api, seed: int, u_max_pairs: int, em_max_pairs: int) -> Linker:
    """A linker on the registered records, its m and u estimated (seeded, deterministic)."""
    linker = Linker(
        api.register(records_table, table_name="persons_for_linkage"), settings(), log_level=None
    )
    linker.training.estimate_probability_two_random_records_match(
        [DETERMINISTIC_RULE], recall=DETERMINISTIC_RECALL
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
    for rule in TRAINING_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*rule), max_pairs=em_max_pairs
        )
    return linker
