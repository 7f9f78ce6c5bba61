"""The rules across tables: references, days present, teacher-survey forms, and plausibility.

Holds :func:`check_across_tables`, run on the parsed tables once every file has been checked on its own: the
references between tables, ``days_present <= days_enrolled``, the items each teacher-survey form must answer,
and the plausibility rules (school years not yet started, the analysis year, fall vs spring grades, students
without enrollments, sections of several grades or another school, goal and level-count groups, goal years),
plus the warnings that link tables.

Decisions
---------
* Everything is vectorized, never a Python loop over rows. The id columns are compared as integer codes shared
  across tables (:class:`_Ids`): each column's distinct ids are hashed (pyarrow) once against its domain's, not
  once per rule comparing it (at a million students the references, the warnings linking tables and the lookups
  of rows by id hashed the student ids about twenty times).
* A cell already reported (a bad number, an unresolved reference, an empty key) is not reported again by a
  later rule, so each problem is fixed once.
* A table with a header and no rows is left out of the references (an empty target would flag every row).

Examples
--------
>>> from opportunity_research.intake.validation_report import ProblemCollector
>>> out = ProblemCollector()
>>> check_across_tables({}, {}, {}, out, analysis_year=None)
>>> out.frame([]).empty
True
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd
import pyarrow as pya
import pyarrow.compute as pyc

from .contract import (
    EXPECTATION_ITEMS_CURRENT,
    EXPECTATION_ITEMS_OLD,
    RACE_ETHNICITY,
    SUBGROUP_VARIABLES,
    TABLES,
)
from .crosswalk import suggest
from .validation_read import NA_MARKERS, line_of
from .validation_report import ProblemCollector
from .validation_schema import as_chunked_array, dictionary_codes, format_number, key_codes, shared_ids

__all__ = ["FORM_ITEMS", "check_across_tables"]

#: Forms of the teacher survey and the items each must answer.
FORM_ITEMS = {"current": tuple(EXPECTATION_ITEMS_CURRENT), "old": tuple(EXPECTATION_ITEMS_OLD)}


def _int_text(x: pd.Series) -> pd.Series:
    return x.map(format_number).astype("str")


def _has(df: pd.DataFrame | None, *columns: str) -> bool:
    return df is not None and set(columns) <= set(df.columns)


class _Ids:
    """The id columns of a district's tables as codes shared across tables, one set of codes per domain (the ids a
    reference compares: ``student_id``, ``classroom_id``...), kept by
    :class:`~opportunity_research.intake.validation_schema.IdCodes`: each column's distinct values are looked up
    once (one pyarrow hash) in the ids of its domain met so far (by ``process``'s pseudonyms already, for the
    student ids), the new ones appended; every rule comparing ids across tables then works on integers (numpy),
    whatever the number of rules and tables comparing the same columns.

    Examples
    --------
    >>> ids = _Ids({"a": pd.DataFrame({"x": ["p", "q", None, "p"]}, dtype="str"),
    ...             "b": pd.DataFrame({"x": ["q", "r", "q"]}, dtype="str")})
    >>> ids.rows("a", "x").tolist(), ids.rows("b", "x").tolist(), ids.isin("a", "x", "b").tolist()
    ([0, 1, -1, 0], [1, 2, 1], [False, True, False, False])
    >>> ids.first_rows("a", "x", "b").tolist()
    [-1, 0, -1, -1]
    """

    def __init__(self, tables: dict):
        self.tables = tables
        self.ids = shared_ids()  # process: its pseudonyms looked the student ids up already

    def rows(self, table: str, column: str, domain: str | None = None) -> np.ndarray:
        """The domain's code of each row of ``table[column]`` (-1 where empty); ``domain`` defaults to ``column``."""
        codes, uniques = dictionary_codes(self.tables[table][column])
        return np.append(self.ids.codes(uniques, domain or column).astype(np.int64), -1)[codes]

    def size(self, domain: str) -> int:
        """How many distinct ids the domain holds so far (its codes are below this)."""
        return self.ids.size(domain)

    def isin(self, table: str, column: str, target: str, target_column: str | None = None) -> np.ndarray:
        """``tables[table][column].isin(tables[target][target_column])`` (an empty cell is never in; the target
        column defaults to ``column``, its domain)."""
        target_column = target_column or column
        values, universe = self.tables[table][column], self.tables[target][target_column]
        if values.dtype.kind == "f" or universe.dtype.kind == "f":
            return values.isin(universe.dropna().unique()).to_numpy()
        # the codes of the distinct ids the target holds (registered before the rows', which may be new)
        there = self.ids.codes(dictionary_codes(universe)[1], target_column)
        rows = self.rows(table, column, target_column)
        member = np.zeros(self.size(target_column) + 1, dtype=bool)  # the last slot: an empty cell (-1)
        member[there] = True
        return member[rows]

    def first_rows(
        self, table: str, column: str, target: str, target_column: str | None = None
    ) -> np.ndarray:
        """The first row of ``tables[target]`` holding each row's value of ``table[column]`` (-1 if none or empty)."""
        target_column = target_column or column
        there = self.rows(target, target_column, target_column)
        rows = self.rows(table, column, target_column)
        first = np.full(self.size(target_column) + 1, -1, dtype=np.int64)  # the last slot: an empty cell (-1)
        ids, at = np.unique(there, return_index=True)  # the index of each id's first occurrence
        keep = ids >= 0
        first[ids[keep]] = at[keep]
        return first[rows]


def _member(codes: np.ndarray, size: int) -> np.ndarray:
    """Which of the codes ``0 .. size - 2`` occur in ``codes`` (the last slot, for -1, is False)."""
    member = np.zeros(size, dtype=bool)
    member[codes[codes >= 0]] = True
    return member


def _cross_table(tables: dict, lines: dict, bad_type: dict, out: ProblemCollector, ids: _Ids) -> None:
    """References, days present, teacher-survey forms and the warnings linking tables (all vectorized)."""
    usable = {n: df for n, df in tables.items() if len(df)}
    unresolved = {}  # table -> mask of rows with an unresolved reference
    for name, df in tables.items():
        t = TABLES[name]
        for ref in t.references:
            target = usable.get(ref.table)
            if (
                target is None
                or not set(ref.columns) <= set(df.columns)
                or not set(ref.target_columns) <= set(target.columns)
            ):
                continue
            if len(ref.columns) == 1:
                vals = df[ref.columns[0]]
                missing = vals.notna().to_numpy() & ~ids.isin(
                    name, ref.columns[0], ref.table, ref.target_columns[0]
                )
                value = vals
            else:
                a = pd.Series(
                    key_codes(
                        pd.concat(
                            [
                                df[list(ref.columns)],
                                target[list(ref.target_columns)].set_axis(list(ref.columns), axis=1),
                            ],
                            ignore_index=True,
                        ),
                        list(ref.columns),
                    )
                )
                missing = (~a[: len(df)].isin(a[len(df) :]).to_numpy()) & df[list(ref.columns)].notna().all(
                    axis=1
                ).to_numpy()
                value = df[list(ref.columns)].astype("str").agg(", ".join, axis=1)
            rows = np.flatnonzero(missing)
            if len(rows):
                value = value.iloc[rows].astype("str")
                rule = f"must exist in {ref.table}.{', '.join(ref.target_columns)}"
                rule = np.where(
                    value.str.upper().isin(NA_MARKERS), rule + " (leave missing values empty)", rule
                )
                out.add(
                    "error",
                    t.filename,
                    rule,
                    column=", ".join(ref.columns),
                    line=line_of(lines[name], rows),
                    value=value,
                )
                unresolved[name] = unresolved.get(name, np.zeros(len(df), bool)) | missing

    att = tables.get("attendance")
    if att is not None and {"days_present", "days_enrolled"} <= set(att.columns):
        rows = np.flatnonzero((att["days_present"] > att["days_enrolled"]).to_numpy())
        if len(rows):
            value = (
                _int_text(att["days_present"].iloc[rows]) + " > " + _int_text(att["days_enrolled"].iloc[rows])
            )
            out.add(
                "error",
                "attendance.csv",
                "must not exceed days_enrolled",
                column="days_present",
                line=line_of(lines["attendance"], rows),
                value=value,
            )

    ts = tables.get("teacher_surveys")
    if ts is not None and "form" in ts.columns:
        for form, items in FORM_ITEMS.items():
            on_form = (ts["form"] == form).to_numpy()
            if not on_form.any():
                continue
            for item in items:
                if item not in ts.columns:
                    out.add(
                        "error",
                        "teacher_surveys.csv",
                        f"column is missing but {on_form.sum():,} rows use form '{form}'",
                        column=item,
                        line=1,
                    )
                    continue
                empty = on_form & ts[item].isna().to_numpy()
                if bad_type["teacher_surveys"].get(item) is not None:
                    empty = empty & ~bad_type["teacher_surveys"][item]  # a bad number is reported already
                rows = np.flatnonzero(empty)
                if len(rows):
                    out.add(
                        "error",
                        "teacher_surveys.csv",
                        f"must be answered on form '{form}'",
                        column=item,
                        line=line_of(lines["teacher_surveys"], rows),
                    )

    ws = tables.get("work_samples")
    if ws is not None and {"met_demands", "met_grade_level"} <= set(ws.columns):
        rows = np.flatnonzero(((ws["met_grade_level"] == 1) & (ws["met_demands"] == 0)).to_numpy())
        if len(rows):
            out.add(
                "warning",
                "work_samples.csv",
                "met_grade_level = 1 but met_demands = 0",
                column="met_grade_level",
                line=line_of(lines["work_samples"], rows),
                value="1",
            )
    asg, enr = usable.get("assignments"), usable.get("enrollments")
    if (
        _has(ws, "assignment_id", "student_id")
        and len(ws)
        and _has(asg, "assignment_id", "classroom_id")
        and _has(enr, "student_id", "classroom_id")
    ):
        # each work sample's classroom (that of its assignment's first row; -1 where unknown) and student, as codes
        at = ids.first_rows("work_samples", "assignment_id", "assignments")
        classroom = np.where(at >= 0, ids.rows("assignments", "classroom_id")[np.maximum(at, 0)], -1)
        student = ids.rows("work_samples", "student_id")
        s_en, c_en = ids.rows("enrollments", "student_id"), ids.rows("enrollments", "classroom_id")
        # a pair's code, s * base + c, is that pair's alone (-1 <= c < base - 1, every code registered by now)
        base = ids.size("classroom_id") + 1
        # a student or classroom no enrollment names is -1 (as is an empty cell in enrollments.csv)
        s_ws = np.where(ids.isin("work_samples", "student_id", "enrollments"), student, -1)
        c_ws = np.where(_member(c_en, base)[classroom], classroom, -1)
        enrolled = pd.Series(s_ws * base + c_ws).isin(s_en * base + c_en).to_numpy()
        check = ws["student_id"].notna().to_numpy() & (classroom >= 0)
        if "work_samples" in unresolved:
            check = check & ~unresolved["work_samples"]  # the unresolved reference is the error to fix
        rows = np.flatnonzero(check & ~enrolled)
        if len(rows):
            out.add(
                "warning",
                "work_samples.csv",
                "student is not enrolled in the assignment's classroom",
                column="student_id",
                line=line_of(lines["work_samples"], rows),
                value=ws["student_id"].iloc[rows],
            )

    cls = tables.get("classrooms")
    if _has(cls, "classroom_id") and _has(enr, "classroom_id"):
        rows = np.flatnonzero(
            cls["classroom_id"].notna().to_numpy() & ~ids.isin("classrooms", "classroom_id", "enrollments")
        )
        if len(rows):
            out.add(
                "warning",
                "classrooms.csv",
                "no students enrolled (not in enrollments.csv)",
                column="classroom_id",
                line=line_of(lines["classrooms"], rows),
                value=cls["classroom_id"].iloc[rows],
            )
    st, asm = tables.get("students"), usable.get("assessments")
    if _has(st, "student_id") and _has(asm, "student_id"):
        rows = np.flatnonzero(
            st["student_id"].notna().to_numpy() & ~ids.isin("students", "student_id", "assessments")
        )
        if len(rows):
            out.add(
                "warning",
                "students.csv",
                "no assessment results (not in assessments.csv)",
                column="student_id",
                line=line_of(lines["students"], rows),
                value=st["student_id"].iloc[rows],
            )


def _school_year_now(today: datetime.date | None = None) -> int:
    """The school year under way (named by the calendar year it starts in; a year starts on July 1)."""
    today = today or datetime.date.today()
    return today.year if today.month >= 7 else today.year - 1


def _goal_group_problem(group: str, students: pd.DataFrame | None) -> tuple[str, str] | None:
    """(severity, rule) when a goal's group names no student group, else None."""
    if group == "all":
        return None
    var, eq, level = group.partition("=")
    var, level = var.strip(), level.strip()
    if not eq or not var or not level:
        return "error", "must be 'all' or '<variable>=<level>' (e.g. 'low_income=1', 'race_ethnicity=black')"
    if var not in SUBGROUP_VARIABLES:
        return "error", (
            f"'{var}' is not a student group variable; use one of: {', '.join(SUBGROUP_VARIABLES)}"
            + suggest(var, SUBGROUP_VARIABLES)
        )
    levels = tuple(RACE_ETHNICITY) if var == "race_ethnicity" else ("0", "1")
    if re.fullmatch(r"[01]\.0+", level):
        level = level[0]
    if level not in levels:
        return "error", f"'{level}' is not a level of {var}; use one of: {', '.join(levels)}" + suggest(
            level, levels
        )
    if students is not None and var in students.columns:
        have = pd.Series(students[var].dropna().unique())  # each distinct value, not each student
        have = have.astype("str") if var == "race_ethnicity" else have.map(format_number).astype("str")
        if not have.eq(level).any():
            return "warning", f"no student in students.csv is in {var}={level}; the goal will have no data"
    return None


def _plausibility(
    tables: dict, lines: dict, out: ProblemCollector, ids: _Ids, *, analysis_year: int | None
) -> None:
    """Rules on values that are each allowed but together implausible (school years, grades, goals, links)."""
    now = _school_year_now()
    future = {}
    for name, df in tables.items():
        if "school_year" in df.columns and len(df):
            mask = (df["school_year"] > now).to_numpy()
            future[name] = mask
            rows = np.flatnonzero(mask)
            if len(rows):
                out.add(
                    "error",
                    TABLES[name].filename,
                    f"school year has not started yet (the current school year "
                    f"is {now}; years are named by the calendar year they start in)",
                    column="school_year",
                    line=line_of(lines[name], rows),
                    value=_int_text(df["school_year"].iloc[rows]),
                )
    cls = tables.get("classrooms")
    year = analysis_year
    if _has(cls, "school_year") and cls["school_year"].notna().any():
        years = cls["school_year"].dropna()
        if year is None:
            ok_years = years[years <= now]
            year = int(ok_years.max()) if len(ok_years) else None
        elif not (years == year).any():
            out.add(
                "error",
                "classrooms.csv",
                f"no classroom is in the analysis year {year} (the classrooms are in "
                + ", ".join(map(format_number, sorted(years.unique())))
                + ")",
                column="school_year",
                value=str(year),
            )
        if year is not None:
            rows = np.flatnonzero(
                ((cls["school_year"] != year) & cls["school_year"].notna()).to_numpy()
                & ~future.get("classrooms", False)
            )
            if len(rows):
                out.add(
                    "warning",
                    "classrooms.csv",
                    f"section is not in the analysis year {year}; its evidence still "
                    "counts in the district's shares",
                    column="school_year",
                    line=line_of(lines["classrooms"], rows),
                    value=_int_text(cls["school_year"].iloc[rows]),
                )
    asm = tables.get("assessments")
    if year is not None and _has(asm, "school_year"):
        rows = np.flatnonzero((asm["school_year"] > year).to_numpy() & ~future.get("assessments", False))
        if len(rows):
            out.add(
                "warning",
                "assessments.csv",
                f"after the analysis year {year}; only the trajectories (catch-up) use it",
                column="school_year",
                line=line_of(lines["assessments"], rows),
                value=_int_text(asm["school_year"].iloc[rows]),
            )
    if _has(asm, "student_id", "subject", "school_year", "window", "grade") and len(asm):
        key = ["student_id", "subject", "school_year"]
        fall, spring = asm["window"].eq("fall").to_numpy(), asm["window"].eq("spring").to_numpy()
        _, group = np.unique(
            key_codes(asm[key], key), return_inverse=True
        )  # dense group numbers, no hash map
        grade = asm["grade"].to_numpy(dtype=float)
        per_group = np.full(int(group.max(initial=-1)) + 1, np.nan)
        at = np.flatnonzero(spring)[::-1]
        per_group[group[at]] = grade[at]  # written last to first, so each group keeps its first spring grade
        sg = per_group[group]
        del group, per_group, at
        rows = np.flatnonzero(fall & (asm["grade"].to_numpy() > sg))
        if len(rows):
            out.add(
                "error",
                "assessments.csv",
                "fall grade is above the same year's spring grade for this student and subject",
                column="grade",
                line=line_of(lines["assessments"], rows),
                value=_int_text(asm["grade"].iloc[rows]).to_numpy()
                + " > "
                + pd.Series(sg[rows]).map(format_number).astype("str").to_numpy(),
            )
    st, enr = tables.get("students"), tables.get("enrollments")
    if _has(st, "student_id") and _has(enr, "student_id") and len(enr):
        rows = np.flatnonzero(
            st["student_id"].notna().to_numpy() & ~ids.isin("students", "student_id", "enrollments")
        )
        if len(rows):
            out.add(
                "warning",
                "students.csv",
                "not enrolled in any section (not in enrollments.csv); the student gets no access measures",
                column="student_id",
                line=line_of(lines["students"], rows),
                value=st["student_id"].iloc[rows],
            )
    if _has(enr, "student_id", "classroom_id") and _has(cls, "classroom_id") and len(enr) and len(cls):
        at = ids.first_rows("enrollments", "classroom_id", "classrooms")
        known = at >= 0
        if _has(cls, "grade"):
            g = np.where(known, cls["grade"].to_numpy(dtype=float)[np.maximum(at, 0)], np.nan)
            per = (
                pd.DataFrame({"s": enr["student_id"], "g": g})
                .groupby("s")["g"]
                .transform("nunique")
                .to_numpy()
            )
            rows = np.flatnonzero(per > 1)
            if len(rows):
                out.add(
                    "warning",
                    "enrollments.csv",
                    "student is enrolled in sections of different grades (this section's grade shown)",
                    column="classroom_id",
                    line=line_of(lines["enrollments"], rows),
                    value=enr["classroom_id"].iloc[rows].astype("str")
                    + " (grade "
                    + pd.Series(g[rows]).map(format_number).astype("str").to_numpy()
                    + ")",
                )
        if _has(cls, "school_id") and _has(st, "student_id", "school_id"):
            si = ids.first_rows("enrollments", "student_id", "students")
            # each row's two schools, taken by position (null where unknown; no Python object per row)
            sec_school = as_chunked_array(cls["school_id"]).take(pya.array(at, mask=~known))
            stu_school = as_chunked_array(st["school_id"]).take(pya.array(si, mask=si < 0))
            differ = pyc.fill_null(pyc.not_equal(sec_school, stu_school), False)
            rows = np.flatnonzero(differ.to_numpy(zero_copy_only=False))
            if len(rows):
                sec_school = pd.Series(sec_school.take(pya.array(rows)).to_pandas(), dtype="str")
                stu_school = pd.Series(stu_school.take(pya.array(rows)).to_pandas(), dtype="str")
                rows_at = pd.RangeIndex(len(rows))
                out.add(
                    "warning",
                    "enrollments.csv",
                    "section belongs to another school than the student's (students.csv school_id)",
                    column="classroom_id",
                    line=line_of(lines["enrollments"], rows),
                    value=enr["classroom_id"].iloc[rows].astype("str").set_axis(rows_at)
                    + " (school "
                    + sec_school
                    + ", student's "
                    + stu_school
                    + ")",
                )
    lc = tables.get("level_counts")
    if _has(lc, "group") and len(lc):
        found = {g: _goal_group_problem(g, None) for g in lc["group"].dropna().unique()}
        for g, prob in found.items():
            if prob is not None:
                rows = np.flatnonzero(lc["group"].eq(g).to_numpy())
                out.add(
                    prob[0],
                    "level_counts.csv",
                    prob[1],
                    column="group",
                    line=line_of(lines["level_counts"], rows),
                    value=g,
                )
    goals = tables.get("goals")
    if _has(goals, "group") and len(goals):
        found = {g: _goal_group_problem(g, st) for g in goals["group"].dropna().unique()}
        for severity in ("error", "warning"):
            for g, prob in found.items():
                if prob and prob[0] == severity:
                    rows = np.flatnonzero(goals["group"].eq(g).to_numpy())
                    out.add(
                        severity,
                        "goals.csv",
                        prob[1],
                        column="group",
                        line=line_of(lines["goals"], rows),
                        value=g,
                    )
    if _has(goals, "baseline_year", "target_year") and len(goals):
        rows = np.flatnonzero((goals["target_year"] < goals["baseline_year"]).to_numpy())
        if len(rows):
            out.add(
                "error",
                "goals.csv",
                "target year is before the baseline year",
                column="target_year",
                line=line_of(lines["goals"], rows),
                value=_int_text(goals["target_year"].iloc[rows])
                + " < "
                + _int_text(goals["baseline_year"].iloc[rows]),
            )


def check_across_tables(
    tables: dict, lines: dict, bad_type: dict, out: ProblemCollector, *, analysis_year: int | None
) -> None:
    """Run the rules across tables, then the plausibility rules, on the parsed tables; problems go to ``out``.

    ``tables``, ``lines`` and ``bad_type`` are by table name what
    :func:`~opportunity_research.intake.validation_read.check_table` returned (frame, line numbers or None,
    bad-number masks by column); ``analysis_year`` as in
    :func:`~opportunity_research.intake.validation.validate_district`.

    Examples
    --------
    >>> from opportunity_research.intake.validation_report import ProblemCollector
    >>> schools = pd.DataFrame({"school_id": ["S1"]}, dtype="str")
    >>> students = pd.DataFrame({"student_id": ["a", "b"], "school_id": ["S1", "S9"]}, dtype="str")
    >>> out = ProblemCollector()
    >>> tables = {"schools": schools, "students": students}
    >>> check_across_tables(tables, {"schools": None, "students": None}, {}, out, analysis_year=None)
    >>> out.frame(["students.csv"])[["line", "column", "value", "rule"]].values.tolist()
    [[3, 'school_id', 'S9', 'must exist in schools.school_id']]
    """
    ids = _Ids(tables)
    _cross_table(tables, lines, bad_type, out, ids)
    _plausibility(tables, lines, out, ids, analysis_year=analysis_year)
