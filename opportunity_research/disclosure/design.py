"""What a district publishes at all: pooled race/ethnicity groups, and no school "all other students" rows.

Suppression (:mod:`~opportunity_research.disclosure.protection`) hides cells of a published set; this module
decides the set, before suppression, the way state report cards do. Both steps lower the information loss
(cells hidden beyond the small cells, per small cell) at the same protection, because a small cell that is not
published needs no complement:

* :func:`~opportunity_research.study.analysis.pool_small_groups` (run by the analysis before anything else;
  not imported here, so that the publish gate's process need not load the statistics): the race/ethnicity groups with fewer than ``pool_below`` students in the whole
  district (default ``2 * min_n``) are pooled into one group, :data:`POOLED_LEVEL`, before any analysis; only
  the pooled group is published (every table, estimate and interval is computed on it, never recombined from
  hidden parts). Pooling happens only when at least two groups are that small, never for a reference group.
* :func:`never_published` (the published path, :func:`~opportunity_research.disclosure.joint.protect_district`):
  schools' "all other students" rows of yes/no groups (level ``0`` of a 0/1 variable at a school) are never
  published, in any district: each is the school's all-students row minus its level-``1`` row. The rule does
  not depend on the data, so these rows are not information loss; they are still audited as hidden cells
  (a small one is protected like any small cell). Every other row is published or hidden cell by cell.
* :func:`unshown_trend_rows` (the published path): a school's scorecard indicator in a year that is neither the
  first nor the last of its measure and group is shown on no page and in no file (the scorecard shows the last
  year's value and count and the first year's value; the goals read district rows only), so it is not in the
  published set the pass protects and audits (it was: counted as a published cell, and its count as known to an
  attacker). The scorecard still counts its years.
* :func:`school_breakdowns` (the earlier design, kept for comparison in ``benchmarks/bench_disclosure.py``):
  schools' figures broken down by a group variable in a school year are published only where every group of
  that variable has at least ``min_n`` students (or none) at every school in every table; otherwise the
  school breakdowns of that variable and year are left out (in any table, at any school). Its rows left out
  depend on the data and count as loss; measured on the demo districts it withheld more than cell-by-cell
  suppression with :func:`never_published` in every district (README, disclosure section).

Measured on the demo districts (cells hidden beyond the small cells, per small cell): see the README's
disclosure section and ``benchmarks/bench_disclosure.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import config
from ..intake.contract import POOLED_RACE_ETHNICITY
from .model import TableSpec

__all__ = [
    "CELL_BY_CELL_MAX_SCHOOL_ROWS",
    "POOLED_LEVEL",
    "never_published",
    "school_breakdowns",
    "school_rows",
    "unshown_trend_rows",
]

#: The code of the pooled race/ethnicity group (its label: ``study.labels.level``).
POOLED_LEVEL = POOLED_RACE_ETHNICITY


def _group_parts(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``group`` as its variable and level (``"ell=1"``: ``"ell"``, ``"1"``; ``"all"``: ``"all"``,
    ``"all"``), split once per distinct group (a text split per row took seconds at 1,000,000 students)."""
    code, uniq = pd.factorize(df["group"].astype("str").to_numpy(dtype=object), use_na_sentinel=False)
    parts = [u.split("=", 1) if "=" in u else ["all", "all"] for u in uniq.tolist()]
    var = np.array([p[0] for p in parts] + [""], dtype=object)[:-1]  # (an object array of the strings)
    lev = np.array([p[-1] for p in parts] + [""], dtype=object)[:-1]
    return var[code], lev[code]


def _variable(df: pd.DataFrame) -> np.ndarray:
    if "variable" in df.columns:
        return df["variable"].astype("str").to_numpy(dtype=object)
    return _group_parts(df)[0]


def never_published(tables: dict[str, tuple[pd.DataFrame, TableSpec]]) -> dict[str, np.ndarray]:
    """The rows the publication design never publishes, the same in every district: schools' "all other
    students" rows of a yes/no group.

    In a ``"cell"`` table with schools, a school's row for level ``0`` of a variable whose levels are ``0``
    and ``1`` (students who are not English learners, not low-income, without a disability) is the school's
    all-students row minus its level-``1`` row, so publishing it tells a reader nothing new, and it is a
    further count an attacker could set against a hidden one. These rows are never published (the
    district's rows are, and the gap tables compare each group with all other students). They are passed to
    :func:`~opportunity_research.disclosure.protection.protect_tables` as ``never_published``: audited as
    hidden cells (a small one is protected like any small cell), never counted as information loss since
    the rule does not depend on the data.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_id": ["A", "A", "A", "A", "all", "all"],
    ...                   "group": ["all", "ell=1", "ell=0", "race=white", "ell=1", "ell=0"], "n": 20})
    >>> never_published({"t": (t, TableSpec("cell"))})["t"].tolist()
    [False, False, True, False, False, False]
    """
    out = {}
    for name, (df, spec) in tables.items():
        if spec.style != "cell" or "school_id" not in df.columns or not len(df):
            continue
        var = pd.Series(_variable(df), index=df.index)
        lev = pd.Series(_group_parts(df)[1], index=df.index, dtype=object)
        levels = lev.groupby(var).agg(lambda x: frozenset(x))
        flags = {v for v, ls in levels.items() if v != "all" and ls <= {"0", "1"}}
        drop = (df["school_id"].astype("str") != "all") & var.isin(flags) & (lev == "0")
        if drop.any():
            out[name] = drop.to_numpy(dtype=bool)
    return out


def unshown_trend_rows(indicators: pd.DataFrame) -> np.ndarray:
    """Rows of the scorecard's indicator table (every year) that no page or file shows.

    The scorecard (:func:`~opportunity_research.study.scorecard.opportunity_scorecard`) shows, per school,
    measure and group, the last year's row (value, interval, count) and the first year's value (its trend);
    the goals read the district's rows. A school's row of any other year is counted in ``n_years`` and shown
    nowhere, so the joint pass leaves it out of the published set: it is not a published cell (hiding it is
    no loss) and its count is not something an attacker reads. Returns the mask of those rows.

    Examples
    --------
    >>> import pandas as pd
    >>> ind = pd.DataFrame({"school_id": ["A"] * 4 + ["all"] * 3, "measure": "growth", "group": "all",
    ...                     "school_year": [2013, 2014, 2015, 2016, 2014, 2015, 2016], "n": 40})
    >>> unshown_trend_rows(ind).tolist()  # A's 2014 and 2015; every district row is kept (goals read them)
    [False, True, True, False, False, False, False]
    """
    if not len(indicators) or not {"school_id", "measure", "group", "school_year"} <= set(indicators.columns):
        return np.zeros(len(indicators), dtype=bool)
    key = [indicators[c].astype("str").to_numpy(dtype=object) for c in ("school_id", "measure", "group")]
    year = pd.to_numeric(indicators["school_year"], errors="coerce").to_numpy(dtype=float)
    frame = pd.DataFrame({"s": key[0], "m": key[1], "g": key[2], "y": year})
    by = frame.groupby(["s", "m", "g"], sort=False)["y"]
    middle = (frame["y"] > by.transform("min")) & (frame["y"] < by.transform("max"))
    return (middle & (frame["s"] != "all")).to_numpy(dtype=bool)


#: Above this many school rows (a school's row for a group, summed over the published tables), schools' group
#: rows are not protected cell by cell: a variable's school breakdowns are left out for a year where one
#: school's group is small (:func:`school_breakdowns`). Measured (``benchmarks/bench_disclosure.py``, README):
#: cell by cell, a 10,000-student district (about 8,000 school rows) takes 10-150 s in the protection pass and a
#: 100,000-student one (about 100,000 rows) did not finish in 15 minutes; leaving breakdowns out, seconds.
CELL_BY_CELL_MAX_SCHOOL_ROWS = 20_000


def school_rows(tables: dict[str, tuple[pd.DataFrame, TableSpec]]) -> int:
    """Rows of the published tables that describe a group at one school (not the district, not all students).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_id": ["A", "A", "all"], "group": ["all", "ell=1", "ell=1"], "n": 20})
    >>> school_rows({"t": (t, TableSpec("cell"))})
    1
    """
    return sum(
        int(((df["school_id"].astype("str") != "all") & (df["group"].astype("str") != "all")).sum())
        for df, _ in tables.values()
        if {"school_id", "group"} <= set(df.columns)
    )


def school_breakdowns(
    tables: dict[str, tuple[pd.DataFrame, TableSpec]],
    *,
    min_n: int = config.MIN_CELL_SIZE,
    year: int | None = None,
) -> tuple[dict[str, tuple[pd.DataFrame, TableSpec]], dict[str, np.ndarray]]:
    """Mark the school breakdowns by a group variable to leave out: every school, every table, one year.

    A school's rows for a group variable (e.g. race/ethnicity) in a school year are published only if, in
    every ``"cell"`` table of students and at every school, each group of that variable has 0 or at least
    ``min_n`` students (or results) in every count column; otherwise the rows of that variable and year at
    every school of every table are left out (each school's all-students rows and the district's rows stay).
    Leaving out one school only would not do: the district's row minus the other schools' rows gives it back,
    and a count of the same group in another table approximates it. The rows left out are returned
    *suppressed* (with their counts) and a mask of them, for
    :func:`~opportunity_research.disclosure.protection.protect_tables` (``unpublished``), which audits them as
    hidden cells and leaves them out of what it returns.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_id": ["A", "A", "A", "B", "B", "B"],
    ...                   "group": ["all", "ell=1", "ell=0"] * 2, "n": [50, 4, 46, 60, 20, 40]})
    >>> out, left_out = school_breakdowns({"t": (t, TableSpec("cell"))}, min_n=10, year=2016)
    >>> left_out["t"].tolist()  # school A has 4 English learners: no school's breakdown by ell is published
    [False, True, True, False, True, True]
    """

    def frame(df, spec):
        var = _variable(df)
        school = df["school_id"].astype("str").to_numpy(dtype=object)
        yr = (
            pd.to_numeric(df[spec.year], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if spec.year and spec.year in df.columns
            else np.full(len(df), np.nan if year is None else float(year))
        )
        counts = [
            pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            for c in spec.counts
            if c in df.columns
        ]
        small = np.zeros(len(df), dtype=bool)
        for n in counts:
            small |= (n > 0) & (n < min_n)
        cand = (school != "all") & (var != "all")
        return var, yr, cand, small

    use = {
        name: (df, spec)
        for name, (df, spec) in tables.items()
        if spec.style == "cell" and "school_id" in df.columns and len(df) and spec.unit == "students"
    }
    bad, frames = set(), {name: frame(df, spec) for name, (df, spec) in use.items()}
    for var, yr, cand, small in frames.values():
        bad |= set(zip(yr[cand & small].tolist(), var[cand & small].tolist()))
    # (a year, a variable) with a small group at a school: by value (a missing year matches none, as a NaN in a
    # set of tuples matches only itself)
    bad = {(y, v) for y, v in bad if y == y}  # noqa: PLR0124
    out, left_out = dict(tables), {}
    for name, (df, spec) in use.items():
        var, yr, cand, _ = frames[name]
        keys = pd.MultiIndex.from_arrays([yr, var])
        drop = cand & ~np.isnan(yr) & (keys.isin(list(bad)) if bad else np.zeros(len(df), dtype=bool))
        if drop.any():
            old = (
                df["suppressed"].fillna(False).astype(bool).to_numpy()
                if "suppressed" in df.columns
                else np.zeros(len(df), dtype=bool)
            )
            out[name] = (df.assign(suppressed=old | drop), spec)  # the other columns shared, not copied
            left_out[name] = drop
    return out, left_out
