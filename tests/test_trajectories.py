"""Trajectories: catch-up rates, growth in grade levels, years to close, level movement, missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.disclosure.joint import protect_table
from opportunity_research.stats.estimates import wilson_interval
from opportunity_research.study import trajectories as tr
from opportunity_research.study.indicators import INDICATOR_COLUMNS, validate_indicators


def _rows(offsets: dict, *, grade0: int = 4, subject: str = "math", window: str = "spring"):
    """Assessment rows from {student: {year: offset}}: grade_equivalent = grade + offset (grade0 in 2014);
    the scale is 200 + 20 * grade_equivalent with the cut at 200 + 20 * grade (at grade level iff offset >= 0)."""
    rows = []
    for sid, by_year in offsets.items():
        for year, off in by_year.items():
            grade = grade0 + (year - 2014)
            ge = grade + off
            level = 1 if off < -1 else 2 if off < 0 else 3 if off < 1 else 4
            rows.append(
                {
                    "student_id": sid,
                    "subject": subject,
                    "school_year": year,
                    "window": window,
                    "grade": grade,
                    "scale_score": 200 + 20 * ge,
                    "grade_level_cut": 200.0 + 20 * grade,
                    "performance_level": level,
                    "grade_equivalent": ge,
                }
            )
    return pd.DataFrame(rows)


def _students(ids_by_school: dict, low_income: set = frozenset()):
    rows = [
        {
            "student_id": s,
            "school_id": sch,
            "race_ethnicity": "white",
            "low_income": int(s in low_income),
            "english_learner": 0,
            "disability": 0,
        }
        for sch, ids in ids_by_school.items()
        for s in ids
    ]
    return pd.DataFrame(rows)


# Catch-up design: 10 students below grade level in 2014 in each of S1 and S2 (offset -0.5), 5 at grade level.
# 2015: 4 of S1's and 1 of S2's are at grade level -> k=1: 5/20 (S1 4/10, S2 1/10).
# 2016: 6 of S1's; of S2's, 2 are not tested and 2 of the other 8 are at grade level -> k=2: 8/18.
def _catch_up_data():
    offsets = {}
    for i in range(15):
        s1, s2 = f"a{i:02d}", f"b{i:02d}"
        if i >= 10:
            offsets[s1] = {2014: 0.5, 2015: 0.5, 2016: 0.5}
            offsets[s2] = {2014: 0.5, 2015: 0.5, 2016: 0.5}
            continue
        offsets[s1] = {2014: -0.5, 2015: 0.2 if i < 4 else -0.4, 2016: 0.1 if i < 6 else -0.3}
        offsets[s2] = {2014: -0.5, 2015: 0.1 if i == 0 else -0.6}
        if i >= 2:
            offsets[s2][2016] = 0.3 if i < 4 else -0.5
    students = _students({"S1": [f"a{i:02d}" for i in range(15)], "S2": [f"b{i:02d}" for i in range(15)]})
    return _rows(offsets), students


def test_catch_up_rates_hand_computed():
    a, st = _catch_up_data()
    c = tr.catch_up_rates(a, students=st, variables=())
    assert c.attrs["needs"] == [] and set(c["start_year"]) == {2014}
    d = c[(c.school_id == "all") & (c.subject == "math")].set_index("years_later")
    assert (
        d.loc[1, "estimate"] == pytest.approx(5 / 20) and d.loc[1, "n"] == 20 and d.loc[1, "n_students"] == 20
    )
    assert d.loc[2, "estimate"] == pytest.approx(8 / 18) and d.loc[2, "n"] == 18 and d.loc[2, "n_start"] == 20
    assert d.loc[2, "school_year"] == 2016
    # Wilson 95% for 5/20 is 0.1119 to 0.4687
    assert (d.loc[1, "ci_lower"], d.loc[1, "ci_upper"]) == pytest.approx((0.11187, 0.46871), abs=1e-5)
    lo, hi = wilson_interval(8, 18)
    assert (d.loc[2, "ci_lower"], d.loc[2, "ci_upper"]) == pytest.approx((float(lo), float(hi)))
    s = c[(c.school_id != "all") & (c.subject == "math")].set_index(["school_id", "years_later"])
    assert s.loc[("S1", 1), "estimate"] == pytest.approx(0.4) and s.loc[
        ("S2", 2), "estimate"
    ] == pytest.approx(0.25)
    assert 3 not in set(c["years_later"])  # no 2017 results


def test_catch_up_small_school_shown_complete_and_hidden_with_its_complement_by_the_joint_pass():
    a, st = _catch_up_data()
    c = tr.catch_up_rates(a, students=st, variables=())
    full = c[(c.years_later == 2) & (c.subject == "math")].set_index("school_id")
    assert full.loc["S2", "n"] == 8 and not full["suppressed"].any()  # the statistics are complete
    c = protect_table(c, "catch_up", min_n=10, year=2016)
    s = c[(c.years_later == 2) & (c.subject == "math")].set_index("school_id")
    assert s.loc["S2", "suppressed"]  # 8 tested
    assert s.loc["S1", "suppressed"]  # district - S1 would reveal S2
    assert s.loc[["S1", "S2"], ["estimate", "n", "n_start"]].isna().all().all()
    assert not s.loc["all", "suppressed"] and s.loc["all", "estimate"] == pytest.approx(8 / 18)


def test_catch_up_pools_subjects_with_students_counted_once():
    a, st = _catch_up_data()
    both = pd.concat([a, a.assign(subject="ela")], ignore_index=True)
    c = tr.catch_up_rates(both, students=st, variables=())
    row = c[(c.subject == "all") & (c.school_id == "all") & (c.years_later == 1)].iloc[0]
    assert row["estimate"] == pytest.approx(0.25) and row["n"] == 40 and row["n_students"] == 20
    single = c[(c.subject == "math") & (c.school_id == "all") & (c.years_later == 1)].iloc[0]
    assert row["ci_upper"] - row["ci_lower"] >= single["ci_upper"] - single["ci_lower"] - 1e-12


def test_catch_up_start_year_choices_and_subgroups():
    a, st = _catch_up_data()
    st = st.assign(
        low_income=st["student_id"]
        .isin([f"a{i:02d}" for i in range(5)] + [f"b{i:02d}" for i in range(5)])
        .astype(int)
    )
    c = tr.catch_up_rates(a, students=st, start_year="all", variables=("low_income",))
    assert set(c["start_year"]) == {2014, 2015}
    d = c[(c.school_id == "all") & (c.start_year == 2014) & (c.years_later == 1) & (c.subject == "math")]
    d = d.set_index("group")
    # low-income: a00-a04 (a00-a03 caught up) and b00-b04 (b00 caught up) -> 5 / 10
    assert d.loc["low_income=1", "estimate"] == pytest.approx(0.5) and d.loc["low_income=0", "estimate"] == 0
    with pytest.raises(ValueError, match="start_year 2010"):
        tr.catch_up_rates(a, students=st, start_year=2010)


def test_years_to_close_formula_and_notes():
    assert tr.years_to_close(2.0, 1.5) == pytest.approx(4.0)
    assert tr.years_to_close(1.0, 1.3) == pytest.approx(1 / 0.3)
    out = tr.years_to_close([1.5, 1.5, 1.5, 0.0, -0.5, np.nan], [1.25, 1.0, 0.8, 0.9, 1.2, 1.2])
    np.testing.assert_allclose(out, [6.0, np.nan, np.nan, 0.0, np.nan, np.nan])
    notes = tr.years_to_close_note([1.5, 1.5, 1.5, 0.0, -0.5, np.nan], [1.25, 1.0, 0.8, 0.9, 1.2, 1.2])
    assert list(notes) == ["", tr.NO_CLOSE, tr.NO_CLOSE, "", "not behind grade level", "no estimate"]
    assert tr.NO_CLOSE == "does not close at rate <= 1 grade level per year"
    assert tr.years_to_close_note(1.0, 1.0) == tr.NO_CLOSE


def _growth_data():
    """S3: 12 students starting 1.5 +- 0.2 behind, growing 1.4 +- 0.1 a year; S4: 1.0 behind, 1.1 a year.
    Deviations are symmetric, so school means are exact; 2016 is missing for one student per school."""
    offsets, truth = {}, {}
    dev_off = np.array([-0.2, 0.2, 0.0] * 4)
    dev_gro = np.array([0.1, -0.1] * 6)
    for school, (off0, rate) in {"S3": (-1.5, 1.4), "S4": (-1.0, 1.1)}.items():
        for i in range(12):
            sid = f"{school}-{i:02d}"
            o, r = off0 + dev_off[i], rate + dev_gro[i]
            # ge(t) = (4 + o) + r * t -> offset(t) = o + (r - 1) * t
            offsets[sid] = {2014 + t: o + (r - 1) * t for t in range(3)}
            truth[sid] = r
    offsets["S3-00"].pop(2016)
    offsets["S4-00"].pop(2016)
    students = _students({"S3": [f"S3-{i:02d}" for i in range(12)], "S4": [f"S4-{i:02d}" for i in range(12)]})
    return _rows(offsets), students, truth


def test_growth_in_grade_levels_and_trajectory_changing_flag():
    a, st, _ = _growth_data()
    g = tr.grade_level_growth(a, students=st, variables=())
    s = g[(g.subject == "math") & (g.group == "all")].set_index("school_id")
    assert s.loc["S3", "growth"] == pytest.approx(1.4) and s.loc["S3", "start_offset"] == pytest.approx(-1.5)
    assert s.loc["S4", "growth"] == pytest.approx(1.1) and s.loc["S4", "start_offset"] == pytest.approx(-1.0)
    assert bool(s.loc["S3", "trajectory_changing"]) and not bool(s.loc["S4", "trajectory_changing"])
    # t interval of the per-student growth (independent: numpy polyfit per student)
    per = [
        np.polyfit(p["school_year"], p["grade_equivalent"], 1)[0]
        for _, p in a[a.student_id.str.startswith("S3")].groupby("student_id")
    ]
    half = stats.t.ppf(0.975, 11) * np.std(per, ddof=1) / np.sqrt(12)
    assert (s.loc["S3", "growth_ci_lower"], s.loc["S3", "growth_ci_upper"]) == pytest.approx(
        (1.4 - half, 1.4 + half)
    )
    # years to close at the school's mean rate: 1.5 / 0.4 and 1.0 / 0.1
    assert s.loc["S3", "gap"] == pytest.approx(1.5) and s.loc["S3", "years_to_close"] == pytest.approx(3.75)
    assert s.loc["S4", "years_to_close"] == pytest.approx(10.0)
    assert s.loc["all", "growth"] == pytest.approx(1.25) and s.loc["all", "n"] == 24
    strict = tr.grade_level_growth(a, students=st, variables=(), threshold=1.5)
    assert not strict[strict.school_id == "S3"]["trajectory_changing"].iloc[0]


def test_growth_endpoints_method_and_started_behind_group():
    a, st, _ = _growth_data()
    g = tr.grade_level_growth(a, students=st, variables=(), method="endpoints", end_year=2015)
    s = g[(g.group == "all") & (g.subject == "math")].set_index("school_id")
    assert s.loc["S3", "growth"] == pytest.approx(1.4) and s.loc["S3", "end_year"] == 2015
    behind = g[(g.school_id == "all") & (g.group == "started_behind=1") & (g.subject == "all")]
    assert behind["n"].iloc[0] == 24  # everyone started behind
    with pytest.raises(ValueError, match="method"):
        tr.grade_level_growth(a, students=st, method="median")


def test_yearly_growth_series():
    a, st, truth = _growth_data()
    y = tr.yearly_growth(a, students=st, variables=())
    s = y[(y.school_id == "S3") & (y.group == "all") & (y.subject == "math")].set_index("school_year")
    # 2015: all 12 students; 2016: S3-00 (rate 1.5) is missing -> mean of the other 11
    assert s.loc[2015, "estimate"] == pytest.approx(1.4)
    others = [r for sid, r in truth.items() if sid.startswith("S3") and sid != "S3-00"]
    assert s.loc[2016, "estimate"] == pytest.approx(np.mean(others)) and s.loc[2016, "n"] == 11


def test_level_transitions_and_movement_hand_counted():
    a, st = _catch_up_data()
    t = tr.level_transitions(a)
    m = t[(t.from_year == 2014)].set_index(["from_level", "to_level"])
    # from level 3 (the 10 at grade level): all stay -> shown; from level 2 (20): 15 stay, 5 move up
    assert m.loc[(3, 3), "n"] == 10 and m.loc[(3, 3), "share"] == 1.0 and m.loc[(3, 2), "n"] == 0
    # a complete table (not published by the report): the 5 who moved up are shown like the 15 who stayed
    assert m.loc[(2, 3), "n"] == 5 and m.loc[(2, 2), "n"] == 15 and m.loc[(2, 2), "n_from"] == 20
    assert m.loc[(1, 1), "n_from"] == 0 and not m["suppressed"].any()
    mv = tr.level_movement(a, students=st, variables=())
    d = mv[(mv.school_id == "all") & (mv.from_year == 2014) & (mv.subject == "math")].iloc[0]
    assert (
        d["moved_up"] == pytest.approx(5 / 30)
        and d["moved_down"] == 0
        and d["stayed"] == pytest.approx(25 / 30)
    )
    lo, hi = wilson_interval(5, 30)
    assert (d["moved_up_ci_lower"], d["moved_up_ci_upper"]) == pytest.approx((float(lo), float(hi)))


def test_indicators_in_the_shared_format():
    a, st = _catch_up_data()
    ind = tr.trajectory_indicators(a, students=st, horizon=1, variables=())
    validate_indicators(ind)
    assert list(ind.columns) == list(INDICATOR_COLUMNS)
    cu = ind[(ind.measure == "catch_up_rate") & (ind.school_id == "all")].set_index("school_year")
    assert cu.loc[2015, "estimate"] == pytest.approx(0.25)
    assert set(ind["measure"]) == {"catch_up_rate", "growth_grade_levels"}
    # horizon 3 needs results three years apart: only growth is left, and needs says why
    ind3 = tr.trajectory_indicators(a, students=st, horizon=3, variables=())
    assert set(ind3["measure"]) == {"growth_grade_levels"}
    assert any("3 year" in s for s in ind3.attrs["needs"])


def test_one_year_of_assessments_or_no_grade_equivalent_gives_needs():
    a, st = _catch_up_data()
    one = a[a.school_year == 2016]
    for t in (
        tr.catch_up_rates(one, students=st),
        tr.level_transitions(one),
        tr.level_movement(one, students=st),
    ):
        need = t.attrs["needs"][0]
        assert t.empty and len(t.columns) and "at least two school years" in need and "(found: 2016)" in need
    g = tr.grade_level_growth(one, students=st)
    assert g.empty and "grade_equivalent" in g.attrs["needs"][0]
    no_ge = a.drop(columns="grade_equivalent")
    assert tr.grade_level_growth(no_ge, students=st).empty
    assert not tr.catch_up_rates(no_ge, students=st).empty  # catch-up needs no grade equivalents
    ind = tr.trajectory_indicators(one, students=st)
    assert ind.empty and list(ind.columns) == list(INDICATOR_COLUMNS) and len(ind.attrs["needs"]) == 2
    none = tr.catch_up_rates(None, students=st)
    assert none.empty and "found: none" in none.attrs["needs"][0]
