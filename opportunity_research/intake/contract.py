"""The district data contract: which tables a district export holds and what each column means.

This module is the single source of truth for the contract. Validation
(:mod:`opportunity_research.intake.validation`), processing, the synthetic generator and the
documentation page ``docs/data_contract.md`` (rendered by :func:`contract_markdown`) are all
built from :data:`TABLES`, so they cannot drift apart.

A district export is one folder, ``data/raw/<district_id>/``, holding one UTF-8 CSV file per
table, named ``<table>.csv``. Required tables must be present; optional tables may be absent,
and the analyses that need them then say so in the report.

Examples
--------
>>> from opportunity_research.intake.contract import TABLES, required_tables
>>> "students" in required_tables()
True
>>> TABLES["assignments"].columns["content"].min, TABLES["assignments"].columns["content"].max
(0, 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "ALL_OTHERS",
    "CUT_POINTS",
    "RACE_ETHNICITY",
    "RESOURCES",
    "SCORING_RULES",
    "SUBGROUP_VARIABLES",
    "TABLES",
    "Column",
    "Reference",
    "Table",
    "contract_markdown",
    "optional_tables",
    "required_tables",
]

#: The seven federal race/ethnicity categories (codes used in ``students.race_ethnicity``).
RACE_ETHNICITY: dict[str, str] = {
    "hispanic_latino": "Hispanic or Latino (of any race)",
    "american_indian_alaska_native": "American Indian or Alaska Native",
    "asian": "Asian",
    "black": "Black or African American",
    "native_hawaiian_pacific_islander": "Native Hawaiian or Other Pacific Islander",
    "white": "White",
    "two_or_more": "Two or more races",
}

#: The reference of a gap that compares a group with every student outside it (the ``reference`` column of
#: gap tables; the alternative is a named reference level).
ALL_OTHERS = "all other students"

#: Student subgroup variables used by the gap analyses, with a readable label.
SUBGROUP_VARIABLES: dict[str, str] = {
    "race_ethnicity": "Race/ethnicity",
    "low_income": "Low income",
    "english_learner": "English learner",
    "disability": "Students with disabilities (IEP)",
    "started_behind": "Started the year behind",
}

SUBJECTS_TESTED = ("ela", "math")
SUBJECTS = ("ela", "math", "science", "social_studies")
FLAG = (0, 1)


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    ``kind`` is one of ``"id"`` (text identifier), ``"text"``, ``"int"``, ``"float"``,
    ``"flag"`` (0/1) or ``"category"`` (text from ``allowed``). ``required`` columns must be
    present in the file; ``nullable`` columns may have empty cells.

    Examples
    --------
    >>> c = TABLES["students"].columns["grade"]
    >>> c.kind, c.min, c.max, c.required, c.nullable
    ('int', 3, 12, True, False)
    """

    name: str
    kind: str
    description: str
    required: bool = True
    nullable: bool = False
    allowed: tuple | None = None
    min: float | None = None
    max: float | None = None
    pseudonymize: bool = False


@dataclass(frozen=True)
class Reference:
    """A foreign key: every non-empty ``columns`` value must exist in ``table.target_columns``.

    Examples
    --------
    >>> TABLES["enrollments"].references[1]
    Reference(columns=('classroom_id',), table='classrooms', target_columns=('classroom_id',))
    """

    columns: tuple[str, ...]
    table: str
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """One contract table (one CSV file).

    Examples
    --------
    >>> t = TABLES["assessments"]
    >>> t.filename, t.key, t.required
    ('assessments.csv', ('student_id', 'subject', 'school_year', 'window'), True)
    """

    name: str
    description: str
    columns: dict[str, Column]
    key: tuple[str, ...]
    required: bool = True
    references: tuple[Reference, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


def _table(name, description, columns, key, *, required=True, references=(), notes=()):
    return Table(
        name=name,
        description=description,
        columns={c.name: c for c in columns},
        key=tuple(key),
        required=required,
        references=tuple(Reference(tuple(c), t, tuple(tc)) for c, t, tc in references),
        notes=tuple(notes),
    )


def _items(names, lo, hi, what, *, required=True, nullable=True):
    return [
        Column(n, "int", f"{what}: {q}", required=required, nullable=nullable, min=lo, max=hi, allowed=None)
        for n, q in names
    ]


_STUDENT_REF = (("student_id",), "students", ("student_id",))
_CLASSROOM_REF = (("classroom_id",), "classrooms", ("classroom_id",))
_YEAR = Column(
    "school_year",
    "int",
    "School year, named by the calendar year it starts in (2016 = 2016-17).",
    min=1990,
    max=2100,
)

ENGAGEMENT_ITEMS = {
    "eng_interest": "What we were learning was interesting.",
    "eng_like": "I liked what we did in class.",
    "eng_losttrack": "I was so into what we were learning I lost track of time.",
    "eng_moreabout": "I thought more about what we were learning than anything else.",
}
EXPECTATION_ITEMS_CURRENT = {
    "exp_fairtomaster": "It's fair to expect students in this class to master these standards by the end of the year.",
    "exp_oneyearenough": "One year is enough time for students in my class to master the standards.",
    "exp_allstudents": "All students in my class can master the grade-level standards by the end of the year.",
    "exp_appropriate": "The standards are appropriate for the students in this class.",
}
EXPECTATION_ITEMS_OLD = {
    "exp_allstudents": "All students in my class can master the grade-level standards by the end of the year.",
    "exp_toochallenging": "The standards are too challenging for students in my class. (reverse-coded)",
    "exp_oneyear": "One year is enough time for students in my class to master the standards.",
    "exp_different": "Students in my class need something different than what the standards require. (reverse-coded)",
    "exp_overburden": "The standards overburden students in my class. (reverse-coded)",
    "exp_began": "Students in my class began the year too far behind to master the standards. (reverse-coded)",
}
#: Items of the old (6-item) form that are reverse-coded as ``5 - x`` before summing.
EXPECTATION_REVERSED = ("exp_toochallenging", "exp_different", "exp_overburden", "exp_began")

CLIMATE_ITEMS = {
    "belonging": {
        "belong_1": "My teachers make me feel like I belong.",
        "belong_2": "I feel supported by my school.",
        "belong_3": "People at my school care about me.",
        "belong_4": "When I feel like giving up, my teachers ask me to keep trying.",
    },
    "consistency": {
        "consist_1": "My teachers expect that I will succeed, even on challenging assignments.",
        "consist_2": "My teachers take time to make sure I understand what we are learning in class.",
        "consist_3": "I have to really think about my math assignments, not just use problem-solving tricks.",
        "consist_4": "My teachers expect me to be able to explain my thinking in writing.",
    },
    "coherence": {
        "cohere_1": "I know what I need to do to be successful in my classes.",
        "cohere_2": "My teachers show us how the work we are doing connects to my real life.",
        "cohere_3": "The extra support I get in small groups helps me to be ready for the lessons my teacher "
        "teaches to the whole class.",
    },
}
#: Agreement scale of the climate survey: 1 = strongly disagree ... 5 = strongly agree.
CLIMATE_SCALE = (1, 5)

#: The four classroom resources of *The Opportunity Myth*, in the order every table reports them.
RESOURCES = ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")

#: Cut points of the four resources: name -> (TNTP's default, lowest, highest possible score). Every one is a
#: parameter: ``analyze_district(..., cuts={name: value})`` and the district notebook's ``cuts``.
CUT_POINTS: dict[str, tuple[float, float, float]] = {
    "grade_appropriate": (4, 0, 6),
    "strong_instruction": (2.0, 0, 3),
    "engaged": (8, 0, 12),
    "high_expectations_current": (12, 0, 20),
    "high_expectations_old": (18, 0, 30),
}

#: How each resource is scored, for the contract page: (resource, table, rule, cut keys, what is dropped and why).
SCORING_RULES = (
    (
        "Grade-appropriate assignment",
        "assignments",
        "score = content + practice + relevance (each 0-2, so 0-6); grade-appropriate when score >= the cut",
        ("grade_appropriate",),
        (
            "an assignment with any of the three ratings empty gets no score and is left out of the shares (it is not "
            "counted as 'not grade-appropriate'): a blank rating is missing evidence, not a low rating"
        ),
    ),
    (
        "Strong instruction",
        "observations",
        (
            "Core Action 1 = ca1a + ca1b + ca1c (yes = 1, so 0-3); ca2, ca3 and col (1-4) rescaled to 0-3 as x - 1; "
            "composite = (col + CA1 + CA2 + CA3) / 4 on 0-3; strong when composite >= the cut"
        ),
        ("strong_instruction",),
        "an observation with any of the six ratings empty is left out (the composite needs all four parts)",
    ),
    (
        "Deep engagement",
        "engagement_surveys",
        "score = the four items (0-3 each, so 0-12) summed; an engaged moment when score >= the cut",
        ("engaged",),
        "a response with any item empty is left out",
    ),
    (
        "High expectations",
        "teacher_surveys",
        (
            "form 'current': the four items (0-5) summed, 0-20; form 'old': the six items summed after reverse-coding "
            "exp_toochallenging, exp_different, exp_overburden and exp_began as 5 - x, 0-30; high when the sum >= the "
            "form's cut"
        ),
        ("high_expectations_current", "high_expectations_old"),
        "a response with an item of its form empty is an error at validation, so none is dropped silently",
    ),
)

#: Measures a goals file may name (see :mod:`opportunity_research.study.scorecard`).
GOAL_MEASURES = (
    "grade_appropriate_share",
    "strong_instruction_share",
    "engaged_share",
    "high_expectations_share",
    "belonging_favorable",
    "consistency_favorable",
    "coherence_favorable",
    "catch_up_rate",
    "growth_grade_levels",
    "chronic_absence_rate",
    "advanced_course_rate",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _table(
            "schools",
            "One row per school.",
            [
                Column("school_id", "id", "School identifier, unique in the district."),
                Column("school_name", "text", "School name (shown in reports)."),
                Column("school_level", "category", "School level.", allowed=("elementary", "middle", "high")),
            ],
            key=["school_id"],
        ),
        _table(
            "students",
            "One row per student enrolled in the analysis year.",
            [
                Column(
                    "student_id", "id", "Student identifier (pseudonymized on processing).", pseudonymize=True
                ),
                Column("school_id", "id", "The student's school."),
                Column("grade", "int", "Grade level in the analysis year.", min=3, max=12),
                Column(
                    "race_ethnicity",
                    "category",
                    "Federal race/ethnicity category (seven categories).",
                    allowed=tuple(RACE_ETHNICITY),
                ),
                Column(
                    "low_income",
                    "flag",
                    "1 = low income (e.g. eligible for free or reduced-price meals).",
                    allowed=FLAG,
                ),
                Column("english_learner", "flag", "1 = English learner.", allowed=FLAG),
                Column("disability", "flag", "1 = student with a disability (IEP).", allowed=FLAG),
                Column(
                    "gender",
                    "category",
                    "Gender as recorded by the district.",
                    allowed=("female", "male", "nonbinary"),
                ),
            ],
            key=["student_id"],
            references=[(("school_id",), "schools", ("school_id",))],
        ),
        _table(
            "classrooms",
            "One row per class section (a teacher teaching one subject to one group of students).",
            [
                Column("classroom_id", "id", "Section identifier, unique in the district."),
                Column("school_id", "id", "School of the section."),
                Column(
                    "teacher_id", "id", "Teacher identifier (pseudonymized on processing).", pseudonymize=True
                ),
                Column("subject", "category", "Subject taught.", allowed=SUBJECTS),
                Column("grade", "int", "Grade level of the section.", min=3, max=12),
                _YEAR,
            ],
            key=["classroom_id"],
            references=[(("school_id",), "schools", ("school_id",))],
        ),
        _table(
            "enrollments",
            "Which students are in which sections (one row per student and section).",
            [
                Column("student_id", "id", "Student.", pseudonymize=True),
                Column("classroom_id", "id", "Section."),
            ],
            key=["student_id", "classroom_id"],
            references=[_STUDENT_REF, _CLASSROOM_REF],
        ),
        _table(
            "assessments",
            "Standardized test results: several school years, fall and/or spring windows, ELA and math.",
            [
                Column("student_id", "id", "Student.", pseudonymize=True),
                Column("subject", "category", "Subject tested.", allowed=SUBJECTS_TESTED),
                _YEAR,
                Column("window", "category", "Testing window.", allowed=("fall", "spring")),
                Column("grade", "int", "Grade of the student when tested.", min=3, max=12),
                Column(
                    "scale_score",
                    "float",
                    "Scale score on the district's (vertical) scale (not negative).",
                    min=0,
                ),
                Column(
                    "grade_level_cut",
                    "float",
                    "Lowest scale score that counts as on grade level for this grade, subject and window. "
                    "A student is at grade level when scale_score >= grade_level_cut.",
                    min=0,
                ),
                Column(
                    "performance_level",
                    "int",
                    "Performance level, 1 (lowest) to 4; 3 and 4 are on grade level.",
                    min=1,
                    max=4,
                ),
                Column(
                    "grade_equivalent",
                    "float",
                    "Optional grade-equivalent score (SEDA-style: 5.0 = typical for grade 5); enables growth "
                    "in grade levels per year.",
                    required=False,
                    nullable=True,
                    min=-2,
                    max=16,
                ),
            ],
            key=["student_id", "subject", "school_year", "window"],
            references=[_STUDENT_REF],
        ),
        _table(
            "assignments",
            "Collected assignments, each rated on TNTP's three 0-2 dimensions (0 = no opportunity, "
            "1 = minimal, 2 = sufficient).",
            [
                Column("assignment_id", "id", "Assignment identifier."),
                Column("classroom_id", "id", "Section that gave the assignment."),
                *_items(
                    [
                        ("content", "grade-level content"),
                        ("practice", "grade-level practice"),
                        ("relevance", "relevance"),
                    ],
                    0,
                    2,
                    "Rating 0-2",
                ),
            ],
            key=["assignment_id"],
            references=[_CLASSROOM_REF],
        ),
        _table(
            "work_samples",
            "Student work on the collected assignments.",
            [
                Column("work_sample_id", "id", "Work sample identifier."),
                Column("assignment_id", "id", "Assignment the work answers."),
                Column("student_id", "id", "Student who did the work.", pseudonymize=True),
                Column(
                    "met_demands", "flag", "1 = the work met the demands of the assignment.", allowed=FLAG
                ),
                Column(
                    "met_grade_level",
                    "flag",
                    "1 = the work showed mastery of grade-level standards.",
                    allowed=FLAG,
                ),
            ],
            key=["work_sample_id"],
            references=[(("assignment_id",), "assignments", ("assignment_id",)), _STUDENT_REF],
        ),
        _table(
            "observations",
            "Classroom observations rated with the Instructional Practice Guide (IPG).",
            [
                Column("observation_id", "id", "Observation identifier."),
                Column("classroom_id", "id", "Section observed."),
                *_items(
                    [("ca1a", "Core Action 1a"), ("ca1b", "Core Action 1b"), ("ca1c", "Core Action 1c")],
                    0,
                    1,
                    "Yes (1) / no (0)",
                ),
                *_items(
                    [
                        ("ca2", "Core Action 2 overall"),
                        ("ca3", "Core Action 3 overall"),
                        ("col", "Culture of Learning"),
                    ],
                    1,
                    4,
                    "Rating 1-4",
                ),
            ],
            key=["observation_id"],
            references=[_CLASSROOM_REF],
        ),
        _table(
            "engagement_surveys",
            "Real-time student surveys, prompted at a random moment in class (grades 6-12 in the study). "
            "Items 0 = not true ... 3 = very true.",
            [
                Column("response_id", "id", "Response identifier."),
                Column("student_id", "id", "Student answering.", pseudonymize=True),
                Column("classroom_id", "id", "Section the moment was in."),
                *_items(list(ENGAGEMENT_ITEMS.items()), 0, 3, "Item 0-3"),
            ],
            key=["response_id"],
            references=[_STUDENT_REF, _CLASSROOM_REF],
        ),
        _table(
            "teacher_surveys",
            "Teacher expectation surveys (0 = strongly disagree ... 5 = strongly agree). Form 'current' uses "
            "the four exp_fairtomaster / exp_oneyearenough / exp_allstudents / exp_appropriate items; form "
            "'old' uses the six items of the older form; the items of the other form may be left empty.",
            [
                Column("response_id", "id", "Response identifier."),
                Column("teacher_id", "id", "Teacher answering.", pseudonymize=True),
                Column("classroom_id", "id", "Section the answers are about.", nullable=True),
                Column("form", "category", "Survey form.", allowed=("current", "old")),
                *_items(
                    list({**EXPECTATION_ITEMS_CURRENT, **EXPECTATION_ITEMS_OLD}.items()),
                    0,
                    5,
                    "Item 0-5",
                    required=False,
                ),
            ],
            key=["response_id"],
            references=[_CLASSROOM_REF],
            notes=(
                (
                    "Every item of the row's form must be answered; the items are optional columns only so that a "
                    "district using one form need not carry the other's columns."
                ),
            ),
        ),
        _table(
            "climate_surveys",
            "Student climate survey with the Opportunity Makers belonging, consistency and coherence items "
            "(1 = strongly disagree ... 5 = strongly agree). Optional.",
            [
                Column("response_id", "id", "Response identifier."),
                Column("student_id", "id", "Student answering.", pseudonymize=True),
                _YEAR,
                *[
                    c
                    for scale in CLIMATE_ITEMS.values()
                    for c in _items(list(scale.items()), *CLIMATE_SCALE, "Item 1-5")
                ],
            ],
            key=["response_id"],
            required=False,
            references=[_STUDENT_REF],
        ),
        _table(
            "attendance",
            "Days enrolled and present per student and year, for chronic absence. Optional.",
            [
                Column("student_id", "id", "Student.", pseudonymize=True),
                _YEAR,
                Column("days_enrolled", "int", "Days enrolled.", min=1, max=366),
                Column("days_present", "int", "Days present (at most days_enrolled).", min=0, max=366),
            ],
            key=["student_id", "school_year"],
            required=False,
            references=[_STUDENT_REF],
        ),
        _table(
            "advanced_courses",
            "Enrollment in advanced coursework (one row per student, year and course type). Optional.",
            [
                Column("student_id", "id", "Student.", pseudonymize=True),
                _YEAR,
                Column(
                    "course_type",
                    "category",
                    "Kind of advanced coursework.",
                    allowed=("honors", "ap", "ib", "gifted", "dual_enrollment", "accelerated"),
                ),
            ],
            key=["student_id", "school_year", "course_type"],
            required=False,
            references=[_STUDENT_REF],
        ),
        _table(
            "programs",
            "Participation in extracurricular and support programs (one row per student, year and program). "
            "Optional.",
            [
                Column("student_id", "id", "Student.", pseudonymize=True),
                _YEAR,
                Column(
                    "program",
                    "category",
                    "Program.",
                    allowed=(
                        "tutoring",
                        "after_school",
                        "english_learner_services",
                        "extracurricular",
                        "mentoring",
                        "summer_learning",
                    ),
                ),
            ],
            key=["student_id", "school_year", "program"],
            required=False,
            references=[_STUDENT_REF],
        ),
        _table(
            "level_counts",
            "Counts of students by performance level, for each school, student group, subject and school year "
            "(as state report files publish them). Optional. A district that has no student-level data may bring "
            "only `schools.csv` and this table: its report then shows the gaps from performance levels (V) and the "
            "schools' and groups' means estimated from the counts (HETOP). `group` is 'all' or "
            "'<variable>=<level>' as in goals; `performance_level` 1 is the lowest level.",
            [
                Column("school_id", "id", "The school."),
                Column("subject", "category", "Tested subject.", allowed=SUBJECTS_TESTED),
                _YEAR,
                Column("group", "text", "Student group ('all' for every student of the school)."),
                Column("performance_level", "int", "Performance level, 1 (lowest) upwards.", min=1, max=10),
                Column("n_students", "int", "Number of students of the group at this level.", min=0),
            ],
            key=["school_id", "subject", "school_year", "group", "performance_level"],
            required=False,
            references=[(("school_id",), "schools", ("school_id",))],
        ),
        _table(
            "goals",
            "The district's Opportunity Scorecard goals. Optional. `group` is 'all' or '<variable>=<level>' "
            "(e.g. 'low_income=1', 'race_ethnicity=black'); `target` is a share (0-1) for shares and rates, or "
            "grade levels per year for growth.",
            [
                Column("goal_id", "id", "Goal identifier."),
                Column("measure", "category", "What the goal tracks.", allowed=GOAL_MEASURES),
                Column("group", "text", "Student group the goal is about ('all' for everyone)."),
                Column(
                    "baseline_year",
                    "int",
                    "School year the goal starts from.",
                    nullable=True,
                    required=False,
                    min=1990,
                    max=2100,
                ),
                Column("target", "float", "Target value.", min=0, max=100),
                Column(
                    "target_year", "int", "School year by which the target should be met.", min=1990, max=2100
                ),
                Column(
                    "description",
                    "text",
                    "Plain-language statement of the goal.",
                    required=False,
                    nullable=True,
                ),
            ],
            key=["goal_id"],
            required=False,
        ),
    ]
}


def required_tables() -> list[str]:
    """Names of the tables every district export must contain.

    Examples
    --------
    >>> required_tables()[:3]
    ['schools', 'students', 'classrooms']
    """
    return [n for n, t in TABLES.items() if t.required]


def optional_tables() -> list[str]:
    """Names of the tables a district export may leave out.

    Examples
    --------
    >>> optional_tables()
    ['climate_surveys', 'attendance', 'advanced_courses', 'programs', 'level_counts', 'goals']
    """
    return [n for n, t in TABLES.items() if not t.required]


def _rule_text(c: Column) -> str:
    parts = []
    if c.allowed is not None:
        parts.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
    if c.min is not None or c.max is not None:
        parts.append(f"{c.min if c.min is not None else '-inf'} to {c.max if c.max is not None else 'inf'}")
    if c.nullable:
        parts.append("may be empty")
    if not c.required:
        parts.append("optional column")
    return "; ".join(parts)


def contract_markdown() -> str:
    """Render the contract as the Markdown page ``docs/data_contract.md``.

    Examples
    --------
    >>> page = contract_markdown()
    >>> page.splitlines()[0], "## How each resource is scored" in page
    ('# The district data contract', True)
    """
    kinds = {
        "id": "identifier (text)",
        "text": "text",
        "int": "whole number",
        "float": "number",
        "flag": "0/1",
        "category": "code",
    }
    out = [
        "# The district data contract",
        "",
        "<!-- Generated from opportunity_research/intake/contract.py by `make docs`; do not edit by hand. -->",
        "",
        "A district export is one folder `data/raw/<district_id>/` with one UTF-8 CSV file per table, named",
        "`<table>.csv`, with a header row. Empty cells are missing values. Flags are 0/1. Codes are lower case.",
        "Check an export with `opportunity-research validate data/raw/<district_id>`: it lists every problem",
        "with its file, line, column, value and rule, and writes nothing.",
        "",
        "| table | required | what it holds | key |",
        "|---|---|---|---|",
    ]
    for t in TABLES.values():
        out.append(
            f"| [`{t.filename}`](#{t.name}) | {'yes' if t.required else 'optional'} | "
            f"{re.split(r' [(]|[.] ', t.description)[0].rstrip('.')} | {', '.join(t.key)} |"
        )
    out += [
        "",
        "Race/ethnicity codes: " + "; ".join(f"`{k}` = {v}" for k, v in RACE_ETHNICITY.items()) + ".",
        "",
    ]
    for t in TABLES.values():
        out += [
            f"## {t.name}",
            "",
            f"`{t.filename}` ({'required' if t.required else 'optional'}). {t.description}",
            "",
            f"Key (unique): {', '.join(t.key)}.",
            "",
        ]
        if t.references:
            refs = "; ".join(
                f"{', '.join(r.columns)} -> `{r.table}.{', '.join(r.target_columns)}`" for r in t.references
            )
            out += [f"References (must exist): {refs}.", ""]
        out += ["| column | type | rule | meaning |", "|---|---|---|---|"]
        for c in t.columns.values():
            out.append(f"| `{c.name}` | {kinds[c.kind]} | {_rule_text(c)} | {c.description} |")
        for n in t.notes:
            out += ["", n]
        out.append("")
    out += [
        "## Cross-table rules",
        "",
        "Errors stop processing; warnings are printed and processing goes on.",
        "",
        "- Every reference above must resolve (errors).",
        "- `attendance.days_present` must not exceed `days_enrolled` (error).",
        "- `teacher_surveys`: every item of the row's form must be answered (error).",
        "- `assessments`: a fall grade above the same student's spring grade in the same subject and year (error).",
        (
            "- Any `school_year` that has not started yet (after the current school year; a year starts on July 1) "
            "(error)."
        ),
        (
            "- `goals.group` must be `all` or `<variable>=<level>` with a student group variable "
            "(race_ethnicity, low_income, english_learner, disability, started_behind) and one of its levels (error); "
            "a group no student belongs to is flagged (warning). `target_year` before `baseline_year` (error)."
        ),
        "- `work_samples.met_grade_level` = 1 with `met_demands` = 0 is flagged (warning).",
        "- A work sample by a student not enrolled in the assignment's section is flagged (warning).",
        "- A classroom with no enrolled students, or a student with no tested subject, is flagged (warning).",
        (
            "- A student with no enrollment, a student enrolled in sections of different grades, and a student in a "
            "section of another school than theirs are flagged (warnings): their access measures may be wrong."
        ),
        "- A section outside the analysis year, and an assessment after it, are flagged (warnings).",
        "",
        "## Files and folders",
        "",
        (
            "- The folder name is the district id: ASCII letters, digits, `_` and `-`, starting with a letter or "
            "digit, at most 64 characters (error otherwise, with a suggested name)."
        ),
        (
            "- A table that is a symbolic link pointing outside the district folder is refused without being read "
            "(error); a link inside the folder is read. A folder, named pipe or device where a table should be, and a "
            "binary file (a spreadsheet or archive saved under a `.csv` name), are errors that say so."
        ),
        (
            "- `validate --csv FILE` writes every problem; a cell that a spreadsheet would run as a formula (starting "
            "with `=`, `+`, `-`, `@`, a tab or a carriage return, and not a plain number) starts with `'`."
        ),
        (
            "- `process` writes into a temporary folder and renames it into place only when everything is written. "
            "When validation fails, no new table is written and the district's earlier tables are moved to "
            "`data/processed/.stale-<district_id>/` (kept, with a `STALE.txt` saying why), so nothing stale looks "
            "current: loading the district says the latest process failed."
        ),
        "",
        "## The analysis year",
        "",
        (
            "The analysis year is the school year the classroom evidence describes, named by the calendar year it "
            "starts in (2016 = 2016-17). By default it is the latest `classrooms.school_year`; set it with "
            "`opportunity-research process --analysis-year YEAR` (also accepted by `validate`). It is recorded in "
            "`data/processed/<district_id>/manifest.json` (`analysis_year`), where the analyses read it. The growth "
            "models use that year's fall and spring scores; 'started the year behind' uses its fall score (else the "
            "prior spring's); catch-up rates follow students from earlier years into later ones. Sections of other "
            "years still count in the district's shares (a warning says so); an analysis year no section is in is "
            "an error."
        ),
        "",
        "## How each resource is scored",
        "",
        (
            "TNTP's public scoring rules (the `tntpmetrics` common metrics). Every cut point is a parameter: "
            "`analyze_district(..., cuts={name: value})` in Python, or the district notebook's `cuts` parameter "
            '(e.g. `cuts = {"grade_appropriate": 5}`). Shares are pooled over the evidence rows and clustered by '
            "section; a student's access is the share of the evidence in their sections."
        ),
        "",
        "| resource | table | rule | cut point (default; range) | parameter | what is dropped, and why |",
        "|---|---|---|---|---|---|",
    ]
    for resource, table, rule, keys, dropped in SCORING_RULES:
        cuts = "; ".join(f"{CUT_POINTS[k][0]:g} ({CUT_POINTS[k][1]:g}-{CUT_POINTS[k][2]:g})" for k in keys)
        params = ", ".join(f'`cuts["{k}"]`' for k in keys)
        out.append(f"| {resource} | `{table}` | {rule} | {cuts} | {params} | {dropped} |")
    out += [
        "",
        (
            "Student work samples are not scored: `met_demands` and `met_grade_level` are shares of the work samples "
            "(the study's 71% vs 17%). Class time converts to hours with 180 hours per subject and year "
            "(`HOURS_PER_SUBJECT_YEAR`). Assessments: a student is on grade level when `scale_score >= "
            "grade_level_cut`; 'started the year behind' is below the cut on the fall test of the analysis year "
            "(else the prior spring); a student with neither has no value and is left out of that group's gaps."
        ),
        "",
        "## Bringing your own export: the crosswalk",
        "",
        (
            "An export does not have to be rewritten into the contract's shape. Put a `crosswalk.yaml` in the "
            "district folder that says which of your files is which table, which of your columns is which contract "
            "column, and how your codes translate. Validation and processing read your files through it, and every "
            "problem names your file and column with the contract's beside them, e.g. "
            "`Student Roster.csv (students.csv)`, line 8, `FED_RACE (race_ethnicity)`, value `9`."
        ),
        "",
        (
            "Start with a draft: `opportunity-research init data/raw/<district_id>` reads your files and writes "
            "`crosswalk.yaml` (or `crosswalk.draft.yaml` if one exists; your files are only read). It matches file and "
            "column names exactly, ignoring case and spacing, or by known synonyms (`FED_RACE`, `FRL`, `ELL`, `IEP`, "
            "`SECTION_ID`, ...), and it recognizes code tables: federal race/ethnicity codes 1-7 (in the federal "
            "reporting order: 1 Hispanic/Latino, 2 American Indian/Alaska Native, 3 Asian, 4 Black, 5 Native "
            "Hawaiian/Pacific Islander, 6 White, 7 Two or more; check it against your system's code book), letter "
            "and word race codes, Y/N and Yes/No flags, F/M/X, ELA/MATH, Fall/Spring, ES/MS/HS, `2016-17` years and "
            "performance levels as words (Below Basic < Basic < Proficient < Advanced, and other common scales). "
            "What it cannot decide is written as `CHOOSE` with the candidates in a comment; validation refuses a "
            "crosswalk that still holds one."
        ),
        "",
        "A worked example. The district exports `Student Roster.csv`:",
        "",
        "```",
        "STUDENT_NUMBER,SCHOOL_CODE,GRADE_LEVEL,FED_RACE,FRL,ELL,IEP,SEX",
        "1001,SCH1,4,1,N,Y,Y,F",
        "1002,SCH1,4,2,Y,N,N,M",
        "```",
        "",
        (
            "and `state_test_scores.csv` with `SUBJECT_AREA` = ELA/MATH, `SCHOOL_YEAR` = 2016-17, `TEST_WINDOW` = "
            "Fall/Spring and `PERF_LEVEL` = Below Basic ... Advanced. Its crosswalk (abridged):"
        ),
        "",
        "```yaml",
        "files:",
        '  students: "Student Roster.csv"',
        '  assessments: "state_test_scores.csv"',
        "columns:",
        "  students:",
        "    student_id: STUDENT_NUMBER",
        "    school_id: SCHOOL_CODE",
        "    grade: GRADE_LEVEL",
        "    race_ethnicity: FED_RACE",
        "    low_income: FRL",
        "    english_learner: ELL",
        "    disability: IEP",
        "    gender: SEX",
        "  assessments:",
        "    subject: SUBJECT_AREA",
        "    window: TEST_WINDOW",
        "    performance_level: PERF_LEVEL",
        "codes:",
        '  students.race_ethnicity: {"1": hispanic_latino, "2": american_indian_alaska_native, "3": asian,',
        '                            "4": black, "5": native_hawaiian_pacific_islander, "6": white,',
        '                            "7": two_or_more}',
        "  students.low_income: {Y: 1, N: 0}",
        "  students.gender: {F: female, M: male, X: nonbinary}",
        "  assessments.subject: {ELA: ela, MATH: math}",
        "  assessments.window: {Fall: fall, Spring: spring}",
        '  assessments.school_year: {"2015-16": 2015, "2016-17": 2016}',
        "  assessments.performance_level: {Below Basic: 1, Basic: 2, Proficient: 3, Advanced: 4}",
        "```",
        "",
        "The rules:",
        "",
        (
            "- Three sections only: `files`, `columns`, `codes`; anything else is an error with a suggestion. Tables "
            "and columns not listed keep their contract names."
        ),
        (
            "- `files`: one file per table, a file name in the district folder (not a path); two tables on one file "
            "collide (error)."
        ),
        (
            "- `columns`: contract column -> your column; two contract columns on one of your columns collide "
            "(error). A column of yours named like a contract column that is mapped elsewhere is ignored (warning)."
        ),
        (
            "- `codes`: `table.column` -> {your value: contract value}. Once a column has codes, every non-empty value "
            "in it must be listed: an unlisted value is an error (with the closest listed value as a suggestion), "
            'never passed through. Several values may map to one contract value; `""` reads a value as missing. '
            "A value listed twice, or mapped to a value the contract does not allow, is an error."
        ),
        "- Every value is read as text (so `Y`, `yes`, `01` and `2016-17` stay what they are).",
        "",
    ]
    return "\n".join(out)
