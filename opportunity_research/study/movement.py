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
from . import panels
from .indicators import unavailable
from .panels import (
    VARIABLES,
    YearlyPanel,
    later_rows,
    needs_ge,
    needs_years,
    order_rows,
    panel_rows,
    part_frames,
    side_by_side,
    subgroup_cells,
    subgroup_cells_parts,
    yearly_panel,
    years_in,
)

__all__ = ["level_movement", "level_transitions", "movement_and_growth", "yearly_growth"]


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
    hy = year[have]
    years = years_in(hy)
    found, rows_of = [], {}  # (each year's rows found once: the later of one pair, the earlier of the next)
    for y in years[1:]:  # one later year at a time: the join's memory is a year's
        before = rows_of.pop(y - 1, None)
        rows_of[y] = this = have[hy == y]
        cur, nxt = later_rows(panel, have[hy == y - 1] if before is None else before, this, 1)
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
    panel, found, years = _pair_rows(
        data, students=students, window=window, subjects=subjects, column="grade_equivalent"
    )
    if not found:
        return unavailable(_GROWTH_COLUMNS, needs_ge(window, years))
    out = subgroup_cells_parts(
        _pair_parts(
            panel, found, used=["subject", "school_id", *variables, "_sid"], pairs=_GROWTH_PAIRS, derive=_gain
        ),
        keys=["subject", "school_year"],
        variables=list(variables) + ["started_behind"],
        value="gain",
        kind="mean",
        confidence=confidence,
        pooled="only" if pooled_only else True,
        text=panel.text,
    )
    return _growth_table(out)


#: Columns of :func:`yearly_growth`.
_GROWTH_COLUMNS = [
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
#: The columns of either result of a pair that :func:`yearly_growth` uses (:func:`_pair_frame`'s ``pairs``).
_GROWTH_PAIRS = {
    "ge_from": ("grade_equivalent", "from"),
    "ge_to": ("grade_equivalent", "to"),
    "at_grade_level": ("at_grade_level", "from"),
}


def _gain(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with :func:`yearly_growth`'s value (``gain``) and variable (``started_behind``)."""
    return pairs.assign(
        gain=pairs["ge_to"] - pairs["ge_from"],
        started_behind=1 - pairs["at_grade_level"],
        school_year=pairs["to_year"],
    )


def _growth_table(cells: pd.DataFrame) -> pd.DataFrame:
    """:func:`yearly_growth`'s table of its cells (``gain``'s, with the keys ``subject`` and ``school_year``)."""
    out = complete_table(cells, counts=["n", "n_students"])
    out = order_rows(out, ["subject", "school_year"])[_GROWTH_COLUMNS]
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
    panel, found, years = _pair_rows(
        data, students=students, window=window, subjects=subjects, column="performance_level"
    )
    if not found:
        return unavailable(_MOVEMENT_COLUMNS, needs_years(window, years))
    # one later year's pairs at a time: at a million students all years' pairs and their cells at once
    # were the largest memory of the analysis
    cells = subgroup_cells_parts(
        _pair_parts(
            panel, found, used=["subject", "school_id", *variables, "_sid"], pairs=_LEVELS, derive=_moved
        ),
        keys=_MOVEMENT_KEYS,
        variables=variables,
        value=_MOVED,
        kind="share",
        confidence=confidence,
        pooled=True,
        text=panel.text,
    )
    return _movement_table(cells)


#: Columns of :func:`level_movement`.
_MOVEMENT_COLUMNS = [
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
_MOVEMENT_KEYS = ["subject", "from_year", "school_year"]
_MOVED = ["moved_up", "moved_down"]
#: The columns of either result of a pair that :func:`level_movement` uses.
_LEVELS = {"from_level": ("performance_level", "from"), "to_level": ("performance_level", "to")}


def _moved(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with :func:`level_movement`'s values (``moved_up``, ``moved_down``) in place of their levels."""
    return pairs.assign(
        school_year=pairs["to_year"],
        moved_up=(pairs["to_level"] > pairs["from_level"]).astype(float),
        moved_down=(pairs["to_level"] < pairs["from_level"]).astype(float),
    ).drop(columns=["from_level", "to_level"])


def _movement_table(cells: list[pd.DataFrame]) -> pd.DataFrame:
    """:func:`level_movement`'s table of its cells (``moved_up``'s and ``moved_down``'s)."""
    out = side_by_side(cells, _MOVED, _MOVEMENT_KEYS)
    out["stayed"] = 1 - out["moved_up"] - out["moved_down"]
    out = complete_table(out, counts=["n", "n_students"])
    out = order_rows(out, _MOVEMENT_KEYS)[_MOVEMENT_COLUMNS]
    out.attrs["needs"] = []
    return out


def movement_and_growth(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    variables: Sequence[str] = VARIABLES,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`level_movement` and :func:`yearly_growth` (``pooled_only=True``) of the same arguments, made together.

    When the results with a performance level are those with a grade equivalent, both tables pair the same results
    (each spring with the next): the pairs are found once, and each part's cells of the subjects pooled are made
    once for both (the growth's value and its ``started_behind`` beside the movement's, on one prepared frame whose
    cells and clusters are made once; each table's rows the same, to the bit, as its own function gives).
    Otherwise each table is made by its function.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> panel = yearly_panel(tables["assessments"], students=tables["students"])
    >>> m, g = movement_and_growth(panel, students=None)
    >>> m.equals(level_movement(panel, students=None)), g.equals(yearly_growth(panel, students=None, pooled_only=True))
    (True, True)
    """
    kw = {"window": window, "subjects": subjects, "variables": variables, "confidence": confidence}
    panel = yearly_panel(data, students=students, window=window, subjects=subjects)
    frame = panel.frame
    if "started_behind" in variables or not np.array_equal(
        frame["performance_level"].notna().to_numpy(), frame["grade_equivalent"].notna().to_numpy()
    ):
        return level_movement(panel, students=None, **kw), yearly_growth(
            panel, students=None, pooled_only=True, **kw
        )
    panel, found, years = _pair_rows(
        panel, students=None, window=window, subjects=subjects, column="performance_level"
    )
    if not found:
        return (
            unavailable(_MOVEMENT_COLUMNS, needs_years(window, years)),
            unavailable(_GROWTH_COLUMNS, needs_ge(window, years)),
        )
    moved, grown = [], []
    each = {"keys": _MOVEMENT_KEYS, "confidence": confidence, "text": panel.text}
    both = {
        "variables": [*variables, "started_behind"],
        "value": [*_MOVED, "gain"],
        "kind": ["share", "share", "mean"],
    }
    parts = _pair_parts(
        panel,
        found,
        used=["subject", "school_id", *variables, "_sid"],
        pairs={**_LEVELS, **_GROWTH_PAIRS},
        # (the pairs' own columns dropped once the values are made: a large part's frame holds the cells' columns only)
        derive=lambda pairs: _moved(_gain(pairs)).drop(columns=[*_GROWTH_PAIRS, "to_year"]),
    )
    for part in part_frames(parts):
        # as subgroup_cells_parts makes the movement's cells: a large frame's subjects, then the subjects pooled
        # (with the growth's); a small one's in one call (the growth's cells of each subject left out below)
        large = len(part) >= panels.PARTS_MIN_ROWS
        if large:
            moved.append(
                subgroup_cells(part, variables=variables, value=_MOVED, kind="share", pooled=False, **each)
            )
        up, down, gain = subgroup_cells(part, pooled="only" if large else True, **both, **each)
        del part
        moved.append([t[t["variable"] != "started_behind"] for t in (up, down)])  # the growth's variable only
        grown.append(gain)
    cells = [pd.concat(tables, ignore_index=True) for tables in zip(*moved, strict=True)]
    gain = pd.concat(grown, ignore_index=True)
    gain = gain[gain["subject"] == "all"].drop(columns="from_year")
    return _movement_table(cells), _growth_table(gain)
