"""The disclosure benchmark's side-by-side with tau-Argus: the tables it builds and its optional tau-Argus path.

The benchmark is not timed here (timings live in ``benchmarks/``); these tests check that both tools are fed the
same school x group counts, and run the tau-Argus path only where the optional ``pytauargus`` extra is installed.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pandas as pd
import pytest

from opportunity_research import config

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_disclosure", ROOT / "benchmarks" / "bench_disclosure.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def students(bench):
    return bench.synthetic_students(3000, 6, seed=1)


def test_school_group_cells_count_the_students(bench, students):
    cells = bench.school_group_cells(students)
    district = cells[cells["school_id"] == "all"].set_index("group")["n"]
    assert district["all"] == len(students)
    for v in bench.TABLE_VARIABLES:
        assert cells.loc[(cells["school_id"] == "all") & (cells["variable"] == v), "n"].sum() == len(students)
        by_school = (
            cells[(cells["school_id"] != "all") & (cells["variable"] == v)].groupby("school_id")["n"].sum()
        )
        totals = cells[(cells["school_id"] != "all") & (cells["group"] == "all")].set_index("school_id")["n"]
        pd.testing.assert_series_equal(by_school.sort_index(), totals.sort_index(), check_names=False)
    assert ((cells["n"] > 0) & (cells["n"] < config.MIN_CELL_SIZE)).any()  # there is something to protect


def test_ours_on_the_same_cells_hides_every_small_cell_and_loses_less_with_a_looser_protection(
    bench, students
):
    cells = bench.school_group_cells(students)
    wide, _ = bench.ours_on_cells(cells, config.MIN_CELL_SIZE)
    loose, _ = bench.ours_on_cells(cells, 1)
    small = int(((cells["n"] > 0) & (cells["n"] < config.MIN_CELL_SIZE)).sum())
    assert wide.passed and loose.passed and wide.primary == loose.primary == small
    assert loose.beyond_primary <= wide.beyond_primary


def test_tauargus_on_the_same_cells(bench, students):
    pytest.importorskip(
        "pytauargus", reason="optional benchmark extra bench-tauargus (EUPL-1.2) not installed"
    )
    r = bench.tauargus_on_cells(students)
    cells = bench.school_group_cells(students)
    small = int(((cells["n"] > 0) & (cells["n"] < config.MIN_CELL_SIZE)).sum())
    # tau-Argus sees each table's own margins: the district total and the school totals once per table
    assert r["small"] >= small and r["beyond"] >= 1 and r["narrowest"] > 0


def test_without_pytauargus_the_benchmark_says_it_skips(bench, monkeypatch, capsys):
    monkeypatch.setattr(bench, "tauargus_available", lambda: False)
    monkeypatch.setattr(bench, "demo_districts", lambda quick: [])
    bench.bench_tauargus(True, 2000, 5)
    out = capsys.readouterr().out
    assert "skipped: pytauargus is not installed" in out and "ours, protection 10" in out
