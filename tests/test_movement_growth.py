"""``movement.movement_and_growth`` (issue #21, the trajectories at 1,000,000 students): the level movement and the
yearly growth of the subjects pooled (the scorecard's indicator) made together equal each made by its function,
floats exactly, and when the two pair the same results the pairs are found once and the pooled cells are made in
one pass for both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study import movement, panels, trajectories

from .test_trajectory_panel import _planted


@pytest.fixture(
    autouse=True, params=[1, panels.PARTS_MIN_ROWS], ids=["a part at a time", "parts put together"]
)
def _parts_min_rows(request, monkeypatch):
    """Both ways: each later year's cells made on their own, subjects then pooled (a large district's), and the
    years put together in one call with the subjects pooled (a small district's)."""
    monkeypatch.setattr(panels, "PARTS_MIN_ROWS", request.param)


def _panel(seed: int, *, same_results: bool):
    a, st = _planted(seed, n=150)
    if same_results:  # a performance level exactly where a grade equivalent is
        both = a["performance_level"].notna() & a["grade_equivalent"].notna()
        a.loc[~both, ["performance_level", "grade_equivalent"]] = np.nan
    return panels.yearly_panel(a, students=st)


def _counted(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapped(*a, **k):
        calls.append(k.get("column", name))
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapped)
    return calls


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("same_results", [True, False], ids=["the same results", "other results"])
def test_movement_and_growth_equal_their_functions(seed, same_results, monkeypatch):
    p = _panel(seed, same_results=same_results)
    want_m = movement.level_movement(p, students=None)
    want_g = movement.yearly_growth(p, students=None, pooled_only=True)
    pairs = _counted(monkeypatch, movement, "_pair_rows")
    got_m, got_g = movement.movement_and_growth(p, students=None)
    pd.testing.assert_frame_equal(got_m, want_m, check_exact=True)
    pd.testing.assert_frame_equal(got_g, want_g, check_exact=True)
    assert got_m.attrs == want_m.attrs and got_g.attrs == want_g.attrs
    # the same results: paired once (on the performance levels); otherwise each table pairs its own
    assert pairs == (["performance_level"] if same_results else ["performance_level", "grade_equivalent"])


def test_the_indicator_takes_the_growth_made_with_the_movement(monkeypatch):
    p = _panel(4, same_results=True)
    want = trajectories.trajectory_indicators(p, students=None)
    _, growth = trajectories.movement_and_growth(p, students=None)
    calls = _counted(monkeypatch, trajectories, "yearly_growth")
    got = trajectories.trajectory_indicators(p, students=None, growth=growth)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert calls == []  # not made again


def test_no_pairs_give_both_notes():
    p = _panel(5, same_results=True)
    one_year = panels.YearlyPanel(p.frame[p.frame["school_year"] == 2016], p.text, p.window, p.subjects)
    m, g = movement.movement_and_growth(one_year, students=None)
    assert len(m) == len(g) == 0
    assert m.attrs["needs"] == movement.level_movement(one_year, students=None).attrs["needs"]
    assert (
        g.attrs["needs"] == movement.yearly_growth(one_year, students=None, pooled_only=True).attrs["needs"]
    )
