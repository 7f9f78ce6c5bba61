"""Every analysis of a district report in one call, and the findings built from it.

:func:`unprotected_analysis` computes the complete tables (nothing suppressed; never published or displayed);
the public entry point, :func:`opportunity_research.disclosure.district.analyze_district`
(``opportunity_research.analyze_district``), runs it and then the joint disclosure pass, so the study layer never
imports the disclosure layer. The district notebook calls that once and then only displays what it returns, so
the notebook holds no logic of its own; :func:`findings_json` gives the machine-readable headline numbers
(``findings.json``) that the cross-district report reads.

Examples
--------
:func:`~opportunity_research.disclosure.district.demo_analysis` is the protected analysis of a demonstration
district, computed once per process:

>>> from opportunity_research.disclosure.district import demo_analysis
>>> a = demo_analysis("demo_pinebrook")
>>> print(a.rates.loc[a.rates["subject"] == "all", ["resource", "n", "estimate"]].round(2).to_string(index=False))
          resource    n  estimate
 grade_appropriate  379      0.14
strong_instruction  104      0.03
           engaged 2347      0.57
 high_expectations   26      0.35
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import (
    ALL_OTHERS,
    POOLED_RACE_ETHNICITY,
    RACE_ETHNICITY,
    SUBGROUP_VARIABLES,
    SUBJECTS_TESTED,
    TABLES,
)
from ..intake.crosswalk import suggest
from ..intake.dataset import District, load_district, pseudonym_text
from ..stats.results import ConvergenceWarning, NotIdentifiedError
from . import climate, equity, findings, indicators, labels, levelgaps, measures, scorecard, trajectories
from .growth import fit_study_models
from .joins import roster_positions

__all__ = [
    "DistrictAnalysis",
    "LevelCountsAnalysis",
    "at_a_glance",
    "check_analysis_options",
    "findings_json",
    "key_findings",
    "pool_small_groups",
    "reference_label",
    "unprotected_analysis",
    "unprotected_level_counts",
]


#: Columns no analysis reads (:func:`unprotected_analysis` skips them): each response's and work sample's own id,
#: and the student of an engagement response or work sample (both are scored per classroom).
UNUSED_COLUMNS = {
    "engagement_surveys": ["response_id", "student_id"],
    "work_samples": ["work_sample_id", "student_id"],
    "climate_surveys": ["response_id"],
    "observations": ["observation_id"],
    "teacher_surveys": ["response_id"],
}
#: Classroom evidence: scored once, then only their row counts are kept (:meth:`District.released`).
EVIDENCE_TABLES = ("assignments", "observations", "engagement_surveys", "teacher_surveys", "work_samples")
#: Student records the analysis uses last (access, indicators, multiple measures); released at its end.
STUDENT_RECORD_TABLES = ("enrollments", "attendance", "programs", "advanced_courses")
#: Tables read only when the analysis reaches their first use (not held through the stages before them): the
#: climate surveys for the climate tables, the records only the indicators and multiple measures read.
LATE_TABLES = {"climate": ("climate_surveys",), "records": ("attendance", "programs", "advanced_courses")}


def reference_label(reference: dict | None, variable: str | None = None) -> str:
    """Whom a gap compares a group with, in words: ``"all other students"`` or the named reference group.

    Examples
    --------
    >>> reference_label(None), reference_label({"low_income": 0}, "low_income")
    ('all other students', 'students not from low-income families')
    """
    reference = reference or {}

    def one(var, level):  # the package's label registry
        return labels.level_phrase(var, level)

    if variable is not None:
        return one(variable, reference[variable]) if variable in reference else ALL_OTHERS
    if not reference:
        return ALL_OTHERS
    named = "; ".join(
        f"{one(v, lv)} for {SUBGROUP_VARIABLES.get(v, v).lower()}" for v, lv in reference.items()
    )
    rest = "" if set(reference) >= set(SUBGROUP_VARIABLES) else f"; {ALL_OTHERS} otherwise"
    return f"the reference group ({named}{rest})"


@dataclass
class DistrictAnalysis:
    """Every table of a district report (tidy DataFrames; see each producing function for columns).

    Examples
    --------
    :func:`opportunity_research.disclosure.district.analyze_district` builds it (``demo_analysis``: a demonstration
    district's, computed once):

    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> a = demo_analysis()
    >>> a.gaps.columns[:3].tolist(), a.disclosure.passed
    (['measure', 'label', 'subject'], True)
    >>> import dataclasses
    >>> [f.name for f in dataclasses.fields(DistrictAnalysis)][:5]
    ['district', 'min_n', 'rates', 'demands', 'gaps']
    """

    #: The district analysed: its schools, classrooms, students and goals in full; of the evidence, survey,
    #: assessment and student-record tables only their row counts (and the assessments' school years), which is
    #: all the report reads of them (:meth:`~opportunity_research.intake.dataset.District.released`).
    district: District
    min_n: int
    rates: pd.DataFrame
    demands: pd.DataFrame
    gaps: pd.DataFrame
    composition: pd.DataFrame
    furthest: pd.DataFrame
    multiple: pd.DataFrame
    growth: pd.DataFrame
    growth_warnings: list
    climate: pd.DataFrame
    climate_reliability: pd.DataFrame
    catch_up: pd.DataFrame
    growth_grade_levels: pd.DataFrame
    movement: pd.DataFrame
    scorecard: scorecard.Scorecard
    needs: list = field(default_factory=list)
    cuts: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    #: The joint disclosure pass's audit (:class:`opportunity_research.disclosure.joint.AuditReport`); None on the
    #: complete analysis of :func:`unprotected_analysis`, which nothing publishes.
    disclosure: object | None = None
    #: V gaps from performance-level counts beside scale-score gaps (:func:`levelgaps.level_gaps`); complete,
    #: not yet in the joint disclosure pass (counts in ``n`` and ``reference_n``).
    level_gaps: pd.DataFrame = field(default_factory=pd.DataFrame)

    def reference_label(self, variable: str | None = None) -> str:
        """Whom the gaps compare a group with, in words (for titles and axis labels).

        ``"all other students"``, or the named reference group of ``variable`` (e.g. ``"White students"``);
        without ``variable``, a phrase covering every variable.

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> a = SimpleNamespace(reference={"race_ethnicity": "white"})
        >>> DistrictAnalysis.reference_label(a, "race_ethnicity"), DistrictAnalysis.reference_label(a, "low_income")
        ('White students', 'all other students')
        >>> DistrictAnalysis.reference_label(a)
        'the reference group (White students for race/ethnicity; all other students otherwise)'
        """
        return reference_label(self.reference, variable)


def at_a_glance(district: District) -> pd.DataFrame:
    """Counts of schools, students, classrooms, teachers and evidence (no student rows).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import District
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    >>> g = at_a_glance(d)
    >>> g["what"].tolist()[:3], int(g.loc[g["what"] == "Students", "number"].iloc[0]) == len(tables["students"])
    (['Schools', 'Students', 'Classrooms (sections)'], True)
    """
    d = district
    rows = [
        ("Schools", d.schools["school_id"].nunique()),
        ("Students", len(d.students)),
        ("Classrooms (sections)", len(d.classrooms)),
        ("Teachers", d.classrooms["teacher_id"].nunique()),
        ("Rated assignments", len(d.assignments)),
        ("Student work samples", len(d.work_samples)),
        ("Observed lessons", len(d.observations)),
        ("Real-time survey responses", len(d.engagement_surveys)),
        ("Teacher expectation surveys", len(d.teacher_surveys)),
        ("Assessment years", d.assessments["school_year"].nunique()),
        ("Climate survey responses", len(d.climate_surveys) if d.has("climate_surveys") else 0),
    ]
    return pd.DataFrame(rows, columns=["what", "number"])


def check_analysis_options(
    *, subjects=("ela", "math"), reference: dict | None = None, cuts: dict | None = None
) -> None:
    """Raise ``ValueError`` naming the option, the value and what is allowed, if an option is unusable.

    Examples
    --------
    >>> check_analysis_options(subjects=["ela"], reference={"race_ethnicity": "white"}, cuts={"engaged": 9})
    >>> check_analysis_options(cuts={"engagement": 9})
    Traceback (most recent call last):
    ...
    ValueError: cuts: unknown cut point 'engagement'; the cut points are grade_appropriate, strong_instruction, engaged, high_expectations_current, high_expectations_old (did you mean 'engaged'?)
    """
    if isinstance(subjects, str) or not len(subjects):
        raise ValueError(f"subjects: give a list of tested subjects, e.g. ['ela', 'math'] (got {subjects!r})")
    for s in subjects:
        if s not in SUBJECTS_TESTED:
            raise ValueError(
                f"subjects: {s!r} is not a tested subject; use {', '.join(SUBJECTS_TESTED)}"
                + suggest(str(s), SUBJECTS_TESTED)
            )
    for var, level in (reference or {}).items():
        if var not in SUBGROUP_VARIABLES:
            raise ValueError(
                f"reference: {var!r} is not a student group variable; use one of "
                f"{', '.join(SUBGROUP_VARIABLES)}" + suggest(str(var), SUBGROUP_VARIABLES)
            )
        levels = tuple(RACE_ETHNICITY) if var == "race_ethnicity" else (0, 1)
        if level not in levels and str(level) not in map(str, levels):
            raise ValueError(
                f"reference: {level!r} is not a level of {var}; use one of "
                f"{', '.join(map(str, levels))}" + suggest(str(level), map(str, levels))
            )
    for key, value in (cuts or {}).items():
        if key not in measures.CUT_POINTS:
            raise ValueError(
                f"cuts: unknown cut point {key!r}; the cut points are {', '.join(measures.CUT_POINTS)}"
                + suggest(str(key), measures.CUT_POINTS)
            )
        lo, hi = measures.CUT_POINTS[key][1:]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ValueError(f"cuts: {key} must be a number from {lo:g} to {hi:g} (got {value!r})")


def pool_small_groups(district, *, pool_below: int = 2 * config.MIN_CELL_SIZE, keep=()):
    """Pool the race/ethnicity groups smaller than ``pool_below`` students district-wide into one group.

    Parameters
    ----------
    district
        A :class:`~opportunity_research.intake.dataset.District` (its ``students`` table is recoded).
    pool_below
        Groups with fewer students than this in the whole district are pooled (``0`` turns pooling off);
        :func:`unprotected_analysis` passes ``2 * min_n``.
    keep
        Race/ethnicity codes never pooled (a named reference group).

    Returns
    -------
    (District, list of str)
        The district with ``students.race_ethnicity`` recoded to ``POOLED_RACE_ETHNICITY`` for the pooled
        groups (recorded in ``manifest["pooled_groups"]``, which the joint disclosure pass reports), and the
        pooled codes, smallest first (empty: unchanged).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.intake.dataset import District
    >>> race = ["white"] * 45 + ["asian"] * 9 + ["black"] * 6
    >>> s = pd.DataFrame({"student_id": range(60), "race_ethnicity": race})
    >>> d, pooled = pool_small_groups(District("demo", {"students": s}), pool_below=20)
    >>> pooled, d.students["race_ethnicity"].value_counts().to_dict()
    (['black', 'asian'], {'white': 45, 'pooled_small_groups': 15})
    >>> pool_small_groups(District("demo", {"students": s}), pool_below=20, keep=("black",))[1]
    []
    """
    below = int(pool_below)
    s = district.tables.get("students")
    if s is None or "race_ethnicity" not in s.columns or below <= 0:
        return district, []
    counts = s["race_ethnicity"].astype("str").value_counts()
    keep = {str(k) for k in keep}
    order = [k for k, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])) if k not in keep]
    small = [k for k in order if counts[k] < below]
    if len(small) < 2:
        return district, []
    # a pool still smaller than pool_below would be a small group itself: the next smallest group joins it
    rest = [k for k in order if k not in small]
    while rest and counts[small].sum() < below and len(rest) > 1:
        small.append(rest.pop(0))
    race = s["race_ethnicity"].astype("str")
    students = s.assign(race_ethnicity=race.where(~race.isin(small), POOLED_RACE_ETHNICITY))
    manifest = {**district.manifest, "pooled_groups": [f"race_ethnicity={k}" for k in small]}
    return dataclasses.replace(
        district, tables={**district.tables, "students": students}, manifest=manifest
    ), small


def _growth_rows(year: int) -> tuple[list[str], object]:
    """The assessments' rows the analysis reads before and for the growth models (``load_district``'s ``rows``):
    every result of the analysis year ``year`` (:func:`~.measures.growth_frame` standardizes and pairs its fall
    and spring scores) and the spring results of the year before (:func:`~.measures.student_access`'s "started
    behind" falls back on them). Every analysis after the growth models reads only the spring results
    (:data:`SPRING_ROWS`, read then).

    Examples
    --------
    >>> by, select = _growth_rows(2016)
    >>> t = pd.DataFrame({"window": ["fall", "spring", "fall", "spring", "winter"],
    ...                   "school_year": [2016, 2016, 2015, 2015, 2016]})
    >>> by, select(t).tolist()
    (['window', 'school_year'], [True, True, False, True, True])
    """

    def select(t):
        y = t["school_year"]
        return (y == year) | ((t["window"] == "spring") & (y == year - 1))

    return ["window", "school_year"], select


#: The assessments' columns no analysis before the spring results reads (the growth models and the students'
#: access read the scores, grades and cut scores): not read with the growth models' rows (:func:`_growth_rows`).
GROWTH_UNUSED = {"assessments": ["performance_level", "grade_equivalent"]}
#: The assessments' rows every analysis after the growth models reads (:mod:`.levelgaps`, :mod:`.panels`, each
#: selecting them by ``window``): the spring results, in their order, labelled by their row in the table.
SPRING_ROWS = (["window"], lambda t: t["window"] == "spring")


def _spring_results(d: District, read, *, window: bool) -> tuple[District, np.ndarray | None]:
    """``d`` with its assessments' spring results (:data:`SPRING_ROWS`) read, and each result's roster position
    (:func:`~.joins.roster_positions`: int64, -1 off the roster; None: the roster's ids are not unique).

    ``read``: :func:`unprotected_analysis`' reader of the district's tables; ``window``: the table has the
    ``window`` column the rows are selected by. The results' student ids are read first, alone, and looked up on
    the roster. When every result's student is on it, the other columns are then read without the ids, which
    become categories of the roster's ids (each result's roster position its code); and the window, ``"spring"``
    on every row read, is not read but made one category. At 1,000,000 students (7.5 million spring results)
    the two text columns were 290 MB of the 770 MB the results took, from their reading through the level gaps
    and the panel (the analysis' peak), and are 37 MB so. Every function that reads the results compares their
    window with ``"spring"`` and, given the positions (``roster_at``), takes each result's student from them.

    Examples
    --------
    >>> def read(names, rows=None, skip=None, columns=None):
    ...     return load_district("demo_pinebrook", columns=dict.fromkeys(names, columns), skip=skip, rows=rows)
    >>> d, at = _spring_results(read(["students"]), read, window=True)
    >>> a = d.assessments
    >>> str(a["student_id"].dtype), (a["student_id"].cat.codes == at).all(), a["window"].unique().tolist()
    ('category', np.True_, ['spring'])
    """
    rows = {"assessments": SPRING_ROWS}
    d = d.with_tables(read(["assessments"], rows=rows, columns=["student_id"]))
    at = roster_positions(d.students, d.assessments)
    whole = at is not None and len(at) > 0 and bool((at >= 0).all())
    skip = [c for c, no in (("student_id", whole), ("window", window)) if no]
    d = d.with_tables(read(["assessments"], rows=rows, skip={**UNUSED_COLUMNS, "assessments": skip}))
    spring = d.assessments
    if whole:
        ids = pd.CategoricalDtype(d.students["student_id"])
        spring.insert(0, "student_id", pd.Categorical.from_codes(at, dtype=ids))
    if window:
        spring["window"] = pd.Categorical.from_codes(np.zeros(len(spring), np.int8), ["spring"])
    return d, at


def unprotected_analysis(
    district_id: str,
    *,
    processed_dir: str | None = None,
    subjects=("ela", "math"),
    min_n: int = config.MIN_CELL_SIZE,
    reference: dict | None = None,
    cuts: dict | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    pool_below: int | None = None,
) -> tuple[DistrictAnalysis, pd.DataFrame]:
    """Every analysis of the district report on a processed district, complete: NOT for publication.

    Returns the analysis with complete tables (no cell suppressed, ``scorecard`` and ``disclosure`` None) and the
    scorecard's indicator table, the inputs of the joint disclosure pass. Publish only what
    :func:`opportunity_research.disclosure.district.analyze_district` returns (this function followed by that
    pass); the package's ``opportunity_research.analyze_district`` is that one.

    Parameters
    ----------
    district_id, processed_dir
        Which district, and the processed root (default ``data/processed``).
    subjects
        Tested subjects to analyse (``"ela"``, ``"math"``).
    min_n
        Smallest published cell (students): the setting of the joint disclosure pass
        (:func:`opportunity_research.disclosure.joint.protect_district`) that protects every table afterwards
        (carried on the result as ``min_n``); the analyses themselves compute complete tables.
    reference
        ``{variable: level}`` named reference groups for the gap tables, e.g. ``{"race_ethnicity": "white"}``
        (default: each group against all other students).
    cuts
        Cut points overriding TNTP's defaults (see :data:`opportunity_research.study.measures.CUT_POINTS`):
        ``grade_appropriate`` (4 of 6), ``strong_instruction`` (2 of 3), ``engaged`` (8 of 12),
        ``high_expectations_current`` (12 of 20), ``high_expectations_old`` (18 of 30).
    n_boot, seed
        Cluster-bootstrap replicates and seed of the gap intervals.
    pool_below
        Race/ethnicity groups with fewer students than this in the district are analysed and published as one
        pooled group (:func:`pool_small_groups`; default ``2 * min_n``, ``0`` turns pooling off).

    Raises
    ------
    ValueError
        If an option is unusable (:func:`check_analysis_options`).

    Examples
    --------
    >>> a, ind = unprotected_analysis("demo_pinebrook", n_boot=20)
    >>> a.disclosure is None, a.scorecard is None, bool(a.gaps["suppressed"].any()), len(ind) > 0
    (True, True, False, True)
    """
    check_analysis_options(subjects=subjects, reference=reference, cuts=cuts)
    # Suppression is decided once, after this, over everything the district publishes
    # (disclosure.joint.protect_district, with this min_n): the analyses below compute complete tables.
    root = config.resolve(processed_dir) if processed_dir else None
    late = {name for names in LATE_TABLES.values() for name in names}

    def read(names, rows=None, skip=UNUSED_COLUMNS, columns=None):  # columns: of each table (None: all)
        return load_district(
            district_id,
            processed_root=root,
            columns=dict.fromkeys(names, columns),
            skip=skip,
            rows=rows,
            id_keys=True,
        )

    # the assessments' rows are read in two selections, each only the rows then used (never the whole table), and
    # after the evidence is let go: first the analysis year's results and the spring before (_growth_rows), after
    # the growth models the spring results (their ids first: _spring_results)
    d = read(t for t in TABLES if t not in late and t != "assessments")
    # the student ids are read as int64 keys (load_district's id_keys): joined, grouped and factorized as integers
    keyed = d.students is not None and d.students["student_id"].dtype == np.int64
    # the smallest race/ethnicity groups are analysed and published as one pooled group (never a named reference)
    d, _ = pool_small_groups(
        d,
        pool_below=2 * min_n if pool_below is None else pool_below,
        keep=[(reference or {}).get("race_ethnicity", "")],
    )
    cuts = {**measures.default_cuts(), **(cuts or {})}
    # The evidence is scored once, for the classrooms' access and the resource rates, and the demands read; then
    # its tables' rows are let go (District.released: their row counts stay) before the assessments are read, as
    # are the climate surveys' and the assessments' after their last use, and the LATE_TABLES are read only at
    # their first use, so the analysis never holds every table of a large district at once.
    scored = measures.score_evidence(d, cuts=cuts)
    demands = measures.demands_vs_standards(d)
    d = d.released(EVIDENCE_TABLES)
    cls = measures.classroom_access(d, cuts=cuts, scored=scored)
    rates = measures.resource_rates(d, cuts=cuts, scored=scored)
    del scored
    growth_rows = {"assessments": _growth_rows(measures.analysis_year(d))}
    d = d.with_tables(read(["assessments"], rows=growth_rows, skip={**UNUSED_COLUMNS, **GROWTH_UNUSED}))
    acc = measures.student_access(d, classrooms=cls)
    d = d.released(["enrollments"])  # read only by the classrooms' and students' access, made above
    acc = acc[acc["subject"].isin(subjects)]
    gaps = equity.resource_gaps(d, access=acc, reference=reference, n_boot=n_boot, seed=seed)
    # every subject's growth frame first: they are the last use of any result but the spring ones (the level gaps
    # and the trajectories read those only, and in their order), so the rows read for them are let go before the
    # models are fitted (the models never hold them); the report counts every row and school year of the table
    # (their stand-in, kept for the end)
    frames = {s: measures.growth_frame(d, subject=s, access=acc) for s in subjects}
    assessed = window = None
    if d.tables.get("assessments") is not None:
        window = "window" in d.assessments.columns
        d = d.with_tables(
            load_district(district_id, processed_root=root, columns={"assessments": ["school_year"]})
        )
        assessed = d.released(["assessments"], keep={"assessments": ["school_year"]}).assessments
        d = dataclasses.replace(d, tables={**d.tables, "assessments": assessed})
    growth_parts, warns = [], []
    for s in subjects:
        frame = frames.pop(s)
        n_cls = int(frame["classroom_id"].nunique()) if "classroom_id" in frame.columns else 0
        too_few = f"{labels.subject(s)}: too few students/classrooms for the growth models"
        if not (frame["school_id"].nunique() and len(frame) >= 3 * min_n):
            # no count here: below 3 * min_n it may itself be a small cell
            warns.append(f"{too_few} (fewer than {3 * min_n:,} students with fall and spring scores).")
            continue
        too_few += f" ({len(frame):,} students with fall and spring scores in {n_cls:,} classrooms"
        # A model that does not converge is a finding about this district's data, not a fault: its
        # ConvergenceWarning is kept in growth_warnings (shown in the report's diagnostics table) instead of
        # being printed; every other warning passes through unchanged. A model the data cannot identify (a
        # small district: one classroom per grade, a resource no classroom varies in) is reported the same way,
        # and the rest of the report is published.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                sm = fit_study_models(frame, subject=s)
            except NotIdentifiedError as e:
                sm = None
                warns.append(f"{too_few}; the data cannot identify the models: {e}).")
        if sm is not None:
            growth_parts.append(sm.effects)
            warns += [f"{w} ({where})" for w, where in sm._grouped_warnings()]
            for w in caught:
                if issubclass(w.category, ConvergenceWarning):
                    detail = str(w.message).rpartition("did not converge: ")[2]
                    if not any(detail in x for x in warns):
                        warns.append(f"{s}: {w.message}")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            samples = sm.effects.drop_duplicates(["subject", "model"])
            warns += [
                f"Sample of {r.subject} / {r.model}: n = {int(r.n):,} students, {r.sample}."
                for r in samples.itertuples()
            ]
    growth = pd.concat(growth_parts, ignore_index=True) if growth_parts else pd.DataFrame()
    del frame
    # then the spring results are read
    if assessed is not None:
        d, at = _spring_results(d, read, window=window)
    else:
        at = roster_positions(d.students, d.assessments)
    # the gaps from performance levels and scale scores first, then the spring results joined to the roster once,
    # on integer codes, for every trajectory table: the assessments' rows are then let go (their school years
    # stay: the report counts them), so the trajectories never hold both the results and their panel
    # (each result's roster position looked up once for the three)
    if at is not None and len(d.students) < 2**31:
        at = at.astype(np.int32)
    lcounts = levelgaps.level_counts_from_assessments(d.assessments, students=d.students, roster_at=at)
    scores = levelgaps.score_gaps(d.assessments, students=d.students, roster_at=at)
    lgaps = levelgaps.level_gaps(lcounts, scores=scores)
    lgaps = lgaps[lgaps["subject"].isin(subjects)].reset_index(drop=True)
    del lcounts, scores
    panel = trajectories.yearly_panel(d.assessments, students=d.students, roster_at=at)
    del at
    d = (
        d.released(["assessments"])
        if assessed is None
        else dataclasses.replace(d, tables={**d.tables, "assessments": assessed})
    )
    catch = trajectories.catch_up_rates(panel, students=d.students)
    # school growth: endpoints over the years before the analysis year (the definition truth.json documents)
    ggl = trajectories.grade_level_growth(
        panel,
        students=d.students,
        method="endpoints",
        end_year=measures.analysis_year(d) - 1,
    )
    # the level movement and the indicators' yearly growth pair the same results: made together, once
    move, growth_pooled = trajectories.movement_and_growth(panel, students=d.students)
    # (and the catch-up rates of the earliest start year, pooled, are the indicator's of that year: not made again)
    ind_t = trajectories.trajectory_indicators(panel, students=d.students, growth=growth_pooled, catch=catch)
    del growth_pooled
    del panel
    # the climate surveys are read once the assessments' rows are let go: the two are never held together
    d = d.with_tables(read(LATE_TABLES["climate"]))
    cs = climate.climate_summary(d.climate_surveys, students=d.students)
    rel = climate.climate_reliability(d.climate_surveys)
    d = d.released(["climate_surveys"])
    d = d.with_tables(read(LATE_TABLES["records"]))
    groups = equity.student_groups(d, access=acc)  # once, for the indicators and the multiple measures
    ind_r = equity.opportunity_indicators(d, access=acc, groups=groups)
    ind_c = climate.climate_indicators(cs)
    needs = indicators.needs_of(ind_r, ind_c, ind_t, cs, catch)
    composition = equity.classroom_composition(d, classrooms=cls)
    furthest = equity.furthest_from_opportunity(d, access=acc, n_boot=n_boot, seed=seed)
    multiple = equity.multiple_measures_gaps(d, access=acc, groups=groups)
    del acc, cls, groups
    d = d.released(STUDENT_RECORD_TABLES)
    if keyed:  # the roster returned with its ids as the processed table holds them
        ids = pseudonym_text(d.students["student_id"].to_numpy()).set_axis(d.students.index)
        d = dataclasses.replace(d, tables={**d.tables, "students": d.students.assign(student_id=ids)})
    # the scorecard is built once, by the joint pass, from the protected indicators
    return (
        DistrictAnalysis(
            district=d,
            min_n=min_n,
            rates=rates,
            demands=demands,
            gaps=gaps,
            composition=composition,
            furthest=furthest,
            multiple=multiple,
            growth=growth,
            growth_warnings=warns,
            climate=cs,
            climate_reliability=rel,
            catch_up=catch,
            growth_grade_levels=ggl,
            movement=move,
            scorecard=None,
            needs=needs,
            cuts=cuts,
            reference=dict(reference or {}),
            level_gaps=lgaps,
        ),
        pd.concat([ind_r, ind_c, ind_t], ignore_index=True),
    )


def key_findings(a: DistrictAnalysis) -> list[str]:
    """Plain-language findings generated from the numbers (no hand-typed values).

    Examples
    --------
    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> sentences = key_findings(demo_analysis())
    >>> print(sentences[0])
    Grade-appropriate assignments: 14% of assignments (95% CI 9% to 21%; n = 379), about 154 of 180 hours a year per subject without it.
    >>> len(sentences) > 5
    True
    """
    out = findings.resource_sentences(a.rates) + [findings.demands_sentence(a.demands)]
    out += findings.gap_sentences(a.gaps) + findings.composition_sentences(a.composition)
    out += findings.furthest_sentences(a.furthest, top=2) + findings.growth_sentences(a.growth)
    out += findings.catch_up_sentences(a.scorecard.table)
    return out


def _clean(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def findings_json(a: DistrictAnalysis, *, parameters: dict, indicators: pd.DataFrame | None = None) -> dict:
    """Machine-readable headline numbers for ``findings.json`` (no student rows, suppressed cells omitted).

    ``indicators``: the district's indicator table
    (:func:`opportunity_research.report.indicator_table.indicator_table`, the one source of the first screen, the
    board summary and the index), stored as a list of records when given.

    Examples
    --------
    >>> from opportunity_research.disclosure.district import demo_analysis
    >>> a = demo_analysis()
    >>> found = findings_json(a, parameters={"min_n": a.min_n})
    >>> found["parameters"], found["disclosure"]["audit_passed"], found["headline"] == key_findings(a)[0]
    ({'min_n': 10}, True, True)
    """
    rates = {
        r.resource: {
            "estimate": _clean(r.estimate),
            "ci_lower": _clean(r.ci_lower),
            "ci_upper": _clean(r.ci_upper),
            "n": int(r.n),
        }
        for r in a.rates[a.rates["subject"] == "all"].itertuples()
    }
    shown = a.gaps[~a.gaps["suppressed"].astype(bool)]
    gaps = [
        {k: _clean(v) for k, v in row.items()}
        for row in shown[["measure", "subject", "group", "level", "n", "difference", "ci_lower", "ci_upper"]]
        .astype({"level": str, "n": "float"})
        .to_dict("records")
    ]
    growth = []
    if not a.growth.empty:
        g = a.growth[
            (a.growth["model"] == "all_four") & a.growth["effect"].isin(["access", "extra_if_behind"])
        ]
        growth = [
            {k: _clean(v) for k, v in row.items()}
            for row in g[
                [
                    "subject",
                    "resource",
                    "effect",
                    "estimate",
                    "ci_lower",
                    "ci_upper",
                    "access_p25",
                    "access_p75",
                    "contrast_estimate",
                    "contrast_ci_lower",
                    "contrast_ci_upper",
                    "months",
                    "months_ci_lower",
                    "months_ci_upper",
                    "months_note",
                    "n",
                    "n_excluded",
                    "converged",
                ]
                + [
                    c
                    for c in ("robustness_value", "robustness_value_05", "e_value", "e_value_ci")
                    if c in g.columns
                ]
            ].to_dict("records")
        ]
    goals = a.scorecard.goals
    sentences = key_findings(a)
    return {
        "district_id": a.district.district_id,
        "analysis_year": measures.analysis_year(a.district),
        "n_students": len(a.district.students),
        "n_classrooms": len(a.district.classrooms),
        "min_n": a.min_n,
        "resources": rates,
        "demands_vs_standards": {
            r.measure: {
                "estimate": _clean(r.estimate),
                "ci_lower": _clean(r.ci_lower),
                "ci_upper": _clean(r.ci_upper),
                "n": int(r.n),
            }
            for r in a.demands.itertuples()
        },
        "gaps": gaps,
        "growth": growth,
        "goals": []
        if goals is None or goals.empty
        else goals[["goal_id", "measure", "group", "target", "target_year", "status"]].to_dict("records"),
        "needs": a.needs,
        "key_findings": sentences,
        "indicators": []
        if indicators is None
        else [{k: _clean(v) for k, v in row.items()} for row in indicators.to_dict("records")],
        "headline": sentences[0] if sentences else "",
        "parameters": parameters,
        "disclosure": a.disclosure.to_dict() if a.disclosure is not None else None,
    }


@dataclass
class LevelCountsAnalysis:
    """The report of a district that brings only counts by performance level (protected tidy DataFrames).

    ``gaps`` is :func:`levelgaps.level_gaps`, ``means`` :func:`levelgaps.hetop_means`, both after the joint
    disclosure pass (``disclosure`` holds its audit); ``schools`` maps school ids to names.

    Examples
    --------
    >>> import pandas as pd
    >>> a = LevelCountsAnalysis("demo_counts", counts=pd.DataFrame(), gaps=pd.DataFrame(), means=pd.DataFrame())
    >>> a.district_id, a.schools, a.disclosure is None
    ('demo_counts', {}, True)
    """

    district_id: str
    counts: pd.DataFrame
    gaps: pd.DataFrame
    means: pd.DataFrame
    schools: dict = field(default_factory=dict)
    #: The joint disclosure pass's audit (:class:`opportunity_research.disclosure.joint.AuditReport`).
    disclosure: object | None = None


def unprotected_level_counts(
    district_id: str, *, processed_dir: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """V gaps and HETOP means of a district from its ``level_counts`` table, complete: NOT for publication.

    Returns ``(counts, gaps, means, schools)``: the counts, :func:`levelgaps.level_gaps`,
    :func:`levelgaps.hetop_means` (no cell suppressed) and ``{school_id: school_name}``. Publish only what
    :func:`opportunity_research.disclosure.district.analyze_level_counts` returns (these tables after the joint
    disclosure pass, as a :class:`LevelCountsAnalysis`).

    Raises
    ------
    ValueError
        If the district has no ``level_counts`` table.

    Examples
    --------
    >>> unprotected_level_counts("demo_pinebrook")
    Traceback (most recent call last):
    ...
    ValueError: demo_pinebrook: no level_counts table; give data/raw/demo_pinebrook/level_counts.csv
    """
    d = load_district(district_id, processed_root=config.resolve(processed_dir) if processed_dir else None)
    if not d.has("level_counts"):
        raise ValueError(
            f"{district_id}: no level_counts table; give data/raw/{district_id}/level_counts.csv"
        )
    counts = d.level_counts[list(levelgaps.LEVEL_COUNT_COLUMNS)]
    names = dict(zip(d.schools["school_id"], d.schools["school_name"])) if d.has("schools") else {}
    return counts, levelgaps.level_gaps(counts), levelgaps.hetop_means(counts), names
