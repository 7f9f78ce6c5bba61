"""The diagnosis of issue 22's information loss (``benchmarks/disclosure_causes.py``): each row hidden beyond the
small cells is attributed to the rule and relation that hid it, on tables small enough to check by hand."""

from __future__ import annotations

import importlib.util
import pathlib

import pandas as pd
import pytest

from opportunity_research.disclosure.joint import TableSpec, protect_tables

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIN_N = 10
SPEC = TableSpec("cell", estimates={"estimate": (0.0, 1.0)})


@pytest.fixture(scope="module")
def causes():
    spec = importlib.util.spec_from_file_location(
        "disclosure_causes", ROOT / "benchmarks" / "disclosure_causes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grid(counts: dict[str, list[int]]) -> pd.DataFrame:
    rows = []
    for school, row in counts.items():
        rows.append((school, "all", int(sum(row))))
        rows += [(school, f"x={j + 1}", int(v)) for j, v in enumerate(row)]
    df = pd.DataFrame(rows, columns=["school_id", "group", "n"])
    return df.assign(estimate=0.5, suppressed=False, suppression_reason="")


def test_an_isolated_small_cell_is_charged_with_its_rectangle(causes):
    """B x=2 = 7 is the only small cell; the pass hides the rectangle A/B x 1/2 (test_disclosure_loss): one
    complement in B's row (levels at the school), one in x=2's column (schools add up to the district) and the
    fourth corner, which rule 3 reaches from a complement (A x=1: the levels of A, or the column of x=1)."""
    t = _grid({"A": [45, 54, 13], "B": [56, 7, 27], "C": [43, 38, 22], "all": [144, 99, 62]})
    (_, report), st, parent = causes.protect_with_state(protect_tables, {"t": (t, SPEC)}, min_n=MIN_N)
    rows, primary, gone, floor = causes.row_causes(st, parent)
    assert report.primary == 1 and report.beyond_primary == 3 == len(rows)
    assert int(primary.sum()) == 1 and not gone.any() and floor == 0
    got = dict(zip(zip(rows["school"], rows["level"]), rows["cause"]))
    assert set(got) == {("A", "1"), ("A", "2"), ("B", "1")}
    assert got[("B", "1")] == "complement: levels (school)"
    assert got[("A", "2")] == "complement: schools->district"
    assert got[("A", "1")].startswith("complement: ")


def test_close_counts_of_a_small_group_are_the_floor_no_complement_avoids(causes):
    """A second table counts the same small group (school B, x=2: 7 students) as 12 (within min_n of 7): rule 2
    hides that row before any complement, and the diagnosis charges it to the small cell's closure."""
    t = _grid({"A": [45, 54, 13], "B": [56, 7, 27], "C": [43, 38, 22], "all": [144, 99, 62]})
    u = _grid({"A": [45, 54, 13], "B": [56, 12, 27], "C": [43, 38, 22], "all": [144, 104, 62]})
    (_, report), st, parent = causes.protect_with_state(
        protect_tables, {"t": (t, SPEC), "u": (u, SPEC)}, min_n=MIN_N, year=2016
    )
    rows, _, _, floor = causes.row_causes(st, parent)
    assert report.passed and floor == 1
    close = rows[rows["cause"] == "close to small"]
    assert list(zip(close["table"], close["school"], close["level"])) == [("u", "B", "2")]
    assert len(rows) == report.beyond_primary
