"""The analysis' memory: ids no analysis uses are not read, and the large tables' rows are let go once used,
while every table and every number the report shows of the district stays the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District, load_district
from opportunity_research.study import analysis, measures
from opportunity_research.study.analysis import at_a_glance, unprotected_analysis

from .demo import demo_root, district

DISTRICT = "demo_fairview"


def test_skipped_columns_are_not_read_and_the_rest_is_unchanged():
    root = demo_root() / "processed"
    full = district(DISTRICT)
    part = load_district(
        DISTRICT,
        processed_root=root,
        skip={"engagement_surveys": ["response_id", "student_id"], "students": ["no_such_column"]},
    )
    assert list(part.tables) == list(full.tables)
    assert "response_id" not in part.engagement_surveys.columns
    pd.testing.assert_frame_equal(
        part.engagement_surveys, full.engagement_surveys.drop(columns=["response_id", "student_id"])
    )
    pd.testing.assert_frame_equal(part.students, full.students)  # a column it lacks: nothing skipped
    # with columns=, the named columns are read as before
    only = load_district(DISTRICT, processed_root=root, columns={"students": ["student_id"]}, skip={})
    assert list(only.students.columns) == ["student_id"]


def planted() -> District:
    """Tables with missing values, repeated keys and ids off the roster (none of which may change a count)."""
    students = pd.DataFrame({"student_id": ["S-1", "S-2", "S-3"], "school_id": ["A", "A", "B"]})
    assessments = pd.DataFrame(
        {
            "student_id": ["S-1", "S-1", "S-9", None, "S-2", "S-2"],  # S-9 off the roster; a missing id
            "school_year": [2015, 2016, 2016, 2014, np.nan, 2016],  # a missing year
            "scale_score": [1.0, np.nan, 3.0, 4.0, 5.0, 5.0],  # the same row twice
        }
    )
    enrollments = pd.DataFrame({"student_id": ["S-1", "S-1", "S-2"], "classroom_id": ["C-1", "C-1", None]})
    return District("planted", {"students": students, "assessments": assessments, "enrollments": enrollments})


def test_released_tables_keep_their_row_counts_and_the_kept_columns_values():
    d = planted()
    r = d.released(
        ["assessments", "enrollments", "attendance"], keep={"assessments": ["school_year", "nope"]}
    )
    assert r is not d and r.district_id == d.district_id and r.manifest == d.manifest
    # the original is untouched; the stand-ins have the same number of rows
    assert list(d.assessments.columns) == ["student_id", "school_year", "scale_score"]
    assert len(r.assessments) == 6 and len(r.enrollments) == 3 and r.has("enrollments")
    assert r.attendance is None and not r.has("attendance")  # absent stays absent
    assert list(r.enrollments.columns) == [] and list(r.assessments.columns) == ["school_year"]
    kept = r.assessments["school_year"]
    assert isinstance(kept.dtype, pd.CategoricalDtype)
    # the same value in every row (missing stays missing), so the same counts of distinct values
    pd.testing.assert_series_equal(kept.astype(float), d.assessments["school_year"], check_names=True)
    assert kept.nunique() == d.assessments["school_year"].nunique() == 3
    assert r.students is d.students  # not released: the same frame
    empty = District("e", {"assessments": d.assessments.iloc[:0]}).released(["assessments"])
    assert len(empty.assessments) == 0 and not empty.has("assessments")


def test_scoring_the_evidence_once_gives_the_same_tables():
    d = district(DISTRICT)
    cuts = {**measures.default_cuts(), "engaged": 9, "grade_appropriate": 5}
    scored = measures.score_evidence(d, cuts=cuts)
    pd.testing.assert_frame_equal(
        measures.classroom_access(d, cuts=cuts, scored=scored), measures.classroom_access(d, cuts=cuts)
    )
    pd.testing.assert_frame_equal(
        measures.resource_rates(d, cuts=cuts, scored=scored), measures.resource_rates(d, cuts=cuts)
    )


@pytest.fixture(scope="module")
def unprotected():
    return unprotected_analysis(DISTRICT, processed_dir=str(demo_root() / "processed"), n_boot=20)


def test_the_analysis_holds_only_counts_of_the_large_tables(unprotected):
    a, _ = unprotected
    for name in analysis.EVIDENCE_TABLES + analysis.STUDENT_RECORD_TABLES + ("climate_surveys",):
        assert list(a.district.tables[name].columns) == [], name
    assert list(a.district.assessments.columns) == ["school_year"]
    full = district(DISTRICT)
    for name in ("schools", "classrooms", "goals"):
        pd.testing.assert_frame_equal(a.district.tables[name], full.tables[name])
    # the roster in full (small race/ethnicity groups pooled)
    pd.testing.assert_series_equal(a.district.students["student_id"], full.students["student_id"])


def test_the_report_counts_the_released_district_as_the_full_one(unprotected):
    a, _ = unprotected
    full = district(DISTRICT)
    pd.testing.assert_frame_equal(at_a_glance(a.district), at_a_glance(full))
    for name, t in full.tables.items():
        assert len(a.district.tables[name]) == len(t) and a.district.has(name) == full.has(name), name
    assert measures.analysis_year(a.district) == measures.analysis_year(full)
    assert {k: v for k, v in a.district.manifest.items() if k != "pooled_groups"} == full.manifest
