"""The crosswalk: a district exported with its own file names, column names and codes.

The central check: the same district, once in contract shape and once as its student information
system exports it (tests/districtkit.py ``export_as_sis``) plus a crosswalk, gives identical processed
tables and publishes identical findings; ``init`` drafts that crosswalk with no choice left, and with
exactly the genuinely ambiguous ones when there are some.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from opportunity_research import cli, config
from opportunity_research.disclosure.district import analyze_district
from opportunity_research.intake import dataset
from opportunity_research.intake.crosswalk import CHOOSE, load_crosswalk
from opportunity_research.intake.draft import draft_crosswalk
from opportunity_research.intake.validation import validate_district
from opportunity_research.study import analysis

try:
    from .districtkit import export_as_sis, make_valid_district
except ImportError:  # pragma: no cover
    from districtkit import export_as_sis, make_valid_district

KEY = "0123456789abcdef"


def _processed_tables(folder):
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


@pytest.fixture(scope="module")
def demo_pair(tmp_path_factory):
    """demo_pinebrook in contract shape and as its SIS exports it, both processed (same district id)."""
    src = config.raw_dir() / "demo_pinebrook"
    if not (src / "students.csv").exists():
        pytest.skip("demo data missing: run `make data`")
    base = tmp_path_factory.mktemp("pair")
    contract = base / "contract" / "demo_pinebrook"
    shutil.copytree(src, contract)
    sis = export_as_sis(src, base / "sis" / "demo_pinebrook")
    out = {}
    for kind, raw in (("contract", contract), ("sis", sis)):
        out[kind] = dataset.process_district(raw, processed_root=base / f"processed_{kind}", key=KEY)
    return base, contract, sis, out


def test_sis_export_really_differs_from_the_contract(demo_pair):
    _, _contract, sis, _ = demo_pair
    assert not (sis / "students.csv").exists() and (sis / "Student Roster.csv").exists()
    head = (sis / "Student Roster.csv").read_text().splitlines()[0]
    assert head.startswith("STUDENT_NUMBER,SCHOOL_CODE,GRADE_LEVEL,FED_RACE,FRL")
    roster = pd.read_csv(sis / "Student Roster.csv", dtype=str)
    assert set(roster["FED_RACE"]) <= set("1234567") and set(roster["FRL"]) == {"Y", "N"}
    tests = pd.read_csv(sis / "state_test_scores.csv", dtype=str)
    assert set(tests["SUBJECT_AREA"]) == {"ELA", "MATH"} and "2016-17" in set(tests["SCHOOL_YEAR"])
    assert set(tests["PERF_LEVEL"]) <= {"Below Basic", "Basic", "Proficient", "Advanced"}


def test_sis_export_with_crosswalk_gives_identical_processed_tables(demo_pair):
    _, _, _, out = demo_pair
    a, b = _processed_tables(out["contract"]), _processed_tables(out["sis"])
    assert a.keys() == b.keys() and len(a) >= 13
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    ma, mb = (json.loads((out[k] / "manifest.json").read_text()) for k in ("contract", "sis"))
    assert ma["tables"] == mb["tables"] and ma["analysis_year"] == mb["analysis_year"] == 2016
    assert "crosswalk.yaml" in mb["inputs"] and "Student Roster.csv" in mb["inputs"]


def test_sis_export_publishes_exactly_the_same_findings(demo_pair):
    base, _, _, _ = demo_pair
    found = {}
    for kind in ("contract", "sis"):
        a = analyze_district(
            "demo_pinebrook", processed_dir=str(base / f"processed_{kind}"), n_boot=40, seed=3
        )
        found[kind] = json.dumps(
            analysis.findings_json(a, parameters={"seed": 3}), sort_keys=True, default=str
        )
    assert found["contract"] == found["sis"]
    assert '"n_students": 300' in found["sis"]


def test_init_drafts_the_whole_crosswalk_with_no_choice_left(demo_pair, tmp_path, capsys):
    _base, _, sis, out = demo_pair
    bare = tmp_path / "demo_pinebrook"
    shutil.copytree(sis, bare)
    (bare / "crosswalk.yaml").unlink()
    before = {p.name: p.read_bytes() for p in bare.iterdir()}
    assert cli.main(["init", str(bare)]) == 0
    said = capsys.readouterr().out
    assert "0 choices left to you" in said
    text = (bare / "crosswalk.yaml").read_text()
    assert f": {CHOOSE}" not in text
    assert 'race_ethnicity: "FED_RACE"  # synonym' in text and 'students: "Student Roster.csv"' in text
    assert '"2016-17": "2016"' in text and '"Below Basic": "1"' in text and '"Y": "1"' in text
    assert {p.name: p.read_bytes() for p in bare.iterdir() if p.name != "crosswalk.yaml"} == before
    report = validate_district(bare)
    assert report.ok, report.format()
    processed = dataset.process_district(bare, processed_root=tmp_path / "processed", key=KEY)
    a, b = _processed_tables(out["contract"]), _processed_tables(processed)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_init_marks_only_the_genuinely_ambiguous_choices(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "amb", crosswalk=False)
    # a winter test window nobody can map for the analyst, and a second column that could be the grade
    t = pd.read_csv(d / "state_test_scores.csv", dtype=str, keep_default_na=False)
    t.loc[0, "TEST_WINDOW"] = "Winter"
    t.to_csv(d / "state_test_scores.csv", index=False)
    r = pd.read_csv(d / "Student Roster.csv", dtype=str, keep_default_na=False)
    r["Grade Level"] = r["GRADE_LEVEL"]
    r.to_csv(d / "Student Roster.csv", index=False)
    draft = draft_crosswalk(d)
    assert len(draft.choices) == 2, draft.choices
    assert any("assessments.window = 'Winter'" in c for c in draft.choices)
    assert any("students.grade" in c and "GRADE_LEVEL, Grade Level" in c for c in draft.choices)
    (d / "crosswalk.yaml").write_text(draft.text)
    report = validate_district(d)
    rules = [p.rule for p in report.errors]
    assert any("no contract value chosen yet: one of fall, spring" in r for r in rules)
    assert any("no district column chosen yet" in r for r in rules)


def test_init_without_any_match_says_what_to_choose(tmp_path, capsys):
    d = tmp_path / "odd"
    d.mkdir()
    (d / "export1.csv").write_text("a,b\n1,2\n")
    assert cli.main(["init", str(d), "--print"]) == 0
    text = capsys.readouterr().out
    assert "students: CHOOSE  # CHOOSE: required table; candidates: export1.csv" in text
    assert not (d / "crosswalk.yaml").exists()


def test_init_never_overwrites_an_existing_crosswalk(tmp_path, capsys):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    before = (d / "crosswalk.yaml").read_bytes()
    assert cli.main(["init", str(d)]) == 0
    assert (d / "crosswalk.yaml").read_bytes() == before and (d / "crosswalk.draft.yaml").exists()
    assert "left as it is" in capsys.readouterr().out


def test_messages_name_the_districts_file_and_column_and_the_contracts(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    r = pd.read_csv(d / "Student Roster.csv", dtype=str, keep_default_na=False)
    r.loc[4, "GRADE_LEVEL"] = "14"
    r.loc[6, "FED_RACE"] = "9"
    r.to_csv(d / "Student Roster.csv", index=False)
    report = validate_district(d)
    p = next(x for x in report.errors if x.line == 6)
    assert (p.file, p.column, p.value, p.rule) == (
        "Student Roster.csv (students.csv)",
        "GRADE_LEVEL (grade)",
        "14",
        "must be between 3 and 12",
    )
    p = next(x for x in report.errors if x.line == 8)
    assert (p.file, p.column, p.value) == (
        "Student Roster.csv (students.csv)",
        "FED_RACE (race_ethnicity)",
        "9",
    )
    assert p.rule.startswith(
        "not in the crosswalk's codes for students.race_ethnicity: add it to crosswalk.yaml"
    )


def test_unmapped_code_gets_the_closest_code_as_suggestion(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    r = pd.read_csv(d / "Student Roster.csv", dtype=str, keep_default_na=False)
    r.loc[0, "SEX"] = "f"
    r.to_csv(d / "Student Roster.csv", index=False)
    (p,) = validate_district(d).errors
    assert (p.line, p.column, p.value) == (2, "SEX (gender)", "f")
    assert p.rule.endswith("(did you mean 'F'?)")


def test_mapped_column_missing_from_the_file_names_both_and_suggests(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    text = (d / "crosswalk.yaml").read_text().replace('grade: "GRADE_LEVEL"', 'grade: "GRADE_LVL"', 1)
    (d / "crosswalk.yaml").write_text(text)
    (p,) = validate_district(d).errors
    assert (p.file, p.column, p.line) == ("school_directory.csv (schools.csv)", "school_level", 1) or (
        p.file == "Student Roster.csv (students.csv)" and p.column == "GRADE_LVL (grade)"
    )
    assert "reads it from 'GRADE_LVL', which the file does not have; did you mean 'GRADE_LEVEL'?" in p.rule


def test_a_crosswalk_mapping_to_an_allowed_code_reads_empty_as_missing(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    text = (d / "crosswalk.yaml").read_text().replace('"F": "female"', '"F": ""')
    (d / "crosswalk.yaml").write_text(text)
    report = validate_district(d)
    assert {(p.column, p.rule) for p in report.errors} == {("SEX (gender)", "must not be empty")}


# Broken crosswalks: each is a kind of bad input with its own message (counted by test_validation).
def _cw(d, text):
    (d / "crosswalk.yaml").write_text(text)
    return d


CROSSWALK_CASES = {
    "unknown_section": (
        "file:\n  students: roster.csv\n",
        1,
        "(top level)",
        "file",
        "unknown section; the sections are files, columns and codes (did you mean 'files'?)",
    ),
    "unknown_table_in_files": (
        "files:\n  student: roster.csv\n",
        2,
        "files",
        "student",
        "unknown contract table (did you mean 'students'?)",
    ),
    "two_tables_one_file": (
        "files:\n  students: a.csv\n  schools: a.csv\n",
        3,
        "files",
        "schools",
        "'a.csv' is already the file of students; two tables cannot share a file",
    ),
    "file_is_a_path": (
        "files:\n  students: ../x/students.csv\n",
        2,
        "files",
        "students",
        "'../x/students.csv' must be a file name in the district folder, not a path",
    ),
    "file_left_to_choose": ("files:\n  students: CHOOSE\n", 2, "files", "students", "no file chosen yet"),
    "unknown_table_in_columns": (
        "columns:\n  studnets:\n    grade: G\n",
        2,
        "columns",
        "studnets",
        "unknown contract table (did you mean 'students'?)",
    ),
    "unknown_contract_column": (
        "columns:\n  students:\n    race: FED_RACE\n",
        3,
        "columns.students",
        "race",
        "unknown column of students",
    ),
    "two_columns_one_district_column": (
        "columns:\n  students:\n    grade: G\n    school_id: G\n",
        4,
        "columns.students",
        "school_id",
        "district column 'G' is already mapped to grade",
    ),
    "column_left_to_choose": (
        "columns:\n  students:\n    grade: CHOOSE\n",
        3,
        "columns.students",
        "grade",
        "no district column chosen yet",
    ),
    "codes_key_without_column": (
        "codes:\n  students:\n    Y: 1\n",
        2,
        "codes",
        "students",
        "unknown column of students",
    ),
    "codes_unknown_column": (
        "codes:\n  students.frl:\n    Y: 1\n",
        2,
        "codes",
        "students.frl",
        "unknown column of students",
    ),
    "code_listed_twice": (
        "codes:\n  students.low_income:\n    Y: 1\n    Y: 0\n",
        4,
        "codes.students.low_income",
        "Y",
        "listed twice (first on line 3); the two mappings collide: keep one",
    ),
    "code_maps_to_a_code_the_contract_lacks": (
        "codes:\n  students.race_ethnicity:\n    '4': blak\n",
        3,
        "codes.students.race_ethnicity",
        "4",
        "maps to 'blak', which is not a contract code",
    ),
    "code_maps_flag_to_two": (
        "codes:\n  students.low_income:\n    Y: 2\n",
        3,
        "codes.students.low_income",
        "Y",
        "maps to '2'; low_income must be one of: 0, 1",
    ),
    "code_maps_number_to_text": (
        "codes:\n  assessments.school_year:\n    2016-17: sixteen\n",
        3,
        "codes.assessments.school_year",
        "2016-17",
        "maps to 'sixteen', which is not a number",
    ),
    "code_left_to_choose": (
        "codes:\n  assessments.window:\n    Winter: CHOOSE\n",
        3,
        "codes.assessments.window",
        "Winter",
        "no contract value chosen yet: one of fall, spring",
    ),
    "crosswalk_not_yaml": ("files: [students\n", 2, None, None, "not valid YAML"),
    "section_not_a_mapping": ("files:\n  - students.csv\n", 1, "files", None, "must be a mapping"),
}


@pytest.mark.parametrize("name", list(CROSSWALK_CASES))
def test_broken_crosswalk_is_an_error_naming_line_key_and_rule(valid_district, name):
    text, line, where, key, rule = CROSSWALK_CASES[name]
    report = validate_district(_cw(valid_district, text))
    assert not report.ok
    hits = [p for p in report.errors if p.file == "crosswalk.yaml"]
    assert hits, report.format()
    p = hits[0]
    assert (p.line, p.column, p.value) == (line, where, key), p
    assert rule in p.rule, p.rule


def test_crosswalk_that_is_a_folder_is_refused(valid_district):
    (valid_district / "crosswalk.yaml").mkdir()
    (p,) = validate_district(valid_district).errors
    assert p.file == "crosswalk.yaml" and "must be a regular file" in p.rule


def test_yaml_type_guessing_does_not_change_codes(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    _cw(d, "codes:\n  students.low_income:\n    yes: 1\n    no: 0\n    01: 1\n")
    cw, problems = load_crosswalk(d)
    assert problems == [] and cw.codes[("students", "low_income")] == {"yes": "1", "no": "0", "01": "1"}


def test_a_mapped_file_that_is_not_there_is_named_with_a_suggestion(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    text = (
        (d / "crosswalk.yaml")
        .read_text()
        .replace('students: "Student Roster.csv"', 'students: "Student_Roster.csv"')
    )
    (d / "crosswalk.yaml").write_text(text)
    (p,) = validate_district(d).errors
    assert p.file == "Student_Roster.csv (students.csv)"
    assert p.rule == (
        "required table is missing (crosswalk.yaml names it 'Student_Roster.csv', which is not in the "
        "folder; did you mean 'Student Roster.csv'?)"
    )


def test_a_district_column_named_like_a_mapped_contract_column_is_ignored_with_a_warning(tmp_path):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis")
    r = pd.read_csv(d / "Student Roster.csv", dtype=str, keep_default_na=False)
    r["grade"] = "99"  # e.g. a next-year grade the district also exports
    r.to_csv(d / "Student Roster.csv", index=False)
    report = validate_district(d)
    assert report.ok
    (w,) = report.warnings
    assert w.file == "Student Roster.csv (students.csv)" and w.rule == "unexpected column (ignored)"
    assert w.column == "grade (not used: the crosswalk reads grade from GRADE_LEVEL)"
    assert report.tables["students"]["grade"].max() == 7


def test_validate_and_process_commands_on_a_crosswalk_district(tmp_path, capsys):
    d = export_as_sis(make_valid_district(tmp_path / "ok"), tmp_path / "sis_district")
    assert cli.main(["validate", str(d)]) == 0
    assert cli.main(["process", str(d), "--processed-dir", str(tmp_path / "p")]) == 0
    assert "sis_district: processed 15 tables" in capsys.readouterr().out
