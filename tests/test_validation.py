"""Validation of a district export against the data contract.

Every broken district is the hand-built valid district (tests/districtkit.py) with one thing broken;
each test checks that the problem names the file, line, column and rule, and that the export is
left byte-identical.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from opportunity_research import cli, dataset
from opportunity_research.contract import TABLES
from opportunity_research.validation import (
    Problem,
    ValidationFailed,
    ValidationReport,
    duplicated_key,
    table_schema,
    validate_district,
)

try:
    from .districtkit import district_tables, make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import district_tables, make_valid_district


# ---------------------------------------------------------------------------------------------
# helpers


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


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
    assert set(report.tables) == set(TABLES)
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
            (valid_district / t.filename).unlink()
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


@case(severity="error", file="schools.csv", line=3, column="school_name", value="Pine Middlé",
           rule="not valid UTF-8; looks like cp1252")
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


@case(severity="error", file="teacher_surveys.csv", line=5, column="classroom_id", value="NA",
           rule="must exist in classrooms.classroom_id (leave missing values empty)")
def na_text_as_missing_id(d):
    set_cell(d, "teacher_surveys.csv", 5, "classroom_id", "NA")


@case(severity="error", file="students.csv", line=1, column="gender", rule="required column is missing")
def missing_required_column(d):
    _write_rows(d, "students.csv", [r[:-1] for r in _rows(d, "students.csv")])


@case(severity="error", file="students.csv", line=1, column="student_id",
           rule="required column is missing (found 'Student_ID'; column names are lower case)")
def column_name_in_wrong_case(d):
    edit_text(d, "students.csv", lambda s: s.replace("student_id", "Student_ID", 1))


@case(severity="error", file="assessments.csv", line=2, column="scale_score", value="high",
           rule="must be a number")
def text_in_number_column(d):
    set_cell(d, "assessments.csv", 2, "scale_score", "high")


@case(severity="error", file="students.csv", line=3, column="grade", value="4.5", rule="must be a whole number")
def fraction_in_whole_number_column(d):
    set_cell(d, "students.csv", 3, "grade", "4.5")


@case(severity="error", file="observations.csv", line=2, column="ca2", value="NA",
           rule="must be a whole number (leave missing values empty)")
def na_text_in_number_column(d):
    set_cell(d, "observations.csv", 2, "ca2", "NA")


@case(severity="error", file="students.csv", line=4, column="race_ethnicity", value="Black",
           rule="must be one of: hispanic_latino, american_indian_alaska_native, asian, black")
def code_not_allowed(d):
    set_cell(d, "students.csv", 4, "race_ethnicity", "Black")


@case(severity="error", file="students.csv", line=2, column="low_income", value="yes", rule="must be one of: 0, 1")
def flag_not_zero_or_one(d):
    set_cell(d, "students.csv", 2, "low_income", "yes")


@case(severity="error", file="students.csv", line=6, column="grade", value="2", rule="must be between 3 and 12")
def value_out_of_range(d):
    set_cell(d, "students.csv", 6, "grade", "2")


@case(severity="error", file="classrooms.csv", line=3, column="teacher_id", value=None, rule="must not be empty")
def empty_cell_in_required_column(d):
    set_cell(d, "classrooms.csv", 3, "teacher_id", "")


@case(severity="error", file="assessments.csv", line=3, column="student_id, subject, school_year, window",
           value="1001, ela, 2015, fall", rule="duplicate key (student_id, subject, school_year, window)")
def duplicate_key(d):
    set_cell(d, "assessments.csv", 3, "window", "fall")


@case(severity="error", file="enrollments.csv", line=82, column="student_id, classroom_id", value="1001, C1",
           rule="duplicate row (identical to an earlier row)")
def duplicated_identical_row(d):
    edit_text(d, "enrollments.csv", lambda s: s + "1001,C1\n")


@case(severity="error", file="enrollments.csv", line=2, column="classroom_id", value="C9",
           rule="must exist in classrooms.classroom_id")
def reference_does_not_resolve(d):
    set_cell(d, "enrollments.csv", 2, "classroom_id", "C9")


@case(severity="error", file="attendance.csv", line=2, column="days_present", value="190 > 180",
           rule="must not exceed days_enrolled")
def more_days_present_than_enrolled(d):
    set_cell(d, "attendance.csv", 2, "days_present", "190")


@case(severity="error", file="teacher_surveys.csv", line=2, column="exp_appropriate",
           rule="must be answered on form 'current'")
def teacher_survey_item_of_form_unanswered(d):
    set_cell(d, "teacher_surveys.csv", 2, "exp_appropriate", "")


@case(severity="error", file="teacher_surveys.csv", line=1, column="exp_began",
           rule="column is missing but 2 rows use form 'old'")
def teacher_survey_column_of_used_form_missing(d):
    rows = _rows(d, "teacher_surveys.csv")
    _write_rows(d, "teacher_surveys.csv", [r[:-1] for r in rows])


@case(severity="error", file="goals.csv", line=4, column="measure", value="chronic_absence",
           rule="must be one of: grade_appropriate_share")
def line_numbers_count_multiline_values(d):
    edit_text(d, "goals.csv", lambda s: s.replace("Raise grade", "Raise\ngrade").replace(
        "chronic_absence_rate", "chronic_absence"))


@case(severity="error", file="classrooms.csv", line=6, column="subject", value="Math",
           rule="(codes are lower case)")
def line_numbers_count_blank_lines(d):
    edit_text(d, "classrooms.csv", lambda s: s.replace("\nC3,", "\n\nC3,").replace("T4,math", "T4,Math"))


@case(severity="warning", file="students.csv", line=1, column="notes", rule="unexpected column (ignored)", ok=True)
def extra_column(d):
    rows = _rows(d, "students.csv")
    _write_rows(d, "students.csv", [r + (["notes"] if i == 0 else ["x"]) for i, r in enumerate(rows)])


@case(severity="warning", file="teachers.csv", line=None, column=None, rule="not a contract table (ignored)",
      ok=True)
def unknown_csv_file(d):
    (d / "teachers.csv").write_text("teacher_id,name\nT1,Ann\n")


@case(severity="warning", file="students.csv", line=2, column="race_ethnicity", value="' hispanic_latino '",
           rule="leading/trailing whitespace stripped (1 cell", ok=True)
def whitespace_around_code(d):
    set_cell(d, "students.csv", 2, "race_ethnicity", " hispanic_latino ")


@case(severity="warning", file="goals.csv", line=None, column=None, rule="optional table has no data rows",
      ok=True)
def header_only_optional_table(d):
    _write_rows(d, "goals.csv", _rows(d, "goals.csv")[:1])


_WS = district_tables()["work_samples"]
_GL_LINE = int(np.flatnonzero(_WS["met_grade_level"] == 1)[0]) + 2


@case(severity="warning", file="work_samples.csv", line=_GL_LINE, column="met_grade_level",
           rule="met_grade_level = 1 but met_demands = 0", ok=True)
def grade_level_without_demands(d):
    set_cell(d, "work_samples.csv", _GL_LINE, "met_demands", "0")


@case(severity="warning", file="work_samples.csv", line=2, column="student_id", value="1030",
           rule="student is not enrolled in the assignment's classroom", ok=True)
def work_by_student_not_enrolled(d):
    set_cell(d, "work_samples.csv", 2, "student_id", "1030")  # a grade-7 student on a grade-4 assignment


@case(severity="warning", file="classrooms.csv", line=6, column="classroom_id", value="C5",
           rule="no students enrolled", ok=True)
def classroom_without_students(d):
    edit_text(d, "classrooms.csv", lambda s: s + "C5,SCH2,T4,science,7,2016\n")


@case(severity="warning", file="students.csv", line=41, column="student_id", value="1040",
           rule="no assessment results", ok=True)
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


def test_at_least_fifteen_kinds_of_broken_input():
    assert len(CASES) >= 15
    assert len({c.values[1]["rule"] for c in CASES}) == len(CASES)


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
        ("students.csv", 6, "grade", "must be between 3 and 12")]


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
    assert [p.file for p in report.errors] == ["students.csv", "students.csv", "classrooms.csv", "enrollments.csv",
                                               "assessments.csv", "observations.csv", "attendance.csv"]


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
        ["warning", "students.csv", "1", "notes", "unexpected column (ignored)"]]
    assert [p.name for p in target.parent.iterdir()] == ["problems.csv"]  # no temporary file left


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
        dataset.process_district(valid_district, processed_root=tmp_path / "processed", key="test-key-0123456")
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
    df = pd.DataFrame({"a": rng.choice(["x", "y", "z", None], 500), "b": rng.integers(0, 4, 500).astype(float),
                       "c": rng.choice(["p", "q"], 500)}).astype({"a": "str", "c": "str"})
    df.loc[::7, "b"] = np.nan
    for keep in ("first", False):
        np.testing.assert_array_equal(duplicated_key(df, ["a", "b", "c"], keep=keep),
                                      df.duplicated(["a", "b", "c"], keep=keep).to_numpy())


def test_make_valid_district_is_reusable(tmp_path):
    a = make_valid_district(tmp_path / "a")
    b = make_valid_district(tmp_path / "b")
    assert _hashes(a) == _hashes(b)
    shutil.rmtree(a)
