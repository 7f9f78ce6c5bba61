"""Who gets less: the district-level gap analyses of *The Opportunity Myth*.

These functions turn a processed district into the tidy gap tables of the report, using the general
:func:`opportunity_research.stats.gaps.gap_table` (differences, ratios, Hedges' g, cluster-bootstrap intervals);
every table is complete, and the district report protects them all in one joint disclosure pass
(:mod:`opportunity_research.disclosure.joint`):

* :func:`resource_gaps` — each student group's access to each resource vs all other students (or a
  named reference group), per subject, clustered by section;
* :func:`classroom_composition` — sections grouped by majority students of colour and by majority
  low-income: time on grade-appropriate assignments and strong instruction, their ratio (the study's
  "2x" and "5x") and the share of sections that never received a grade-appropriate assignment;
* :func:`furthest_from_opportunity` — which groups are over-represented among the students with the
  least access (bottom fifth of a composite of the four resources);
* :func:`multiple_measures_gaps` — chronic absence, advanced coursework and program participation, risk-
  ratio style, where the district provides those tables.

Gap tables are per subject so that ``n`` always counts students.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..intake.contract import SUBGROUP_VARIABLES
from ..intake.dataset import District
from ..stats.gaps import gap_table
from .joins import merge_positions, unique_ids
from .measures import RESOURCE_LABELS, RESOURCES, analysis_year, classroom_access, student_access
from .panels import ids_in, per_known_id, student_year_codes

__all__ = [
    "RESOURCE_MEASURES",
    "classroom_composition",
    "furthest_from_opportunity",
    "multiple_measures_gaps",
    "opportunity_indicators",
    "resource_gaps",
    "student_groups",
]

VARIABLES = tuple(SUBGROUP_VARIABLES)


def resource_gaps(
    district: District,
    *,
    access: pd.DataFrame | None = None,
    resources=RESOURCES,
    variables=VARIABLES,
    reference: dict | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Gap table of access to each resource by student group, per subject.

    Parameters
    ----------
    district
        Processed district.
    access
        Optional precomputed :func:`~opportunity_research.study.measures.student_access` table.
    resources, variables
        Which resources and which student-group variables (default: all four; race/ethnicity, low income,
        English learner, disability, started behind).
    reference
        ``{variable: level}`` to compare with a named reference group (e.g. ``{"race_ethnicity": "white"}``);
        default: every level against all other students.
    n_boot, seed
        Bootstrap replicates and seed (see ``gap_table``).

    Returns
    -------
    DataFrame
        ``gap_table``'s columns plus ``measure`` (resource), ``label`` and ``subject``.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import load_district
    >>> t = resource_gaps(load_district("demo_pinebrook"), resources=["grade_appropriate"], variables=["low_income"],
    ...                   n_boot=20)
    >>> t[["subject", "level", "n", "estimate", "difference"]].round(2)
      subject  level    n  estimate  difference
    0     ela      0   74      0.15        0.03
    1     ela      1  226      0.12       -0.03
    2    math      0   74      0.15        0.01
    3    math      1  226      0.14       -0.01
    """
    acc = access if access is not None else student_access(district)
    frames = []
    for subject, part in _subject_parts(acc, [*resources, *variables]):
        # the subject's resources in one call: its group and cluster columns coded, and its cluster resamples
        # drawn, once for all of them (see gap_table)
        tables = gap_table(
            part,
            outcome=list(resources),
            group=list(variables),
            reference=reference,
            cluster=_CLUSTER,
            n_boot=n_boot,
            seed=seed,
            resamples={},
        )
        frames += [
            t.assign(measure=r, label=RESOURCE_LABELS[r], subject=subject) for r, t in zip(resources, tables)
        ]
    out = pd.concat(frames, ignore_index=True)
    lead = ["measure", "label", "subject"]
    return out[lead + [c for c in out.columns if c not in lead]]


#: The classrooms' codes in the frames of :func:`_subject_parts` (the clusters of the gap intervals).
_CLUSTER = "_classroom"


def _subject_parts(acc: pd.DataFrame, columns):
    """``acc.groupby("subject", sort=True)``'s parts, with only ``columns`` (those ``acc`` has) and the classrooms as
    number codes in ``_CLUSTER`` (missing where ``classroom_id`` is): the gap tables' clusters are the same, as
    the tables factorize the codes as they would the ids, and each part copies the few columns used, not every
    column of a million students' text.

    Examples
    --------
    >>> acc = pd.DataFrame({"subject": ["math", "ela", "math"], "classroom_id": ["c2", None, "c1"], "y": [1, 2, 3]})
    >>> [(s, p[_CLUSTER].tolist()) for s, p in _subject_parts(acc, ["y"])]
    [('ela', [nan]), ('math', [0.0, 1.0])]
    """
    codes = pd.factorize(acc["classroom_id"])[0].astype(float)
    codes[codes < 0] = np.nan
    keep = [c for c in dict.fromkeys(["subject", *columns]) if c in acc.columns and c != _CLUSTER]
    return acc[keep].assign(**{_CLUSTER: codes}).groupby("subject", sort=True)


def classroom_composition(
    district: District,
    *,
    classrooms: pd.DataFrame | None = None,
    resources=("grade_appropriate", "strong_instruction"),
) -> pd.DataFrame:
    """Compare sections serving mostly students of colour / low-income students with the others.

    Each row compares one kind of section (``level`` 1 = majority) with the other kind on one measure:
    the mean section-level share of a resource, or ``never_grade_appropriate`` (share of sections whose
    rated assignments included no grade-appropriate one). Rows are sections, so ``n`` counts sections
    (the disclosure pass protects them as classrooms). The study's "2x" is the ``ratio`` on the
    ``level`` 0 row (other sections / majority sections). Intervals are analytic (sections independent).

    Returns
    -------
    DataFrame
        ``gap_table``'s columns plus ``measure``, ``label`` and ``n_students`` (students in the sections).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> c = classroom_composition(d)
    >>> sorted(c["group"].unique())
    ['majority_low_income', 'majority_students_of_color']
    """
    cls = classrooms if classrooms is not None else classroom_access(district)
    cls = cls[cls["n_students"] > 0]
    measures = {
        **{r: RESOURCE_LABELS[r] for r in resources},
        "never_grade_appropriate": "Never received a grade-appropriate assignment",
    }
    frames = []
    for m, label in measures.items():
        t = gap_table(cls, outcome=m, group=["majority_students_of_color", "majority_low_income"], n_boot=0)
        students = {
            (g, lv): cls.loc[cls[g] == lv, "n_students"].sum()
            for g in ("majority_students_of_color", "majority_low_income")
            for lv in (0.0, 1.0)
        }
        t["n_students"] = [students.get((g, float(lv)), 0) for g, lv in zip(t["group"], t["level"])]
        frames.append(t.assign(measure=m, label=label))
    out = pd.concat(frames, ignore_index=True)
    lead = ["measure", "label"]
    return out[lead + [c for c in out.columns if c not in lead]]


def furthest_from_opportunity(
    district: District,
    *,
    access: pd.DataFrame | None = None,
    share: float = 0.2,
    variables=VARIABLES,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Which groups are over-represented among the students with the least access, per subject.

    A student's composite is the mean of their percentile ranks (within subject) on the four resources
    (resources with no evidence are skipped). Students in the lowest ``share`` of the composite are "furthest
    from opportunity". For each group the table gives the share of its students in that bottom group vs all
    other students; ``ratio`` > 1 means over-represented (a risk ratio).

    Returns
    -------
    DataFrame
        ``gap_table``'s columns (outcome ``furthest_from_opportunity``) plus ``subject``.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> t = furthest_from_opportunity(d)
    >>> sorted(t["subject"].unique()), bool(t["estimate"].between(0, 1).all())
    (['ela', 'math'], True)
    """
    acc = access if access is not None else student_access(district)
    frames = []
    for subject, part in _subject_parts(acc, [*RESOURCES, *variables]):
        ranks = part[list(RESOURCES)].rank(pct=True)
        composite = ranks.mean(axis=1, skipna=True)
        cut = composite.quantile(share)
        flagged = part.assign(
            furthest_from_opportunity=(composite <= cut).astype(float).where(composite.notna())
        )
        t = gap_table(
            flagged,
            outcome="furthest_from_opportunity",
            group=list(variables),
            cluster=_CLUSTER,
            n_boot=n_boot,
            seed=seed,
        )
        frames.append(t.assign(subject=subject))
    out = pd.concat(frames, ignore_index=True)
    return out[["subject"] + [c for c in out.columns if c != "subject"]]


def student_groups(district: District, *, access: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per student with the subgroup variables (``started_behind`` = behind in ELA or math).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> g = student_groups(d)
    >>> len(g) == len(tables["students"]), "student_id" in g.columns
    (True, True)
    """
    acc = access if access is not None else student_access(district)
    st = district.students[
        ["student_id", "school_id", "race_ethnicity", "low_income", "english_learner", "disability"]
    ]
    # each student's max over their subjects, grouped on roster positions (not the ids' text)
    return st.assign(
        started_behind=per_known_id(st["student_id"], acc["student_id"], acc["started_behind"], "max")
    )


def multiple_measures_gaps(
    district: District,
    *,
    access: pd.DataFrame | None = None,
    year: int | None = None,
    variables=VARIABLES,
    chronic_threshold: float = 0.9,
    groups: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Disproportionality on the district's multiple measures, where their tables exist.

    Measures (one row per student of the analysis year): ``chronic_absence`` (present on fewer than
    ``chronic_threshold`` of days enrolled), ``advanced_course`` (any advanced coursework) and
    ``program_<name>`` for each program. Intervals are analytic, not clustered: these are student
    records, not classroom-delivered resources. Missing tables are listed in ``.attrs["needs"]``. ``groups``:
    :func:`student_groups` of the district and ``access``, when already made.

    Returns
    -------
    DataFrame
        ``gap_table``'s columns plus ``measure``; empty (with ``attrs["needs"]``) if no table exists.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> t = multiple_measures_gaps(d)
    >>> sorted(t["measure"].unique())[:3]
    ['advanced_course', 'chronic_absence', 'program_after_school']
    """
    year = year if year is not None else analysis_year(district)
    base = groups if groups is not None else student_groups(district, access=access)
    outcomes, needs = {}, []
    if district.has("attendance"):
        att = district.attendance[district.attendance["school_year"] == year]
        outcomes["chronic_absence"] = per_known_id(
            base["student_id"],
            att["student_id"],
            att["days_present"] / att["days_enrolled"],
            "mean",
            then=lambda rate: (rate < chronic_threshold).astype(float),
        )
    else:
        needs.append("attendance.csv (days enrolled and present) for chronic absence")
    if district.has("advanced_courses"):
        adv = district.advanced_courses
        takers = adv.loc[adv["school_year"] == year, "student_id"]
        outcomes["advanced_course"] = ids_in(base["student_id"], takers).astype(float)
    else:
        needs.append("advanced_courses.csv for advanced-course enrollment")
    if district.has("programs"):
        prog = district.programs[district.programs["school_year"] == year]
        for name, part in prog.groupby("program"):
            outcomes[f"program_{name}"] = ids_in(base["student_id"], part["student_id"]).astype(float)
    else:
        needs.append("programs.csv for program participation")
    # every measure in one call: the group columns coded once for all of them
    tables = gap_table(base.assign(**outcomes), outcome=list(outcomes), group=list(variables), n_boot=0)
    frames = [t.assign(measure=m) for m, t in zip(outcomes, tables)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(out):
        out = out[["measure"] + [c for c in out.columns if c != "measure"]]
    out.attrs["needs"] = needs
    return out


#: Scorecard measure name of each resource.
RESOURCE_MEASURES = {r: f"{r}_share" for r in RESOURCES}


def opportunity_indicators(
    district: District,
    *,
    access: pd.DataFrame | None = None,
    variables=VARIABLES,
    chronic_threshold: float = 0.9,
    groups: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Scorecard indicators for the four resources and the multiple measures, per school, group and year.

    Resources: each student's access averaged over their ELA and math sections (one value per student),
    reported as the mean over students (``<resource>_share``), by school and student group, for the analysis
    year. Multiple measures: ``chronic_absence_rate`` (present on fewer than ``chronic_threshold`` of days
    enrolled) per year of ``attendance.csv``, and ``advanced_course_rate`` per year of
    ``advanced_courses.csv``. District intervals are cluster-robust by school, school intervals treat students
    as independent. The table is complete; ``n`` counts distinct students. ``groups``: :func:`student_groups` of
    the district and ``access``, when already made.

    Returns
    -------
    DataFrame
        The indicator format (:data:`opportunity_research.study.indicators.INDICATOR_COLUMNS`), with
        ``attrs["needs"]`` listing optional tables that were missing.

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> from opportunity_research.study.indicators import validate_indicators
    >>> ind = opportunity_indicators(d)
    >>> len(validate_indicators(ind)) == len(ind), sorted(ind["measure"].unique())
    (True, ['advanced_course_rate', 'chronic_absence_rate', 'engaged_share', 'grade_appropriate_share', 'high_expectations_share', 'strong_instruction_share'])
    """
    from ..stats.estimates import complete_table, text_as_categories, two_level_estimates
    from .indicators import indicator_rows

    acc = access if access is not None else student_access(district)
    groups = groups if groups is not None else student_groups(district, access=acc)
    year = analysis_year(district)
    frames, needs = [], []

    def prepared(frame: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
        # ``at``: each row's row of groups, when known (see merge_positions)
        f, at = merge_positions(frame, groups, on="student_id", how="inner", positions=at)
        # students coded per school year: every cell lies within one year (see panels.student_year_codes); a
        # student is their row of groups when the join found it (not their id text hashed again)
        f["_sid"] = student_year_codes(f, at)
        f["_cluster"] = pd.factorize(f["school_id"])[0]
        return f

    def add(
        frame: pd.DataFrame, measure, value, kind: str, *, ready: bool = False, text=None, at=None
    ) -> None:
        # ``value`` and ``measure`` may be lists: one table per value, the cells made once for all of them
        f = frame if ready else prepared(frame, at)
        tables = two_level_estimates(
            f,
            keys=["school_year"],
            variables=variables,
            value=value,
            kind=kind,
            cluster="_cluster",
            confidence=0.95,
            subcluster="_sub" if "_sub" in f.columns else None,
            text=text,
        )
        for t, m in [(tables, measure)] if isinstance(value, str) else zip(tables, measure, strict=True):
            frames.append(indicator_rows(complete_table(t, counts=["n"]), measure=m))

    per_student = (
        acc.groupby("student_id")
        .agg(**{r: (r, "mean") for r in RESOURCES}, _classroom=("classroom_id", "first"))
        .reset_index()
    )
    per_student = per_student.assign(school_year=year, _sub=pd.factorize(per_student["_classroom"])[0])
    per_student = prepared(per_student.drop(columns="_classroom"))  # joined to the groups once, for all four
    # its text columns as categories once, for all four tables (each gives them back as text)
    per_student, text = text_as_categories(per_student, ["school_year", "school_id", *variables])
    # a student's share of time with each resource (0-1): a share, so the interval stays inside 0-100%; the four
    # resources' cells made at once
    add(
        per_student,
        [RESOURCE_MEASURES[r] for r in RESOURCES],
        list(RESOURCES),
        "share",
        ready=True,
        text=text,
    )
    if district.has("attendance"):
        att = district.attendance
        chronic = (att["days_present"] / att["days_enrolled"] < chronic_threshold).astype(float)
        add(att[["student_id", "school_year"]].assign(v=chronic), "chronic_absence_rate", "v", "share")
    else:
        needs.append("attendance.csv (days enrolled and present) for chronic absence")
    if district.has("advanced_courses"):
        adv = district.advanced_courses
        years = sorted(set(adv["school_year"]))
        took = pd.concat(
            [
                groups[["student_id"]].assign(
                    school_year=y,
                    v=ids_in(groups["student_id"], adv.loc[adv["school_year"] == y, "student_id"]).astype(
                        float
                    ),
                )
                for y in years
            ]
        )
        # its rows are the groups' rows, year after year: their rows of groups are known (unique ids)
        at = np.tile(np.arange(len(groups)), len(years)) if unique_ids(groups["student_id"]) else None
        add(took, "advanced_course_rate", "v", "share", at=at)
    else:
        needs.append("advanced_courses.csv for advanced-course enrollment")
    out = pd.concat(frames, ignore_index=True)
    out.attrs["needs"] = needs
    return out
