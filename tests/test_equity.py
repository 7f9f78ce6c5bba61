"""District gap analyses recover the planted truths of the demo districts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research import config
from opportunity_research.disclosure.joint import protect_table
from opportunity_research.study import equity, measures

from .demo import district, truth


def _is(levels, value) -> pd.Series:
    """Compare a mixed-type `level` column with a value as text (1, 1.0 and '1' alike)."""
    return levels.astype(str).str.replace(r"\.0$", "", regex=True) == str(value)


def _truth_rows():
    rows = []
    for d in config.DEMO_DISTRICTS:
        t = truth(d)["access"]
        for r, by_subject in t.items():
            for s, v in by_subject.items():
                for var, levels in v["groups"].items():
                    for level, x in levels.items():
                        rows.append(
                            {
                                "district": d,
                                "measure": r,
                                "subject": s,
                                "group": var,
                                "level": str(level),
                                "true_estimate": x["estimate"],
                                "true_difference": x["difference"],
                            }
                        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def all_gaps():
    frames = [
        equity.resource_gaps(district(d), n_boot=400, seed=1).assign(district=d)
        for d in config.DEMO_DISTRICTS
    ]
    return pd.concat(frames, ignore_index=True)


def test_planted_access_gaps_fall_inside_the_intervals(all_gaps):
    # the groups a report may show (the statistics are complete; tiny groups are the disclosure pass's to hide)
    big = (all_gaps["n"] >= config.MIN_CELL_SIZE) & (all_gaps["reference_n"] >= config.MIN_CELL_SIZE)
    g = all_gaps[big].copy()
    g["level"] = g["level"].astype(str).str.replace(r"\.0$", "", regex=True)
    m = g.merge(_truth_rows(), on=["district", "measure", "subject", "group", "level"], validate="one_to_one")
    assert len(m) > 300
    inside = (m["ci_lower"] <= m["true_difference"]) & (m["true_difference"] <= m["ci_upper"])
    assert inside.mean() >= 0.92, m.loc[~inside, ["district", "measure", "subject", "group", "level"]]
    half = (m["ci_upper"] - m["ci_lower"]) / 2
    # a zero-width interval arises where a district observed no instance at all (e.g. no strong instruction)
    wide = half > 0
    miss = (m["difference"] - m["true_difference"]).abs()[wide] / half[wide]
    assert miss.max() < 1.5  # no gross miss anywhere
    assert (m.loc[~wide, "true_difference"].abs() < 0.02).all()
    # and the point estimates track the planted values
    for r, part in m.groupby("measure"):
        assert np.corrcoef(part["difference"], part["true_difference"])[0, 1] > 0.5, r


def test_small_groups_are_complete_and_hidden_by_the_joint_pass(all_gaps):
    assert not all_gaps["suppressed"].any()  # the statistics are complete
    for d, part in all_gaps.groupby("district"):
        protected = protect_table(part.drop(columns="district"), "gaps", min_n=config.MIN_CELL_SIZE)
        small = (part["n"] < config.MIN_CELL_SIZE) | (part["reference_n"] < config.MIN_CELL_SIZE)
        assert protected.loc[small.to_numpy(), "suppressed"].all(), d
        shown = protected[~protected["suppressed"]]
        assert (shown["n"] >= config.MIN_CELL_SIZE).all() and (
            shown["reference_n"] >= config.MIN_CELL_SIZE
        ).all()
    # the demo has tiny groups (e.g. Native Hawaiian or Pacific Islander students) that must be hidden
    assert ((all_gaps["n"] > 0) & (all_gaps["n"] < config.MIN_CELL_SIZE)).any()


def test_classroom_composition_matches_planted_contrasts():
    d, t = district("demo_lakeside"), truth("demo_lakeside")["composition"]
    comp = equity.classroom_composition(d)
    row = comp[
        (comp["group"] == "majority_low_income")
        & (comp["measure"] == "strong_instruction")
        & _is(comp["level"], 0)
    ].iloc[0]
    assert not row["suppressed"]
    assert row["ratio"] > 1.3  # higher-income classrooms get more strong instruction
    assert row["ci_lower"] > 0
    never = comp[
        (comp["group"] == "majority_students_of_color")
        & (comp["measure"] == "never_grade_appropriate")
        & _is(comp["level"], 1)
    ].iloc[0]
    assert never["ci_lower"] <= t["majority_poc_never_grade_appropriate_expected"] <= never["ci_upper"]


def test_furthest_from_opportunity_flags_a_fifth_and_finds_overrepresented_groups():
    d = district("demo_lakeside")
    t = equity.furthest_from_opportunity(d, n_boot=200)
    li = t[(t["group"] == "low_income") & _is(t["level"], 1)]
    assert (li["ratio"] > 1).all()  # low-income students are over-represented among the least access
    acc = measures.student_access(d)
    # overall share flagged ~20% (ties at the cut can add a little)
    for s in ("ela", "math"):
        part = t[(t["subject"] == s) & (t["group"] == "low_income") & ~t["suppressed"]]
        n1, _n0 = part["n"].sum(), 0
        shares = (part["estimate"] * part["n"]).sum() / n1
        assert 0.18 <= shares <= 0.3
    assert len(acc)


def test_multiple_measures_and_missing_tables():
    d = district("demo_riverton")
    t = equity.multiple_measures_gaps(d)
    assert {"chronic_absence", "advanced_course", "program_tutoring"} <= set(t["measure"])
    assert t.attrs["needs"] == []
    li = t[(t["measure"] == "chronic_absence") & (t["group"] == "low_income") & _is(t["level"], 1)]
    assert li["ratio"].iloc[0] > 1  # planted: low income raises absence
    no_tables = type(d)(
        d.district_id,
        {k: v for k, v in d.tables.items() if k not in ("attendance", "advanced_courses", "programs")},
    )
    empty = equity.multiple_measures_gaps(no_tables)
    assert empty.empty and len(empty.attrs["needs"]) == 3
