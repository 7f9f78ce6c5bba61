"""The analysis' tables made a part at a time (a year, or a subject and year) equal the tables made at once.

At a million students the trajectories' cells, the level counts and the score gaps were made from every row at
once (the analysis' peak memory); they are now made one later year, start year or (subject, year) at a time, and
the work samples' classrooms are found by position instead of a merge on the id text. Each fast path is pinned
here against the computation it replaces, on planted data with what a real export has (a third subject, fall
rows, missing scores, levels and groups, students off the roster, rows without a subject or year, shuffled
rows): the tables must be equal, floats exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.study import levelgaps, measures, panels

from .test_trajectory_panel import _planted


@pytest.fixture(
    autouse=True, params=[1, panels.PARTS_MIN_ROWS], ids=["a part at a time", "parts put together"]
)
def _parts_min_rows(request, monkeypatch):
    """Every test both ways: each part's cells made on its own (as a large district's are) and the parts put
    together in one call (as a small district's are)."""
    monkeypatch.setattr(panels, "PARTS_MIN_ROWS", request.param)


def _data(seed: int):
    a, st = _planted(seed, n=120, off_roster=True)
    a = a.astype({"subject": "str", "student_id": "str"})
    st = st.astype({"student_id": "str", "school_id": "str", "race_ethnicity": "str"})
    return a, st


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_level_counts_and_score_gaps_by_subject_and_year_equal_the_whole_join(seed, monkeypatch):
    a, st = _data(seed)
    parts = (
        levelgaps.level_counts_from_assessments(a, students=st),
        levelgaps.score_gaps(a, students=st),
    )
    assert parts[0]["subject"].nunique() == 3 and parts[1]["school_year"].nunique() == 5  # several parts
    # the computation replaced: one roster join of every row (what a roster the ids cannot be looked up in gets)
    monkeypatch.setattr(levelgaps, "id_positions", lambda known, ids: None)
    whole = (
        levelgaps.level_counts_from_assessments(a, students=st),
        levelgaps.score_gaps(a, students=st),
    )
    for got, want in zip(parts, whole, strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_rows_without_a_subject_are_left_out():
    a, st = _data(5)
    a.loc[np.random.default_rng(5).random(len(a)) < 0.03, "subject"] = None
    got = levelgaps.level_counts_from_assessments(a, students=st), levelgaps.score_gaps(a, students=st)
    b = a.dropna(subset=["subject"])
    want = levelgaps.level_counts_from_assessments(b, students=st), levelgaps.score_gaps(b, students=st)
    for g, w in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(g, w, check_exact=True)


def test_level_counts_and_score_gaps_without_rows_are_the_empty_tables(monkeypatch):
    a, st = _data(4)
    a = a.assign(window="fall")  # no spring row
    got = levelgaps.level_counts_from_assessments(a, students=st), levelgaps.score_gaps(a, students=st)
    monkeypatch.setattr(levelgaps, "id_positions", lambda known, ids: None)
    want = levelgaps.level_counts_from_assessments(a, students=st), levelgaps.score_gaps(a, students=st)
    for g, w in zip(got, want, strict=True):
        assert len(g) == 0
        pd.testing.assert_frame_equal(g, w, check_exact=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_subgroup_cells_by_year_equal_the_cells_of_every_row(seed):
    a, st = _data(seed)
    panel = panels.yearly_panel(a.dropna(subset=["subject"]), students=st[~st["student_id"].isin(["gone"])])
    f = panel.frame.dropna(subset=["at_grade_level"])
    kw = {
        "keys": ["subject", "school_year"],
        "variables": list(panels.VARIABLES),
        "value": ["at_grade_level", "start_offset"],
        "kind": "mean",
        "confidence": 0.95,
        "pooled": True,
        "text": panel.text,
    }
    whole = panels.subgroup_cells(f, **kw)
    years = sorted(f["school_year"].unique())
    parts = panels.subgroup_cells_parts((f[f["school_year"] == y] for y in years[::-1]), **kw)
    for got, want in zip(parts, whole, strict=True):
        keys = ["subject", "school_year"]
        pd.testing.assert_frame_equal(
            panels.order_rows(got, keys), panels.order_rows(want, keys), check_exact=True
        )
    # a split that cuts the cells of the keys (here: by school) is not the same table
    by_school = panels.subgroup_cells_parts((f[f["school_id"] == s] for s in ("S1", "S2", "S3")), **kw)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(
            panels.order_rows(by_school[0], ["subject", "school_year"]),
            panels.order_rows(whole[0], ["subject", "school_year"]),
        )


@pytest.mark.parametrize("seed", [1, 2])
def test_demands_vs_standards_by_position_equal_the_merge(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n_a = 60
    assignments = pd.DataFrame(
        {
            "assignment_id": pd.Series([f"A{i:03d}" for i in rng.permutation(n_a)], dtype="str"),
            "classroom_id": pd.Series(rng.choice(["C9", "C1", "C5", "C3", None], n_a), dtype="str"),
        }
    )
    k = 700
    ids = rng.choice([*assignments["assignment_id"], "A999", None], k)  # one unknown, some missing
    ws = pd.DataFrame(
        {
            "assignment_id": pd.Series(ids, dtype="str"),
            "met_demands": rng.integers(0, 2, k).astype(np.int8),
            "met_grade_level": rng.choice([0.0, 1.0, np.nan], k),
        }
    )
    d = District("x", {"assignments": assignments, "work_samples": ws})
    got = measures.demands_vs_standards(d)
    monkeypatch.setattr(measures, "id_positions", lambda known, ids: None)  # the merge on the id text
    want = measures.demands_vs_standards(d)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["n_classrooms"].tolist() == [4, 4]
