"""merge_positions(positions=...): rows whose place in the other table is known are joined without looking their
keys up, to the merge's result; opportunity_indicators joins the advanced-course rows (the groups' own rows)
so, to the same table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.study import equity, joins
from opportunity_research.study.joins import merge_positions
from opportunity_research.synth.districts import generate_districts
from opportunity_research.synth.specs import METRO


def right():
    return pd.DataFrame(
        {
            "student_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
            "school_id": ["s1", "s1", "s2", None],
            "low_income": [1.0, np.nan, 0.0, 1.0],
        }
    )


@pytest.mark.parametrize("how", ["left", "inner"])
def test_known_positions_give_the_merge(monkeypatch, how):
    r = right()
    at = np.array([2, 0, 0, 3, 1])
    left = pd.DataFrame(
        {"student_id": r["student_id"].take(at).to_numpy(), "v": [1.0, 2, 3, 4, 5]}, index=[9, 8, 7, 6, 5]
    )
    want = left.merge(r, on="student_id", how=how)
    monkeypatch.setattr(joins, "unique_positions", lambda *a: pytest.fail("the keys were looked up"))
    got, pos = merge_positions(left, r, on="student_id", how=how, positions=at)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert pos.tolist() == at.tolist()


def test_known_positions_empty_left_and_wrong_length():
    r = right()
    empty = pd.DataFrame({"student_id": pd.Series([], dtype="str"), "v": pd.Series([], dtype=float)})
    got, _ = merge_positions(empty, r, on="student_id", how="inner", positions=np.array([], dtype=np.int64))
    pd.testing.assert_frame_equal(got, empty.merge(r, on="student_id", how="inner"))
    left = pd.DataFrame({"student_id": pd.Series(["a", "b"], dtype="str"), "v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="3 positions for 2 rows"):
        merge_positions(left, r, on="student_id", positions=np.array([0, 1, 2]))
    # a column in both tables: the merge, whatever the positions
    clash = left.assign(school_id="x")
    got, pos = merge_positions(clash, r, on="student_id", positions=np.array([0, 1]))
    assert pos is None and got.columns.tolist() == clash.merge(r, on="student_id").columns.tolist()


def test_indicators_advanced_courses_on_the_groups_rows(monkeypatch):
    tables = generate_districts(3, 400, specs=(METRO,))["demo_metro"]["tables"]
    d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    adv = d.advanced_courses
    # a second year of advanced courses: the groups' rows twice, year after year
    d = District(
        d.district_id,
        {**d.tables, "advanced_courses": pd.concat([adv, adv.assign(school_year=adv["school_year"] - 1)])},
    )
    groups = equity.student_groups(d)
    fast = equity.opportunity_indicators(d, groups=groups)
    assert sorted(fast.loc[fast["measure"] == "advanced_course_rate", "school_year"].unique()) == sorted(
        d.advanced_courses["school_year"].unique()
    )
    monkeypatch.setattr(equity, "unique_ids", lambda ids: False)  # the rows' keys looked up, as before
    pd.testing.assert_frame_equal(fast, equity.opportunity_indicators(d, groups=groups), check_exact=True)
