"""student_access groups the enrollments per student and subject on integer codes of (roster position, subject):
the same table as the groupby on the two text columns (students off the roster, repeated roster ids, missing
subjects, several sections per subject, unsorted rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.study import measures
from opportunity_research.study.measures import _per_student_subject, student_access
from opportunity_research.synth.districts import generate_districts
from opportunity_research.synth.specs import METRO

SPEC = {"classroom_id": ("classroom_id", "first"), "x": ("x", "mean"), "y": ("y", "mean")}


def enrollments(n=3000, k=400, seed=0):
    rng = np.random.default_rng(seed)
    roster = pd.Series([f"S{i:04d}" for i in rng.permutation(k)], dtype="str")
    enr = pd.DataFrame(
        {
            "student_id": pd.Series([f"S{i:04d}" for i in rng.integers(0, k, n)], dtype="str"),
            "subject": pd.Series(rng.choice(["math", "ela"], n), dtype="str"),
            "classroom_id": pd.Series([f"c{i}" for i in rng.integers(0, 90, n)], dtype="str"),
            "x": rng.random(n),
            "y": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        }
    )
    return enr, roster


def as_written(enr):
    return enr.groupby(["student_id", "subject"], sort=False).agg(**SPEC).reset_index()


def test_grouped_on_codes_is_the_text_groupby():
    enr, roster = enrollments()
    per, at = _per_student_subject(enr, roster, **SPEC)
    pd.testing.assert_frame_equal(per, as_written(enr), check_exact=True)
    assert at is not None and (roster.to_numpy()[at] == per["student_id"].to_numpy()).all()
    # contiguous rows (sorted by student): pandas adds each group up another way, the same on both groupings
    ordered = enr.sort_values(["student_id", "subject"], kind="stable").reset_index(drop=True)
    per, _ = _per_student_subject(ordered, roster, **SPEC)
    pd.testing.assert_frame_equal(per, as_written(ordered), check_exact=True)


@pytest.mark.parametrize(
    "case", ["off roster", "repeated roster id", "missing subject", "missing id", "no rows"]
)
def test_falls_back_to_the_text_groupby(case):
    enr, roster = enrollments(seed=1)
    if case == "off roster":
        enr.loc[5, "student_id"] = "nobody"
    elif case == "repeated roster id":
        roster = pd.concat([roster, roster.iloc[:2]], ignore_index=True)
    elif case == "missing subject":
        enr.loc[7, "subject"] = None
    elif case == "missing id":
        enr.loc[9, "student_id"] = None
    else:
        enr = enr.iloc[:0]
    per, at = _per_student_subject(enr, roster, **SPEC)
    assert at is None
    pd.testing.assert_frame_equal(per, as_written(enr), check_exact=True)


def test_student_access_as_on_the_text(monkeypatch):
    tables = generate_districts(5, 500, specs=(METRO,))["demo_metro"]["tables"]
    d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    fast = student_access(d)
    monkeypatch.setattr(measures, "unique_ids", lambda ids: False)  # every join and grouping on the text
    pd.testing.assert_frame_equal(fast, student_access(d), check_exact=True)
    assert fast["started_behind"].notna().any()
