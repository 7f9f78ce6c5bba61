"""The audits a protection state already ran, by its state (a shortcut of the protection pass, same results),
and rule 2's closure of the rows of newly hidden counts (:func:`row_closure`, :func:`close_counts`).

The count audit (``protection._State.count_audit``) is a function of the hidden counts ``H`` alone (the audit
engine's caches, :mod:`.lp`, only ever return what the LPs of the same inputs return). The clean-up and the swaps
(:mod:`.refine`) come back to states audited before (a try that fails restores the state before it, and the
next try's rounds often reach a state seen before), so :func:`by_state` returns the earlier result without its
LPs. A count audit is kept only when it ran in full (a partial audit that found counts too narrow depends on the
audit before it: its intervals are partial). :func:`without_cyclic_gc` runs the pass without Python's cyclic garbage
collector.
"""

from __future__ import annotations

import functools
import gc
import itertools

import numpy as np

from .model_arrays import IndexLists, ranges

__all__ = [
    "LINK_BY_LISTS_MAX",
    "StateMemo",
    "by_state",
    "close_counts",
    "row_closure",
    "without_cyclic_gc",
]

#: :class:`StateMemo` keeps results up to this size in all (counts in their keys and intervals; the oldest go
#: first): a 1,000,000-student pass' full count audit holds about 45,000 intervals.
KEEP = 400_000


class StateMemo:
    """Results by key, up to :data:`KEEP` in size in all (each result's ``size`` given), the oldest dropped first.

    Examples
    --------
    >>> memo = StateMemo(keep=3)
    >>> memo.keep("a", 1, size=2); memo.keep("b", 2, size=2)
    >>> memo.get("a"), memo.get("b"), memo.hits
    (None, 2, 1)
    """

    def __init__(self, keep: int = KEEP):
        self._items: dict = {}
        self._held, self._max = 0, keep
        self.hits = 0  # results returned

    def get(self, key):
        got = self._items.get(key)
        if got is None:
            return None
        self.hits += 1
        return got[0]

    def keep(self, key, value, size: int) -> None:
        old = self._items.pop(key, None)
        self._held += size - (old[1] if old is not None else 0)
        self._items[key] = (value, size)
        while self._held > self._max and len(self._items) > 1:
            self._held -= self._items.pop(next(iter(self._items)))[1]


def without_cyclic_gc(func):
    """``func`` run with Python's cyclic garbage collector paused (as it was set before, after it; reference counting
    frees what it drops as always). The protection pass and the publish audit build millions of tuples and lists
    that hold no cycle, and each full collection walked all of them again: at 1,000,000 students the collections
    (16 full ones) took 3.7 of the pass' 82 CPU-s (its peak memory 2.16 GB with them, 2.12 GB without).

    Examples
    --------
    >>> @without_cyclic_gc
    ... def collecting():
    ...     return gc.isenabled()
    >>> collecting(), gc.isenabled()
    (False, True)
    """

    @functools.wraps(func)
    def run(*args, **kwargs):
        was = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was:
                gc.enable()

    return run


def by_state(method):
    """The protection state's count audit (``_State.count_audit``: ``(intervals, too narrow)``) memoized by the
    hidden counts: a full audit run before for the same counts is returned again (as copies), and the state's
    record of its last audit set as that audit set it.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> calls = []
    >>> def audit(st):
    ...     calls.append(1)
    ...     st._audited = (set(st.H), [], {1: (0.0, 9.0)})  # a full audit's record
    ...     return {1: (0.0, 9.0)}, []
    >>> st = NS(H={1}, hidden_rows=lambda counts: None)
    >>> by_state(audit)(st), by_state(audit)(st), len(calls)
    (({1: (0.0, 9.0)}, []), ({1: (0.0, 9.0)}, []), 1)
    """

    @functools.wraps(method)
    def run(st):
        memo = st.__dict__.get("_memo")
        if memo is None:
            memo = st._memo = StateMemo()
        key = frozenset(st.H)
        got = memo.get(key)
        # the full audit of these hidden counts, run before: its intervals, and the state's record as it set it
        if got is not None:
            bad, iv = got
            st.last_audit = (st.hidden_rows(counts=True), iv)
            st._audited = (set(st.H), bad, iv)
            return dict(iv), list(bad)
        iv, bad = method(st)
        done = st._audited
        if done is not None and done[2] is not None and done[0] == st.H:  # it ran in full
            memo.keep(key, (list(done[1]), done[2]), len(key) + len(done[2]))
        return iv, bad

    return run


#: Rule 2's closure (``protection._State.link``) reads the rows of at most this many newly hidden counts from the
#: state's lists (:func:`row_closure`; the same counts as its sparse products over every row and count, which took
#: about 3 CPU-s of the 1,000,000-student pass).
LINK_BY_LISTS_MAX = 20_000


def row_closure(front, rows_of: IndexLists, own, hidden) -> list[int]:
    """The counts not in ``hidden`` that a row of a count of ``front`` describes, ascending: the rows of each count
    (``rows_of``, :class:`IndexLists`) and the counts of each row (``own``, a ``model_arrays.RowLists``), read from
    their arrays at once (a loop over each count's rows and each row's counts took about 0.2 of the 2.4 CPU-s of a
    1,500-student district's pass, the clean-up's every try closing every hidden count again).

    Examples
    --------
    >>> from opportunity_research.disclosure.model_arrays import RowLists, flat_index_lists
    >>> own = RowLists(); own.add([2, 3], [2, 7, 5, 2, 3]); own.freeze()
    >>> row_closure({2}, flat_index_lists(np.array([1, 2]), np.array([2, 2, 5])), own, {2, 3})
    [5, 7]
    """
    rows = rows_of.positions_of(np.fromiter(front, dtype=np.int64, count=len(front)))
    start = own.start
    got = np.unique(own.var[ranges(start[rows], start[rows + 1] - start[rows])])
    return [u for u in got.tolist() if u not in hidden]


def close_counts(st, groups: list[int]) -> list[int]:
    """Rule 2's close counts (``protection._State.link``) of the groups ``groups`` (ascending) of the state ``st``:
    the counts not hidden whose count is within ``st.protection`` of a hidden count of their group (with
    ``close_counts="small"``, of a hidden count below ``min_n``), group by group, each group's counts in order.

    Taken at once from the groups as arrays (the nearest hidden count of a group on each side of a count, by one
    sort) where every count of these groups is a whole number from 0 to 2**40 (the distances are then exact), else
    by the loop over the groups (at 1,000,000 students that loop took about 0.1 CPU-s a clean-up try).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> st = SimpleNamespace(group_list=[[0, 1, 2], [3, 4]], m=SimpleNamespace(var_x=[3.0, 12.0, 30.0, 5.0, 9.0]),
    ...                      H={0, 3}, close_counts="all", min_n=10, protection=10, _group_arrays=None)
    >>> close_counts(st, [0, 1])
    [1, 4]
    """
    if not groups:
        return []
    if st._group_arrays is None:
        lens = np.fromiter((len(vs) for vs in st.group_list), dtype=np.int64, count=len(st.group_list))
        flat = np.fromiter(
            itertools.chain.from_iterable(st.group_list), dtype=np.int64, count=int(lens.sum())
        )
        st._group_arrays = flat, np.concatenate([[0], np.cumsum(lens)]), np.asarray(st.m.var_x, dtype=float)
    flat, start, x = st._group_arrays
    g = np.asarray(groups, dtype=np.int64)
    lens = start[g + 1] - start[g]
    vs = flat[np.repeat(start[g] - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))]  # in order
    xv = x[vs]
    if len(st.group_list) >= 2**22 or not ((xv >= 0) & (xv < 2**40) & (xv == np.floor(xv))).all():
        return _close_counts_loop(st, groups)  # (a missing count, a fraction: the loop's own comparisons)
    in_h = np.zeros(len(x), dtype=bool)
    in_h[np.fromiter(st.H, dtype=np.int64, count=len(st.H))] = True
    hid = in_h[vs]
    near_of = hid if st.close_counts == "all" else hid & (xv < st.min_n)
    key = (np.repeat(g, lens) << 41) | xv.astype(np.int64)  # group, then count: sorted as (group, count)
    marks, cand = np.sort(key[near_of]), key[~hid]
    close = np.zeros(len(cand), dtype=bool)
    if len(marks):
        at = np.searchsorted(marks, cand)
        for p in (at - 1, at):  # the nearest marks below and above, in the same group
            k = marks[np.clip(p, 0, len(marks) - 1)]
            close |= (
                (p >= 0) & (p < len(marks)) & (k >> 41 == cand >> 41) & (np.abs(k - cand) < st.protection)
            )
    return vs[~hid][close].tolist()


def _close_counts_loop(st, groups) -> list[int]:
    """:func:`close_counts` by the loop over the groups (the rule as first written)."""
    out, var_x, hidden = [], st.m.var_x, st.H
    for g in groups:
        vs = st.group_list[g]
        hx = [var_x[v] for v in vs if v in hidden and (st.close_counts == "all" or var_x[v] < st.min_n)]
        if not hx:
            continue
        out.extend(v for v in vs if v not in hidden and min(abs(var_x[v] - h) for h in hx) < st.protection)
    return out
