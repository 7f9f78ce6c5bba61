"""A small, hand-built district export that satisfies the data contract, for tests.

``make_valid_district(path)`` writes every contract table (required and optional) as CSV into
``path`` and returns it. The numbers are chosen by hand so the district is valid with no warning:
every classroom has students, every student has assessment results, every work sample is by a
student enrolled in the assignment's classroom and no sample meets grade level without meeting
the assignment's demands. Layout:

* 2 schools: ``SCH1`` (elementary, 20 students in grade 4), ``SCH2`` (middle, 20 students in grade 7).
* 40 students ``1001``-``1040``; 4 classrooms ``C1``-``C4`` (ELA and math per school), teachers
  ``T1``-``T4``; every student is in the ELA and the math classroom of their school (80 enrollments).
* Assessments: ELA and math, school years 2015 and 2016, fall and spring (320 rows).
* 3 assignments per classroom, 5 work samples per assignment, 2 observations per classroom,
  engagement surveys from the grade-7 students, teacher surveys (T1, T2 on the current form; T3, T4
  on the old form), climate surveys, attendance, advanced courses, programs and 2 goals.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from opportunity_research.intake.contract import RACE_ETHNICITY

N_STUDENTS = 40


def district_tables() -> dict[str, pd.DataFrame]:
    """The tables of the valid district, as DataFrames (column order as in the contract)."""
    i = np.arange(N_STUDENTS)
    school = np.where(i < 20, "SCH1", "SCH2")
    grade = np.where(i < 20, 4, 7)
    sid = (1001 + i).astype(str)
    schools = pd.DataFrame(
        {
            "school_id": ["SCH1", "SCH2"],
            "school_name": ["Oak Elementary", "Pine Middle"],
            "school_level": ["elementary", "middle"],
        }
    )
    races = list(RACE_ETHNICITY)
    students = pd.DataFrame(
        {
            "student_id": sid,
            "school_id": school,
            "grade": grade,
            "race_ethnicity": [races[k % len(races)] for k in i],
            "low_income": (i % 2).astype(int),
            "english_learner": (i % 5 == 0).astype(int),
            "disability": (i % 7 == 0).astype(int),
            "gender": np.where(i % 2 == 0, "female", "male"),
        }
    )
    students.loc[39, "gender"] = "nonbinary"
    classrooms = pd.DataFrame(
        {
            "classroom_id": ["C1", "C2", "C3", "C4"],
            "school_id": ["SCH1", "SCH1", "SCH2", "SCH2"],
            "teacher_id": ["T1", "T2", "T3", "T4"],
            "subject": ["ela", "math", "ela", "math"],
            "grade": [4, 4, 7, 7],
            "school_year": 2016,
        }
    )
    enrollments = pd.DataFrame(
        {
            "student_id": np.concatenate([sid, sid]),
            "classroom_id": np.concatenate([np.where(i < 20, "C1", "C3"), np.where(i < 20, "C2", "C4")]),
        }
    )
    rows = []
    for k in i:
        for subject in ("ela", "math"):
            for year in (2015, 2016):
                for w, window in enumerate(("fall", "spring")):
                    g = int(grade[k]) - (2016 - year)
                    score = 400 + 20 * g + 10 * w + (k % 9) * 3 - 12 + (5 if subject == "math" else 0)
                    cut = 400 + 20 * g + 10 * w
                    level = 3 if score >= cut else 2
                    if score >= cut + 10:
                        level = 4
                    rows.append(
                        (
                            sid[k],
                            subject,
                            year,
                            window,
                            g,
                            score + 0.5,
                            float(cut),
                            level,
                            round(g + 0.5 * w + (score - cut) / 20, 2),
                        )
                    )
    assessments = pd.DataFrame(
        rows,
        columns=[
            "student_id",
            "subject",
            "school_year",
            "window",
            "grade",
            "scale_score",
            "grade_level_cut",
            "performance_level",
            "grade_equivalent",
        ],
    )
    assessments.loc[3, "grade_equivalent"] = np.nan  # optional and nullable
    a = np.arange(12)
    assignments = pd.DataFrame(
        {
            "assignment_id": [f"A{k + 1:02d}" for k in a],
            "classroom_id": [f"C{k // 3 + 1}" for k in a],
            "content": a % 3,
            "practice": (a + 1) % 3,
            "relevance": (a // 2) % 3,
        }
    )
    ws = []
    for k in a:
        room = k // 3  # 0..3
        members = sid[(i < 20) if room < 2 else (i >= 20)]
        for j in range(5):
            demands = int((k + j) % 3 != 0)
            ws.append(
                (
                    f"W{len(ws) + 1:03d}",
                    f"A{k + 1:02d}",
                    members[(k + 2 * j) % 20],
                    demands,
                    int(demands and j % 2 == 0),
                )
            )
    work_samples = pd.DataFrame(
        ws, columns=["work_sample_id", "assignment_id", "student_id", "met_demands", "met_grade_level"]
    )
    o = np.arange(8)
    observations = pd.DataFrame(
        {
            "observation_id": [f"O{k + 1}" for k in o],
            "classroom_id": [f"C{k // 2 + 1}" for k in o],
            "ca1a": o % 2,
            "ca1b": (o // 2) % 2,
            "ca1c": 1,
            "ca2": o % 4 + 1,
            "ca3": (o + 2) % 4 + 1,
            "col": 3,
        }
    )
    m = sid[i >= 20]
    engagement_surveys = pd.DataFrame(
        {
            "response_id": [f"E{k + 1:02d}" for k in range(40)],
            "student_id": np.concatenate([m, m]),
            "classroom_id": ["C3"] * 20 + ["C4"] * 20,
            "eng_interest": np.arange(40) % 4,
            "eng_like": (np.arange(40) + 1) % 4,
            "eng_losttrack": (np.arange(40) // 4) % 4,
            "eng_moreabout": 2,
        }
    )
    teacher_surveys = pd.DataFrame(
        {
            "response_id": ["R1", "R2", "R3", "R4"],
            "teacher_id": ["T1", "T2", "T3", "T4"],
            "classroom_id": ["C1", "C2", "C3", None],
            "form": ["current", "current", "old", "old"],
            "exp_fairtomaster": [4, 2, None, None],
            "exp_oneyearenough": [3, 1, None, None],
            "exp_allstudents": [5, 2, 3, 1],
            "exp_appropriate": [4, 3, None, None],
            "exp_toochallenging": [None, None, 2, 4],
            "exp_oneyear": [None, None, 3, 1],
            "exp_different": [None, None, 1, 5],
            "exp_overburden": [None, None, 2, 4],
            "exp_began": [None, None, 0, 5],
        }
    ).astype(
        {
            c: "Int64"
            for c in [
                "exp_fairtomaster",
                "exp_oneyearenough",
                "exp_allstudents",
                "exp_appropriate",
                "exp_toochallenging",
                "exp_oneyear",
                "exp_different",
                "exp_overburden",
                "exp_began",
            ]
        }
    )
    c = np.arange(20)
    climate = {"response_id": [f"CL{k + 1:02d}" for k in c], "student_id": m, "school_year": 2016}
    for n, item in enumerate(
        [
            "belong_1",
            "belong_2",
            "belong_3",
            "belong_4",
            "consist_1",
            "consist_2",
            "consist_3",
            "consist_4",
            "cohere_1",
            "cohere_2",
            "cohere_3",
        ]
    ):
        climate[item] = (c + n) % 5 + 1
    climate_surveys = pd.DataFrame(climate)
    attendance = pd.DataFrame(
        {"student_id": sid, "school_year": 2016, "days_enrolled": 180, "days_present": 180 - (i % 13) * 3}
    )
    advanced_courses = pd.DataFrame(
        {
            "student_id": ["1021", "1022", "1023", "1001"],
            "school_year": 2016,
            "course_type": ["honors", "honors", "accelerated", "gifted"],
        }
    )
    programs = pd.DataFrame(
        {
            "student_id": ["1002", "1003", "1030", "1030"],
            "school_year": 2016,
            "program": ["tutoring", "after_school", "mentoring", "tutoring"],
        }
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["G1", "G2"],
            "measure": ["grade_appropriate_share", "chronic_absence_rate"],
            "group": ["all", "low_income=1"],
            "baseline_year": [2016, None],
            "target": [0.4, 0.08],
            "target_year": [2018, 2017],
            "description": ["Raise grade-appropriate assignments to 40%, by 2018-19.", None],
        }
    ).astype({"baseline_year": "Int64"})
    return {
        "schools": schools,
        "students": students,
        "classrooms": classrooms,
        "enrollments": enrollments,
        "assessments": assessments,
        "assignments": assignments,
        "work_samples": work_samples,
        "observations": observations,
        "engagement_surveys": engagement_surveys,
        "teacher_surveys": teacher_surveys,
        "climate_surveys": climate_surveys,
        "attendance": attendance,
        "advanced_courses": advanced_courses,
        "programs": programs,
        "goals": goals,
    }


@functools.cache
def _valid_csv_bytes() -> tuple[tuple[str, bytes], ...]:
    """The valid district's CSV files as bytes, written once per process (about 140 tests ask for a fresh copy of
    the same files: rendering the tables each time cost a CPU second every few tests)."""
    return tuple(
        (f"{name}.csv", df.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        for name, df in district_tables().items()
    )


def make_valid_district(path: str | Path) -> Path:
    """Write the valid district's CSV files (UTF-8, header row, empty cell = missing) into ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, data in _valid_csv_bytes():
        (path / name).write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# The same district as a student information system exports it: its own file names, column names and codes

#: Contract table -> the file name the "SIS" gives it.
SIS_FILES = {
    "schools": "school_directory.csv",
    "students": "Student Roster.csv",
    "classrooms": "master_schedule.csv",
    "enrollments": "student_schedules.csv",
    "assessments": "state_test_scores.csv",
    "assignments": "assignments.csv",
    "work_samples": "Work Samples.csv",
    "observations": "IPG_Observations.csv",
    "engagement_surveys": "engagement.csv",
    "teacher_surveys": "teacher_survey.csv",
    "climate_surveys": "climate_survey.csv",
    "attendance": "Attendance.csv",
    "advanced_courses": "advanced_coursework.csv",
    "programs": "program_participation.csv",
    "goals": "goals.csv",
}
#: Contract column -> the SIS's column name (in every table that has the column); others are upper-cased.
SIS_COLUMNS = {
    "student_id": "STUDENT_NUMBER",
    "school_id": "SCHOOL_CODE",
    "grade": "GRADE_LEVEL",
    "race_ethnicity": "FED_RACE",
    "low_income": "FRL",
    "english_learner": "ELL",
    "disability": "IEP",
    "gender": "SEX",
    "classroom_id": "SECTION_ID",
    "teacher_id": "STAFF_ID",
    "subject": "SUBJECT_AREA",
    "window": "TEST_WINDOW",
    "scale_score": "SCALE_SCORE",
    "grade_level_cut": "PROFICIENCY_CUT",
    "performance_level": "PERF_LEVEL",
    "grade_equivalent": "GE",
}
SIS_RACE = {k: str(i + 1) for i, k in enumerate(RACE_ETHNICITY)}  # federal reporting order, 1-7
SIS_LEVELS = {1: "Below Basic", 2: "Basic", 3: "Proficient", 4: "Advanced"}


def _sis_year(y) -> str:
    return f"{int(y)}-{(int(y) + 1) % 100:02d}"


def export_as_sis(contract_folder: str | Path, out: str | Path, *, crosswalk: bool = True) -> Path:
    """Rewrite a contract-shaped export as a student information system would export it.

    Files get :data:`SIS_FILES` names, columns :data:`SIS_COLUMNS` names (or upper case), and codes the
    SIS's own: federal race codes 1-7, Y/N flags, F/M/X, ELA/MATH, Fall/Spring, ES/MS/HS, "2016-17"
    school years, performance levels as words. With ``crosswalk``, the hand-written crosswalk.yaml that
    reads it back is written too. Returns ``out``.
    """
    from opportunity_research.intake.contract import TABLES

    src, out = Path(contract_folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, columns, codes = {}, {}, {}
    for name, table in TABLES.items():
        p = src / table.filename
        if not p.exists():
            continue
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        for col in df.columns:
            c = table.columns.get(col)
            if c is None:
                continue
            v = df[col]
            mapping = None
            if col == "race_ethnicity":
                mapping = SIS_RACE
            elif c.kind == "flag" and name == "students":
                mapping = {"1": "Y", "0": "N"}
            elif col == "gender":
                mapping = {"female": "F", "male": "M", "nonbinary": "X"}
            elif col == "subject":
                mapping = {
                    s: s.upper() if s in ("ela", "math") else s.replace("_", " ").title()
                    for s in table.columns["subject"].allowed
                }
            elif col == "window":
                mapping = {"fall": "Fall", "spring": "Spring"}
            elif col == "school_level":
                mapping = {"elementary": "ES", "middle": "MS", "high": "HS"}
            elif col == "school_year":
                mapping = {y: _sis_year(y) for y in v.unique() if y != ""}
            elif col == "performance_level":
                mapping = {str(k): w for k, w in SIS_LEVELS.items()}
                mapping.update({f"{k}.0": w for k, w in SIS_LEVELS.items()})
            if mapping is not None:
                df[col] = v.map(lambda x, m=mapping: m.get(x, x))
                used = sorted(set(df[col]) - {""})
                back = {d: c_ for c_, d in mapping.items() if d in used}
                codes[f"{name}.{col}"] = {
                    d: (str(int(float(c_))) if col == "performance_level" else c_) for d, c_ in back.items()
                }
        own = {col: SIS_COLUMNS.get(col, col.upper()) for col in df.columns if col in table.columns}
        columns[name] = own
        df = df.rename(columns=own)
        files[name] = SIS_FILES[name]
        df.to_csv(out / SIS_FILES[name], index=False, lineterminator="\r\n")
    if crosswalk:
        lines = ["files:"] + [f'  {t}: "{f}"' for t, f in files.items()] + ["columns:"]
        for t, m in columns.items():
            lines += [f"  {t}:"] + [f'    {c}: "{d}"' for c, d in m.items()]
        lines += ["codes:"]
        for k, m in codes.items():
            lines += [f"  {k}:"] + [f'    "{d}": "{c}"' for d, c in m.items()]
        (out / "crosswalk.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
