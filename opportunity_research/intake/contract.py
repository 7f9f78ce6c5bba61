"""The district data contract: which tables a district export holds and what each column means.

This module is the single source of truth for the contract. Validation
(:mod:`opportunity_research.intake.validation`), processing, the synthetic generator and the
documentation page ``docs/data_contract.md`` (rendered by
:func:`opportunity_research.intake.contract_page.contract_markdown`) are all
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

from dataclasses import dataclass, field

__all__ = [
    "ALL_OTHERS",
    "CUT_POINTS",
    "POOLED_RACE_ETHNICITY",
    "POOLED_RACE_ETHNICITY_LABEL",
    "RACE_ETHNICITY",
    "RESOURCES",
    "SCORING_RULES",
    "SUBGROUP_VARIABLES",
    "TABLES",
    "Column",
    "Reference",
    "Table",
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

#: The code of the group the smallest race/ethnicity groups of a district are reported as, when they are pooled
#: (:func:`opportunity_research.study.analysis.pool_small_groups`); never a code in the input files.
POOLED_RACE_ETHNICITY = "pooled_small_groups"
#: How a reader reads the pooled group.
POOLED_RACE_ETHNICITY_LABEL = "Students of smaller race/ethnicity groups (pooled)"

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
