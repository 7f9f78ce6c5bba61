"""The catch-up rates' work at 1,000,000 students (issue #21): each starting row is joined to the results of the
years ``k`` later only (not to every result, once per ``k``), and the starting groups' counts are made as a share's
cells (no pass over a mean's residuals); the tables are those of the whole join (pinned against the merges in
``test_trajectory_panel``).
"""

from __future__ import annotations

import numpy as np

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
