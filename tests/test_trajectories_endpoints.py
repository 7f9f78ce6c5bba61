"""Growth in grade levels by endpoints on arrays (issue #21, 1,000,000 students): each student-subject's number of
years, latest score and span without grouping the results, the same values as the grouping it replaced (kept here as
the reference), floats exactly; with a result repeated in a later year, the first of the latest results (as idxmax
found it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study import panels, trajectories
from opportunity_research.study.panels import join_rows, panel_rows

from .test_trajectory_panel import _planted


def _grouped(panel, start: int, end: int) -> pd.DataFrame:
    """``_student_growth(..., "endpoints")`` as it was: the results grouped by student-subject."""
    frame = panel.frame
    year = frame["school_year"].to_numpy()
    ge = frame["grade_equivalent"].to_numpy(dtype=float)
    sk = frame["_sk"].to_numpy()
    inside = np.flatnonzero(~np.isnan(ge) & (year >= start) & (year <= end))
    first = inside[year[inside] == start]
    rows = inside[join_rows(sk[inside], sk[first])[0]]
    t = (year[rows] - start).astype(float)
    y = ge[rows]
    s = (
        pd.DataFrame({"_sk": sk[rows], "t": t})
        .groupby("_sk", sort=False)
        .agg(k=("t", "size"), tmax=("t", "max"))
    )
    last = pd.Series(year[rows]).groupby(sk[rows], sort=False).idxmax()
    last = pd.Series(y[last.to_numpy()], index=last.index)
    y0 = pd.Series(ge[first], index=sk[first])
    s["growth"] = ((last.reindex(s.index) - y0.reindex(s.index)) / s["tmax"]).where(s["k"] >= 2)
    at = s.index.get_indexer(sk[first])
    out = panel_rows(
        panel, first, ["subject", "school_id", *panels.VARIABLES, "start_offset", "at_grade_level", "_sid"]
    )
    out["n_years"] = s["k"].to_numpy()[at]
    out["growth"] = s["growth"].to_numpy()[at]
    out["started_behind"] = (1 - out["at_grade_level"]).astype(float)
    return out[out["growth"].notna()]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("repeated", [False, True], ids=["one result a year", "some results twice"])
@pytest.mark.parametrize("span", [(2012, 2016), (2013, 2015)])
def test_endpoints_on_arrays_equal_the_grouping(seed, repeated, span):
    a, st = _planted(seed, n=150)
    if repeated:  # some results of 2015 twice, the second score another: ties in the latest year
        again = a[a["school_year"] == 2015].sample(frac=0.2, random_state=seed)
        a = pd.concat([a, again.assign(grade_equivalent=again["grade_equivalent"] + 0.5)], ignore_index=True)
    p = panels.yearly_panel(a, students=st)
    got = trajectories._student_growth(p, *span, "endpoints")
    pd.testing.assert_frame_equal(got, _grouped(p, *span), check_exact=True)
    assert got["n_years"].min() >= 2 and (got["n_years"] == 1).sum() == 0


def test_endpoints_do_not_group_one_result_a_year(monkeypatch):
    a, st = _planted(4, n=100)
    p = panels.yearly_panel(a, students=st)

    def no_grouping(*a, **k):
        raise AssertionError("grouped")

    monkeypatch.setattr(pd.DataFrame, "groupby", no_grouping)
    assert len(trajectories._student_growth(p, 2012, 2016, "endpoints"))
