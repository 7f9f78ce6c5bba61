"""report.gt_fast: the tables' HTML is great_tables' own, byte for byte (issue 21: the fixed cost of a district)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from great_tables import GT

from opportunity_research.report import gt_fast, tables
from opportunity_research.report.gt_fast import FastGT


def _frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 40
    text = np.array(["A & B", "<i>x</i>", 'say "hi"', "plain", "caf\u00e9", "50%"], dtype=object)
    return pd.DataFrame(
        {
            "label": rng.choice(text, n),
            "maybe": np.where(rng.random(n) < 0.3, None, rng.choice(text, n)),
            "count": rng.integers(0, 100, n),
            "share": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
            "objects": pd.Series([1, "two", 3.5, None] * (n // 4), dtype=object),
            "group": rng.choice(["ela", "math"], n),
        }
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("grouped", [False, True])
def test_same_html_as_great_tables(seed, grouped):
    df = _frame(seed)

    def build(cls):
        gt = cls(df, groupname_col="group", id="t") if grouped else cls(df, id="t")
        gt = gt.fmt_number(columns="share", decimals=2).cols_label(label="Label & name")
        return gt.sub_missing(columns="maybe", missing_text="--").tab_source_note("n < 10 <suppressed>")

    fast, slow = build(FastGT), build(GT)
    assert isinstance(fast, FastGT)
    assert fast.as_raw_html() == slow.as_raw_html()
    assert fast.as_raw_html(inline_css=False) == slow.as_raw_html(inline_css=False)


def test_report_tables_are_laid_out_with_it(monkeypatch):
    """The package's display tables use FastGT, and give the HTML plain great_tables gives."""
    t = pd.DataFrame(
        {
            "group": ["low_income", "low_income", "ell"],
            "level": [1, 0, 1],
            "n": [40.0, None, 12.0],
            "estimate": [0.25, None, 0.5],
            "ci_lower": [0.2, None, 0.3],
            "ci_upper": [0.31, None, 0.7],
            "suppressed": [False, True, False],
        }
    )
    cols = [
        tables.Col("level", "group"),
        tables.Col("n", "count"),
        tables.Col("estimate", "percent"),
        tables.Col("interval", "interval_percent"),
    ]
    built = []
    monkeypatch.setattr(gt_fast, "TableClass", type("Spy", (FastGT,), {"__init__": _spy(built)}))
    fast = tables.table(t, cols, caption="Access & use <by group>")
    assert built
    monkeypatch.setattr(gt_fast, "TableClass", GT)
    slow = tables.table(t, cols, caption="Access & use <by group>")
    assert fast.html == slow.html and str(fast) == str(slow)


def _spy(built: list):
    def init(self, *args, **kwargs):
        built.append(True)
        FastGT.__init__(self, *args, **kwargs)

    return init


def test_the_fast_class_is_used_only_under_the_great_tables_it_was_written_for(monkeypatch):
    import importlib
    import importlib.metadata

    assert gt_fast.TableClass is (
        FastGT if importlib.metadata.version("great_tables").startswith("1.1.") else GT
    )
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.0.0")
    try:
        assert importlib.reload(gt_fast).TableClass is GT  # another version: great_tables' own class
    finally:
        monkeypatch.undo()
        importlib.reload(gt_fast)


def test_report_tables_compile_no_css(monkeypatch):
    """The pages style the tables with their own stylesheet: no great_tables CSS is compiled for a report table
    (FastGT.markup), and the markup is the table as_raw_html gives."""
    import great_tables._scss

    frame = pd.DataFrame({"group": ["A & B", "<C>"], "n": ["12", "30"]})
    page = FastGT(frame, id="t").as_raw_html(inline_css=False)

    def no_css(*args, **kwargs):
        raise AssertionError("great_tables compiled the CSS of a report table")

    monkeypatch.setattr(great_tables._scss, "compile_scss", no_css)
    assert FastGT(frame, id="t").markup() in page
    shown = tables.table(
        pd.DataFrame({"group": ["low_income"], "level": [1], "n": [40]}), ["group", "n"], caption="C"
    )
    assert shown.html.startswith('<div class="table-wrap">\n\n<table class="gt_table reflow"')
