"""Validation of a district export against the data contract.

Every broken district is the hand-built valid district (tests/districtkit.py) with one thing broken;
each test checks that the problem names the file, line, column and rule, and that the export is
left byte-identical.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from opportunity_research import cli
from opportunity_research.intake import dataset
from opportunity_research.intake.contract import TABLES
from opportunity_research.intake.validation import (
    Problem,
    ValidationFailed,
    ValidationReport,
    duplicated_key,
    table_schema,
    validate_district,
)
from opportunity_research.study import measures

try:
    from .districtkit import district_tables, make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import district_tables, make_valid_district


# ---------------------------------------------------------------------------------------------
# helpers


def _hashes(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def _rows(folder, file):
    with open(folder / file, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _write_rows(folder, file, rows):
    with open(folder / file, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def set_cell(folder, file, line, column, value):
    """Set the cell at a 1-based file line (header = 1) and column name."""
    rows = _rows(folder, file)
    rows[line - 1][rows[0].index(column)] = value
    _write_rows(folder, file, rows)


def edit_text(folder, file, fn):
    p = folder / file
    p.write_text(fn(p.read_text(encoding="utf-8")), encoding="utf-8")


def find(report, **want):
    """The problems matching every given field (``rule`` matches as a substring)."""
    out = []
    for p in report.problems:
        if all((want[k] in p.rule) if k == "rule" else getattr(p, k) == want[k] for k in want):
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------
# the valid district


def test_hand_built_district_is_valid_and_clean(valid_district):
    report = validate_district(valid_district)
    assert report.ok and report.problems == [] and report.errors == [] and report.warnings == []
    # every table but level_counts (the alternative for districts without student-level data)
    assert set(report.tables) == set(TABLES) - {"level_counts"}
    expected = district_tables()
    assert {n: len(t) for n, t in report.tables.items()} == {n: len(t) for n, t in expected.items()}
    assert report.n_rows == sum(len(t) for t in expected.values())
    assert report.format() == f"district_ok: valid (15 tables, {report.n_rows:,} rows)"


def test_typed_tables_follow_the_contract_kinds(valid_district):
    t = validate_district(valid_district).tables
    st = t["students"]
    assert list(st.columns) == list(TABLES["students"].columns)
    assert st["student_id"].dtype == "str" and st["student_id"].iloc[0] == "1001"
    assert st["grade"].dtype == "int64" and st["low_income"].dtype == "int8"
    assert st["low_income"].tolist() == district_tables()["students"]["low_income"].tolist()
    a = t["assessments"]
    assert a["scale_score"].dtype == "float64" and a["scale_score"].iloc[0] == 448.5
    assert a["grade_equivalent"].dtype == "float64" and np.isnan(a["grade_equivalent"].iloc[3])
    ts = t["teacher_surveys"]
    assert ts["exp_fairtomaster"].dtype == "float64"  # nullable whole number
    assert ts["exp_fairtomaster"].isna().tolist() == [False, False, True, True]
    assert ts["classroom_id"].isna().tolist() == [False, False, False, True]  # empty cell = missing
    g = t["goals"]
    assert g["description"].iloc[0] == "Raise grade-appropriate assignments to 40%, by 2018-19."
    assert g["baseline_year"].isna().tolist() == [False, True]


def test_optional_column_absent_is_simply_absent(valid_district):
    rows = [r[:-1] for r in _rows(valid_district, "assessments.csv")]  # drop grade_equivalent
    _write_rows(valid_district, "assessments.csv", rows)
    report = validate_district(valid_district)
    assert report.ok and report.problems == []
    assert "grade_equivalent" not in report.tables["assessments"].columns


def test_byte_order_mark_is_fine(valid_district):
    p = valid_district / "students.csv"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    report = validate_district(valid_district)
    assert report.ok and report.problems == []
    assert report.tables["students"].columns[0] == "student_id"


def test_optional_tables_may_be_left_out(valid_district):
    for t in TABLES.values():
        if not t.required:
            (valid_district / t.filename).unlink(missing_ok=True)  # level_counts is not in the demo export
    report = validate_district(valid_district)
    assert report.ok and report.problems == []
    assert set(report.tables) == {n for n, t in TABLES.items() if t.required}


# ---------------------------------------------------------------------------------------------
# broken districts: one thing broken each

CASES = []


def case(*, ok=False, **expect):
    """Register a breaker function with the one problem it must cause (``ok``: only warnings)."""

    def deco(fn):
        CASES.append(pytest.param(fn, expect, ok, id=fn.__name__))
        return fn

    return deco


@case(severity="error", file="enrollments.csv", line=None, column=None, rule="required table is missing")
def missing_required_table(d):
    (d / "enrollments.csv").unlink()


@case(severity="error", file="observations.csv", line=None, column=None, rule="file is empty (0 bytes)")
def empty_file(d):
    (d / "observations.csv").write_bytes(b"")


@case(severity="error", file="schools.csv", line=None, column=None, rule="has no data rows (header only)")
def header_only_required_table(d):
    _write_rows(d, "schools.csv", _rows(d, "schools.csv")[:1])


@case(
    severity="error",
    file="schools.csv",
    line=3,
    column="school_name",
    value="Pine Middlé",
    rule="not valid UTF-8; looks like cp1252",
)
def not_utf8(d):
    p = d / "schools.csv"
    p.write_bytes(p.read_bytes().replace(b"Pine Middle", "Pine Middlé".encode("cp1252")))


@case(severity="error", file="students.csv", line=1, column=None, rule="the file is UTF-16")
def utf16_file(d):
    p = d / "students.csv"
    p.write_bytes(p.read_text(encoding="utf-8").encode("utf-16"))


@case(severity="error", file="students.csv", line=5, column=None, rule="row has 9 fields; the header has 8")
def ragged_row(d):
    edit_text(d, "students.csv", lambda s: s.replace("\n1004,SCH1,4,", "\n1004,SCH1,4,extra,"))


@case(severity="error", file="students.csv", line=1, column=None, rule="columns are separated by semicolons")
def semicolon_separated(d):
    edit_text(d, "students.csv", lambda s: s.replace(",", ";"))


@case(
    severity="error",
    file="teacher_surveys.csv",
    line=5,
    column="classroom_id",
    value="NA",
    rule="must exist in classrooms.classroom_id (leave missing values empty)",
)
def na_text_as_missing_id(d):
    set_cell(d, "teacher_surveys.csv", 5, "classroom_id", "NA")


@case(severity="error", file="students.csv", line=1, column="gender", rule="required column is missing")
def missing_required_column(d):
    _write_rows(d, "students.csv", [r[:-1] for r in _rows(d, "students.csv")])


@case(
    severity="error",
    file="students.csv",
    line=1,
    column="student_id",
    rule="required column is missing (found 'Student_ID'; column names are lower case)",
)
def column_name_in_wrong_case(d):
    edit_text(d, "students.csv", lambda s: s.replace("student_id", "Student_ID", 1))


@case(
    severity="error",
    file="assessments.csv",
    line=2,
    column="scale_score",
    value="high",
    rule="must be a number",
)
def text_in_number_column(d):
    set_cell(d, "assessments.csv", 2, "scale_score", "high")


@case(
    severity="error", file="students.csv", line=3, column="grade", value="4.5", rule="must be a whole number"
)
def fraction_in_whole_number_column(d):
    set_cell(d, "students.csv", 3, "grade", "4.5")


@case(
    severity="error",
    file="observations.csv",
    line=2,
    column="ca2",
    value="NA",
    rule="must be a whole number (leave missing values empty)",
)
def na_text_in_number_column(d):
    set_cell(d, "observations.csv", 2, "ca2", "NA")


@case(
    severity="error",
    file="students.csv",
    line=4,
    column="race_ethnicity",
    value="Black",
    rule="must be one of: hispanic_latino, american_indian_alaska_native, asian, black",
)
def code_not_allowed(d):
    set_cell(d, "students.csv", 4, "race_ethnicity", "Black")


@case(
    severity="error",
    file="students.csv",
    line=2,
    column="low_income",
    value="yes",
    rule="must be one of: 0, 1",
)
def flag_not_zero_or_one(d):
    set_cell(d, "students.csv", 2, "low_income", "yes")


@case(
    severity="error", file="students.csv", line=6, column="grade", value="2", rule="must be between 3 and 12"
)
def value_out_of_range(d):
    set_cell(d, "students.csv", 6, "grade", "2")


@case(
    severity="error", file="classrooms.csv", line=3, column="teacher_id", value=None, rule="must not be empty"
)
def empty_cell_in_required_column(d):
    set_cell(d, "classrooms.csv", 3, "teacher_id", "")


@case(
    severity="error",
    file="assessments.csv",
    line=3,
    column="student_id, subject, school_year, window",
    value="1001, ela, 2015, fall",
    rule="duplicate key (student_id, subject, school_year, window)",
)
def duplicate_key(d):
    set_cell(d, "assessments.csv", 3, "window", "fall")


@case(
    severity="error",
    file="enrollments.csv",
    line=82,
    column="student_id, classroom_id",
    value="1001, C1",
    rule="duplicate row (identical to an earlier row)",
)
def duplicated_identical_row(d):
    edit_text(d, "enrollments.csv", lambda s: s + "1001,C1\n")


@case(
    severity="error",
    file="enrollments.csv",
    line=2,
    column="classroom_id",
    value="C9",
    rule="must exist in classrooms.classroom_id",
)
def reference_does_not_resolve(d):
    set_cell(d, "enrollments.csv", 2, "classroom_id", "C9")


@case(
    severity="error",
    file="attendance.csv",
    line=2,
    column="days_present",
    value="190 > 180",
    rule="must not exceed days_enrolled",
)
def more_days_present_than_enrolled(d):
    set_cell(d, "attendance.csv", 2, "days_present", "190")


@case(
    severity="error",
    file="teacher_surveys.csv",
    line=2,
    column="exp_appropriate",
    rule="must be answered on form 'current'",
)
def teacher_survey_item_of_form_unanswered(d):
    set_cell(d, "teacher_surveys.csv", 2, "exp_appropriate", "")


@case(
    severity="error",
    file="teacher_surveys.csv",
    line=1,
    column="exp_began",
    rule="column is missing but 2 rows use form 'old'",
)
def teacher_survey_column_of_used_form_missing(d):
    rows = _rows(d, "teacher_surveys.csv")
    _write_rows(d, "teacher_surveys.csv", [r[:-1] for r in rows])


@case(
    severity="error",
    file="goals.csv",
    line=4,
    column="measure",
    value="chronic_absence",
    rule="must be one of: grade_appropriate_share",
)
def line_numbers_count_multiline_values(d):
    edit_text(
        d,
        "goals.csv",
        lambda s: s.replace("Raise grade", "Raise\ngrade").replace("chronic_absence_rate", "chronic_absence"),
    )


@case(
    severity="error",
    file="classrooms.csv",
    line=6,
    column="subject",
    value="Math",
    rule="(codes are lower case)",
)
def line_numbers_count_blank_lines(d):
    edit_text(d, "classrooms.csv", lambda s: s.replace("\nC3,", "\n\nC3,").replace("T4,math", "T4,Math"))


@case(
    severity="warning",
    file="students.csv",
    line=1,
    column="notes",
    rule="unexpected column (ignored)",
    ok=True,
)
def extra_column(d):
    rows = _rows(d, "students.csv")
    _write_rows(d, "students.csv", [r + (["notes"] if i == 0 else ["x"]) for i, r in enumerate(rows)])


@case(
    severity="warning",
    file="teachers.csv",
    line=None,
    column=None,
    rule="not a contract table (ignored)",
    ok=True,
)
def unknown_csv_file(d):
    (d / "teachers.csv").write_text("teacher_id,name\nT1,Ann\n")


@case(
    severity="warning",
    file="students.csv",
    line=2,
    column="race_ethnicity",
    value="' hispanic_latino '",
    rule="leading/trailing whitespace stripped (1 cell",
    ok=True,
)
def whitespace_around_code(d):
    set_cell(d, "students.csv", 2, "race_ethnicity", " hispanic_latino ")


@case(
    severity="warning",
    file="goals.csv",
    line=None,
    column=None,
    rule="optional table has no data rows",
    ok=True,
)
def header_only_optional_table(d):
    _write_rows(d, "goals.csv", _rows(d, "goals.csv")[:1])


_WS = district_tables()["work_samples"]
_GL_LINE = int(np.flatnonzero(_WS["met_grade_level"] == 1)[0]) + 2


@case(
    severity="warning",
    file="work_samples.csv",
    line=_GL_LINE,
    column="met_grade_level",
    rule="met_grade_level = 1 but met_demands = 0",
    ok=True,
)
def grade_level_without_demands(d):
    set_cell(d, "work_samples.csv", _GL_LINE, "met_demands", "0")


@case(
    severity="warning",
    file="work_samples.csv",
    line=2,
    column="student_id",
    value="1030",
    rule="student is not enrolled in the assignment's classroom",
    ok=True,
)
def work_by_student_not_enrolled(d):
    set_cell(d, "work_samples.csv", 2, "student_id", "1030")  # a grade-7 student on a grade-4 assignment


@case(
    severity="warning",
    file="classrooms.csv",
    line=6,
    column="classroom_id",
    value="C5",
    rule="no students enrolled",
    ok=True,
)
def classroom_without_students(d):
    edit_text(d, "classrooms.csv", lambda s: s + "C5,SCH2,T4,science,7,2016\n")


@case(
    severity="warning",
    file="students.csv",
    line=41,
    column="student_id",
    value="1040",
    rule="no assessment results",
    ok=True,
)
def student_without_assessments(d):
    rows = _rows(d, "assessments.csv")
    _write_rows(d, "assessments.csv", [r for r in rows if r[0] != "1040"])


@pytest.mark.parametrize("breaker, expect, ok", CASES)
def test_broken_district_names_file_line_column_and_rule(valid_district, breaker, expect, ok):
    breaker(valid_district)
    before = _hashes(valid_district)
    report = validate_district(valid_district)
    assert _hashes(valid_district) == before, "validation must not modify the export"
    hits = find(report, **expect)
    assert len(hits) == 1, f"expected {expect}\n{report.format()}"
    assert report.ok is ok
    if ok:
        assert report.errors == [] and report.tables
    # every problem names a file by its name only, never a path
    assert all(os.sep not in p.file.rstrip("/") for p in report.problems)


@pytest.mark.parametrize("breaker, expect, ok", CASES)
def test_keeping_only_the_columns_the_rules_across_tables_read_finds_the_same_problems(
    valid_district, breaker, expect, ok
):
    """Issue 21: `process` and `validate` keep only ACROSS_COLUMNS after a table's own checks; no rule may
    lose a column it reads (a rule skips silently when its columns are absent)."""
    breaker(valid_district)
    full = validate_district(valid_district)
    slim = validate_district(valid_district, keep="across")
    pd.testing.assert_frame_equal(full.frame, slim.frame)
    assert {n: len(df) for n, df in slim.tables.items()} == {n: len(df) for n, df in full.tables.items()}
    if "assessments" in slim.tables:  # the measures no rule across tables reads are let go
        assert "scale_score" not in slim.tables["assessments"] and "scale_score" in full.tables["assessments"]


def test_at_least_fifteen_kinds_of_broken_input():
    assert len(CASES) >= 15
    assert len({(c.values[1]["rule"], c.values[1].get("value")) for c in CASES}) == len(CASES)


def test_missing_folder():
    report = validate_district("/nonexistent/place/district_x")
    assert not report.ok
    assert report.problems == [Problem("error", "district_x/", None, None, None, "district folder not found")]


def test_missing_table_exported_in_another_format_gets_a_hint(valid_district):
    (valid_district / "students.csv").rename(valid_district / "students.xlsx")
    (p,) = find(validate_district(valid_district), file="students.csv")
    assert p.rule == "required table is missing (found students.xlsx; export it as CSV named students.csv)"


@pytest.mark.parametrize("newline, tail", [("\r\n", "\r\n"), ("\r", "\r"), ("\n", ""), ("\n", "\n\n\n")])
def test_line_numbers_with_other_line_endings(valid_district, newline, tail):
    set_cell(valid_district, "students.csv", 6, "grade", "44")
    p = valid_district / "students.csv"
    p.write_bytes(p.read_bytes().rstrip(b"\n").replace(b"\n", newline.encode()) + tail.encode())
    report = validate_district(valid_district)
    assert [(x.file, x.line, x.column, x.rule) for x in report.problems] == [
        ("students.csv", 6, "grade", "must be between 3 and 12")
    ]


def test_ragged_row_value_shows_the_row(valid_district):
    ragged_row(valid_district)
    (p,) = find(validate_district(valid_district), rule="fields")
    assert p.value == "1004,SCH1,4,extra,black,1,0,0,male"


def test_whitespace_is_stripped_in_typed_tables(valid_district):
    whitespace_around_code(valid_district)
    report = validate_district(valid_district)
    assert report.tables["students"]["race_ethnicity"].iloc[0] == "hispanic_latino"


def test_non_utf8_file_is_still_checked_for_other_problems(valid_district):
    not_utf8(valid_district)
    set_cell(valid_district, "students.csv", 2, "grade", "20")
    p = valid_district / "schools.csv"
    p.write_bytes(p.read_bytes().replace(b"middle", b"Middle"))
    report = validate_district(valid_district)
    assert find(report, file="schools.csv", line=3, column="school_level", value="Middle")
    assert find(report, file="students.csv", line=2, column="grade", rule="must be between 3 and 12")


# ---------------------------------------------------------------------------------------------
# many problems at once


def test_every_problem_is_reported_not_only_the_first(valid_district):
    d = valid_district
    set_cell(d, "students.csv", 4, "race_ethnicity", "Black")
    set_cell(d, "students.csv", 7, "grade", "13")
    set_cell(d, "classrooms.csv", 3, "subject", "art")
    set_cell(d, "assessments.csv", 10, "scale_score", "n/a")
    set_cell(d, "enrollments.csv", 20, "student_id", "9999")
    set_cell(d, "attendance.csv", 5, "days_present", "200")
    (d / "observations.csv").write_bytes(b"")
    extra_column(d)
    report = validate_district(d)
    got = {(p.severity, p.file, p.line, p.column) for p in report.problems}
    assert got == {
        ("error", "students.csv", 4, "race_ethnicity"),
        ("error", "students.csv", 7, "grade"),
        ("error", "classrooms.csv", 3, "subject"),
        ("error", "assessments.csv", 10, "scale_score"),
        ("error", "enrollments.csv", 20, "student_id"),
        ("error", "attendance.csv", 5, "days_present"),
        ("error", "observations.csv", None, None),
        ("warning", "students.csv", 1, "notes"),
    }
    assert report.summary() == "7 errors, 1 warning in 6 files"
    # errors first, then by the contract's table order and line
    assert [p.file for p in report.errors] == [
        "students.csv",
        "students.csv",
        "classrooms.csv",
        "enrollments.csv",
        "assessments.csv",
        "observations.csv",
        "attendance.csv",
    ]


def test_many_identical_problems_are_all_kept_but_grouped_in_format(valid_district):
    rows = _rows(valid_district, "assessments.csv")
    col = rows[0].index("window")
    for r in rows[1:]:
        r[col] = "Fall" if r[col] == "fall" else r[col]
    _write_rows(valid_district, "assessments.csv", rows)
    report = validate_district(valid_district)
    frame = report.to_frame()
    assert list(frame.columns) == ["severity", "file", "line", "column", "value", "rule"]
    bad = frame[frame["column"] == "window"]
    assert len(bad) == 160 and bad["line"].tolist() == list(range(2, 322, 2))
    assert set(bad["rule"]) == {"must be one of: fall, spring (codes are lower case)"}
    text = report.format()
    assert text.count("must be one of: fall, spring") == 3
    assert "... and 157 more rows (lines 8-320)" in text
    assert text.splitlines()[-1] == "district_ok: 160 errors, 0 warnings in 1 file"
    short = report.format(max_rows=2)
    assert short.count("must be one of") == 2 and "158 more problems not shown" in short


def test_format_is_an_aligned_table(valid_district):
    set_cell(valid_district, "students.csv", 4, "race_ethnicity", "Black")
    extra_column(valid_district)
    lines = validate_district(valid_district).format().splitlines()
    header, err, warn = lines[0], lines[1], lines[2]
    for word in ("file", "line", "column", "value", "rule"):
        assert err[header.index(word) - 1] == " "  # every column starts at its header's position
    assert header.split() == ["severity", "file", "line", "column", "value", "rule"]
    assert err.split()[:5] == ["error", "students.csv", "4", "race_ethnicity", "Black"]
    assert warn.split()[:4] == ["warning", "students.csv", "1", "notes"]


# ---------------------------------------------------------------------------------------------
# the command line, processing, schema helpers


def test_cli_exit_codes_and_output(valid_district, tmp_path, capsys):
    assert cli.main(["validate", str(valid_district)]) == 0
    assert capsys.readouterr().out.strip() == f"{valid_district}: valid (15 tables, 640 rows)"

    extra_column(valid_district)
    assert cli.main(["validate", str(valid_district)]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "unexpected column (ignored)" in out and "0 errors, 1 warning in 1 file" in out

    set_cell(valid_district, "students.csv", 6, "grade", "2")
    before = _hashes(valid_district)
    target = tmp_path / "out" / "problems.csv"
    assert cli.main(["validate", str(valid_district), "--csv", str(target)]) == 1
    out = capsys.readouterr().out
    assert "must be between 3 and 12" in out and "1 error, 1 warning in 1 file" in out
    assert _hashes(valid_district) == before
    written = pd.read_csv(target, keep_default_na=False, dtype=str)
    assert written[["severity", "file", "line", "column", "rule"]].values.tolist() == [
        ["error", "students.csv", "6", "grade", "must be between 3 and 12"],
        ["warning", "students.csv", "1", "notes", "unexpected column (ignored)"],
    ]
    assert [p.name for p in target.parent.iterdir()] == ["problems.csv"]  # no temporary file left


def test_cli_says_clearly_that_a_students_file_has_a_header_and_no_rows(valid_district, tmp_path, capsys):
    """Issue 21: `validate` on such a file showed a traceback; both commands name the file and the rule."""
    path = valid_district / "students.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    assert cli.main(["validate", str(valid_district)]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert "students.csv" in out and "has no data rows (header only)" in out
    assert cli.main(["process", str(valid_district), "--processed-dir", str(tmp_path / "processed")]) == 1
    out = capsys.readouterr().out
    assert "has no data rows (header only)" in out and "NOT processed (validation failed)" in out
    assert not (tmp_path / "processed" / valid_district.name).exists()


def test_cli_refuses_to_write_the_problem_list_into_the_export(valid_district, capsys):
    before = _hashes(valid_district)
    assert cli.main(["validate", str(valid_district), "--csv", str(valid_district / "problems.csv")]) == 2
    assert "refusing" in capsys.readouterr().out
    assert _hashes(valid_district) == before


def test_cli_help_describes_the_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["validate", "--help"])
    out = capsys.readouterr().out
    assert "--max-rows" in out and "--csv" in out and "Exit code" in " ".join(out.split())


def test_processing_an_invalid_district_raises_and_writes_nothing(valid_district, tmp_path):
    set_cell(valid_district, "students.csv", 6, "grade", "2")
    before = _hashes(valid_district)
    with pytest.raises(ValidationFailed) as exc:
        dataset.process_district(
            valid_district, processed_root=tmp_path / "processed", key="test-key-0123456"
        )
    assert isinstance(exc.value.report, ValidationReport) and not exc.value.report.ok
    assert find(exc.value.report, file="students.csv", line=6, column="grade")
    assert "district_ok: 1 error, 0 warnings in 1 file" in str(exc.value)
    assert _hashes(valid_district) == before
    processed = tmp_path / "processed"
    assert not processed.exists() or list(processed.rglob("*")) == []


def test_schema_is_built_from_the_contract():
    schema = table_schema("students")
    assert list(schema.columns) == list(TABLES["students"].columns)
    assert schema.columns["race_ethnicity"].nullable is False
    assert table_schema("assessments").columns["grade_equivalent"].required is False


def test_duplicated_key_matches_pandas():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "a": rng.choice(["x", "y", "z", None], 500),
            "b": rng.integers(0, 4, 500).astype(float),
            "c": rng.choice(["p", "q"], 500),
        }
    ).astype({"a": "str", "c": "str"})
    df.loc[::7, "b"] = np.nan
    for keep in ("first", False):
        np.testing.assert_array_equal(
            duplicated_key(df, ["a", "b", "c"], keep=keep),
            df.duplicated(["a", "b", "c"], keep=keep).to_numpy(),
        )


@pytest.mark.parametrize(
    "ids, hashed, duplicates",
    [
        (["R1", "R2", "R3"], False, 0),  # in order: no hash table of the ids
        (["R2", "R1", "R3"], True, 0),
        (["R1", "R2", "R2"], True, 1),  # a repeat in order: not strictly increasing, then counted
        (["R3", "R1", "R3"], True, 1),
        (
            ["R1", None, "R2", None],
            True,
            0,
        ),  # a null counts as a value (an empty key cell: reported as empty)
    ],
)
def test_one_column_key_in_order_needs_no_hash_table(tmp_path, monkeypatch, ids, hashed, duplicates):
    import pyarrow.compute as pc

    from opportunity_research.intake import validation_read
    from opportunity_research.intake.validation_report import ProblemCollector

    path = tmp_path / "observations.csv"
    lines = ["observation_id,classroom_id,ca1a,ca1b,ca1c,ca2,ca3,col"]
    lines += [f"{i or ''},C1,0,1,0,1,2,3" for i in ids]
    path.write_text("\n".join(lines) + "\n")
    counted = []
    real = pc.unique
    monkeypatch.setattr(pc, "unique", lambda v: counted.append(len(v)) or real(v))
    out = ProblemCollector()
    validation_read.check_table(path, TABLES["observations"], out)
    problems = out.frame(["observations.csv"])
    assert bool(counted) is hashed
    assert problems["rule"].str.startswith("duplicate").sum() == duplicates


@pytest.mark.parametrize(
    "rows, duplicates", [([("S2", 2016), ("S1", 2016), ("S2", 2015)], 0), ([("S2", 2016)] * 2, 1)]
)
def test_key_of_columns_without_repeats_needs_no_hash_table(tmp_path, monkeypatch, rows, duplicates):
    from opportunity_research.intake import validation_read
    from opportunity_research.intake.validation_report import ProblemCollector

    path = tmp_path / "attendance.csv"
    path.write_text(
        "student_id,school_year,days_enrolled,days_present\n" + "".join(f"{s},{y},180,170\n" for s, y in rows)
    )
    hashed = []
    real = pd.Series.duplicated
    monkeypatch.setattr(
        pd.Series, "duplicated", lambda self, *a, **k: hashed.append(len(self)) or real(self, *a, **k)
    )
    out = ProblemCollector()
    validation_read.check_table(path, TABLES["attendance"], out)
    assert bool(hashed) is bool(
        duplicates
    )  # the codes' range marked: repeats looked for only where there are some
    assert out.frame(["attendance.csv"])["rule"].str.startswith("duplicate").sum() == duplicates


def test_make_valid_district_is_reusable(tmp_path):
    a = make_valid_district(tmp_path / "a")
    b = make_valid_district(tmp_path / "b")
    assert _hashes(a) == _hashes(b)
    shutil.rmtree(a)


# ---------------------------------------------------------------------------------------------
# cases that used to pass silently (issue 13): each is now an error or a warning with its rule


@case(
    severity="warning",
    file="enrollments.csv",
    line=82,
    column="classroom_id",
    value="C3 (grade 7)",
    rule="student is enrolled in sections of different grades",
    ok=True,
)
def student_in_sections_of_two_grades(d):
    edit_text(d, "enrollments.csv", lambda s: s + "1001,C3\n")


@case(
    severity="warning",
    file="enrollments.csv",
    line=2,
    column="classroom_id",
    value="C1 (school SCH1, student's SCH2)",
    rule="section belongs to another school than the student's",
    ok=True,
)
def student_in_classroom_of_another_school(d):
    set_cell(d, "students.csv", 2, "school_id", "SCH2")


@case(
    severity="error",
    file="assessments.csv",
    line=2,
    column="scale_score",
    value="-5",
    rule="must be at least 0",
)
def negative_scale_score(d):
    set_cell(d, "assessments.csv", 2, "scale_score", "-5")


@case(
    severity="error",
    file="assessments.csv",
    line=2,
    column="school_year",
    value="2099",
    rule="school year has not started yet",
)
def assessment_year_in_the_future(d):
    set_cell(d, "assessments.csv", 2, "school_year", "2099")


@case(
    severity="warning",
    file="assessments.csv",
    line=2,
    column="school_year",
    value="2018",
    rule="after the analysis year 2016",
    ok=True,
)
def assessment_after_the_analysis_year(d):
    set_cell(d, "assessments.csv", 2, "school_year", "2018")


@case(
    severity="error",
    file="assessments.csv",
    line=2,
    column="grade",
    value="5 > 3",
    rule="fall grade is above the same year's spring grade",
)
def fall_grade_above_spring_grade(d):
    set_cell(d, "assessments.csv", 2, "grade", "5")


@case(
    severity="error",
    file="goals.csv",
    line=3,
    column="group",
    value="race=black",
    rule="'race' is not a student group variable; use one of: race_ethnicity, low_income, english_learner, "
    "disability, started_behind (did you mean 'race_ethnicity'?)",
)
def goal_group_variable_unknown(d):
    set_cell(d, "goals.csv", 3, "group", "race=black")


@case(
    severity="error",
    file="goals.csv",
    line=3,
    column="group",
    value="race_ethnicity=blak",
    rule="'blak' is not a level of race_ethnicity",
)
def goal_group_level_unknown(d):
    set_cell(d, "goals.csv", 3, "group", "race_ethnicity=blak")


@case(
    severity="error",
    file="goals.csv",
    line=3,
    column="group",
    value="low income",
    rule="must be 'all' or '<variable>=<level>'",
)
def goal_group_not_variable_equals_level(d):
    set_cell(d, "goals.csv", 3, "group", "low income")


@case(
    severity="warning",
    file="goals.csv",
    line=3,
    column="group",
    value="disability=1",
    rule="no student in students.csv is in disability=1",
    ok=True,
)
def goal_group_nobody_belongs_to(d):
    set_cell(d, "goals.csv", 3, "group", "disability=1")
    edit_text(
        d,
        "students.csv",
        lambda s: (
            "\n".join(
                line if i == 0 else ",".join(line.split(",")[:6] + ["0"] + line.split(",")[7:])
                for i, line in enumerate(s.splitlines())
            )
            + "\n"
        ),
    )


@case(
    severity="error",
    file="goals.csv",
    line=2,
    column="target_year",
    value="2015 < 2016",
    rule="target year is before the baseline year",
)
def goal_target_year_before_baseline(d):
    set_cell(d, "goals.csv", 2, "target_year", "2015")


@case(
    severity="warning",
    file="students.csv",
    line=41,
    column="student_id",
    value="1040",
    rule="not enrolled in any section",
    ok=True,
)
def student_without_enrollment(d):
    _write_rows(d, "enrollments.csv", [r for r in _rows(d, "enrollments.csv") if r[0] != "1040"])


@case(
    severity="warning",
    file="classrooms.csv",
    line=2,
    column="school_year",
    value="2015",
    rule="section is not in the analysis year 2016",
    ok=True,
)
def classroom_outside_the_analysis_year(d):
    set_cell(d, "classrooms.csv", 2, "school_year", "2015")


@case(
    severity="error",
    file="schools.csv",
    line=None,
    column=None,
    rule="symbolic link to a file outside the district folder; refused and not read",
)
def symlink_leaving_the_folder(d):
    (d / "schools.csv").unlink()
    (d / "schools.csv").symlink_to("/etc/passwd")


@case(
    severity="error",
    file="schools.csv",
    line=None,
    column=None,
    rule="symbolic link to nothing (broken link)",
)
def broken_symlink(d):
    (d / "schools.csv").unlink()
    (d / "schools.csv").symlink_to(d / "gone.csv")


@case(severity="error", file="students.csv", line=None, column=None, rule="is a folder, not a CSV file")
def folder_named_like_a_table(d):
    (d / "students.csv").unlink()
    (d / "students.csv").mkdir()


@case(
    severity="error",
    file="students.csv",
    line=None,
    column=None,
    rule="is a named pipe (FIFO), not a regular file; not read",
)
def fifo_named_like_a_table(d):
    (d / "students.csv").unlink()
    os.mkfifo(d / "students.csv")


@case(severity="error", file="observations.csv", line=None, column=None, rule="binary file, not text")
def binary_file(d):
    (d / "observations.csv").write_bytes(np.random.default_rng(7).bytes(5000))


@case(
    severity="error",
    file="schools.csv",
    line=None,
    column=None,
    rule="binary file, not text (e.g. a spreadsheet or archive)",
)
def spreadsheet_saved_under_a_csv_name(d):
    (d / "schools.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"\x00" * 200)


@case(severity="error", file="students.csv", line=1, column=None, rule="columns are separated by tabs")
def tab_separated(d):
    edit_text(d, "students.csv", lambda s: s.replace(",", "\t"))


@case(severity="error", file="students.csv", line=1, column="grade", rule="duplicate column name")
def duplicate_column_name(d):
    edit_text(d, "students.csv", lambda s: s.replace("race_ethnicity", "grade", 1))


@case(severity="error", file="students.csv", line=1, column=None, rule="no header row")
def empty_header_row(d):
    edit_text(d, "students.csv", lambda s: ",,,,,,,\n" + s.split("\n", 1)[1])


@case(
    severity="error",
    file="attendance.csv",
    line=2,
    column="days_enrolled",
    value="0",
    rule="must be between 1 and 366",
)
def zero_days_enrolled(d):
    set_cell(d, "attendance.csv", 2, "days_enrolled", "0")
    set_cell(d, "attendance.csv", 2, "days_present", "0")


@case(
    severity="error", file="assessments.csv", line=2, column=None, rule="row has 10 fields; the header has 9"
)
def thousands_separator_in_a_number(d):
    edit_text(d, "assessments.csv", lambda s: s.replace("448.5", "1,234", 1))


@case(
    severity="error",
    file="assessments.csv",
    line=2,
    column="scale_score",
    value="inf",
    rule="must be a number",
)
def infinite_number(d):
    set_cell(d, "assessments.csv", 2, "scale_score", "inf")


#: Kinds of bad input tried outside the CASES above (each test below asserts its message).
OTHER_KINDS = (
    "unsafe_district_id",
    "analysis_year_without_classrooms",
    "formula_in_problem_csv",
    "failed_process_leaves_stale_tables",
    "missing_folder",
    "file_not_a_folder",
)


def test_unsafe_district_id_is_an_error_with_a_safe_suggestion(tmp_path):
    d = make_valid_district(tmp_path / "Lake Side Ünified")
    report = validate_district(d)
    (p,) = report.errors
    assert p.file == "Lake Side Ünified/" and p.line is None
    assert p.rule.startswith(
        "district id 'Lake Side Ünified' may hold only ASCII letters, digits, '_' and '-'"
    )
    assert p.rule.endswith("rename the folder, e.g. 'Lake_Side_nified'")
    with pytest.raises(ValidationFailed):
        dataset.process_district(d, processed_root=tmp_path / "processed", key="test-key-0123456")
    assert not (tmp_path / "processed" / "Lake Side Ünified").exists()


def test_the_analysis_year_can_be_set_and_must_have_classrooms(valid_district, tmp_path, capsys):
    report = validate_district(valid_district, analysis_year=2014)
    (p,) = report.errors
    assert (p.file, p.column, p.value) == ("classrooms.csv", "school_year", "2014")
    assert p.rule == "no classroom is in the analysis year 2014 (the classrooms are in 2016)"
    assert (
        cli.main(
            [
                "process",
                str(valid_district),
                "--processed-dir",
                str(tmp_path / "p"),
                "--analysis-year",
                "2016",
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "p" / "district_ok" / "manifest.json").read_text())
    assert manifest["analysis_year"] == 2016
    assert measures.analysis_year(dataset.load_district("district_ok", processed_root=tmp_path / "p")) == 2016


def test_problem_csv_neutralizes_spreadsheet_formulas(valid_district, tmp_path, capsys):
    set_cell(valid_district, "schools.csv", 2, "school_level", "=cmd|' /C calc'!A0")
    set_cell(valid_district, "students.csv", 3, "grade", "-3")
    set_cell(valid_district, "students.csv", 4, "gender", "@SUM(A1)")
    target = tmp_path / "problems.csv"
    assert cli.main(["validate", str(valid_district), "--csv", str(target)]) == 1
    with open(target, newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    values = set(cells)
    assert "'=cmd|' /C calc'!A0" in values and "'@SUM(A1)" in values and "-3" in values
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not c[1:].isdigit())]


def test_failed_process_leaves_no_stale_tables_that_look_current(valid_district, tmp_path, capsys):
    root = tmp_path / "processed"
    dataset.process_district(valid_district, processed_root=root, key="test-key-0123456")
    assert (root / "district_ok" / "manifest.json").exists()
    set_cell(valid_district, "students.csv", 6, "grade", "2")
    assert cli.main(["process", str(valid_district), "--processed-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "NOT processed (validation failed); no new tables written" in out and ".stale-district_ok/" in out
    assert not (root / "district_ok").exists()
    stale = root / ".stale-district_ok"
    assert (stale / "students.parquet").exists() and "failed validation" in (stale / "STALE.txt").read_text()
    with pytest.raises(
        FileNotFoundError,
        match="no current processed data for district 'district_ok': the latest "
        "process of district_ok failed validation: 1 error",
    ):
        dataset.load_district("district_ok", processed_root=root)
    set_cell(valid_district, "students.csv", 6, "grade", "4")
    dataset.process_district(valid_district, processed_root=root, key="test-key-0123456")
    assert dataset.load_district("district_ok", processed_root=root).students is not None


def test_symlink_target_is_never_read_or_echoed(valid_district, tmp_path, capsys):
    secret = tmp_path / "secret.csv"
    secret.write_text("school_id,school_name,school_level\nTOPSECRET,x,y\n")
    (valid_district / "schools.csv").unlink()
    (valid_district / "schools.csv").symlink_to(secret)
    assert cli.main(["validate", str(valid_district), "--max-rows", "0"]) == 1
    out = capsys.readouterr().out
    assert "TOPSECRET" not in out and str(tmp_path) not in out.replace(str(valid_district), "")


def test_symlink_inside_the_folder_is_read(valid_district):
    (valid_district / "exports").mkdir()
    os.replace(valid_district / "schools.csv", valid_district / "exports" / "schools.csv")
    (valid_district / "schools.csv").symlink_to(valid_district / "exports" / "schools.csv")
    assert validate_district(valid_district).ok


def test_a_file_given_as_the_district_folder(tmp_path):
    f = tmp_path / "district.csv"
    f.write_text("x\n")
    (p,) = validate_district(f).errors
    assert p.rule == "not a folder (expected data/raw/<district_id>/)"


def test_the_suite_tries_at_least_sixty_kinds_of_bad_input():
    try:
        from .test_crosswalk import CROSSWALK_CASES
    except ImportError:  # pragma: no cover
        from test_crosswalk import CROSSWALK_CASES
    kinds = len(CASES) + len(CROSSWALK_CASES) + len(OTHER_KINDS)
    assert kinds >= 60, kinds


@pytest.mark.parametrize("table", ["students", "classrooms"])
def test_a_required_table_with_a_header_and_no_rows_gets_a_clear_message(valid_district, table):
    """Was a traceback (an IndexError in the plausibility checks across tables)."""
    path = valid_district / f"{table}.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    report = validate_district(valid_district)
    assert not report.ok
    errors = report.errors
    assert [(p.file, p.rule) for p in errors if p.file == f"{table}.csv"] == [
        (f"{table}.csv", "has no data rows (header only)")
    ]
