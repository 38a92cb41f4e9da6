"""CSV formula-injection neutralising: one rule for every CSV people open."""

import numpy as np
import pandas as pd
import pytest

from src.spreadsheet import neutralise_formulas


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+86 10", "'+86 10"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("-5", "-5"),
        ("-3.5", "-3.5"),
        ("+2", "+2"),
        ("-1e-05", "-1e-05"),
        ("-.5", "-.5"),
        ("ok", "ok"),
        ("张三", "张三"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_cells_get_an_apostrophe_and_numbers_do_not(typed, written):
    assert neutralise_formulas(pd.Series([typed], dtype=str)).tolist() == [written]


def test_missing_stays_missing_and_index_name_dtype_are_kept():
    values = pd.Series(["=x", None, "y"], index=[5, 7, 9], name="reason", dtype="string")
    out = neutralise_formulas(values)
    assert out.index.tolist() == [5, 7, 9] and out.name == "reason" and out.dtype == values.dtype
    assert out.iloc[0] == "'=x" and pd.isna(out.iloc[1]) and out.iloc[2] == "y"


def test_mixed_object_column_and_numeric_columns():
    mixed = pd.Series(["=x", -3.5, np.nan, "-2"], dtype=object)
    assert neutralise_formulas(mixed).tolist()[:2] == ["'=x", -3.5]
    numbers = pd.Series([-3.5, -1.0, 2.0])
    pd.testing.assert_series_equal(neutralise_formulas(numbers), numbers)


def test_neutralised_csv_round_trips_the_typed_text():
    typed = pd.Series(["=1+1", "-5", "ok"], dtype=str)
    frame = pd.DataFrame({"v": neutralise_formulas(typed)})
    text = frame.to_csv(index=False)
    assert text.splitlines()[1:] == ["'=1+1", "-5", "ok"]


def test_control_characters_in_cells_are_escaped_not_written():
    from src.spreadsheet import escape_controls

    cells = pd.Series(["pay\rment", "\x1b[31mred\x1b[0m", "pay\x00ment", "P52\n24", "\t=1+1", "plain", None])
    out = escape_controls(cells)
    assert out.tolist()[:5] == ["pay\\rment", "\\x1b[31mred\\x1b[0m", "pay\\x00ment", "P52\\n24", "\\t=1+1"]
    assert out.iloc[5] == "plain" and pd.isna(out.iloc[6])
    assert escape_controls(pd.Series([1.5, 2.0])).tolist() == [1.5, 2.0]
