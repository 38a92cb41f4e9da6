"""Interim persons + the registry -> one frame of person records, normalised for comparison.

Each record has `unique_id` = ``<source>:<source_person_id>``; the registry's own records use
source ``registry`` and the child_pid as their id (the raw child_id stays in identity.parquet).
Names are stripped of blanks and punctuation and get their pinyin (pypinyin, tones dropped:
homophones and traditional forms read alike); ID numbers are upper-cased digits; birth dates
are ISO text, so day/month swaps can be compared by substring; the prefecture is the county
code's head.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from pypinyin import lazy_pinyin

from src.linkage.persons_spec import REGISTRY_SOURCE

COLUMNS = ("unique_id", "source", "source_person_id", "name", "name_pinyin", "sex",
           "birth_date", "birth_year", "id_number", "id_head", "id_tail", "county_code",
           "prefecture")  # fmt: skip
ID_HEAD = 14  # area (6) + birth date (8): the blocking fragments of an ID number are head and tail
PREFECTURE = 4  # the first characters of a county code (GB/T 2260: province 2, prefecture 2)
_NOT_NAME = re.compile(r"[\s\W_0-9A-Za-z]+")
_NOT_ID = re.compile(r"[^0-9X]")


def registry_persons(children: pd.DataFrame, identity: pd.DataFrame) -> pd.DataFrame:
    """The registry's children as person records (source `registry`, id = child_pid)."""
    frame = children[["child_pid", "sex", "birth_date", "county_code"]].merge(
        identity[["child_pid", "name", "id_number"]], on="child_pid", how="left", validate="1:1"
    )
    return frame.rename(columns={"child_pid": "source_person_id"}).assign(source=REGISTRY_SOURCE)


def link_records(persons: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """Department persons and registry persons in one normalised frame, sorted by unique_id."""
    frame = pd.concat(
        [registry, persons[[c for c in persons.columns if c != "address_text"]]],
        ignore_index=True,
    )
    frame["name"] = clean_names(frame["name"])
    frame["name_pinyin"] = pinyin_of(frame["name"])
    frame["id_number"] = (
        frame["id_number"].fillna("").astype(str).str.upper().str.replace(_NOT_ID, "", regex=True)
    )
    frame["id_number"] = frame["id_number"].where(frame["id_number"].str.len() >= 15)
    frame["id_head"] = frame["id_number"].str[:ID_HEAD]
    frame["id_tail"] = frame["id_number"].str[ID_HEAD:]
    frame["birth_date"] = pd.to_datetime(frame["birth_date"]).dt.strftime("%Y-%m-%d")
    frame["birth_year"] = frame["birth_date"].str[:4]
    frame["prefecture"] = frame["county_code"].astype(str).str[:PREFECTURE]
    frame["unique_id"] = frame["source"].astype(str) + ":" + frame["source_person_id"].astype(str)
    frame = frame.drop_duplicates("unique_id").sort_values("unique_id", ignore_index=True)
    return frame[list(COLUMNS)].astype({c: "str" for c in COLUMNS})


def clean_names(names: pd.Series) -> pd.Series:
    """Only the name's Chinese characters (markup, quotes and formula prefixes dropped)."""
    cleaned = names.fillna("").astype(str).str.replace(_NOT_NAME, "", regex=True)
    return cleaned.where(cleaned.ne(""))


def pinyin_of(names: pd.Series) -> pd.Series:
    """Tone-less pinyin of each name, each distinct name converted once."""
    unique = names.dropna().unique()
    table = {n: "".join(lazy_pinyin(n)) for n in unique}
    return names.map(table)


def read_records(interim: Path) -> pd.DataFrame:
    """The linkage input from data/interim: persons.parquet (if any) and the registry."""
    registry = registry_persons(
        pd.read_parquet(interim / "children.parquet"), pd.read_parquet(interim / "identity.parquet")
    )
    path = interim / "persons.parquet"
    persons = pd.read_parquet(path) if path.exists() else registry.iloc[:0]
    return link_records(persons, registry)
