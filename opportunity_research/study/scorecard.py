"""The Opportunity Scorecard: a district's indicators per school, compared with the goals it writes.

Three parts live here:

The indicator format
    Every analysis that feeds the scorecard (the resources and multiple measures in
    :mod:`~opportunity_research.study.measures`, belonging / consistency / coherence in
    :mod:`~opportunity_research.study.climate`, catch-up and growth in
    :mod:`~opportunity_research.study.trajectories`) returns, beside its detailed tables, one long table
    with the columns :data:`INDICATOR_COLUMNS`:

    ======================  ===================================================================
    ``measure``             one of :data:`opportunity_research.intake.contract.GOAL_MEASURES`
    ``school_id``           a school, or ``"all"`` for the district
    ``group``               ``"all"`` or ``"<variable>=<level>"`` (``"low_income=1"``,
                            ``"race_ethnicity=black"``), the same spelling as the goals file
    ``school_year``         the school year the value describes (int)
    ``n``                   students (or evidence rows) behind the estimate; ``<NA>`` when suppressed
    ``estimate``            the value (a share 0-1, or grade levels per year); NaN when suppressed
    ``ci_lower/ci_upper``   its 95% interval; NaN when suppressed or not estimable
    ``suppressed``          bool
    ``suppression_reason``  ``""`` unless suppressed (e.g. ``"n < 10"``, ``"complementary"``)
    ======================  ===================================================================

    :func:`validate_indicators` checks a table against the format.

Missing data: the "needs" convention
    When a district lacks the data an analysis needs (no climate survey, one year of
    assessments, no grade-equivalent scores), the analysis functions of ``climate``,
    ``trajectories`` and ``scorecard`` do not raise: they return an *empty* DataFrame with the
    documented columns and ``.attrs["needs"]``, a list of plain sentences naming what is missing
    (e.g. ``"climate_surveys.csv (belonging, consistency and coherence items) for ..."``).
    Results that could be computed carry ``.attrs["needs"] == []``. :func:`unavailable` makes
    such an empty result. (The same convention as
    :func:`opportunity_research.study.equity.multiple_measures_gaps`.)

The scorecard
    :func:`opportunity_scorecard` turns indicators (and optionally a goals table and a gap table)
    into a :class:`Scorecard` of tidy tables (data only: the printable page is
    :func:`opportunity_research.report.presentation.scorecard_page`, written by
    :func:`opportunity_research.report.reporting.write_scorecard`).

Interval helpers shared by the climate and trajectory modules are here too
(:func:`wilson_interval`, :func:`cell_estimates`, :func:`subgroup_estimates`,
:func:`suppress_small_cells`), so that every indicator is computed the same way.

Examples
--------
>>> import pandas as pd
>>> ind = pd.DataFrame({"measure": ["catch_up_rate"] * 2, "school_id": "all", "group": "all",
...                     "school_year": [2015, 2016], "n": [120, 130], "estimate": [0.20, 0.31],
...                     "ci_lower": [0.14, 0.24], "ci_upper": [0.28, 0.39], "suppressed": False,
...                     "suppression_reason": ""})
>>> goals = pd.DataFrame({"goal_id": ["G1"], "measure": ["catch_up_rate"], "group": ["all"],
...                       "baseline_year": [2015], "target": [0.40], "target_year": [2017]})
>>> sc = opportunity_scorecard(ind, goals=goals)
>>> sc.goals[["goal_id", "baseline", "current", "status"]].to_dict("records")
[{'goal_id': 'G1', 'baseline': 0.2, 'current': 0.31, 'status': 'on track'}]
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .. import config
from ..intake.contract import GOAL_MEASURES
from ..report import labels
from ..stats.suppression import suppress

__all__ = [
    "GOAL_STATUSES",
    "GOAL_STATUS_RULES",
    "INDICATOR_COLUMNS",
    "LOWER_IS_BETTER",
    "MEASURE_LABELS",
    "MEASURE_NEEDS",
    "Scorecard",
    "cell_estimates",
    "indicator_rows",
    "largest_gaps",
    "level_strings",
    "needs_of",
    "opportunity_scorecard",
    "subgroup_estimates",
    "suppress_small_cells",
    "unavailable",
    "validate_indicators",
    "wilson_interval",
]

#: Columns of the shared indicator table, in order.
INDICATOR_COLUMNS = ("measure", "school_id", "group", "school_year", "n", "estimate", "ci_lower", "ci_upper",
                     "suppressed", "suppression_reason")
#: Fewest clusters for a cluster-robust interval; below it intervals cluster on the next level down.
MIN_CLUSTERS = 5

#: The statuses a goal can have.
GOAL_STATUSES = ("met", "on track", "off track", "baseline set", "no data")
#: The rule behind each goal status, in the words the scorecard prints.
GOAL_STATUS_RULES = {
    "met": "the latest measured value meets the target (chronic absence: at or below it; every other measure: "
           "at or above it)",
    "on track": "at least two years measured (the baseline year and a later one) and the latest value is at or "
                "past the straight-line path from the baseline to the target",
    "off track": "the latest value is behind that straight-line path, or the target year has passed without "
                 "meeting the target, or no baseline value exists to judge progress from",
    "baseline set": "only the baseline year has been measured so far: progress cannot be judged until a later "
                    "year is measured",
    "no data": "the measure or group has no indicator, or its latest value is suppressed",
}
#: Measures for which a lower value is better (all others: higher is better).
LOWER_IS_BETTER = frozenset({"chronic_absence_rate"})
#: Measures reported in grade levels per year rather than as a share (0-1).
_NOT_SHARES = frozenset({"growth_grade_levels"})

#: Readable names of the scorecard measures (from :mod:`opportunity_research.report.labels`).
MEASURE_LABELS = {m: labels.measure(m) for m in GOAL_MEASURES}
#: What data each measure needs, used when a goal's measure has no indicator at all.
MEASURE_NEEDS = {
    "grade_appropriate_share": "rated assignments (assignments.csv)",
    "strong_instruction_share": "classroom observations (observations.csv)",
    "engaged_share": "student engagement surveys (engagement_surveys.csv)",
    "high_expectations_share": "teacher expectation surveys (teacher_surveys.csv)",
    "belonging_favorable": "climate survey data (climate_surveys.csv)",
    "consistency_favorable": "climate survey data (climate_surveys.csv)",
    "coherence_favorable": "climate survey data (climate_surveys.csv)",
    "catch_up_rate": "spring assessment results in at least two school years (assessments.csv)",
    "growth_grade_levels": "grade-equivalent scores in at least two school years (assessments.grade_equivalent)",
    "chronic_absence_rate": "attendance data (attendance.csv)",
    "advanced_course_rate": "advanced coursework data (advanced_courses.csv)",
}
_GROUP = re.compile(r"^(all|[a-z][a-z0-9_]*=[^=\s][^=]*)$")


# ---------------------------------------------------------------------------------------------
# The "needs" convention and the indicator format


def unavailable(columns: Iterable[str], needs: str | Iterable[str]) -> pd.DataFrame:
    """An empty result with the documented ``columns`` and ``.attrs["needs"]`` (a list of sentences).

    >>> t = unavailable(["n", "estimate"], "climate_surveys.csv for belonging")
    >>> len(t), list(t.columns), t.attrs["needs"]
    (0, ['n', 'estimate'], ['climate_surveys.csv for belonging'])
    """
    out = pd.DataFrame(columns=list(columns))
    out.attrs["needs"] = [needs] if isinstance(needs, str) else list(needs)
    return out


def needs_of(*results: pd.DataFrame) -> list[str]:
    """The ``attrs["needs"]`` sentences of several results, in order, without duplicates."""
    out: list[str] = []
    for r in results:
        for s in (r.attrs.get("needs", []) if r is not None else []):
            if s not in out:
                out.append(s)
    return out


def _normalize_group(value) -> str:
    text = str(value).strip()
    if text == "all" or "=" not in text:
        return text
    var, _, level = text.partition("=")
    level = level.strip()
    if re.fullmatch(r"-?\d+\.0+", level):
        level = level.split(".")[0]
    return f"{var.strip()}={level}"


def validate_indicators(data: pd.DataFrame) -> pd.DataFrame:
    """Check a table against the indicator format and return a normalized copy.

    Columns beyond :data:`INDICATOR_COLUMNS` are kept. Group spellings are normalized
    (``"low_income=1.0"`` -> ``"low_income=1"``); ``n`` becomes ``Int64``, ``school_year`` ``int64``,
    ``suppressed`` ``bool``, ``suppression_reason`` text (``""`` when not suppressed).

    Raises
    ------
    ValueError
        Naming the column and the offending value: a missing column, a measure not in
        ``GOAL_MEASURES``, a malformed group, a missing school year, a suppressed row that still
        shows an estimate, or duplicate (measure, school_id, group, school_year) rows.
    """
    missing = [c for c in INDICATOR_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"indicator table: missing column(s) {', '.join(missing)}")
    out = data.copy()
    if len(out) == 0:
        return out.astype({"n": "Int64", "estimate": float, "ci_lower": float, "ci_upper": float,
                           "suppressed": bool})
    bad = sorted(set(out["measure"].astype(str)) - set(GOAL_MEASURES))
    if bad:
        raise ValueError(f"indicator table: column measure has {bad[0]!r}, not one of contract.GOAL_MEASURES")
    out["group"] = out["group"].map(_normalize_group).astype("str")
    badg = out.loc[~out["group"].str.fullmatch(_GROUP.pattern), "group"]
    if len(badg):
        raise ValueError(f"indicator table: column group has {badg.iloc[0]!r}; use 'all' or '<variable>=<level>'")
    out["school_id"] = out["school_id"].astype("str")
    if out["school_year"].isna().any():
        raise ValueError("indicator table: column school_year has a missing value")
    out["school_year"] = out["school_year"].astype(np.int64)
    out["suppressed"] = out["suppressed"].fillna(False).astype(bool)
    for c in ("estimate", "ci_lower", "ci_upper"):
        out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
    out["n"] = pd.to_numeric(out["n"], errors="raise").astype("Int64")
    shown = out["suppressed"] & (out[["estimate", "ci_lower", "ci_upper"]].notna().any(axis=1) | out["n"].notna())
    if shown.any():
        r = out[shown].iloc[0]
        raise ValueError(f"indicator table: suppressed row ({r['measure']}, {r['school_id']}, {r['group']}, "
                         f"{r['school_year']}) still shows n or an estimate; blank them")
    out["suppression_reason"] = out["suppression_reason"].fillna("").astype("str").where(out["suppressed"], "")
    key = ["measure", "school_id", "group", "school_year"]
    dup = out.duplicated(key)
    if dup.any():
        r = out[dup].iloc[0]
        raise ValueError(f"indicator table: duplicate row for ({r['measure']}, {r['school_id']}, {r['group']}, "
                         f"{r['school_year']})")
    return out


def indicator_rows(table: pd.DataFrame, *, measure: str, year: str = "school_year") -> pd.DataFrame:
    """Reshape a detailed table (``school_id``, ``group``, year, ``n``, estimate/CI, suppression) to indicators."""
    out = table.rename(columns={year: "school_year"}).assign(measure=measure)
    return out[list(INDICATOR_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Intervals and cells


def wilson_interval(successes, n, *, confidence: float = 0.95, critical=None):
    """Wilson score interval for a share (vectorized).

    ``successes`` may be fractional (``share * n_effective``). ``critical`` overrides the normal
    quantile (e.g. a t quantile when the effective sample size comes from clustered data). Returns
    ``(ci_lower, ci_upper)`` as arrays (NaN where ``n`` is 0).

    >>> lo, hi = wilson_interval(3, 10)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.1078, 0.6032)
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + confidence / 2) if critical is None else np.asarray(critical, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denom = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo, hi = np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)
        lo, hi = np.where(x <= 0, 0.0, lo), np.where(x >= n, 1.0, hi)  # exact ends (no rounding residue)
    bad = ~(n > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def cell_estimates(data: pd.DataFrame, *, by: Sequence[str], value: str, kind: str = "mean",
                   cluster: str | None = None, unit: str | None = None, confidence: float = 0.95,
                   min_clusters: int = MIN_CLUSTERS, subcluster: str | None = None) -> pd.DataFrame:
    """Mean or share of ``value`` per cell of ``by``, with an interval (vectorized over cells).

    Rows with a missing ``value`` or key are left out.

    * ``kind="mean"``: t interval; with ``cluster``, the cluster-robust (linearization) variance
      ``G/(G-1) * sum_g (s_g - mean * m_g)^2 / n^2`` on ``G - 1`` degrees of freedom (as
      :func:`opportunity_research.study.measures.cluster_mean_ci`); without, the ordinary ``s^2 / n`` on
      ``n - 1``.
    * ``kind="share"`` (``value`` is 0/1): Wilson score interval. With ``cluster`` (and some cluster
      holding more than one row), the sample size is deflated by the design effect
      ``max(1, cluster-robust variance / binomial variance)`` and the critical value is the t quantile
      on ``G - 1`` degrees of freedom (a Korn-Graubard-style adjustment); otherwise the plain Wilson
      interval.

    A cell whose rows all sit in one cluster, or in clusters of one row each, gets the interval for
    independent rows. A cell with fewer than ``min_clusters`` clusters (default 5: a t quantile on 1-3
    degrees of freedom makes intervals meaningless, e.g. -73% to 186%) is clustered on the next level down
    instead: ``subcluster`` (e.g. classrooms within schools), else ``unit`` (e.g. students with several
    rows), else its rows are independent. Shares (``kind="share"``) may be fractional (means of 0-1 values,
    e.g. a student's share of time with a resource): the binomial variance bounds theirs, so the Wilson
    interval stays inside 0-1. A mean whose rows show no variation gets no interval (NaN: "no variation
    observed"), never a zero-width one; a share of 0 or 1 gets Wilson's one-sided interval.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``n`` (rows), ``n_units`` (distinct ``unit`` values; = ``n`` without
        ``unit``), ``n_clusters``, ``estimate``, ``ci_lower``, ``ci_upper``.
    """
    by = list(by)
    if kind not in ("mean", "share"):
        raise ValueError(f"cell_estimates: kind must be 'mean' or 'share', not {kind!r}")
    extra = [c for c in dict.fromkeys([cluster, unit, subcluster]) if c is not None and c not in by and c != value]
    df = data[by + [value] + extra].dropna(subset=by + [value] + ([cluster] if cluster is not None else []))
    g = df.groupby(by, sort=True, observed=True)
    codes = g.ngroup().to_numpy()
    res = g.size().reset_index()[by]
    m = len(res)
    v = df[value].to_numpy(dtype=float)
    n = np.bincount(codes, minlength=m).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.bincount(codes, weights=v, minlength=m) / n

    def pairs(col):
        """Per (cell, value of col): the cell of each pair, the pair's sum of v and its row count."""
        x = df[col]
        sub = (x.to_numpy(dtype=np.int64) if pd.api.types.is_integer_dtype(x) and len(x) and x.min() >= 0
               else pd.factorize(x)[0].astype(np.int64))
        k = int(sub.max()) + 1 if len(sub) else 1
        inv, uniq = pd.factorize(codes.astype(np.int64) * k + sub)
        return uniq // k, np.bincount(inv, weights=v), np.bincount(inv)

    cl_pairs = pairs(cluster) if cluster is not None else None
    if unit is not None:
        n_units = np.bincount((cl_pairs if unit == cluster else pairs(unit))[0], minlength=m)
    else:
        n_units = n
    ss = np.bincount(codes, weights=(v - est[codes]) ** 2, minlength=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_iid = np.where(n >= 2, ss / (n - 1) / n, np.nan)
    G = n.copy()
    var = var_iid
    clustered = np.zeros(m, dtype=bool)
    if cluster is not None:
        cell, csum, csize = cl_pairs
        n_cl = np.bincount(cell, minlength=m).astype(float)
        r2 = np.bincount(cell, weights=(csum - est[cell] * csize) ** 2, minlength=m)
        # cells in one cluster only (e.g. a one-school district) fall back to independent rows
        clustered = (n_cl >= 2) & (np.bincount(cell, weights=(csize > 1).astype(float), minlength=m) > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(clustered, n_cl / (n_cl - 1) * r2 / n**2, var_iid)
        G = np.where(clustered, n_cl, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        tq = stats.t.ppf(0.5 + confidence / 2, G - 1)
        if kind == "mean":
            half = tq * np.sqrt(var)
            lo, hi = est - half, est + half
        else:
            vbin = est * (1 - est) / n
            deff = np.where(clustered & (vbin > 0), np.maximum(1.0, var / vbin), 1.0)
            n_eff = n / deff
            crit = np.where(clustered, tq, stats.norm.ppf(0.5 + confidence / 2))
            lo, hi = wilson_interval(est * n_eff, n_eff, critical=crit)
        if kind == "mean":  # no variation observed: no interval rather than a zero-width one
            flat = (n >= 2) & ~(var > 0)
            lo, hi = np.where(flat, np.nan, lo), np.where(flat, np.nan, hi)
    res["n"] = n.astype(np.int64)
    res["n_units"] = np.asarray(n_units).astype(np.int64)
    res["n_clusters"] = (n_cl if cluster is not None else n).astype(np.int64)
    res["estimate"], res["ci_lower"], res["ci_upper"] = est, lo, hi
    if cluster is not None and (few := clustered & (n_cl < min_clusters)).any():
        down = subcluster if subcluster is not None else unit if unit not in (None, cluster) else None
        sub = cell_estimates(df, by=by, value=value, kind=kind, cluster=down, unit=unit, confidence=confidence,
                             min_clusters=min_clusters)
        res.loc[few, "ci_lower"] = sub["ci_lower"].to_numpy()[few]
        res.loc[few, "ci_upper"] = sub["ci_upper"].to_numpy()[few]
    return res


def level_strings(values: pd.Series) -> pd.Series:
    """Group levels as text: whole numbers without ``.0`` (``1.0`` -> ``"1"``), text unchanged."""
    text = values.astype("str")
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).astype("str")


def subgroup_estimates(data: pd.DataFrame, *, keys: Sequence[str], variables: Sequence[str], value: str,
                       kind: str = "mean", cluster: str | None = None, unit: str | None = None,
                       confidence: float = 0.95, subcluster: str | None = None) -> pd.DataFrame:
    """:func:`cell_estimates` for everyone (``group="all"``) and for each level of each variable.

    Returns the :func:`cell_estimates` columns with ``keys``, plus ``group`` (``"all"`` or
    ``"<variable>=<level>"``) and ``variable`` (``"all"`` or the variable name).
    """
    frames = [cell_estimates(data, by=keys, value=value, kind=kind, cluster=cluster, unit=unit,
                             confidence=confidence, subcluster=subcluster).assign(group="all", variable="all")]
    for v in variables:
        if v not in data.columns:
            continue
        t = cell_estimates(data, by=list(keys) + [v], value=value, kind=kind, cluster=cluster, unit=unit,
                           confidence=confidence, subcluster=subcluster)
        t["group"] = v + "=" + level_strings(t[v])
        frames.append(t.drop(columns=[v]).assign(variable=v))
    out = pd.concat(frames, ignore_index=True)
    out["group"] = out["group"].astype("str")
    out["variable"] = out["variable"].astype("str")
    return out


def two_level_estimates(frame: pd.DataFrame, *, keys: list[str], variables, value: str, kind: str, cluster: str | None,
                confidence: float, subcluster: str | None = None) -> pd.DataFrame:
    """District rows (``school_id="all"``, clustered) and school rows (independent) of subgroup estimates.

    ``frame`` needs a ``_sid`` column of student codes (the unit counted for suppression). With fewer than
    :data:`MIN_CLUSTERS` clusters the district rows cluster on ``subcluster`` (else on students)."""
    dist = subgroup_estimates(frame, keys=keys, variables=variables, value=value, kind=kind, cluster=cluster,
                              unit="_sid", confidence=confidence, subcluster=subcluster).assign(school_id="all")
    sch = subgroup_estimates(frame, keys=keys + ["school_id"], variables=variables, value=value, kind=kind,
                             cluster=None, unit="_sid", confidence=confidence)
    return pd.concat([dist, sch], ignore_index=True)


def suppress_small_cells(table: pd.DataFrame, *, keys: Sequence[str] = (), count: str = "n_units",
                         min_n: int = config.MIN_CELL_SIZE, blank: Sequence[str] = (), across_schools: bool = True,
                         estimates: Mapping[str, tuple[float, float] | None] | None = None) -> pd.DataFrame:
    """Primary and complementary suppression of a table of school x student-group cells; returns a copy.

    The table holds, for each combination of ``keys`` (e.g. year and scale), cells identified by
    ``school_id`` (``"all"`` = district), ``variable`` (``"all"`` or a group variable) and ``group``.
    Two kinds of sets of cells add up to a shown total: the levels of a variable within one school
    (total: the school's ``group == "all"`` cell), and, with ``across_schools``, the schools' cells of one
    group (total: the district's cell). The rules are those of
    :func:`opportunity_research.stats.suppression.suppress`, applied to each set in turn and repeated in both
    directions until nothing changes:

    * primary: a cell describing fewer than ``min_n`` units (``count``, e.g. distinct students) is
      suppressed (reason ``"n < {min_n}"``);
    * complementary: further cells (the smallest shown first) are suppressed until no hidden cell can be
      recovered from the total and the shown cells, nor its count pinned down, nor, for each column of
      ``estimates`` (``{column: (low, high)}``), every hidden value revealed by the hidden cells' combined
      mean sitting at a bound (reason ``"complementary"``).

    Totals (``variable == "all"`` and the district rows) are suppressed only by the primary rule. Not
    covered: students in a total but in none of its cells (e.g. a missing group value), which the
    contract rules out. The ``blank`` columns of suppressed rows are set to missing (``n*`` columns become
    ``Int64``).

    Returns
    -------
    DataFrame
        ``table`` with ``suppressed`` (bool) and ``suppression_reason`` (``""`` when shown).
    """
    out = table.reset_index(drop=True).copy()
    keys = list(keys)
    n = out[count].to_numpy(dtype=float)
    primary = ~(n >= min_n)
    sup = primary.copy()
    directions = [((out["variable"] != "all").to_numpy(), keys + ["school_id", "variable"], "group")]
    if across_schools:
        directions.append(((out["school_id"] != "all").to_numpy(), keys + ["group"], "school_id"))
    checks = list((estimates or {}).items()) or [(None, None)]
    cols = list(dict.fromkeys(keys + ["school_id", "variable", "group", count] + [c for c, _ in checks if c]))
    for _ in range(100):
        before = sup.copy()
        for members, by, level in directions:
            members = members & (n > 0)
            if not members.any():
                continue
            for est, bounds in checks:
                sub = out.loc[members, cols].copy()
                sub["suppressed"] = sup[members]
                sub["suppression_reason"] = np.where(primary[members], f"n < {min_n}",
                                                     np.where(sup[members], "complementary", ""))
                res = suppress(sub, n_columns=[count], value_columns=[], min_n=min_n, by=by, level_column=level,
                               reference_column="_no_reference", estimate_column=est or "_no_estimate",
                               bounds=bounds)
                sup[members] = res["suppressed"].to_numpy(dtype=bool)
        if (sup == before).all():
            break
    out["suppressed"] = sup
    out["suppression_reason"] = pd.Series(np.where(primary, f"n < {min_n}", np.where(sup, "complementary", "")),
                                          index=out.index, dtype="str")
    for c in blank:
        if c.startswith("n"):
            out[c] = out[c].astype("Int64").mask(out["suppressed"])
        else:
            out[c] = out[c].astype(float).mask(out["suppressed"])
    return out


# ---------------------------------------------------------------------------------------------
# The scorecard


@dataclass(frozen=True)
class Scorecard:
    """An Opportunity Scorecard (read-only tables).

    Attributes
    ----------
    table
        One row per school (``"all"`` = district), measure and group: the value in the latest year
        (at or before ``current_year``) with its interval and suppression, and the trend (first year,
        its value, change). Columns: ``school_id``, ``measure``, ``label``, ``group``, ``school_year``,
        ``n``, ``estimate``, ``ci_lower``, ``ci_upper``, ``suppressed``, ``suppression_reason``,
        ``n_years``, ``first_year``, ``first_estimate``, ``change``.
    goals
        One row per goal: ``goal_id``, ``measure``, ``label``, ``group``, ``description``,
        ``baseline_year``, ``baseline``, ``target``, ``target_year``, ``current_year``, ``current``,
        ``ci_lower``, ``ci_upper``, ``n``, ``expected`` (value on the straight-line path in
        ``current_year``), ``status`` (one of :data:`GOAL_STATUSES`), ``reason``.
    largest_gaps
        Per resource (and subject): the group with the largest negative unsuppressed difference.
    needs
        What the district would need to provide for the measures it lacks.
    """

    table: pd.DataFrame
    goals: pd.DataFrame
    largest_gaps: pd.DataFrame
    needs: tuple[str, ...] = ()
    min_n: int = config.MIN_CELL_SIZE
    current_year: int | None = None
    schools: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        counts = self.goals["status"].value_counts().to_dict() if len(self.goals) else {}
        return (f"Scorecard({self.table['school_id'].nunique() if len(self.table) else 0} school rows incl. district, "
                f"{self.table['measure'].nunique() if len(self.table) else 0} measures, goals {counts})")


def _fmt_value(measure: str, x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "n/a"
    if measure in _NOT_SHARES:
        return f"{x:.2f}"
    return f"{100 * x:.0f}%"


def _trend_table(ind: pd.DataFrame, current_year: int | None) -> pd.DataFrame:
    key = ["school_id", "measure", "group"]
    cols = key + ["school_year", "n", "estimate", "ci_lower", "ci_upper", "suppressed", "suppression_reason"]
    if current_year is not None:
        ind = ind[ind["school_year"] <= current_year]
    if len(ind) == 0:
        return pd.DataFrame(columns=cols[:3] + ["label"] + cols[3:] + ["n_years", "first_year", "first_estimate",
                                                                      "change"])
    ind = ind.sort_values(key + ["school_year"])
    g = ind.groupby(key, sort=False)
    last = g.tail(1).set_index(key)
    first = g.head(1).set_index(key)
    out = last[cols[3:]].copy()
    out["n_years"] = g.size()
    out["first_year"] = first["school_year"]
    out["first_estimate"] = first["estimate"]
    several = out["n_years"] > 1
    out["first_year"] = out["first_year"].where(several).astype("Int64")
    out["first_estimate"] = out["first_estimate"].where(several)
    out["change"] = out["estimate"] - out["first_estimate"]
    out = out.reset_index()
    out.insert(3, "label", out["measure"].map(MEASURE_LABELS).astype("str"))
    order = {m: i for i, m in enumerate(GOAL_MEASURES)}
    out = out.assign(_s=out["school_id"].ne("all"), _m=out["measure"].map(order), _g=out["group"].ne("all"))
    out = out.sort_values(["_s", "school_id", "_m", "_g", "group"]).drop(columns=["_s", "_m", "_g"])
    return out.reset_index(drop=True)


def _goal_rows(goals: pd.DataFrame, ind: pd.DataFrame, current_year: int | None, min_n: int) -> pd.DataFrame:
    required = ["goal_id", "measure", "group", "target", "target_year"]
    missing = [c for c in required if c not in goals.columns]
    if missing:
        raise ValueError(f"goals table: missing column(s) {', '.join(missing)}")
    district = ind[ind["school_id"] == "all"]
    if current_year is not None:
        district = district[district["school_year"] <= current_year]
    series = {k: v.sort_values("school_year") for k, v in district.groupby(["measure", "group"], sort=False)}
    measures_present = set(district["measure"])
    rows = []
    for g in goals.itertuples(index=False):
        gd = g._asdict()
        measure = str(gd["measure"]).strip()
        group = _normalize_group(gd["group"]) if pd.notna(gd["group"]) else "all"
        target = float(gd["target"])
        if measure not in GOAL_MEASURES:
            raise ValueError(f"goals table: goal {gd['goal_id']}: measure {measure!r} is not one of "
                             "contract.GOAL_MEASURES")
        if measure not in _NOT_SHARES and target > 1:
            warnings.warn(f"goals table: goal {gd['goal_id']}: target {target:g} for share measure {measure} read "
                          f"as a percentage ({target / 100:g})", stacklevel=3)
            target = target / 100
        by = gd.get("baseline_year")
        by = int(by) if by is not None and pd.notna(by) else None
        ty = int(gd["target_year"])
        row = {"goal_id": str(gd["goal_id"]), "measure": measure, "label": MEASURE_LABELS[measure], "group": group,
               "description": "" if pd.isna(gd.get("description", None)) else str(gd.get("description")),
               "baseline_year": by, "baseline": np.nan, "target": target, "target_year": ty,
               "current_year": None, "current": np.nan, "ci_lower": np.nan, "ci_upper": np.nan, "n": pd.NA,
               "expected": np.nan, "status": "no data", "reason": ""}
        s = series.get((measure, group))
        if s is None or len(s) == 0:
            row["reason"] = (f"no data for this group ({group})" if measure in measures_present
                             else f"no data: needs {MEASURE_NEEDS[measure]}")
            rows.append(row)
            continue
        cur = s.iloc[-1]
        row["current_year"] = int(cur["school_year"])
        if by is not None:
            base = s[s["school_year"] == by]
            if len(base) and not base["suppressed"].iloc[0]:
                row["baseline"] = float(base["estimate"].iloc[0])
        if cur["suppressed"]:
            reason = cur["suppression_reason"] or f"n < {min_n}"
            row["reason"] = f"suppressed ({reason}) in {row['current_year']}"
            rows.append(row)
            continue
        if pd.isna(cur["estimate"]):
            row["reason"] = f"no estimate in {row['current_year']}"
            rows.append(row)
            continue
        current = float(cur["estimate"])
        row.update(current=current, ci_lower=float(cur["ci_lower"]), ci_upper=float(cur["ci_upper"]), n=cur["n"])
        lower = measure in LOWER_IS_BETTER
        better_or_equal = (lambda a, b: a <= b + 1e-12) if lower else (lambda a, b: a >= b - 1e-12)
        cy = row["current_year"]
        if better_or_equal(current, target):
            row["status"] = "met"
            row["reason"] = f"{_fmt_value(measure, current)} meets the target of {_fmt_value(measure, target)}"
        elif cy >= ty:
            row["status"], row["reason"] = "off track", f"target year {ty} reached without meeting the target"
        elif by is not None and cy <= by:
            row["status"] = "baseline set"
            row["reason"] = (f"only the baseline year {by} is measured ({_fmt_value(measure, current)}); progress "
                             f"can be judged once a later year is measured")
        elif math.isnan(row["baseline"]):
            row["status"] = "off track"
            row["reason"] = ("no baseline year given; target not met" if by is None
                             else f"no unsuppressed baseline value for {by}; target not met")
        else:
            b = row["baseline"]
            frac = min(max((cy - by) / (ty - by), 0.0), 1.0) if ty != by else 1.0
            expected = b + (target - b) * frac
            row["expected"] = expected
            if better_or_equal(current, expected):
                row["status"] = "on track"
                row["reason"] = (f"{_fmt_value(measure, current)} is at or past the straight-line path from the "
                                 f"baseline ({_fmt_value(measure, expected)} expected in {cy})")
            else:
                row["status"] = "off track"
                row["reason"] = (f"{_fmt_value(measure, current)} is behind the straight-line path from the "
                                 f"baseline ({_fmt_value(measure, expected)} expected in {cy})")
        rows.append(row)
    cols = ["goal_id", "measure", "label", "group", "description", "baseline_year", "baseline", "target",
            "target_year", "current_year", "current", "ci_lower", "ci_upper", "n", "expected", "status", "reason"]
    out = pd.DataFrame(rows, columns=cols)
    for c in ("baseline_year", "target_year", "current_year", "n"):
        out[c] = out[c].astype("Int64")
    for c in ("baseline", "target", "current", "ci_lower", "ci_upper", "expected"):
        out[c] = out[c].astype(float)
    return out


def largest_gaps(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per resource (``measure``, and ``subject`` if present): the group level furthest below its reference.

    ``gaps`` is a tidy gap table (:func:`opportunity_research.stats.gaps.gap_table` columns plus ``measure``,
    e.g. :func:`opportunity_research.study.equity.resource_gaps`). Among unsuppressed rows with a negative
    ``difference``, the most negative is kept. A resource with no such row gets a row with missing
    values and ``note`` saying so.

    Returns
    -------
    DataFrame
        ``measure``, ``label``, [``subject``], ``group``, ``level``, ``group_label`` (``"var=level"``),
        ``n``, ``estimate``, ``reference``, ``reference_estimate``, ``difference``, ``ci_lower``,
        ``ci_upper``, ``note``.
    """
    keys = ["measure"] + (["subject"] if "subject" in gaps.columns else [])
    cols = keys[:1] + ["label"] + keys[1:] + ["group", "level", "group_label", "n", "estimate", "reference",
                                               "reference_estimate", "difference", "ci_lower", "ci_upper", "note"]
    if gaps is None or len(gaps) == 0:
        return pd.DataFrame(columns=cols)
    g = gaps.copy()
    if "label" not in g.columns:
        g["label"] = g["measure"]
    g["group_label"] = g["group"].astype("str") + "=" + level_strings(g["level"])
    neg = g[~g["suppressed"].astype(bool) & (g["difference"] < 0)]
    best = neg.loc[neg.groupby(keys, sort=False)["difference"].idxmin()] if len(neg) else neg
    allkeys = g[keys + ["label"]].drop_duplicates(keys)
    out = allkeys.merge(best.drop(columns=["label"]), on=keys, how="left")
    out["note"] = np.where(out["difference"].isna(), "no unsuppressed group below its reference", "")
    return out[[c for c in cols if c in out.columns]].reset_index(drop=True)


def opportunity_scorecard(indicators: pd.DataFrame, *, goals: pd.DataFrame | None = None,
                          gaps: pd.DataFrame | None = None, current_year: int | None = None,
                          min_n: int = config.MIN_CELL_SIZE, needs: Iterable[str] | None = None,
                          school_names: Mapping[str, str] | None = None) -> Scorecard:
    """Build the Opportunity Scorecard from indicator tables and the district's goals.

    Parameters
    ----------
    indicators
        One table (or the concatenation of several) in the indicator format (:data:`INDICATOR_COLUMNS`).
        Rows describing fewer than ``min_n`` are suppressed here too.
    goals
        The district's goals (contract table ``goals``): ``goal_id``, ``measure``, ``group``,
        ``baseline_year`` (may be missing), ``target`` (a share 0-1, or grade levels per year for
        ``growth_grade_levels``; a share target above 1 is read as a percentage, with a warning),
        ``target_year``, ``description``. Goals are about the district (``school_id == "all"``).
    gaps
        Optional tidy gap table of the resources (e.g. ``equity.resource_gaps``) for the "largest
        gaps" panel.
    current_year
        The year to report; default the latest year of each measure. The current value of a measure
        is its latest value at or before this year.
    min_n
        Smallest reported cell.
    needs
        Sentences naming missing data (default: the ``attrs["needs"]`` of ``indicators``).
    school_names
        Optional ``{school_id: name}`` for display.

    Returns
    -------
    Scorecard
        ``table``, ``goals``, ``largest_gaps`` and ``needs``. Goal status rule: **met** when the
        current value meets the target (``chronic_absence_rate``: at or below; all others: at or
        above); **baseline set** when the current year is the baseline year (one measured year: nothing to
        track yet); otherwise **on track** when a baseline value exists for ``baseline_year`` and the
        current value, in a later year, is at or past the straight-line path from the baseline (at
        ``baseline_year``) to the target (at ``target_year``); otherwise **off track** (also when
        the target year has passed); **no data** when the measure or group has no indicator or its
        current value is suppressed (the reason says which, e.g. ``"suppressed (n < 10) in 2016"``).
        :data:`GOAL_STATUS_RULES` states each rule in words for the printed scorecard.
    """
    need_list = list(needs) if needs is not None else list(indicators.attrs.get("needs", []))
    ind = validate_indicators(indicators)
    small = ~ind["suppressed"] & ind["n"].notna() & (ind["n"] < min_n)
    if small.any():
        ind.loc[small, "suppressed"] = True
        ind.loc[small, "suppression_reason"] = f"n < {min_n}"
        ind.loc[small, ["estimate", "ci_lower", "ci_upper"]] = np.nan
        ind["n"] = ind["n"].mask(small)
    table = _trend_table(ind, current_year)
    goal_table = (_goal_rows(goals, ind, current_year, min_n) if goals is not None and len(goals)
                  else _goal_rows(pd.DataFrame(columns=["goal_id", "measure", "group", "target", "target_year"]),
                                  ind, current_year, min_n))
    gap_panel = largest_gaps(gaps) if gaps is not None else largest_gaps(pd.DataFrame())
    return Scorecard(table=table, goals=goal_table, largest_gaps=gap_panel, needs=tuple(need_list), min_n=min_n,
                     current_year=current_year, schools=dict(school_names or {}))
