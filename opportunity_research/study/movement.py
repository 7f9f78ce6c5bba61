"""Year-to-year movement: growth in grade levels from one spring to the next, and movement between
performance levels (transition matrices, shares who moved up or down).

Definitions: see :mod:`opportunity_research.study.trajectories`, which re-exports these functions. Each takes
the assessments table or its :class:`~opportunity_research.study.panels.YearlyPanel` (built once for every
trajectory table by :func:`~opportunity_research.study.panels.yearly_panel`).

Examples
--------
>>> from opportunity_research.synth.districts import generate_districts
>>> from opportunity_research.synth.specs import METRO
>>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
>>> m = level_movement(tables["assessments"], students=tables["students"])
>>> {"moved_up", "moved_down"} <= set(m.columns)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..intake.contract import SUBJECTS_TESTED
from ..stats.estimates import complete_table, text_back, wilson_interval
from .indicators import unavailable
from .panels import (
    VARIABLES,
    YearlyPanel,
    later_rows,
    needs_ge,
    needs_years,
    order_rows,
    panel_rows,
    side_by_side,
    subgroup_cells_parts,
    yearly_panel,
)

__all__ = ["level_movement", "level_transitions", "yearly_growth"]


def _year_pairs(
    data, *, students, window, subjects, column, used, pairs
) -> tuple[pd.DataFrame, list[int], dict]:
    """Year-to-year pairs of results with ``column`` present, the school years found (for 'needs') and the text
    dtypes of the pairs' category columns.

    Each student's result in year t joined to their result in t + 1 (same subject), on integer codes: the
    ``used`` columns of the earlier result (those the panel has), ``from_year``, ``to_year`` and the ``pairs``
    columns, ``{name: (column, "from" or "to")}``, of either result.
    """
    panel, found, years = _pair_rows(data, students=students, window=window, subjects=subjects, column=column)
    cur = np.concatenate([c for c, _ in found]) if found else np.zeros(0, dtype=np.int64)
    nxt = np.concatenate([n for _, n in found]) if found else np.zeros(0, dtype=np.int64)
    order = np.argsort(
        cur, kind="stable"
    )  # the pairs in the order of their earlier result (all years at once)
    return _pair_frame(panel, cur[order], nxt[order], used, pairs), years, panel.text


def _pair_rows(data, *, students, window, subjects, column):
    """The panel, the pairs of each later year (the positions of their earlier and later results, in the order
    of the earlier; later years without a pair left out) and the school years with ``column`` present."""
    panel = yearly_panel(data, students=students, window=window, subjects=subjects)
    year = panel.frame["school_year"].to_numpy()
    have = np.flatnonzero(panel.frame[column].notna().to_numpy())
    years = sorted(int(y) for y in np.unique(year[have]))
    found = []
    for y in years[1:]:  # one later year at a time: the join's memory is a year's
        cur, nxt = later_rows(panel, have[year[have] == y - 1], have[year[have] == y], 1)
        if len(cur):
            found.append((cur, nxt))
    return panel, found, years


def _pair_frame(panel: YearlyPanel, cur, nxt, used, pairs) -> pd.DataFrame:
    """The frame of the pairs ``cur``, ``nxt`` (positions in the panel; see :func:`_year_pairs`)."""
    year = panel.frame["school_year"].to_numpy()
    used = [c for c in dict.fromkeys(used) if c in panel.frame.columns]
    out = panel_rows(panel, cur, used).assign(from_year=year[cur], to_year=year[nxt])
    for name, (c, which) in pairs.items():
        out[name] = panel_rows(panel, cur if which == "from" else nxt, [c])[c]
    return out


def _pair_parts(panel: YearlyPanel, found, used, pairs, derive):
    """:func:`_pair_frame` of the pairs of one later year at a time (``found``, of :func:`_pair_rows`), each with
    ``derive(frame)``'s columns: every cell of the year-to-year tables lies within one later year
    (:func:`~.panels.subgroup_cells_parts`)."""
    for cur, nxt in found:
        yield derive(_pair_frame(panel, cur, nxt, used, pairs))


def yearly_growth(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
    pooled_only: bool = False,
) -> pd.DataFrame:
    """Growth in grade levels from one spring to the next, per school year (the year-by-year trend).

    For school year ``Y``: the mean of ``grade_equivalent(Y) - grade_equivalent(Y - 1)`` over students tested
    in both springs. ``started_behind`` = below grade level in ``Y - 1``. ``pooled_only=True``: only the rows of
    the subjects pooled (``subject == "all"``; the scorecard's indicator), the same as those rows of the full
    table.

    Returns
    -------
    DataFrame
        ``subject`` (``ela``, ``math``, ``all``), ``school_year`` (the later year), ``school_id``, ``group``,
        ``variable``, ``n``, ``n_students``, ``estimate`` (grade levels gained), ``ci_lower``, ``ci_upper``,
        ``suppressed``, ``suppression_reason``. Empty with ``attrs["needs"]`` without grade-equivalent scores
        in two consecutive years.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> g = yearly_growth(assessments, students=students)
    >>> sorted(g["subject"].unique())
    ['all', 'ela', 'math']
    >>> pooled = yearly_growth(assessments, students=students, pooled_only=True)
    >>> pooled.equals(g[g["subject"] == "all"].reset_index(drop=True))
    True
    """
    cols = [
        "subject",
        "school_year",
        "school_id",
        "group",
        "variable",
        "n",
        "n_students",
        "estimate",
        "ci_lower",
        "ci_upper",
        "suppressed",
        "suppression_reason",
    ]
    panel, found, years = _pair_rows(
        data, students=students, window=window, subjects=subjects, column="grade_equivalent"
    )
    if not found:
        return unavailable(cols, needs_ge(window, years))

    def derive(pairs):
        return pairs.assign(
            gain=pairs["ge_to"] - pairs["ge_from"],
            started_behind=1 - pairs["at_grade_level"],
            school_year=pairs["to_year"],
        )

    keys = ["subject", "school_year"]
    out = subgroup_cells_parts(
        _pair_parts(
            panel,
            found,
            used=["subject", "school_id", *variables, "_sid"],
            pairs={
                "ge_from": ("grade_equivalent", "from"),
                "ge_to": ("grade_equivalent", "to"),
                "at_grade_level": ("at_grade_level", "from"),
            },
            derive=derive,
        ),
        keys=keys,
        variables=list(variables) + ["started_behind"],
        value="gain",
        kind="mean",
        confidence=confidence,
        pooled="only" if pooled_only else True,
        text=panel.text,
    )
    out = complete_table(out, counts=["n", "n_students"])
    out = order_rows(out, keys)[cols]
    out.attrs["needs"] = []
    return out


def level_transitions(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    levels: Sequence[int] = (1, 2, 3, 4),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Performance-level transition matrix from each spring to the next, district-wide, per subject.

    A complete table for analysts: every cell is shown, small ones included. The district report does not
    publish it; publishing it would need an entry in the registry of published tables
    (:data:`opportunity_research.disclosure.joint.PUBLISHED`) so that the joint disclosure pass protects it.

    Returns
    -------
    DataFrame
        ``subject``, ``from_year``, ``to_year``, ``from_level``, ``to_level``, ``n_from`` (students at
        ``from_level`` tested both years), ``n`` (of them, at ``to_level``), ``share`` (``n / n_from``) with a
        Wilson ``ci_lower`` / ``ci_upper``, ``suppressed``, ``suppression_reason``. Empty with
        ``attrs["needs"]`` with fewer than two years.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> t = level_transitions(assessments)
    >>> sorted(t["subject"].unique())
    ['ela', 'math']
    """
    cols = [
        "subject",
        "from_year",
        "to_year",
        "from_level",
        "to_level",
        "n_from",
        "n",
        "share",
        "ci_lower",
        "ci_upper",
        "suppressed",
        "suppression_reason",
    ]
    pairs, years, text = _year_pairs(
        data,
        students=None,
        window=window,
        subjects=subjects,
        column="performance_level",
        used=["subject"],
        pairs={"from_level": ("performance_level", "from"), "to_level": ("performance_level", "to")},
    )
    if len(pairs) == 0:
        return unavailable(cols, needs_years(window, years))
    pairs = text_back(pairs, text)
    pairs["from_level"] = pairs["from_level"].astype(np.int64)
    pairs["to_level"] = pairs["to_level"].astype(np.int64)
    counts = pairs.groupby(["subject", "from_year", "to_year", "from_level", "to_level"]).size()
    combos = pairs[["subject", "from_year", "to_year"]].drop_duplicates()
    grid = combos.merge(
        pd.DataFrame(
            {"from_level": np.repeat(levels, len(levels)), "to_level": np.tile(levels, len(levels))}
        ),
        how="cross",
    )
    out = grid.merge(
        counts.rename("n").reset_index(),
        how="left",
        on=["subject", "from_year", "to_year", "from_level", "to_level"],
    )
    out["n"] = out["n"].fillna(0).astype(np.int64)
    out["n_from"] = out.groupby(["subject", "from_year", "from_level"])["n"].transform("sum")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share"] = out["n"] / out["n_from"]
    out["ci_lower"], out["ci_upper"] = wilson_interval(out["n"], out["n_from"], confidence=confidence)
    out = complete_table(out, counts=["n", "n_from"])
    out = out.sort_values(["subject", "from_year", "from_level", "to_level"])[cols].reset_index(drop=True)
    out.attrs["needs"] = []
    return out


def level_movement(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Share of students who moved up (or down) at least one performance level from one spring to the next.

    Returns
    -------
    DataFrame
        ``subject`` (``ela``, ``math``, ``all``), ``from_year``, ``school_year`` (the later year), ``school_id``,
        ``group``, ``variable``, ``n``, ``n_students``, ``moved_up`` with ``moved_up_ci_lower`` /
        ``moved_up_ci_upper``, ``moved_down`` with ``moved_down_ci_lower`` / ``moved_down_ci_upper``,
        ``stayed`` (share at the same level), ``suppressed``, ``suppression_reason``. Empty with
        ``attrs["needs"]`` with fewer than two years.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> t = level_movement(assessments, students=students)
    >>> sorted(t["subject"].unique())
    ['all', 'ela', 'math']
    """
    cols = [
        "subject",
        "from_year",
        "school_year",
        "school_id",
        "group",
        "variable",
        "n",
        "n_students",
        "moved_up",
        "moved_up_ci_lower",
        "moved_up_ci_upper",
        "moved_down",
        "moved_down_ci_lower",
        "moved_down_ci_upper",
        "stayed",
        "suppressed",
        "suppression_reason",
    ]
    panel, found, years = _pair_rows(
        data, students=students, window=window, subjects=subjects, column="performance_level"
    )
    if not found:
        return unavailable(cols, needs_years(window, years))

    def derive(pairs):
        return pairs.assign(
            school_year=pairs["to_year"],
            moved_up=(pairs["to_level"] > pairs["from_level"]).astype(float),
            moved_down=(pairs["to_level"] < pairs["from_level"]).astype(float),
        ).drop(columns=["from_level", "to_level"])

    keys = ["subject", "from_year", "school_year"]
    names = ["moved_up", "moved_down"]
    # one later year's pairs at a time: at a million students all years' pairs and their cells at once
    # were the largest memory of the analysis
    cells = subgroup_cells_parts(
        _pair_parts(
            panel,
            found,
            used=["subject", "school_id", *variables, "_sid"],
            pairs={"from_level": ("performance_level", "from"), "to_level": ("performance_level", "to")},
            derive=derive,
        ),
        keys=keys,
        variables=variables,
        value=names,
        kind="share",
        confidence=confidence,
        pooled=True,
        text=panel.text,
    )
    out = side_by_side(cells, names, keys)
    out["stayed"] = 1 - out["moved_up"] - out["moved_down"]
    out = complete_table(out, counts=["n", "n_students"])
    out = order_rows(out, keys)[cols]
    out.attrs["needs"] = []
    return out
