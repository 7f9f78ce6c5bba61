"""The yearly results panel under the trajectories, and the cell helpers every trajectory table shares.

One spring result per student, subject and school year (:func:`yearly_results`) with the students' school
and groups from the analysis-year roster; the same panel prepared once for every trajectory table, on integer
codes (:func:`yearly_panel`, a :class:`YearlyPanel`), and its rows paired across years (:func:`later_rows`,
:func:`join_rows`); district and school subgroup cells with intervals clustered by student
(:func:`subgroup_cells`), ordered the same way in every table (:func:`order_rows`); the "needs" notes of a
trajectory that the data cannot give (:func:`needs_years`, :func:`needs_ge`). Definitions: see
:mod:`opportunity_research.study.trajectories`.

Examples
--------
>>> VARIABLES
('race_ethnicity', 'low_income', 'english_learner', 'disability')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..intake.contract import SUBJECTS_TESTED
from ..stats.estimates import (
    first_numbered,
    sorted_integer_codes,
    subgroup_estimates,
    text_as_categories,
    text_back,
)
from .joins import positions_of, unique_ids
from .measures import id_positions

__all__ = [
    "VARIABLES",
    "YearlyPanel",
    "ids_in",
    "join_rows",
    "key_cells",
    "later_rows",
    "map_ids",
    "needs_ge",
    "needs_years",
    "order_rows",
    "panel_rows",
    "part_frames",
    "per_known_id",
    "roster_join",
    "side_by_side",
    "student_subject_key",
    "student_year_codes",
    "subgroup_cells",
    "subgroup_cells_parts",
    "with_pooled",
    "yearly_panel",
    "yearly_results",
    "years_in",
]

#: Student groups the trajectories are broken down by (plus ``started_behind`` where it applies).
VARIABLES = ("race_ethnicity", "low_income", "english_learner", "disability")
_STUDENT_COLS = ("school_id",) + VARIABLES


def needs_years(window: str, found) -> str:
    """The "needs" note of catch-up rates and level movement when fewer than two years of results exist.

    Examples
    --------
    >>> needs_years("spring", [2016])
    'assessments.csv with spring results in at least two school years for catch-up rates and performance-level movement (found: 2016)'
    """
    got = ", ".join(str(y) for y in found) if len(found) else "none"
    return (
        f"assessments.csv with {window} results in at least two school years for catch-up rates and "
        f"performance-level movement (found: {got})"
    )


def needs_ge(window: str, found=None) -> str:
    """The "needs" note of growth in grade levels when ``grade_equivalent`` is missing (years found, if any).

    Examples
    --------
    >>> needs_ge("spring", [])
    'assessments.grade_equivalent (spring results in at least two school years) for growth in grade levels per year (found spring grade_equivalent in: no year)'
    """
    extra = (
        ""
        if found is None
        else f" (found {window} grade_equivalent in: " + (", ".join(str(y) for y in found) or "no year") + ")"
    )
    return (
        f"assessments.grade_equivalent ({window} results in at least two school years) for growth in grade "
        f"levels per year{extra}"
    )


def yearly_results(
    data: pd.DataFrame | None,
    *,
    students: pd.DataFrame | None = None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
) -> pd.DataFrame:
    """One row per student, subject and school year from one testing window, with school and groups.

    Returns
    -------
    DataFrame
        ``student_id``, ``subject``, ``school_year`` (int), ``grade``, ``scale_score``, ``grade_level_cut``,
        ``performance_level``, ``grade_equivalent`` (NaN when not provided), ``at_grade_level`` (1.0 / 0.0),
        ``start_offset`` (``grade_equivalent - grade``), and from ``students``: ``school_id``,
        ``race_ethnicity``, ``low_income``, ``english_learner``, ``disability``.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> assessments, students = tables["assessments"], tables["students"]
    >>> t = yearly_results(assessments, students=students)
    >>> sorted(t["subject"].unique())
    ['ela', 'math']
    """
    cols = [
        "student_id",
        "subject",
        "school_year",
        "grade",
        "scale_score",
        "grade_level_cut",
        "performance_level",
        "grade_equivalent",
        "at_grade_level",
        "start_offset",
        *_STUDENT_COLS,
    ]
    if data is None or len(data) == 0:
        return pd.DataFrame(columns=cols)
    rows = (data["window"] == window) & data["subject"].isin(list(subjects))
    # one copy of the rows and columns used (not of every column first)
    out = data.loc[
        rows,
        [
            "student_id",
            "subject",
            "school_year",
            "grade",
            "scale_score",
            "grade_level_cut",
            "performance_level",
        ],
    ]
    out["grade_equivalent"] = (
        data.loc[rows, "grade_equivalent"].astype(float).to_numpy()
        if "grade_equivalent" in data.columns
        else np.nan
    )
    out["school_year"] = out["school_year"].astype(np.int64)
    ok = out["scale_score"].notna() & out["grade_level_cut"].notna()
    out["at_grade_level"] = (out["scale_score"] >= out["grade_level_cut"]).astype(float).where(ok)
    out["start_offset"] = out["grade_equivalent"] - out["grade"].astype(float)
    if students is not None:
        if students["student_id"].duplicated().any():
            raise ValueError("students: student_id is not unique")
        keep = ["student_id"] + [c for c in _STUDENT_COLS if c in students.columns]
        # roster position of each result's student: the roster's ids (unique, first) are codes 0..n-1 of one
        # factorization of both id columns (hashed as Arrow text; no Python string per row)
        ids = pd.concat([students["student_id"], out["student_id"]], ignore_index=True)
        at = pd.factorize(ids)[0][len(students) :]
        on_roster = (
            len(at) and students["student_id"].notna().all() and ((at >= 0) & (at < len(students))).all()
        )
        if on_roster:
            # every result's student is on the roster: their columns taken by position, added to the rows
            # (what the left merge gives, without copying every column of the results into a new frame)
            for c in keep[1:]:
                out[c] = students[c].iloc[at].set_axis(out.index)
        else:
            # student_id is unique (checked above), so no validate= (it would sort the ids again)
            out = out.merge(students[keep], on="student_id", how="left")
    for c in _STUDENT_COLS:
        if c not in out.columns:
            out[c] = np.nan
    return out[cols].reset_index(drop=True)


#: Columns of :attr:`YearlyPanel.frame`.
PANEL_COLUMNS = (
    "_sid",
    "_sk",
    "subject",
    "school_year",
    "grade",
    "performance_level",
    "grade_equivalent",
    "at_grade_level",
    "start_offset",
    *_STUDENT_COLS,
)


@dataclass(frozen=True, eq=False)
class YearlyPanel:
    """:func:`yearly_results` of one testing window, prepared once for every trajectory table.

    ``frame`` has one row per result of the window and subjects, in the order of the assessments table, with the
    columns of :func:`yearly_results` the trajectories use (``subject``, ``school_year``, ``grade``,
    ``performance_level``, ``grade_equivalent``, ``at_grade_level``, ``start_offset``, ``school_id`` and the group
    variables) and, in
    place of the ``student_id`` text, two integer codes: ``_sid`` (the student; their roster position when
    every result's student is on the roster) and ``_sk`` (the student and subject). Its text columns are
    categories (sorted, as :func:`~opportunity_research.stats.estimates.text_as_categories` makes them); ``text``
    holds their text dtypes. Every trajectory function takes it in place of the assessments table, so a
    district's results are filtered and joined to the roster once rather than once a table.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"student_id": ["s1", "s1", "s2"], "subject": "math", "school_year": [2015, 2016, 2015],
    ...                   "window": "spring", "grade": [3, 4, 3], "scale_score": [250.0, 270.0, 240.0],
    ...                   "grade_level_cut": [260.0, 265.0, 260.0], "performance_level": [2, 3, 2]})
    >>> p = yearly_panel(a, students=pd.DataFrame({"student_id": ["s2", "s1"], "school_id": ["B", "A"]}))
    >>> p.frame[["_sid", "_sk", "school_year", "at_grade_level", "school_id"]].values.tolist()
    [[1, 1, 2015, 0.0, 'A'], [1, 1, 2016, 1.0, 'A'], [0, 0, 2015, 0.0, 'B']]
    >>> str(p.frame["school_id"].dtype), p.window, p.subjects
    ('category', 'spring', ('ela', 'math'))
    """

    frame: pd.DataFrame
    text: dict
    window: str
    subjects: tuple


def _roster_positions(roster: pd.Series, ids: pd.Series) -> np.ndarray | None:
    """Each id's position on the roster (unique ids), or None when some id is missing or not on it."""
    if not len(ids) or not roster.notna().all():
        return None
    try:  # Arrow text: one hash table of the roster, probed by every id (no Python string per row)
        import pyarrow as pa
        import pyarrow.compute as pc

        values, known = pa.array(ids.array), pa.array(roster.array)
        if isinstance(known, pa.ChunkedArray):
            known = known.combine_chunks()
        at = pc.index_in(values, value_set=known.cast(values.type))
        if at.null_count:
            return None
        at = at.to_numpy().astype(np.int64)
    except (TypeError, ValueError, pa.ArrowException):
        # the roster's ids (unique, first) are codes 0..n-1 of one factorization of both id columns
        at = pd.factorize(pd.concat([roster, ids], ignore_index=True))[0][len(roster) :].astype(np.int64)
    return at if ((at >= 0) & (at < len(roster))).all() else None


def roster_join(frame: pd.DataFrame, students: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame.merge(students[["student_id", *columns]], on="student_id", how="inner")``, on roster positions.

    The same rows (those whose student is on the roster, in ``frame``'s order), columns, dtypes and labels as the
    merge, without hashing the id text of every row in pandas: each id's roster position comes from one Arrow
    hash table of the roster (:func:`_roster_positions`' lookup), and the roster's columns are taken by position.
    A roster with a missing or repeated id (where a merge pairs missing ids or repeats rows) is merged.

    Examples
    --------
    >>> f = pd.DataFrame({"student_id": ["b", "x", "a", "b"], "score": [1.0, 2.0, 3.0, 4.0]})
    >>> s = pd.DataFrame({"student_id": ["a", "b"], "school_id": ["S1", "S2"]})
    >>> roster_join(f, s, ["school_id"]).values.tolist()
    [['b', 1.0, 'S2'], ['a', 3.0, 'S1'], ['b', 4.0, 'S2']]
    """
    columns = list(columns)
    ids = students["student_id"]
    at = None
    if len(frame) and unique_ids(ids):
        at = id_positions(ids, frame["student_id"])
    if at is None:
        return frame.merge(students[["student_id", *columns]], on="student_id", how="inner")
    rows = np.flatnonzero(at >= 0)
    out = frame.take(rows).reset_index(drop=True)
    for c in columns:
        out[c] = students[c].take(at[rows]).reset_index(drop=True)
    return out


def student_year_codes(frame: pd.DataFrame, students: np.ndarray | None = None) -> np.ndarray:
    """Integer ids of the responses' students, one per student and school year, numbered by first row.

    For tables whose every cell lies within one school year (the climate tables, the scorecard's yearly
    indicators): a cell counts (and, with too few clusters, clusters on) the same students, in the same order,
    as on one id per student, while each id lies in one cell of every breakdown by the students' school and
    groups, so the cells' sums over students need no hashing of (cell, student) pairs. Rows without a student id
    are one student a year (as the missing id is one value of the student ids). ``students``: the rows' students
    as non-negative integers (one per student, e.g. their rows of the roster a join found), in place of the
    ``student_id`` text: the same ids.

    Examples
    --------
    >>> f = pd.DataFrame({"student_id": ["a", "b", "a", None], "school_year": [2015, 2015, 2016, 2016]})
    >>> student_year_codes(f).tolist(), student_year_codes(f.iloc[:3], np.array([7, 3, 7])).tolist()
    ([0, 1, 2, 3], [0, 1, 2])
    """
    if students is None:
        sid = pd.factorize(frame["student_id"])[0].astype(np.int64)
    else:
        sid = np.asarray(students, dtype=np.int64)
    year = pd.factorize(frame["school_year"])[0].astype(np.int64)
    return pd.factorize(year * (int(sid.max(initial=0)) + 2) + (sid + 1))[0]


def ids_in(ids: pd.Series, values) -> pd.Series:
    """``ids.isin(set(values))``: whether each id is among ``values``, from one Arrow hash table of them.

    pandas' ``isin`` on Arrow text makes a Python object of every value, and of every value of a set of integers;
    this looks the ids up in Arrow (a missing id is among ``values`` if a missing value is, as ``isin`` finds
    it). Ids and values that are not both text or both integers (of one type: the analysis' integer student ids)
    use ``isin``.

    Examples
    --------
    >>> ids_in(pd.Series(["a", "b", None], dtype="str"), pd.Series(["b", "c"], dtype="str")).tolist()
    [False, True, False]
    >>> ids_in(pd.Series([7, -3, 5]), pd.Series([5, 7, 9])).tolist()
    [True, False, True]
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        a, v = pa.array(ids.array), pa.array(pd.Series(values).array)
        text = (pa.types.is_string(a.type) or pa.types.is_large_string(a.type)) and (
            pa.types.is_string(v.type) or pa.types.is_large_string(v.type) or pa.types.is_null(v.type)
        )
        if not (text or (pa.types.is_integer(a.type) and v.type == a.type)):
            raise TypeError("not text, nor integers of one type")
        if isinstance(v, pa.ChunkedArray):
            v = v.combine_chunks()
        got = pc.fill_null(pc.is_in(a, value_set=v.cast(a.type)), False)
        return pd.Series(np.asarray(got, dtype=bool), index=ids.index, name=ids.name)
    except (TypeError, ValueError, pa.ArrowException):
        return ids.isin(set(values))


def map_ids(ids: pd.Series, mapper: pd.Series) -> pd.Series:
    """``ids.map(mapper)`` for a ``mapper`` indexed by unique ids: each id's value, NaN where it has none.

    The ids' positions in the mapper's index come from one Arrow hash table (pandas maps Arrow text through
    Python objects); a mapper with a repeated or missing id, or ids that are not Arrow text, are mapped by
    pandas.

    Examples
    --------
    >>> m = pd.Series([0.5, 1.0], index=pd.Index(["a", "b"], dtype="str"))
    >>> map_ids(pd.Series(["b", "x", "a"], dtype="str"), m).tolist()
    [1.0, nan, 0.5]
    """
    index = mapper.index
    at = None
    if len(ids) and index.is_unique and not index.hasnans and mapper.dtype.kind == "f":
        try:
            import pyarrow as pa

            kind = pa.array(ids.array).type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                at = id_positions(pd.Series(index), ids)
        except (TypeError, ValueError, pa.ArrowException):
            at = None
    if at is None:
        return ids.map(mapper)
    values = mapper.to_numpy()
    out = np.where(at >= 0, values[np.maximum(at, 0)], np.nan) if len(values) else np.full(len(ids), np.nan)
    return pd.Series(out, index=ids.index, name=ids.name)


def per_known_id(known: pd.Series, ids: pd.Series, values: pd.Series, how: str, then=None) -> pd.Series:
    """``map_ids(known, then(values.groupby(ids).agg(how)))``: each of ``known``'s ids' ``how`` (a groupby reduction,
    e.g. ``"mean"``, ``"max"``) of its rows' ``values``, through ``then`` (default: as is), NaN where it has no row.

    When ``known``'s ids are unique and none is missing, the rows are grouped on their ids' positions among
    ``known`` (integer codes, found in one Arrow hash table; rows whose id is not there are in no group) instead
    of on the ids' text: each group's rows are reduced in the same order, so to the same values. (pandas reduces
    groups whose numbers are sorted among the rows with ``reduceat``, others with compensated sums: the two
    groupings may take different ways, which give the same ``max`` and ``min``, and the same sum of at most two
    values, up to the sign of a zero; a ``how`` other than those, or a group of more rows, is grouped on the text.) Otherwise, or when
    ``then`` gives no floats, it is made as written.

    Examples
    --------
    >>> known = pd.Series(["a", "b", "c"], dtype="str")
    >>> ids = pd.Series(["b", "x", "b", "a", None], dtype="str")
    >>> per_known_id(known, ids, pd.Series([1.0, 5.0, 3.0, np.nan, 7.0]), "max").tolist()
    [nan, 3.0, nan]
    >>> per_known_id(known, ids, pd.Series([1.0, 5.0, 3.0, np.nan, 7.0]), "mean", then=lambda m: (m > 1).astype(float)).tolist()
    [0.0, 1.0, nan]
    """
    then = then or (lambda per: per)
    at = id_positions(known, ids) if len(ids) and unique_ids(known) else None
    if at is not None:
        keep = at >= 0
        if how not in ("max", "min") and np.bincount(at[keep]).max(initial=0) > 2:
            at = None  # a group of more than two rows: its sum may depend on how pandas adds it up
    if at is not None:
        per = then(pd.Series(values.to_numpy()[keep]).groupby(at[keep]).agg(how))
        if per.dtype.kind == "f":
            out = np.full(len(known), np.nan)
            out[per.index.to_numpy()] = per.to_numpy()
            return pd.Series(out, index=known.index, name=known.name)
    return map_ids(known, then(values.groupby(ids).agg(how)))


def yearly_panel(
    data: pd.DataFrame | YearlyPanel | None,
    *,
    students: pd.DataFrame | None = None,
    window: str = "spring",
    subjects: Sequence[str] = SUBJECTS_TESTED,
    roster_at: np.ndarray | None = None,
) -> YearlyPanel:
    """The :class:`YearlyPanel` of ``data`` (the assessments table) and ``students`` (the roster).

    The rows and values of :func:`yearly_results` (the same students' schools and groups, missing when a
    student is not on the roster), on integer codes. A :class:`YearlyPanel` is returned as it is (its window and
    subjects must be ``window`` and ``subjects``; ``students`` is then not used). ``roster_at``: (the same panel)
    :func:`~.joins.roster_positions` of ``students`` and ``data``, when already made: not looked up again.

    Examples
    --------
    >>> from opportunity_research.synth.districts import generate_districts
    >>> from opportunity_research.synth.specs import METRO
    >>> tables = generate_districts(1, 300, specs=(METRO,))["demo_metro"]["tables"]
    >>> p = yearly_panel(tables["assessments"], students=tables["students"])
    >>> t = yearly_results(tables["assessments"], students=tables["students"])
    >>> len(p.frame) == len(t), (p.frame["at_grade_level"].fillna(-1) == t["at_grade_level"].fillna(-1)).all()
    (True, np.True_)
    >>> yearly_panel(p) is p
    True
    """
    subjects = tuple(subjects)
    if isinstance(data, YearlyPanel):
        if data.window != window or tuple(data.subjects) != subjects:
            raise ValueError(
                f"yearly_panel: the panel holds {data.window} results of {', '.join(data.subjects)}, "
                f"not {window} results of {', '.join(subjects)}"
            )
        return data
    if data is None or len(data) == 0:
        return YearlyPanel(pd.DataFrame(columns=list(PANEL_COLUMNS)), {}, window, subjects)
    rows = np.flatnonzero(((data["window"] == window) & data["subject"].isin(list(subjects))).to_numpy())

    def col(c):  # the selected rows of one column of the results, labelled 0..n-1
        return data[c].take(rows).reset_index(drop=True)

    out, text = text_as_categories(pd.DataFrame({"subject": col("subject")}), ["subject"])
    out["school_year"] = col("school_year").astype(np.int64)
    out["grade"] = col("grade")
    out["performance_level"] = col("performance_level")
    ge = col("grade_equivalent").astype(float) if "grade_equivalent" in data.columns else np.nan
    out["grade_equivalent"] = ge
    score, cut = col("scale_score"), col("grade_level_cut")
    out["at_grade_level"] = (score >= cut).astype(float).where(score.notna() & cut.notna())
    del score, cut  # a million students' columns: not held to the end
    out["start_offset"] = out["grade_equivalent"] - out["grade"].astype(float)
    at = None
    if students is not None:
        roster_ids = students["student_id"]  # (with roster_at, roster_positions checked it)
        if roster_at is None and not unique_ids(roster_ids) and roster_ids.duplicated().any():
            raise ValueError("students: student_id is not unique")
        keep = [c for c in _STUDENT_COLS if c in students.columns]
        if roster_at is None:
            at = _roster_positions(roster_ids, data["student_id"].take(rows))
        else:  # None where a result's student is off the roster (as _roster_positions)
            at = positions_of(roster_at, data, rows, whole=True)
        if at is not None:
            # every result's student is on the roster: the roster's columns (text as categories, once per
            # student) taken by position
            roster, more = text_as_categories(students[keep], keep)
            for c in keep:
                out[c] = roster[c].take(at).reset_index(drop=True)
        else:
            # student_id is unique (checked above): a left merge gives each result its student's columns
            ids = pd.DataFrame({"student_id": col("student_id")})
            got, more = text_as_categories(
                ids.merge(students[["student_id", *keep]], on="student_id", how="left")[keep], keep
            )
            for c in keep:
                out[c] = got[c]
        text.update(more)
    for c in _STUDENT_COLS:
        if c not in out.columns:
            out[c] = np.nan
    sid = at if at is not None else pd.factorize(col("student_id"))[0].astype(np.int64)
    out["_sid"] = sid
    # one integer per student and subject, in a narrow range (a missing id, code -1, is a student of its own
    # and a missing subject a subject of its own, as in a merge)
    subj = out["subject"].cat.codes.to_numpy().astype(np.int64)
    width = len(out["subject"].cat.categories)
    if len(subj) and subj.min() < 0:
        subj, width = subj + 1, width + 1
    sk = sid - (int(sid.min()) if len(sid) else 0)  # in place below: no temporary column per step
    sk *= width
    sk += subj
    del subj
    out["_sk"] = sk
    return YearlyPanel(out[list(PANEL_COLUMNS)], text, window, subjects)


def join_rows(left, right) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs of an inner join on one integer key, in the order of ``pandas.merge(how="inner")``.

    Returns ``(li, ri)``: positions in ``left`` and ``right`` of each matching pair, the left rows in their
    order, each left row's matches in the right's order. A dense lookup table when the right keys are unique
    and span a narrow range, else a sort.

    Examples
    --------
    >>> li, ri = join_rows([5, 7, 9, 7], [7, 5, 7])
    >>> li.tolist(), ri.tolist()
    ([0, 1, 1, 3, 3], [1, 0, 2, 0, 2])
    """
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    if not len(left) or not len(right):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = int(right.min())
    span = int(right.max()) - lo + 1
    if span <= 4 * len(right) + 1024:
        off = right - lo
        where = np.full(span, -1, dtype=np.int32 if len(right) < 2**31 else np.int64)
        pos = np.arange(len(right), dtype=where.dtype)
        where[off] = pos
        if np.array_equal(where[off], pos):  # unique keys (no row overwritten): one lookup per left row
            q = left - lo
            m = np.full(len(left), -1, dtype=np.int64)
            inside = np.flatnonzero((q >= 0) & (q < span))
            m[inside] = where[q[inside]]
            li = np.flatnonzero(m >= 0)
            return li, m[li]
    order = np.argsort(right, kind="stable")
    ordered = right[order]
    a, b = np.searchsorted(ordered, left, "left"), np.searchsorted(ordered, left, "right")
    count = b - a
    li = np.repeat(np.arange(len(left), dtype=np.int64), count)
    within = np.arange(len(li), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    return li, order[np.repeat(a, count) + within]


def later_rows(
    panel: YearlyPanel, left: np.ndarray, right: np.ndarray, years
) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``left`` paired with the row of ``right`` of the same student and subject ``years`` later.

    ``left`` and ``right`` are positions in ``panel.frame``; returns the positions of the pairs, as
    ``frame.take(left).assign(school_year=school_year + years).merge(frame.take(right), how="inner",
    on=["student_id", "subject", "school_year"])`` orders them (left rows in order).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"student_id": ["s1", "s1", "s2", "s1"], "subject": "math", "window": "spring",
    ...                   "school_year": [2015, 2016, 2015, 2017], "grade": 3, "scale_score": 250.0,
    ...                   "grade_level_cut": 260.0, "performance_level": 2})
    >>> p = yearly_panel(a)
    >>> [x.tolist() for x in later_rows(p, np.arange(4), np.arange(4), 1)]
    [[0, 1], [1, 3]]
    """
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    sk = panel.frame["_sk"].to_numpy()
    year = panel.frame["school_year"].to_numpy().astype(np.int64, copy=False)  # (int64 already: not copied)
    if not len(left) or not len(right):
        return left[:0], right[:0]
    ly, ry = year[left] + int(years), year[right]
    y0 = min(int(ly.min()), int(ry.min()))
    span = max(int(ly.max()), int(ry.max())) - y0 + 1
    li, ri = join_rows(sk[left] * span + (ly - y0), sk[right] * span + (ry - y0))
    return left[li], right[ri]


def years_in(year: np.ndarray) -> list[int]:
    """``sorted(set(year))`` of integer school years as ints: ``np.unique``'s, counted rather than sorted.

    Examples
    --------
    >>> years_in(np.array([2016, 2014, 2016])), years_in(np.array([], dtype=np.int64))
    ([2014, 2016], [])
    """
    if not len(year):
        return []
    lo, hi = int(year.min()), int(year.max())
    if hi - lo > 2 * len(year) + 1024:
        return [int(y) for y in np.unique(year)]
    return [int(y) + lo for y in np.flatnonzero(np.bincount(year - lo))]


def panel_rows(panel: YearlyPanel, positions: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """The rows at ``positions`` of ``panel.frame``'s ``columns``, labelled 0..n-1.

    Examples
    --------
    >>> import pandas as pd
    >>> p = YearlyPanel(pd.DataFrame({"_sid": [3, 4, 5], "school_year": 2016}), {}, "spring", ("ela",))
    >>> panel_rows(p, np.array([2, 0]), ["_sid"])["_sid"].tolist()
    [5, 3]
    """
    return panel.frame[list(columns)].take(positions).reset_index(drop=True)


def student_subject_key(frame: pd.DataFrame) -> np.ndarray:
    """One integer per (``student_id``, ``subject``) of ``frame``: a cheaper join key than the two text columns.

    Joining two tables cut from ``frame`` on this key and ``school_year`` pairs the same rows, in the same
    order, as joining them on the three columns (a missing id matches a missing id, as in a merge).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"student_id": ["a", "b", "a", "a"], "subject": ["ela", "ela", "ela", "math"]})
    >>> student_subject_key(f).tolist()
    [0, 1, 0, 2]
    """
    return (
        frame.groupby(["student_id", "subject"], sort=False, dropna=False, observed=True)
        .ngroup()
        .to_numpy()
        .astype(np.int64)
    )


def with_pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows per subject plus the same rows with ``subject == "all"`` (the subjects pooled).

    Examples
    --------
    >>> import pandas as pd
    >>> with_pooled(pd.DataFrame({"subject": ["ela", "math"], "v": [1, 2]}))["subject"].tolist()
    ['ela', 'math', 'all', 'all']
    """
    return pd.concat([frame, frame.assign(subject="all")], ignore_index=True)


def subgroup_cells(
    frame: pd.DataFrame,
    *,
    keys: list[str],
    variables,
    value: str | Sequence[str],
    kind: str | Sequence[str],
    confidence: float,
    pooled: bool | str = False,
    text: dict | None = None,
):
    """District and school rows of subgroup estimates, intervals clustered by student.

    ``pooled=True`` adds the cells of the subjects pooled (``subject == "all"``), as ``with_pooled(frame)``
    would, on only the columns the cells use; ``pooled="only"`` gives only those (the same rows, to the bit, as
    the ``subject == "all"`` rows of ``pooled=True``: each cell's sums run over the same rows in the same order). With a list of ``value`` columns, a list of tables, one per value
    (the frame prepared once for all of them; ``kind`` a list too, or one kind for all). ``text`` (e.g. :attr:`YearlyPanel.text`) says the frame is
    prepared: students as integer codes in ``_sid`` (any coding: the same cells) instead of ``student_id``,
    and the text columns named in ``text`` as categories, given back as text.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"student_id": ["a", "b", "c", "d"], "subject": "ela", "school_id": ["S1", "S1", "S2", "S2"],
    ...                   "low_income": [1, 0, 1, 0], "at_grade_level": [1.0, 1.0, 0.0, 1.0]})
    >>> t = subgroup_cells(f, keys=["subject"], variables=["low_income"], value="at_grade_level", kind="share",
    ...                    confidence=0.95)
    >>> all_rows = order_rows(t, ["subject"]).query("group == 'all'")
    >>> all_rows[["school_id", "n_students", "estimate"]].values.tolist()
    [['all', 4, 0.75], ['S1', 2, 1.0], ['S2', 2, 0.5]]
    """
    # only the columns the cells use, and integer student ids: cheaper grouping
    values = [value] if isinstance(value, str) else list(value)
    used = [c for c in dict.fromkeys([*keys, "school_id", *variables, *values]) if c in frame.columns]
    if text is None:
        frame = frame[used].assign(_sid=pd.factorize(frame["student_id"])[0])
    else:
        frame = frame[[*used, "_sid"]]
    # text keys as categories, once (the results get the text back)
    text = dict(text or {})
    frame, more = text_as_categories(frame, [c for c in [*keys, "school_id", *variables] if c not in text])
    text.update(more)
    if pooled:
        # the pooled rows after the per-subject rows, "all" a category in sorted place (as the categories of
        # the text column with_pooled gives): the same cells, in the same order, from the same rows
        subj = frame["subject"].astype("category")
        cats = sorted({*subj.cat.categories, "all"})
        subj = subj.cat.set_categories(pd.Index(cats, dtype=subj.cat.categories.dtype))
        every = pd.Categorical.from_codes(np.full(len(frame), cats.index("all")), dtype=subj.dtype)
        frame = (
            frame.assign(subject=every)
            if pooled == "only"
            else pd.concat([frame.assign(subject=subj), frame.assign(subject=every)], ignore_index=True)
        )
        text.setdefault("subject", frame["subject"].cat.categories.dtype)
    # Cluster on each student's rows within a cell of ``keys`` (one id per student and cell) rather than on the
    # student: every cell below refines the cells of ``keys``, so its clusters (and their order of first row)
    # are the same, and its student-in-cell ids each fall in one cell, which cell_estimates pairs without
    # hashing every (cell, student) combination again.
    cell, cells = key_cells(frame, keys)
    sid = frame["_sid"].to_numpy().astype(np.int64)
    width = int(sid.max(initial=0)) + 2
    key = cell * width + (sid + 1)
    span = (int(cell.max(initial=0)) + 2) * width
    # numbered by first row (as pd.factorize numbers them), without hashing when the combinations are few
    frame["_sid"] = (
        first_numbered(key + width, span)[0]
        if len(key) and span <= 4 * len(key) + 1024 and sid.min() >= -1
        else pd.factorize(key)[0]
    )
    del key
    # the cells of ``keys`` as one key (a category whose codes are the cells in sorted order): every cell below
    # groups on it rather than on each key again, the same cells in the same order; the keys' values are put
    # back in its place in the results
    frame = frame.drop(columns=keys)
    frame["_cell"] = pd.Categorical.from_codes(cell, categories=pd.RangeIndex(len(cells)))
    memo = {}  # one frame: the students' codes and sums, made once for every value and level
    dist, sch = (
        subgroup_estimates(
            frame,
            keys=k,
            variables=variables,
            value=values,
            kind=kind,
            cluster="_sid",
            unit="_sid",
            confidence=confidence,
            _memo=memo,
        )
        for k in (["_cell"], ["_cell", "school_id"])
    )
    outs = []
    for d, s in zip(dist, sch, strict=True):
        d, s = _with_keys(d, cells), _with_keys(s, cells)
        out = pd.concat([text_back(d.assign(school_id="all"), text), text_back(s, text)], ignore_index=True)
        outs.append(out.rename(columns={"n_units": "n_students"}).drop(columns=["n_clusters"]))
    return outs[0] if isinstance(value, str) else outs


#: :func:`subgroup_cells_parts` puts parts together until they hold this many rows: a small district's cells are
#: made in one call (each call's fixed cost was most of a demo district's trajectory tables, 4x their time made a
#: year at a time), a large district's a part at a time.
PARTS_MIN_ROWS = 250_000


def subgroup_cells_parts(parts, **kw):
    """:func:`subgroup_cells` (same arguments) of the rows of ``parts``, frames each holding whole cells of
    ``keys`` (split on a key other than ``subject`` when pooled), one part at a time: the rows of
    ``subgroup_cells(pd.concat(parts), **kw)``, each cell's sums over the same rows in the same order, in an order
    :func:`order_rows` puts right. A million students' pairs of one year are a quarter of all their pairs,
    and so is the memory of their cells. Parts are put together until they hold :data:`PARTS_MIN_ROWS` rows; with
    ``pooled=True`` the cells of each subject of so large a frame come before its cells of the subjects pooled,
    made one after the other. Empty parts are skipped (all empty: the cells of the last).

    Examples
    --------
    >>> f = pd.DataFrame({"student_id": list("abcd"), "subject": "ela", "year": [1, 1, 2, 2],
    ...                   "school_id": "S1", "y": [1.0, 0.0, 1.0, 1.0]})
    >>> kw = dict(keys=["subject", "year"], variables=[], value="y", kind="share", confidence=0.95)
    >>> t = subgroup_cells_parts((f[f["year"] == y] for y in (2, 1)), **kw)
    >>> sorted(t[["year", "school_id", "estimate"]].values.tolist())
    [[1, 'S1', 0.5], [1, 'all', 0.5], [2, 'S1', 1.0], [2, 'all', 1.0]]
    """
    got, empty = [], None
    for frame in part_frames(parts):
        if not len(frame):  # every part empty: the cells of the last
            empty = frame
        elif len(frame) < PARTS_MIN_ROWS:
            got.append(subgroup_cells(frame, **kw))
        else:
            # with the subjects pooled, each subject's cells and then the subjects pooled (pooled="only": the same
            # cells, to the bit): the frame is not doubled
            ways = [False, "only"] if kw.get("pooled") is True else [kw.get("pooled", False)]
            got += [subgroup_cells(frame, **{**kw, "pooled": way}) for way in ways]
        del frame  # one frame at a time (not held while the next is made)
    if not got:
        return subgroup_cells(empty, **kw)
    if isinstance(kw["value"], str):
        return pd.concat(got, ignore_index=True)
    return [pd.concat(tables, ignore_index=True) for tables in zip(*got, strict=True)]


def part_frames(parts):
    """The frames of ``parts`` put together until they hold :data:`PARTS_MIN_ROWS` rows (as
    :func:`subgroup_cells_parts` makes its cells of them), empty parts skipped; when every part is empty, the last.

    Examples
    --------
    >>> f = pd.DataFrame({"y": range(3)})
    >>> [len(x) for x in part_frames([f, f.iloc[:0], f])], [len(x) for x in part_frames([f.iloc[:0]])]
    ([6], [0])
    """
    batch, rows, last = [], 0, None
    for part in parts:
        if len(part):
            batch.append(part)
            rows += len(part)
            if rows >= PARTS_MIN_ROWS:
                yield batch[0] if len(batch) == 1 else pd.concat(batch, ignore_index=True)
                batch, rows, last = [], 0, False
        elif last is not False:
            last = part
        del part  # one part's frame at a time (not held while the next is made)
    if batch:
        yield batch[0] if len(batch) == 1 else pd.concat(batch, ignore_index=True)
    elif last is not None and last is not False:
        yield last


def key_cells(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """The cell of ``keys`` of each row, numbered in the sorted order of the keys' values (categories by their
    codes, as ``groupby(keys, sort=True, observed=True)`` numbers them; -1 where a key is missing), and the keys'
    values of each cell (one row per cell, in that order).

    Examples
    --------
    >>> cell, cells = key_cells(pd.DataFrame({"s": ["b", "a", None, "b"], "y": [2017, 2016, 2016, 2016]}), ["s", "y"])
    >>> cell.tolist(), cells.values.tolist()
    ([2, 0, -1, 1], [['a', 2016], ['b', 2016], ['b', 2017]])
    """
    n = len(frame)
    combined, missing, span = np.zeros(n, dtype=np.int64), None, 1
    for c in keys:
        x = frame[c]
        if isinstance(x.dtype, pd.CategoricalDtype):
            cc, k = x.cat.codes.to_numpy(), len(x.cat.categories)
            gone = cc < 0
            if gone.any():
                missing = gone if missing is None else missing | gone
                cc = np.maximum(cc, 0)
        else:
            got = sorted_integer_codes(x)  # years: ranked without hashing (never missing)
            if got is None:
                cc, uniq = pd.factorize(x, sort=True)
                gone = cc < 0
                if gone.any():
                    missing = gone if missing is None else missing | gone
                    cc = np.maximum(cc, 0)
            else:
                cc, uniq = got
            k = len(uniq)
        span *= max(k, 1)
        if span >= 2**62:  # too many combinations for one integer: let pandas number them
            g = frame[keys].groupby(keys, sort=True, observed=True, dropna=True)
            cell = g.ngroup().fillna(-1).to_numpy().astype(np.int64)
            break
        if k > 1:  # (one value: the same combinations)
            combined *= k
            combined += cc
    else:
        if missing is None:  # every row has every key
            ok, cell, got = None, None, combined
        else:
            ok = np.flatnonzero(~missing)
            cell, got = np.full(n, -1, dtype=np.int64), combined[ok]
        if span <= 2 * n + 1024:  # the rank of each combination among those present, without sorting
            present = np.zeros(span, dtype=bool)
            present[got] = True
            ranked = (np.cumsum(present) - 1)[got]
        else:
            ranked = np.unique(got, return_inverse=True)[1].ravel()
        if ok is None:
            cell = ranked
        else:
            cell[ok] = ranked
    ok = np.flatnonzero(cell >= 0)
    first = np.full(int(cell.max(initial=-1)) + 1, n, dtype=np.int64)
    np.minimum.at(first, cell[ok], ok)
    return cell, frame[keys].take(first).reset_index(drop=True)


def _with_keys(table: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the keys' values of each row's ``_cell`` (:func:`key_cells`) in the place of ``_cell``."""
    at = table.columns.get_loc("_cell")
    keys = cells.take(table["_cell"].cat.codes.to_numpy()).reset_index(drop=True)
    return pd.concat([table.iloc[:, :at], keys, table.iloc[:, at + 1 :]], axis=1)


def side_by_side(cells: list[pd.DataFrame], names: list[str], keys: list[str]) -> pd.DataFrame:
    """The cells of several values (:func:`subgroup_cells` with a list of values) in one table: each value's
    ``estimate``, ``ci_lower`` and ``ci_upper`` named after it (``name``, ``name_ci_lower``, ``name_ci_upper``), on
    the rows of the first value's cells (its counts kept).

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"year": 1, "school_id": "all", "group": "all", "n": [4], "estimate": [0.5],
    ...                   "ci_lower": [0.1], "ci_upper": [0.9]})
    >>> side_by_side([a, a.assign(estimate=0.25)], ["up", "down"], ["year"]).columns.tolist()
    ['year', 'school_id', 'group', 'n', 'up', 'up_ci_lower', 'up_ci_upper', 'down', 'down_ci_lower', 'down_ci_upper']
    """
    on = keys + ["school_id", "group"]
    out = None
    for t, name in zip(cells, names, strict=True):
        cols = {"estimate": name, "ci_lower": f"{name}_ci_lower", "ci_upper": f"{name}_ci_upper"}
        t = t.rename(columns=cols)
        if out is None:
            out = t
        elif t[on].equals(
            out[on]
        ):  # the same cells in the same order (one call's values): what the merge gives
            out = out.assign(**{c: t[c] for c in cols.values()})
        else:
            out = out.merge(t[on + list(cols.values())], on=on, how="left", validate="one_to_one")
    return out


def order_rows(out: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in the tables' order: subject (ELA, math, pooled), the other keys, district before schools, all
    students before groups.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"subject": ["all", "math", "ela"], "school_id": ["all", "S1", "all"],
    ...                   "group": "all", "variable": "all"})
    >>> order_rows(t, ["subject"])[["subject", "school_id"]].values.tolist()
    [['ela', 'all'], ['math', 'S1'], ['all', 'all']]
    """
    subj = {"ela": 0, "math": 1, "all": 2}
    out = out.assign(
        _subj=out["subject"].map(subj).fillna(3), _d=out["school_id"].ne("all"), _g=out["group"].ne("all")
    )
    rest = [k for k in keys if k != "subject"]
    out = out.sort_values(["_subj"] + rest + ["_d", "school_id", "_g", "variable", "group"])
    return out.drop(columns=["_subj", "_d", "_g"]).reset_index(drop=True)
