"""The catch-up rates' work at 1,000,000 students (issue #21): each starting row is joined to the results of the
years ``k`` later only (not to every result, once per ``k``), the starting groups' counts are made as a share's
cells (no pass over a mean's residuals), and the scorecard's indicator takes the rates of the start years a
``catch_up_rates`` table already holds; the tables are those of the whole join (pinned against the merges in
``test_trajectory_panel``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study import panels, trajectories

from .test_trajectory_panel import _planted


def test_starting_rows_are_joined_to_the_years_k_later_only(monkeypatch):
    a, st = _planted(1, n=120)
    p = panels.yearly_panel(a, students=st)
    year = p.frame["school_year"].to_numpy()
    seen, kinds = [], []
    real_later, real_cells = trajectories.later_rows, trajectories.subgroup_cells

    def later(panel, left, right, k):
        seen.append((sorted(set(year[left])), sorted(set(year[right])), k))
        return real_later(panel, left, right, k)

    def cells(frame, **kw):
        kinds.append(kw["kind"])
        return real_cells(frame, **kw)

    monkeypatch.setattr(trajectories, "later_rows", later)
    monkeypatch.setattr(trajectories, "subgroup_cells", cells)
    out = trajectories.catch_up_rates(p, students=None, start_year="all")
    assert len(out) and seen
    for starts, ends, k in seen:
        assert ends == sorted({s + k for s in starts} & set(np.unique(year)))
    assert kinds == ["share"]  # the starting counts


@pytest.mark.parametrize("rows", [1, panels.PARTS_MIN_ROWS], ids=["a part at a time", "parts put together"])
@pytest.mark.parametrize(
    "given",
    [{}, {"start_year": "all"}, {"years_later": (1, 2)}],
    ids=["earliest start", "every start", "other k only"],
)
def test_the_indicator_takes_the_catch_up_rates_made(rows, given, monkeypatch):
    monkeypatch.setattr(panels, "PARTS_MIN_ROWS", rows)
    a, st = _planted(2, n=120)
    p = panels.yearly_panel(a, students=st)
    want = trajectories.trajectory_indicators(p, students=None)
    catch = trajectories.catch_up_rates(p, students=None, **given)
    starts = []
    real = trajectories.later_rows

    def later(panel, left, right, k):
        starts.append(sorted(set(p.frame["school_year"].to_numpy()[left])))
        return real(panel, left, right, k)

    monkeypatch.setattr(trajectories, "later_rows", later)
    got = trajectories.trajectory_indicators(p, students=None, catch=catch)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs
    # the start years whose 3-year rates the table holds are not joined again
    pooled = catch[(catch["subject"] == "all") & (catch["years_later"] == 3)]
    assert not set(pooled["start_year"]) & set(starts[0] if starts else [])
