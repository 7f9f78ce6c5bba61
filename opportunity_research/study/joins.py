"""Joins of student-level frames to a table with one row per key, on row positions instead of pandas merges.

A pandas merge on text ids hashes every row's text and builds the result through its join machinery; these look
each key up in one hash table of the other table's keys (Arrow's; pandas' for int64 student keys: :func:`id_positions`)
and take the other table's columns by position. The results are the merges' (the same rows in the same order,
columns, dtypes and labels); where a merge would add missing values (a key not found in a left join) or repeat rows
(a repeated key), or the keys are not Arrow-comparable, the merge itself is made.

Examples
--------
>>> import pandas as pd
>>> left = pd.DataFrame({"student_id": ["b", "a", "b"], "score": [1.0, 2.0, 3.0]})
>>> right = pd.DataFrame({"student_id": ["a", "b"], "school_id": ["S1", "S2"]})
>>> merge_unique(left, right, on="student_id").equals(left.merge(right, on="student_id", how="left"))
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "id_positions",
    "id_positions_of",
    "increasing_ids",
    "merge_unique",
    "positions_of",
    "roster_positions",
    "run_positions",
    "unique_ids",
]

#: :func:`unique_ids`' answers, per Arrow array (by its ``id``, with a weak reference to it: an Arrow array never
#: changes, and its entry goes when it does).
_UNIQUE: dict = {}


def unique_ids(ids: pd.Series) -> bool:
    """``ids.notna().all() and not ids.duplicated().any()``: every id present and none repeated.

    An Arrow-backed column (the district's ids) is checked once: the answer is kept for its Arrow array, which
    every selection of the table's column shares (a million students' roster was hashed for this by each join to
    it). Other dtypes are checked each time.

    Examples
    --------
    >>> s = pd.DataFrame({"student_id": pd.Series(["a", "b"], dtype="str"), "x": [1, 2]})
    >>> unique_ids(s["student_id"]), unique_ids(s[["student_id"]]["student_id"]), unique_ids(pd.Series(["a", "a"]))
    (True, True, False)
    """
    arrow = getattr(ids.array, "_pa_array", None)
    got = _UNIQUE.get(id(arrow)) if arrow is not None else None
    if got is not None and got[0]() is arrow:
        return got[1]
    ok = bool(ids.notna().all() and not ids.duplicated().any())
    if arrow is not None:
        import weakref

        try:
            key = id(arrow)
            _UNIQUE[key] = (weakref.ref(arrow, lambda _, key=key: _UNIQUE.pop(key, None)), ok)
        except TypeError:  # pragma: no cover - not weakly referable: not kept
            pass
    return ok


def increasing_ids(ids: pd.Series) -> bool:
    """Every id present and each greater than the one before (so none repeated): Arrow text or numbers, or NumPy
    integers, compared with the next, without hashing them (a table's own ids kept in order, e.g. the
    assignments': :func:`unique_ids` of them, one pass of compares); False for other dtypes, or ids out of order
    (they may still be unique).

    Examples
    --------
    >>> increasing_ids(pd.Series(["a", "b"], dtype="str")), increasing_ids(pd.Series(["a", None], dtype="str"))
    (True, False)
    >>> increasing_ids(pd.Series([1, 1])), increasing_ids(pd.Series([2, 1])), increasing_ids(pd.Series([1.0, 2.0]))
    (False, False, False)
    """
    arrow = getattr(ids.array, "_pa_array", None)
    if arrow is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            return arrow.null_count == 0 and bool(pc.all(pc.less(arrow[:-1], arrow[1:])).as_py())
        except pa.ArrowException:  # not comparable in Arrow
            return False
    if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu":
        x = ids.to_numpy()
        return bool((x[1:] > x[:-1]).all())
    return False


def id_positions(known: pd.Series, ids: pd.Series) -> np.ndarray | None:
    """Each of ``ids``' position among ``known`` (unique, none missing), -1 where it is not there (or missing); None
    when the two are not Arrow-comparable text or numbers. One hash table of ``known`` (see :func:`id_positions_of`),
    probed by every id: no Python object per row, and no merge on the ids' text.

    Examples
    --------
    >>> id_positions(pd.Series(["a", "b"], dtype="str"), pd.Series(["b", "x", None, "a"], dtype="str")).tolist()
    [1, -1, -1, 0]
    """
    got = id_positions_of(known, [ids])
    return None if got is None else got[0]


def run_positions(known: pd.Series, ids: pd.Series) -> np.ndarray | None:
    """:func:`id_positions` of ``ids`` that come in runs of one id (e.g. the work samples of an assignment): each
    run's first id looked up, its position repeated over the run (5.2 million work samples, 1.3 million runs).

    Examples
    --------
    >>> run_positions(pd.Series(["a", "b"], dtype="str"), pd.Series(["b", "b", "x", None, None, "a", "b"], dtype="str")).tolist()
    [1, 1, -1, -1, -1, 0, 1]
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        v = pa.array(ids.array)
        new = pc.fill_null(pc.not_equal(v[1:], v[:-1]), True).to_numpy(zero_copy_only=False)
    except (TypeError, ValueError, ImportError, pa.ArrowException):  # not comparable in Arrow
        return id_positions(known, ids)
    heads = np.flatnonzero(np.concatenate([[True], new])) if len(ids) else np.zeros(0, dtype=np.int64)
    at = id_positions(known, ids.take(heads))
    return None if at is None else np.repeat(at, np.diff(heads, append=len(ids)))


def id_positions_of(known: pd.Series, parts) -> list[np.ndarray] | None:
    """:func:`id_positions` of each Series of ``parts`` (ids of one type), from one Arrow hash table of ``known``
    (building it is most of a lookup in a million students' roster); None when one of them is not comparable.
    NumPy int64 ids (the students' keys) in an int64 ``known`` are looked up in pandas' hash table of them instead
    (the same positions; at a million students about a quarter less CPU than Arrow's).

    Examples
    --------
    >>> known = pd.Series(["a", "b"], dtype="str")
    >>> [x.tolist() for x in id_positions_of(known, [pd.Series(["b"], dtype="str"), pd.Series(["x", "a"], dtype="str")])]
    [[1], [-1, 0]]
    """
    int64 = np.dtype(np.int64)
    if known.dtype == int64 and parts and all(ids.dtype == int64 for ids in parts):
        try:
            at = pd.Index(known.to_numpy()).get_indexer(np.concatenate([ids.to_numpy() for ids in parts]))
        except pd.errors.InvalidIndexError:  # a repeated id in known: Arrow's first position of it
            pass
        else:
            return np.split(at.astype(np.int64, copy=False), np.cumsum([len(ids) for ids in parts])[:-1])
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = [pa.array(ids.array) for ids in parts]
        kind = values[0].type
        chunks = []
        for v in values:
            v = v.cast(kind) if v.type != kind else v
            chunks += v.chunks if isinstance(v, pa.ChunkedArray) else [v]
        universe = pa.array(known.array)
        if isinstance(universe, pa.ChunkedArray):
            universe = universe.combine_chunks()
        at = pc.index_in(pa.chunked_array(chunks, type=kind), value_set=universe.cast(kind))
        at = pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    except (TypeError, ValueError, ImportError, pa.ArrowException):
        return None
    return np.split(at, np.cumsum([len(ids) for ids in parts])[:-1])


def roster_positions(students: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray | None:
    """Each ``frame`` row's student's position on the roster ``students`` (-1: not on it, or no id), looked up once
    for every function that joins the same rows to the roster (their ``roster_at``); None when the roster has a
    missing or repeated id, or the ids are not Arrow-comparable (those functions then join as they do alone).

    The positions are :func:`id_positions` of the roster's ids, as each of those functions finds them for the rows
    it selects (``roster_positions(...)[rows]`` is ``id_positions(roster, frame["student_id"].take(rows))``).

    Examples
    --------
    >>> s = pd.DataFrame({"student_id": ["a", "b"]})
    >>> roster_positions(s, pd.DataFrame({"student_id": ["b", "x", "a", "b"]})).tolist()
    [1, -1, 0, 1]
    >>> roster_positions(pd.DataFrame({"student_id": ["a", "a"]}), s) is None  # a repeated id
    True
    """
    ids = students["student_id"]
    if not unique_ids(ids):
        return None
    return id_positions(ids, frame["student_id"])


def positions_of(
    roster_at: np.ndarray, frame: pd.DataFrame, rows: np.ndarray, *, whole: bool = False
) -> np.ndarray | None:
    """The roster positions (int64) of ``frame``'s rows at ``rows`` from ``roster_at`` (:func:`roster_positions`,
    one per row of ``frame``: else ``ValueError``); with ``whole=True``, None unless every one of them (and at
    least one) is on the roster.

    Examples
    --------
    >>> at, frame = np.array([4, -1, 2], dtype=np.int32), pd.DataFrame({"x": [1, 2, 3]})
    >>> positions_of(at, frame, np.array([2, 0])), positions_of(at, frame, np.array([1, 2]), whole=True)
    (array([2, 4]), None)
    """
    if len(roster_at) != len(frame):
        raise ValueError(f"roster_at: {len(roster_at):,} positions for {len(frame):,} rows")
    at = roster_at[rows].astype(np.int64)
    return None if whole and not (len(at) and (at >= 0).all()) else at


def unique_positions(right: pd.DataFrame, left: pd.DataFrame, on: str) -> np.ndarray | None:
    """Each ``left`` row's position in ``right`` by the key ``on`` (-1: not there), when ``right``'s keys are unique
    and none is missing and both keys have one dtype; else None (join as pandas does).

    Examples
    --------
    >>> r = pd.DataFrame({"k": ["a", "b"]})
    >>> unique_positions(r, pd.DataFrame({"k": ["b", "c"]}), "k").tolist(), unique_positions(r.iloc[[0, 0]], r, "k")
    ([1, -1], None)
    """
    if on not in left.columns or on not in right.columns or left[on].dtype != right[on].dtype:
        return None
    keys = right[on]
    if not len(left) or not unique_ids(keys):
        return None
    return id_positions(keys, left[on])


def merge_unique(
    left: pd.DataFrame, right: pd.DataFrame, *, on: str, how: str = "left", **merge
) -> pd.DataFrame:
    """``left.merge(right, on=on, how=how, **merge)`` (``how``: ``"left"`` or ``"inner"``), on row positions when
    ``right`` has one row per key.

    The result is the merge's: ``left``'s rows in their order (a left join: every one, which needs every key found,
    else the merge is made; an inner join: those whose key is in ``right``), ``left``'s columns and then
    ``right``'s others, labelled ``0..n-1``. Made by the merge itself when ``right``'s keys repeat or are missing,
    a column name is in both tables, or the keys are not Arrow-comparable.

    Examples
    --------
    >>> left = pd.DataFrame({"student_id": ["b", "x", "a"], "score": [1.0, 2.0, 3.0]})
    >>> right = pd.DataFrame({"student_id": ["a", "b"], "grade": [3, 4]})
    >>> merge_unique(left, right, on="student_id", how="inner").values.tolist()
    [['b', 1.0, 4], ['a', 3.0, 3]]
    >>> merge_unique(left, right, on="student_id")["grade"].tolist()  # "x" is not found: the merge, NaN
    [4.0, nan, 3.0]
    """
    return merge_positions(left, right, on=on, how=how, **merge)[0]


def merge_positions(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    on: str,
    how: str = "left",
    positions: np.ndarray | None = None,
    **merge,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`merge_unique` and the position in ``right`` of each of its rows (int64; None when the merge itself
    was made): e.g. each row's student as their row of the roster, an integer code in place of the id text.

    ``positions``: each ``left`` row's position in ``right``, when the caller knows it (``left``'s keys are those of
    ``right``'s rows there, and ``right``'s keys are unique and never missing, e.g. ``left`` made from ``right``'s
    rows): used in place of looking the keys up, for a ``left`` with rows and keys of ``right``'s keys' dtype.

    Examples
    --------
    >>> left = pd.DataFrame({"student_id": ["b", "x", "a"], "score": [1.0, 2.0, 3.0]})
    >>> right = pd.DataFrame({"student_id": ["a", "b"], "grade": [3, 4]})
    >>> merge_positions(left, right, on="student_id", how="inner")[1].tolist()
    [1, 0]
    >>> merge_positions(left.iloc[[2, 0]], right, on="student_id", positions=np.array([0, 1]))[0].values.tolist()
    [['a', 3.0, 3], ['b', 1.0, 4]]
    """
    if how not in ("left", "inner"):
        raise ValueError(f"merge_unique: how must be 'left' or 'inner', not {how!r}")
    extra = [c for c in right.columns if c != on]
    if set(extra) & set(left.columns):
        at = None
    elif positions is not None and len(left) and left[on].dtype == right[on].dtype:
        if len(positions) != len(left):
            raise ValueError(f"merge_positions: {len(positions):,} positions for {len(left):,} rows")
        at = np.asarray(positions, dtype=np.int64)
    else:
        at = unique_positions(right, left, on)
    if at is None or (how == "left" and (at < 0).any()):
        return left.merge(right, on=on, how=how, **merge), None
    rows = None if (at >= 0).all() else np.flatnonzero(at >= 0)
    out = left.reset_index(drop=True) if rows is None else left.take(rows).reset_index(drop=True)
    pos = at if rows is None else at[rows]
    out = (
        pd.concat([out, *(right[c].take(pos).reset_index(drop=True) for c in extra)], axis=1)
        if extra
        else out
    )
    return out, pos
