"""Trajectories across several years of assessments: catch-up, growth in grade levels, level movement.

The Opportunity Makers questions for longitudinal data: *when a student falls behind, how often do they
catch up? Do students who start out below grade level grow closer to grade level over time?*

Definitions (documented choices, all parameters)
------------------------------------------------
* **Results used**: one result per student, subject and school year from the ``window="spring"``
  testing window (year-to-year trajectories compare like with like).
* **At grade level**: ``scale_score >= grade_level_cut``; below grade level otherwise.
* **Catch-up rate** from ``start_year`` at ``k`` years later: among students below grade level in
  ``start_year``, the share at grade level in ``start_year + k``. The denominator is the students of
  that starting group who were tested in ``start_year + k`` (``n``); ``n_start`` is the whole
  starting group. ``start_year`` defaults to the earliest year with a follow-up.
* **Growth in grade levels per year** (needs ``grade_equivalent``, SEDA-style: 5.0 = typical for
  grade 5): per student and subject, the least-squares slope of ``grade_equivalent`` on the school
  year over the years they were tested between ``start_year`` and ``end_year`` (``method="slope"``),
  or ``(last - first) / (years between)`` (``method="endpoints"``); students tested in ``start_year``
  with at least two results. 1.0 = a typical year's growth. **Start offset** = ``grade_equivalent -
  grade`` in ``start_year`` (negative = behind). **Started behind** = below grade level in
  ``start_year``.
* **Trajectory-changing school** (a school row with ``group == "all"``): mean start offset < 0 *and*
  mean growth >= ``threshold`` (1.3 grade levels a year); both numbers are reported with intervals.
* **Years to close a gap** of ``G`` grade levels at ``r`` grade levels a year: ``G / (r - 1)``;
  undefined (NaN, with the note :data:`NO_CLOSE`) when ``r <= 1``. See :func:`years_to_close`.
* **Movement between performance levels** from one spring to the next: the transition matrix
  (counts and row shares) and the shares who moved up or down at least one level (students already
  at level 4 cannot move up; at level 1, cannot move down).
* **Students' school and groups** come from ``students.csv`` (the analysis-year roster) for every
  year: a school's trajectory is that of its current students.

Intervals: shares use the Wilson interval; means the t interval. Both treat students as the sampling
unit (with a cluster-robust correction by student where the ``subject == "all"`` rows pool ELA and
math, so a student counts twice) and schools as fixed: they describe these students, not a larger
population of schools. Every table is complete (no cell hidden; the district report protects everything
it publishes in one joint disclosure pass, :mod:`opportunity_research.disclosure.joint`); ``n`` counts
student-subject results (= students within one subject), ``n_students`` distinct students.

Missing data: with fewer than two years of spring results, or no ``grade_equivalent`` for growth,
the functions return an empty table with ``.attrs["needs"]`` (see :mod:`opportunity_research.study.indicators`).

Modules: catch-up rates, growth in grade levels and the scorecard indicators live here; year-to-year growth and
level movement in :mod:`opportunity_research.study.movement` (re-exported here); the yearly results panel and
the cell helpers both share in :mod:`opportunity_research.study.panels`. Every function takes the assessments
table, or the panel of its spring results built once for all of them (:func:`yearly_panel`: students and
subjects as integer codes, results paired across years by array lookups, not merges on the id text).

Examples
--------
>>> years_to_close(2.0, 1.5)
4.0
>>> years_to_close([1.0, 1.0], [1.25, 0.9])
array([ 4., nan])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..intake.contract import SUBJECTS_TESTED
from ..stats.estimates import complete_table
from .indicators import INDICATOR_COLUMNS, indicator_rows, needs_of, unavailable
from .movement import level_movement, level_transitions, movement_and_growth, yearly_growth
from .panels import (
    VARIABLES,
    YearlyPanel,
    join_rows,
    later_rows,
    needs_ge,
    needs_years,
    order_rows,
    panel_rows,
    side_by_side,
    subgroup_cells,
    subgroup_cells_parts,
    yearly_panel,
    yearly_results,
    years_in,
)

__all__ = [
    "NO_CLOSE",
    "VARIABLES",
    "catch_up_rates",
    "grade_level_growth",
    "level_movement",
    "level_transitions",
    "movement_and_growth",
    "trajectory_indicators",
    "yearly_growth",
    "yearly_panel",
    "yearly_results",
    "years_to_close",
    "years_to_close_note",
]

#: Note given when a gap does not close.
NO_CLOSE = "does not close at rate <= 1 grade level per year"


def _start_years(years: list[int], start_year, gaps: Sequence[int]) -> list[int]:
    with_follow = [y for y in years if any(y + k in years for k in gaps)]
    if start_year is None:
        return with_follow[:1]
    if start_year == "all":
        return with_follow
    if int(start_year) not in years:
        raise ValueError(
            f"assessments: no results in start_year {start_year} (years: {', '.join(map(str, years))})"
        )
    return [int(start_year)]


def catch_up_rates(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    start_year: int | str | None = None,
    years_later: Sequence[int] = (1, 2, 3),
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
    pooled_only: bool = False,
) -> pd.DataFrame:
    """Share of students below grade level in ``start_year`` who are at grade level ``k`` years later.

    Parameters
    ----------
    data
        The assessments table (``district.assessments``), or its :class:`~.panels.YearlyPanel` (the panel of
        ``window`` and ``subjects``; ``students`` is then not used).
    students
        The students table (school and group variables).
    start_year
        The starting year; ``None`` = the earliest year with a follow-up; ``"all"`` = every year with one.
    years_later
        The follow-up distances ``k``.
    window, subjects, variables
        Testing window, subjects and student-group variables.
    confidence
        Interval level.
    pooled_only
        Only the rows of the subjects pooled (``subject == "all"``; the same rows, to the bit, as those of the
        whole table), not each subject's.

    Returns
    -------
    DataFrame
        ``subject`` (``ela``, ``math``, ``all`` = pooled), ``start_year``, ``years_later``, ``school_year``
        (the follow-up year), ``school_id`` (``"all"`` = district), ``group``, ``variable``, ``n_start``
        (below grade level in ``start_year``), ``n`` (of those, tested ``k`` years later), ``n_students``
        (distinct students), ``estimate`` (share at grade level), ``ci_lower``, ``ci_upper`` (Wilson),
        ``suppressed``, ``suppression_reason``. Empty with ``attrs["needs"]`` with fewer than two years.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> c = catch_up_rates(assessments, students=students)
    >>> c[["subject", "start_year", "years_later", "group"]].iloc[0].to_dict()
    {'subject': 'ela', 'start_year': 2012, 'years_later': 1, 'group': 'all'}
    >>> pooled = catch_up_rates(assessments, students=students, pooled_only=True)
    >>> pooled.equals(c[c["subject"] == "all"].reset_index(drop=True))
    True
    """
    return _catch_up(
        data,
        students=students,
        start_year=start_year,
        years_later=years_later,
        window=window,
        subjects=subjects,
        variables=variables,
        confidence=confidence,
        pooled=pooled_only,
        start_counts=True,
    )


def _catch_up(
    data,
    *,
    students,
    start_year,
    years_later,
    window,
    subjects,
    variables,
    confidence,
    pooled,
    start_counts,
    known=None,
):
    """:func:`catch_up_rates`; ``pooled``: only the subjects pooled; ``start_counts=False``: ``n_start`` missing (not
    counted: the scorecard's indicator does not show it). ``known`` (with ``pooled``, without start counts): a
    :func:`catch_up_rates` table of the same panel and arguments; its cells of the subjects pooled for the start
    years and ``k`` it holds are taken from it, not made again (each (start year, ``k``) part's cells are made from
    that part's rows alone)."""
    cols = [
        "subject",
        "start_year",
        "years_later",
        "school_year",
        "school_id",
        "group",
        "variable",
        "n_start",
        "n",
        "n_students",
        "estimate",
        "ci_lower",
        "ci_upper",
        "suppressed",
        "suppression_reason",
    ]
    panel = yearly_panel(data, students=students, window=window, subjects=subjects)
    agl = panel.frame["at_grade_level"].to_numpy(dtype=float)
    year = panel.frame["school_year"].to_numpy()
    have = np.flatnonzero(~np.isnan(agl))
    years = years_in(year[have])
    if len(years) < 2:
        return unavailable(cols, needs_years(window, years))
    starts = _start_years(years, start_year, years_later)
    keys = ["subject", "start_year", "years_later", "school_year"]
    done, made = None, set()
    if known is not None and pooled and not start_counts and len(known):
        done = known[
            (known["subject"] == "all")
            & known["years_later"].isin(list(years_later))
            & known["start_year"].isin(starts)
        ]
        done = done[
            [*keys, "school_id", "group", "variable", "n", "n_students", "estimate", "ci_lower", "ci_upper"]
        ]
        made = set(zip(done["start_year"].tolist(), done["years_later"].tolist(), strict=True))
        starts = [s for s in starts if any((s, k) not in made for k in years_later)]  # the others: not joined
    # below grade level in a starting year, each joined to their result k years later (on integer codes)
    base = have[np.isin(year[have], starts) & (agl[have] == 0)]
    used = [
        c for c in dict.fromkeys(["subject", "school_id", *variables, "_sid"]) if c in panel.frame.columns
    ]
    # positions of the pairs, per k: each starting row joined to the results of the years k later only (the same
    # pairs, in the same order, as joined to every result)
    found = [
        later_rows(panel, base, have[np.isin(year[have], [s + k for s in starts])], k) for k in years_later
    ]

    def parts():  # the pairs of one start year and k at a time: every cell lies in one (their cells' memory)
        for k, (b, f) in zip(years_later, found, strict=True):
            for s in years_in(year[b]):
                if (s, k) in made:
                    continue
                at = np.flatnonzero(year[b] == s)
                yield panel_rows(panel, b[at], used).assign(
                    start_year=year[b[at]],
                    school_year=year[b[at]] + k,
                    caught_up=agl[f[at]],
                    years_later=int(k),
                )

    fresh = any(
        (s, k) not in made for k, (b, _) in zip(years_later, found, strict=True) for s in years_in(year[b])
    )
    if not fresh and (done is None or not len(done)):
        ks = " or ".join(str(k) for k in years_later)
        return unavailable(
            cols,
            f"assessments.csv with {window} results {ks} year(s) after a starting year for "
            f"catch-up rates (found: {', '.join(map(str, years))})",
        )
    out = done
    if fresh:
        out = subgroup_cells_parts(
            parts(),
            keys=keys,
            variables=variables,
            value="caught_up",
            kind="share",
            confidence=confidence,
            pooled="only" if pooled else True,
            text=panel.text,
        )
        if done is not None and len(done):
            out = pd.concat([out, done], ignore_index=True)
    if start_counts:
        base = panel_rows(panel, base, used).assign(start_year=year[base], one=1.0)
        start = subgroup_cells(  # only the counts are used: a share's cells need no pass over residuals
            base,
            keys=["subject", "start_year"],
            variables=variables,
            value="one",
            kind="share",
            confidence=confidence,
            pooled="only" if pooled else True,
            text=panel.text,
        )
        start = start[["subject", "start_year", "school_id", "group", "n"]].rename(columns={"n": "n_start"})
        out = out.merge(
            start, on=["subject", "start_year", "school_id", "group"], how="left", validate="many_to_one"
        )
    else:
        out["n_start"] = np.nan
    out = complete_table(out, counts=["n_start", "n", "n_students"])
    out = order_rows(out, keys)[cols]
    out.attrs["needs"] = []
    return out


def years_to_close(gap, rate):
    """Years to close a gap of ``gap`` grade levels growing ``rate`` grade levels a year: ``gap / (rate - 1)``.

    Vectorized. NaN when ``rate <= 1`` (the gap does not close; see :func:`years_to_close_note`), when
    ``gap < 0`` (not behind) or when an input is missing; 0 when ``gap == 0``. Returns a float for
    scalar inputs, else an array.

    Examples
    --------
    >>> round(years_to_close(1.5, 1.3), 6)
    5.0
    """
    g = np.asarray(gap, dtype=float)
    r = np.asarray(rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where((r > 1) & (g >= 0), g / (r - 1), np.nan)
    y = np.where((g == 0) & ~np.isnan(r), 0.0, y)
    return float(y) if y.ndim == 0 else y


def years_to_close_note(gap, rate):
    """Why :func:`years_to_close` is missing: ``""`` (it is not), :data:`NO_CLOSE`, ``"not behind grade
    level"`` or ``"no estimate"``. Returns a str for scalar inputs, else an array of str.

    Examples
    --------
    >>> years_to_close_note(1.5, 1.3), years_to_close_note(1.5, 0.9), years_to_close_note(-0.5, 1.2)
    ('', 'does not close at rate <= 1 grade level per year', 'not behind grade level')
    """
    g = np.asarray(gap, dtype=float)
    r = np.asarray(rate, dtype=float)
    note = np.where(
        np.isnan(g) | np.isnan(r),
        "no estimate",
        np.where(g < 0, "not behind grade level", np.where((g > 0) & (r <= 1), NO_CLOSE, "")),
    )
    return str(note) if note.ndim == 0 else note.astype(object)


def _student_growth(panel: YearlyPanel, start: int, end: int, method: str) -> pd.DataFrame:
    """Per student and subject tested in ``start``: start offset, started behind, growth per year."""
    if method not in ("slope", "endpoints"):
        raise ValueError(f"grade_level_growth: method must be 'slope' or 'endpoints', not {method!r}")
    frame = panel.frame
    year = frame["school_year"].to_numpy()
    ge = frame["grade_equivalent"].to_numpy(dtype=float)
    sk = frame["_sk"].to_numpy()
    inside = np.flatnonzero(~np.isnan(ge) & (year >= start) & (year <= end))
    first = inside[year[inside] == start]
    # the results of the students and subjects tested in ``start`` (a merge on the student-subject codes)
    li, of = join_rows(sk[inside], sk[first])
    rows = inside[li]
    t = (year[rows] - start).astype(float)
    y = ge[rows]
    if method == "endpoints" and bool(np.all(np.diff(li) > 0)):
        # each student-subject tested once in ``start`` (each result joined to one of them, ``of``): its number of
        # years, its last year's score (the first of its results in the latest year, as idxmax finds it) and its
        # span, on arrays (no grouping; the sums of the slope are not needed)
        m = len(first)
        k = np.bincount(of, minlength=m)
        tmax = np.full(m, -np.inf)
        np.maximum.at(tmax, of, t)
        latest = np.flatnonzero(t == tmax[of])
        last = np.full(m, len(rows), dtype=np.int64)
        np.minimum.at(last, of[latest], latest)
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (y[np.minimum(last, len(rows) - 1)] - ge[first]) / tmax
        n_years, growth = k, np.where(k >= 2, growth, np.nan)
    else:
        g = pd.DataFrame({"_sk": sk[rows], "t": t, "y": y, "tt": t * t, "ty": t * y}).groupby(
            "_sk", sort=False
        )
        s = g.agg(
            k=("t", "size"),
            st=("t", "sum"),
            sy=("y", "sum"),
            stt=("tt", "sum"),
            sty=("ty", "sum"),
            tmax=("t", "max"),
        )
        if method == "slope":
            with np.errstate(divide="ignore", invalid="ignore"):
                growth = (s["sty"] - s["st"] * s["sy"] / s["k"]) / (s["stt"] - s["st"] ** 2 / s["k"])
        else:
            last = pd.Series(year[rows]).groupby(sk[rows], sort=False).idxmax()
            last = pd.Series(y[last.to_numpy()], index=last.index)
            y0 = pd.Series(ge[first], index=sk[first])
            growth = (last.reindex(s.index) - y0.reindex(s.index)) / s["tmax"]
        s["growth"] = growth.where(s["k"] >= 2)
        at = s.index.get_indexer(sk[first])  # every student-subject of ``first`` has results: no -1
        n_years, growth = s["k"].to_numpy()[at], s["growth"].to_numpy()[at]
    out = panel_rows(
        panel, first, ["subject", "school_id", *VARIABLES, "start_offset", "at_grade_level", "_sid"]
    )
    out["n_years"] = n_years
    out["growth"] = growth
    out["started_behind"] = (1 - out["at_grade_level"]).astype(float)
    return out[out["growth"].notna()]


def grade_level_growth(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    start_year: int | None = None,
    end_year: int | None = None,
    window: str = "spring",
    method: str = "slope",
    threshold: float = 1.3,
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Growth in grade levels per year of the students tested in ``start_year``, and where they started.

    Parameters
    ----------
    data, students
        The assessments table (with ``grade_equivalent``) and the students table; or the table's
        :class:`~.panels.YearlyPanel` (``students`` is then not used).
    start_year, end_year
        The years spanned (default: the earliest and the latest year with grade-equivalent scores).
    window
        Testing window (default spring).
    method
        ``"slope"`` (per-student least-squares slope over the years tested) or ``"endpoints"``
        (``(last - first) / years between``).
    threshold
        Growth (grade levels per year) that, with a mean start offset below 0, makes a school
        trajectory-changing (default 1.3).
    subjects, variables, confidence
        Subjects, student-group variables (``started_behind`` = below grade level in ``start_year`` is
        always added) and interval level.

    Returns
    -------
    DataFrame
        ``subject`` (``ela``, ``math``, ``all``), ``start_year``, ``end_year``, ``school_id`` (``"all"`` =
        district), ``group``, ``variable``, ``n``, ``n_students``, ``start_offset`` (mean grade_equivalent -
        grade in ``start_year``) with ``start_offset_ci_lower`` / ``_upper``, ``growth`` (mean grade levels per
        year) with ``growth_ci_lower`` / ``growth_ci_upper``, ``gap`` (grade levels behind at the start,
        ``max(0, -start_offset)``), ``years_to_close`` (``gap / (growth - 1)``), ``years_to_close_note``,
        ``trajectory_changing`` (start offset < 0 and growth >= ``threshold``; the school flag on rows with
        ``group == "all"``), ``suppressed``, ``suppression_reason``. Empty with ``attrs["needs"]`` without
        grade-equivalent scores in two years.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> g = grade_level_growth(assessments, students=students)
    >>> sorted(g["subject"].unique()), g.attrs["needs"]
    (['all', 'ela', 'math'], [])
    """
    cols = [
        "subject",
        "start_year",
        "end_year",
        "school_id",
        "group",
        "variable",
        "n",
        "n_students",
        "start_offset",
        "start_offset_ci_lower",
        "start_offset_ci_upper",
        "growth",
        "growth_ci_lower",
        "growth_ci_upper",
        "gap",
        "years_to_close",
        "years_to_close_note",
        "trajectory_changing",
        "suppressed",
        "suppression_reason",
    ]
    panel = yearly_panel(data, students=students, window=window, subjects=subjects)
    have = panel.frame["grade_equivalent"].notna().to_numpy()
    years = years_in(panel.frame["school_year"].to_numpy()[have])
    if len(years) < 2:
        return unavailable(cols, needs_ge(window, years))
    start = int(start_year) if start_year is not None else years[0]
    end = int(end_year) if end_year is not None else years[-1]
    if start not in years:
        raise ValueError(
            f"assessments: no {window} grade_equivalent in start_year {start} "
            f"(years: {', '.join(map(str, years))})"
        )
    per = _student_growth(panel, start, end, method)
    if len(per) == 0:
        return unavailable(cols, needs_ge(window, [y for y in years if start <= y <= end]))
    per = per.assign(start_year=start, end_year=end)
    keys = ["subject", "start_year", "end_year"]
    variables = list(variables) + ["started_behind"]
    names = ["start_offset", "growth"]
    # each subject's cells, then the subjects pooled: the frame of every student-subject is not doubled
    cells = subgroup_cells_parts(
        [per],
        keys=keys,
        variables=variables,
        value=names,
        kind="mean",
        confidence=confidence,
        pooled=True,
        text=panel.text,
    )
    out = side_by_side(cells, names, keys)
    out["gap"] = np.maximum(0.0, -out["start_offset"])
    out["years_to_close"] = years_to_close(out["gap"].to_numpy(), out["growth"].to_numpy())
    out["trajectory_changing"] = (out["start_offset"] < 0) & (out["growth"] >= threshold)
    out = complete_table(out, counts=["n", "n_students"])
    out["years_to_close_note"] = pd.Series(
        years_to_close_note(out["gap"].to_numpy(), out["growth"].to_numpy()), index=out.index
    ).astype("str")
    out["trajectory_changing"] = out["trajectory_changing"].astype("boolean")
    out = order_rows(out, keys)[cols]
    out.attrs["needs"] = []
    return out


def trajectory_indicators(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    horizon: int = 3,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
    growth: pd.DataFrame | None = None,
    catch: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Scorecard indicators ``catch_up_rate`` and ``growth_grade_levels`` per school, group and year.

    * ``catch_up_rate`` for school year ``Y``: among students below grade level in ``Y - horizon``, the share at
      grade level in ``Y`` (default ``horizon = 3``: "caught up within three years"), ELA and math pooled.
    * ``growth_grade_levels`` for school year ``Y``: mean grade levels gained from spring ``Y - 1`` to spring
      ``Y`` (:func:`yearly_growth`), ELA and math pooled.

    With the subjects pooled, ``n`` counts student-subject results (a student tested in both subjects counts
    twice); ``n_students`` counts distinct students. ``growth``: :func:`yearly_growth` of the same arguments with
    ``pooled_only=True``, when already made (:func:`movement_and_growth`): not made again. ``catch``:
    :func:`catch_up_rates` of the same arguments (any ``start_year`` and ``years_later``), when already made: its
    rows of the subjects pooled ``horizon`` years after a start year are not made again.

    Returns
    -------
    DataFrame
        The indicator format (:data:`opportunity_research.study.indicators.INDICATOR_COLUMNS`). When one part
        cannot be computed its sentence is in ``attrs["needs"]``; when neither can, the table is empty.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> ind = trajectory_indicators(assessments, students=students)
    >>> sorted(ind["measure"].unique())
    ['catch_up_rate', 'growth_grade_levels']
    """
    data = yearly_panel(data, students=students, window=window, subjects=subjects)  # once for both parts
    # the subjects pooled only, without the starting groups' counts: what the indicator shows (the same rows, to
    # the bit, as catch_up_rates' subject == "all" rows)
    catch = _catch_up(
        data,
        students=students,
        start_year="all",
        years_later=(horizon,),
        window=window,
        subjects=subjects,
        variables=variables,
        confidence=confidence,
        pooled=True,
        start_counts=False,
        known=catch,
    )
    if len(catch) == 0 and not catch.attrs.get("needs"):
        catch.attrs["needs"] = [
            f"assessments.csv with {window} results {horizon} years apart for catch-up rates"
        ]
    if growth is None:
        growth = yearly_growth(
            data,
            students=students,
            window=window,
            subjects=subjects,
            variables=variables,
            confidence=confidence,
            pooled_only=True,  # the indicator is the subjects pooled: not the cells of each subject
        )
    pooled = "all"
    frames = []
    if len(catch):
        frames.append(indicator_rows(catch[catch["subject"] == pooled], measure="catch_up_rate"))
    if len(growth):
        frames.append(indicator_rows(growth[growth["subject"] == pooled], measure="growth_grade_levels"))
    needs = needs_of(*(t for t in (catch, growth) if len(t) == 0))
    if not frames:
        return unavailable(INDICATOR_COLUMNS, needs)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["needs"] = needs
    return out
