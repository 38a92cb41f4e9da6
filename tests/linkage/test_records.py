import pandas as pd

from src.linkage import records


def _persons(rows):
    cols = ["source", "source_person_id", "name", "sex", "birth_date", "id_number", "county_code"]
    return pd.DataFrame(rows, columns=cols)


def test_homophones_and_traditional_forms_share_pinyin_and_markup_is_dropped():
    names = pd.Series(["张晓明", "章小明", "張曉明", "=<b>张晓明</b>", None])
    cleaned = records.clean_names(names)
    assert cleaned.iloc[3] == "张晓明" and pd.isna(cleaned.iloc[4])
    pinyin = records.pinyin_of(cleaned)
    assert pinyin.iloc[:4].tolist() == ["zhangxiaoming"] * 4


def test_link_records_normalises_ids_and_keeps_the_registry_by_pid():
    registry = pd.DataFrame({"source_person_id": ["pid1"], "sex": ["f"], "birth_date": pd.to_datetime(["2012-05-05"]),
                             "county_code": ["110101"], "name": ["张三"], "id_number": ["11010120120505001x"],
                             "source": ["registry"]})  # fmt: skip
    persons = _persons([["school", "XJ1", "张 三", "f", "2012-05-05", " 1101012012-0505001X", "110101"],
                        ["health", "YB1", "张三", "f", "2012-05-05", "123", "110101"]])  # fmt: skip
    out = records.link_records(persons, registry).set_index("unique_id")
    assert list(out.index) == ["health:YB1", "registry:pid1", "school:XJ1"]
    assert (
        out.loc["school:XJ1", "id_number"]
        == out.loc["registry:pid1", "id_number"]
        == "11010120120505001X"
    )
    assert (
        out.loc["school:XJ1", "id_head"] == "11010120120505"
        and out.loc["school:XJ1", "id_tail"] == "001X"
    )
    assert pd.isna(out.loc["health:YB1", "id_number"])  # too short to be an ID number
    assert out.loc["school:XJ1", "name"] == "张三"
