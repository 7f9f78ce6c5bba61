"""report.gt_fast.TextCells: great_tables' casts of a table's body, in one NumPy pass for text cells, the same
values (and types) as great_tables' pandas code, and the same HTML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from great_tables import GT
from great_tables._tbl_data import _get_cell, cast_frame_to_string, replace_null_frame

from opportunity_research.report import gt_fast
from opportunity_research.report.gt_fast import FastGT, TextCells

_cast_pandas = cast_frame_to_string.dispatch(pd.DataFrame)
_replace_pandas = replace_null_frame.dispatch(pd.DataFrame)


def _cells(df: pd.DataFrame) -> list:
    """Every cell with its type: None, NaN and pd.NA render differently ("None", "nan", "<NA>")."""
    return [
        [(type(v).__name__, v if isinstance(v, str) else repr(v)) for v in row]
        for row in df.itertuples(index=False)
    ]


def _text_frame(seed: int, string_dtype: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 30
    words = np.array(["A & B", "<b>x</b>", "", "12.5%", "None", "nan", "caf\u00e9"], dtype=object)
    missing = [None, np.nan, pd.NA]
    cols = {}
    for j in range(4):
        values = rng.choice(words, n).astype(object)
        holes = rng.random(n) < 0.3
        values[holes] = [missing[k] for k in rng.integers(0, 3, holes.sum())]
        cols[f"c{j}"] = pd.Series(values, dtype="string" if string_dtype and j % 2 else object)
    cols["empty"] = pd.Series([None] * n, dtype=object)
    return pd.DataFrame(cols, index=pd.RangeIndex(5, 5 + n))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("string_dtype", [False, True])
def test_text_cells_take_the_numpy_pass_and_give_great_tables_values(seed, string_dtype):
    orig = _text_frame(seed, string_dtype)
    body = _text_frame(seed + 100, string_dtype)
    before = _cells(orig), _cells(body)
    assert (
        gt_fast._text(orig) is not None and gt_fast._text(body) is not None
    )  # the fast path, not the fallback
    text = cast_frame_to_string(TextCells(orig))
    assert type(text) is pd.DataFrame and _cells(text) == _cells(_cast_pandas(orig))
    assert text.index.equals(orig.index) and text.columns.equals(orig.columns)
    filled = replace_null_frame(TextCells(body), text)
    expected = _replace_pandas(body, _cast_pandas(orig))
    assert type(filled) is gt_fast.BodyCells and _cells(filled) == _cells(expected)
    assert filled.index.equals(expected.index) and filled.columns.equals(expected.columns)
    # great_tables reads the filled body a cell at a time: the same objects as its pandas reader, from the array
    read_pandas = _get_cell.dispatch(pd.DataFrame)
    for row in range(len(filled)):
        for col in filled.columns:
            assert _get_cell(filled, row, col) is read_pandas(filled, row, col)
    assert type(filled.iloc[:3]) is pd.DataFrame  # what pandas derives from it is a plain frame
    assert (_cells(orig), _cells(body)) == before  # the inputs are not written to


def test_other_frames_go_to_great_tables_pandas_code():
    numbers = pd.DataFrame({"n": [0.0, -0.0, 1.5, np.nan], "t": ["a", None, "b", "c"]})
    objects = pd.DataFrame({"o": [1, "two", None, 3.5]}, dtype=object)
    twice = pd.DataFrame([["a", "b"]], columns=["x", "x"])
    for df in (numbers, objects, twice):
        assert gt_fast._text(df) is None
        assert _cells(cast_frame_to_string(TextCells(df))) == _cells(_cast_pandas(df))
    # a body of text over a replacement of another shape (index) falls back too
    body = pd.DataFrame({"t": [None, "b"]}, index=[3, 4])
    repl = pd.DataFrame({"t": ["x", "y"]}, index=[4, 5], dtype=object)
    assert _cells(replace_null_frame(TextCells(body), repl)) == _cells(_replace_pandas(body, repl))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("grouped", [False, True])
def test_markup_same_html_as_great_tables(seed, grouped):
    df = (
        _text_frame(seed)
        .drop(columns="c3")
        .assign(group=lambda d: np.where(np.arange(len(d)) % 3, "ela", "math"))
    )
    df = df.reset_index(drop=True)

    def build(cls):
        gt = cls(df, groupname_col="group", rowname_col="c0", id="t") if grouped else cls(df, id="t")
        return gt.sub_missing(columns="c1", missing_text="--").cols_label(c2="Label & name")

    fast, slow = build(FastGT).markup(), build(GT).as_raw_html()
    assert fast in slow and "</tbody>" in fast
