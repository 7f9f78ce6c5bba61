"""Issue 21: ``keep="across"`` holds the columns the rules across tables read as categoricals (codes, each text
once); the report must be the one computed on the full text columns, problem for problem."""

from __future__ import annotations

import pandas as pd
import pytest

from opportunity_research.intake import dataset
from opportunity_research.intake.validation import ValidationFailed, validate_district

try:
    from .districtkit import make_valid_district
    from .test_validation import _rows, _write_rows, set_cell
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district
    from test_validation import _rows, _write_rows, set_cell


def _edit(folder, file, fn):
    rows = _rows(folder, file)
    fn(rows)
    _write_rows(folder, file, rows)


@pytest.fixture
def broken_across(tmp_path):
    """The valid district with problems across tables: unknown student ids in several tables (one an NA
    marker), a school year not started yet and one after the analysis year, duplicate keys and a duplicated
    row, days present above days enrolled, an unknown classroom and assignment, a goal group nobody is in."""
    d = make_valid_district(tmp_path / "district_x")
    set_cell(d, "assessments.csv", 2, "student_id", "9999")
    set_cell(d, "assessments.csv", 5, "school_year", "2999")
    set_cell(d, "assessments.csv", 7, "school_year", "2018")
    set_cell(d, "enrollments.csv", 3, "student_id", "X-1")
    set_cell(d, "enrollments.csv", 4, "classroom_id", "C99")
    set_cell(d, "work_samples.csv", 2, "student_id", "NA")
    set_cell(d, "work_samples.csv", 3, "assignment_id", "A77")
    set_cell(d, "attendance.csv", 2, "student_id", "1001x")
    set_cell(d, "attendance.csv", 3, "days_present", "181")
    set_cell(d, "classrooms.csv", 3, "school_year", "2015")
    set_cell(d, "goals.csv", 3, "group", "race_ethnicity=white")
    _edit(d, "enrollments.csv", lambda rows: rows.append(list(rows[5])))  # a duplicated row
    _edit(d, "students.csv", lambda rows: rows.append([rows[3][0], *rows[4][1:]]))  # a duplicate key
    return d


def test_the_compact_frames_give_the_report_of_the_full_text_columns(broken_across):
    full = validate_district(broken_across)  # every column, text as text (the old way)
    slim = validate_district(broken_across, keep="across")
    pd.testing.assert_frame_equal(full.frame, slim.frame)
    rules = full.frame.groupby("rule")["file"].agg(set)
    assert len(rules["must exist in students.student_id"]) >= 3
    assert any("school year has not started yet" in r for r in rules.index)
    assert any("duplicate" in r for r in rules.index)
    assert len(full.frame) >= 10
    # the kept text columns are categoricals, the full report's are text
    assert isinstance(slim.tables["assessments"]["student_id"].dtype, pd.CategoricalDtype)
    assert isinstance(slim.tables["enrollments"]["classroom_id"].dtype, pd.CategoricalDtype)
    assert full.tables["assessments"]["student_id"].dtype == "str"
    # whole numbers exact in float32 are held as float32 (years, grades, days); the full report's are float64
    assert slim.tables["attendance"]["days_present"].dtype == "float32"
    assert full.tables["attendance"]["days_present"].dtype == "float64"


def test_process_reports_the_same_problems(broken_across, tmp_path):
    """``process`` validates inside one shared encoding of the id columns (and writes each table as it passes);
    its report is the plain validation's."""
    full = validate_district(broken_across)
    with pytest.raises(ValidationFailed) as exc:
        dataset.process_district(broken_across, processed_root=tmp_path / "processed", key="0123456789abcdef")
    pd.testing.assert_frame_equal(full.frame, exc.value.report.frame)


def test_a_valid_district_processes_to_the_same_tables_either_way(tmp_path):
    d = make_valid_district(tmp_path / "district_ok")
    slim = validate_district(d, keep="across")
    full = validate_district(d)
    assert slim.ok and full.ok and slim.frame.empty
    for name, df in slim.tables.items():
        for col in df.columns:
            pd.testing.assert_series_equal(
                df[col].astype(full.tables[name][col].dtype), full.tables[name][col], check_names=False
            )
