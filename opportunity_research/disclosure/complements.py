"""Rule 3's choice of complements (:mod:`~opportunity_research.disclosure.protection`), and a shortcut of rule 4.

:func:`complement` picks the shown count that rule 3 hides next for an unprotected count, :func:`next_complement`
goes on through the whole connected part of the model when rule 3 finds none, and :func:`touched` says whether a
count's pinning relation got a new hidden count in this round. All of them read the protection pass' state
(``protection._State``: the model, the hidden counts ``H`` and their relations). :func:`design_by_one_relation`
decides the design rows an attacker can work out in a large district from one equality each (rule 4's
``known_design_rows``), and :func:`pooled_near` is rule 4's value test of one relation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

from .lp_blocks import TOL
from .model_arrays import int32, ranges

__all__: list[str] = []


def complement(st, v: int, exclude=()) -> int | None:
    """Rule 3: a shown count sharing a relation with ``v``, least valuable to a reader first.

    In the relation with the fewest hidden cells (the one that pins ``v``): a group's count before an
    all-students count, a part before a total, a count shown in one row before one shown in many, the
    smaller count first (ranking every school before the district, Gauss-style, hid more on the demo
    districts). When every relation holding ``v`` is already hidden (``v`` is narrowed through hidden
    neighbours), the search goes on through the relations of those neighbours. Totals and
    all-students counts come last of all: the whole neighbourhood is searched for a group's count
    first (before: an all-students count in the first relation won over a group's count one step
    further; Fairview's gap rows hidden 88 -> 48 of 120, Riverton 2.50 -> 1.51 hidden per small cell).
    With ``shown_only`` (rows left out: see the module's rule 3) only a count some shown row has is a
    candidate, a hidden count is one no shown row has, and the nearest pinning relation comes first.
    """
    m = st.m

    unpub = m.unpublished
    hidden = st.H
    shown = None
    if st.shown_only:
        # where rows are left out, a count is hidden when no shown row has it (in H or not: a count of rows
        # left out is hidden from the start), and only a count some shown row has can be a complement
        shown = ~st.hidden_rows(counts=True)
        hidden = Unknown(np.asarray(m.row_var_mat.T @ shown.astype(float)).ravel() == 0)
    n_hidden: dict[int, int] = {}  # hidden counts of each relation (H does not change during the search)

    def hidden_in(k):
        got = n_hidden.get(k)
        if got is None:
            got = n_hidden[k] = sum(u in hidden for u in m.relations[k][0])
        return got

    def rank(u, coefs):
        # a count of unpublished rows only first (hiding it costs nothing); then a group's count before an
        # all-students count; a part before a total; one shown in one row before one shown in many; the
        # smaller first
        free = len(unpub) > 0 and bool(unpub[st.var_rows[u]].all())
        return (
            not free,
            m.var_total[u],
            coefs[u] < 0,
            len(st.var_rows[u]) > 1,
            -m.var_x[u] if st.larger_first else m.var_x[u],
            str(m.var_key[u]),
        )

    # Gauss-style priority: every relation within reach (through hidden neighbours) is searched for a
    # group's count before any all-students or total count may serve as a complement
    def district_all(u):
        return m.var_key[u][2] == "all" and m.var_key[u][3] == "all"

    def pick(w, k, total_ok):
        coefs = m.relations[k][0]
        part = coefs.get(w, 0) > 0
        cands = [
            u
            for u, c in coefs.items()
            if st.decision[u]
            and u not in st.H
            and u not in exclude
            and m.var_x[u] > 0
            and (shown is None or u not in hidden)
            and (
                total_ok is True
                or (total_ok and not district_all(u))
                or (not m.var_total[u] and (c > 0 or not part))
            )
        ]
        return min(cands, key=lambda u: rank(u, coefs)) if cands else None

    def search(levels, nearest=False):
        # breadth first through the hidden neighbours; at each depth, each level of `levels` in turn (with
        # `nearest`: each relation in turn, and each level within it)
        seen, frontier = {v}, [v]
        for _depth in range(6):
            nxt = []
            # the relation with the fewest hidden cells first: it is the one that pins w
            order = [(w, sorted(st.var_rel[w], key=lambda k: (hidden_in(k), k))) for w in frontier]
            steps = (
                ((w, k, lv) for w, rels in order for k in rels for lv in levels)
                if nearest
                else ((w, k, lv) for lv in levels for w, rels in order for k in rels)
            )
            for w, k, total_ok in steps:
                c = pick(w, k, total_ok)
                if c is not None:
                    return c
            for w, rels in order:
                for k in rels:
                    for u in m.relations[k][0]:
                        if u in hidden and u not in seen:
                            seen.add(u)
                            nxt.append(u)
            frontier = nxt
        return None

    levels = (False, "not district", True)
    if st.shown_only:
        # where rows are left out (a large district's design), most counts near v are hidden already and
        # searching the whole neighbourhood for a shown group's count before any total cost seconds a
        # count at 1,000,000 students: the nearest relation that pins v first (through hidden neighbours),
        # and in it a group's count before a total, a school's before the district's all-students count
        return search(levels, nearest=True)
    for total_ok in levels:
        c = search((total_ok,))
        if c is not None:
            return c
    return None


def partitions_to_read(st, hid: np.ndarray) -> np.ndarray:
    """Rule 4 (``_State.estimate_audit``): the relations (``m.partitions``, in order) it reads with these hidden rows: those with a hidden
    part, not all of whose hidden parts are unpublished when none is shown, and, in a cell relation, whose
    total is shown (sparse products over every relation, instead of a Python loop over them each audit)."""
    m = st.m
    if st._partition_rows is None:
        p = m.partitions  # model_arrays.Partitions: its arrays
        p.flush()
        mat = sparse.csr_matrix((np.ones(len(p.rows)), p.rows, p.start), shape=(len(p), len(m.rows)))
        total = np.where(p.cell, p.total, -1)
        st._partition_rows = mat, total
    mat, total = st._partition_rows
    n_hid = mat @ hid.astype(float)
    keep = n_hid > 0
    if len(m.unpublished):
        n_shown = mat @ (~hid).astype(float)
        keep &= ~((n_shown == 0) & (mat @ (hid & m.unpublished).astype(float) == n_hid))
    keep &= ~((total >= 0) & hid[np.maximum(total, 0)])
    return np.flatnonzero(keep)


def design_by_one_relation(st, hid: np.ndarray, vs: list[int]) -> dict[int, tuple[float, float]]:
    """Counts of ``vs`` whose interval one equality decides (pinned or not), as ``known_design_rows`` reads it.

    In an equality whose other counts are all shown, a count is pinned (its true value; the LP finds the same).
    In one with a single other count unknown, the count moves with that count: when the count audit of the same
    state (``st.last_audit``) found that one at least ``2 / |ratio of coefficients|`` wide, so is this one (an
    inner range, as the LPs report a wide count). Counts decided neither way are left to the LPs. A school's
    "all other students" row is its all-students count minus the group's, so at 1,000,000 students nearly all
    are decided here (their LPs, with a need of 1, took minutes).

    Each count's equalities of at most :data:`SHORT` counts are read in turn, the shortest first (a longer one
    leaves several unknown), and the first that decides it wins. They are kept as sparse rows (one per count
    and equality, built once per count), so a call costs a few sparse products over them, not a Python loop
    over the counts (1.3 CPU-s a call at 1,000,000 students).
    """
    m = st.m
    ent = st.single_entries
    if ent is None:
        e = m.entries  # the entries of one count with a nonzero coefficient and a value (arrays, in order)
        one = np.flatnonzero(np.diff(e.start) == 1)
        one = one[(e.coef[e.start[one]] != 0) & ~np.isnan(e.val[one])]
        ent = st.single_entries = int32(np.column_stack([e.rid[one], e.var[e.start[one]]])).reshape(-1, 2)
    nv = len(m.var_key)
    fixed = np.zeros(nv, dtype=bool)
    fixed[ent[:, 1][~hid[ent[:, 0]]]] = True
    x = np.asarray(m.var_x, dtype=float)
    vs_arr = np.asarray(vs, dtype=np.int64)
    out = {int(v): (float(m.var_x[v]),) * 2 for v in vs_arr[fixed[vs_arr]].tolist()}
    want = vs_arr[~fixed[vs_arr]]
    if not len(want):
        return out
    rel = _design_equalities(st, want)
    mine = np.zeros(nv, dtype=bool)
    mine[want] = True
    sel = np.flatnonzero(mine[rel["v"]])  # the pairs of the counts asked about, in order
    if not len(sel):
        return out
    others, coefs = rel["others"][sel], rel["coefs"][sel]
    free = (~fixed).astype(float)
    n_free = others @ free
    one = n_free == 1
    at = np.where(one, others @ (np.arange(nv) * free), 0).astype(np.int64)  # the one free count, if one
    c_free = coefs @ free  # its coefficient
    last = st.last_audit
    audited = last[1] if last is not None and np.array_equal(last[0], hid) else {}
    lo, hi = np.full(nv, np.nan), np.full(nv, np.nan)
    has = np.zeros(nv, dtype=bool)
    if audited:
        keys = np.fromiter(audited, dtype=np.int64, count=len(audited))
        ends = np.array(list(audited.values()), dtype=float).reshape(len(keys), 2)
        lo[keys], hi[keys], has[keys] = ends[:, 0], ends[:, 1], True
    known = one & has[at]
    a_lo, a_hi = lo[at], hi[at]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(c_free / rel["cv"][sel])
        moves = known & np.isfinite(a_hi) & (ratio * (a_hi - a_lo) >= 2)
    unbounded = known & ~moves & np.isinf(a_hi)
    decided = (n_free == 0) | moves | unbounded
    pv = rel["v"][sel]
    d = np.flatnonzero(decided)
    # each count's first deciding equality (its pairs are together, in order)
    _, first = np.unique(pv[d], return_index=True)
    for j in d[first].tolist():
        v = int(pv[j])
        if n_free[j] == 0:
            out[v] = (float(m.var_x[v]),) * 2
        elif moves[j]:
            # its values at the two ends of that range (the relation holds at the true counts)
            u, slope = int(at[j]), -float(c_free[j]) / float(rel["cv"][sel][j])
            e = sorted(float(x[v] + slope * (float(b) - x[u])) for b in (a_lo[j], a_hi[j]))
            out[v] = (e[0], e[1])
        else:
            out[v] = (-math.inf, math.inf)  # unbounded with that count
    return out


def _design_equalities(st, vs: np.ndarray) -> dict:
    """Each count's equalities of at most :data:`SHORT` counts (the shortest first), one sparse row per count and
    equality: ``v`` (the count), ``cv`` (its coefficient), ``others`` (1 at the equality's other counts) and
    ``coefs`` (their coefficients). Kept in ``st.design_relations``; extended when a new count is asked about."""
    m = st.m
    nv = len(m.var_key)
    got = st.design_relations
    done = got.get("done")
    if done is None or len(done) != nv:
        done = np.zeros(nv, dtype=bool)
        got.clear()
        empty = np.zeros(0, dtype=np.int64)
        got.update(done=done, rows=(empty, np.zeros(0), empty, empty, np.zeros(0)))
    new = vs[~done[vs]]
    if len(new) or "others" not in got:
        add = _short_equalities(m.relations, st.var_rel, new)
        done[new] = True
        v_all, cv_all, lens, cols, vals = got["rows"] = tuple(
            np.concatenate([a, b]) for a, b in zip(got["rows"], add)
        )
        indptr = np.concatenate([[0], np.cumsum(lens)])
        got["v"], got["cv"] = v_all, cv_all
        got["others"] = sparse.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(len(v_all), nv))
        got["coefs"] = sparse.csr_matrix((vals, cols, indptr), shape=(len(v_all), nv))
    return got


#: :func:`design_by_one_relation` reads equalities of at most this many counts.
SHORT = 30


def _short_equalities(rel, var_rel, new: np.ndarray) -> tuple:
    """The equalities of at most :data:`SHORT` counts of each count of ``new`` in which its coefficient is not 0, the
    shortest first (ties in the relations' order), as arrays: ``(count, its coefficient, each row's number of other
    counts, the other counts, their coefficients)``, in the relations' own order of counts.

    Read from the arrays of ``rel`` (:class:`~.model_arrays.Relations`) and ``var_rel`` (the relations of each count,
    :class:`~.model_arrays.IndexLists`) at once, not by building each relation's dict (at 1,000,000 students a loop over the
    design counts built about 300,000 of them, kept by the relations: about 220 MB).

    Examples
    --------
    >>> from opportunity_research.disclosure.model_arrays import Relations
    >>> r = Relations()
    >>> r.extend([({4: 1.0, 2: 1.0, 7: -1.0}, "eq"), ({2: 1.0, 5: -1.0}, "eq"), ({2: 1.0, 9: -1.0}, "le")])
    >>> r.flush()
    >>> [x.tolist() for x in _short_equalities(r, r.index_lists(), np.array([2]))]
    [[2, 2], [1.0, 1.0], [1, 2], [5, 4, 7], [-1.0, 1.0, -1.0]]
    """
    rel.flush()
    new = np.asarray(new, dtype=np.int64)
    starts, at = var_rel._start, var_rel._at
    n = len(starts) - 1  # counts above n - 1 are in no relation
    lo = starts[np.minimum(new, n)]
    cnt = starts[np.minimum(new + 1, n)] - lo
    who = np.repeat(np.arange(len(new)), cnt)  # each (count, relation) pair's count, by its place in new
    ks = at[ranges(lo, cnt)]
    size = np.diff(rel.start)[ks]
    keep = ~rel.le[ks] & (size <= SHORT)
    # each count's relations the shortest first, ties in the relations' order (as a stable sort by size)
    order = np.lexsort((np.arange(len(ks)), size, who))
    order = order[keep[order]]
    who, ks, size = who[order], ks[order], size[order]
    v = new[who]
    e_pair = np.repeat(np.arange(len(ks)), size)
    e_at = ranges(rel.start[ks], size)
    e_var, e_coef = rel.var[e_at], rel.coef[e_at]
    mine = e_var == v[e_pair]
    cv = np.zeros(len(ks))
    cv[e_pair[mine]] = e_coef[mine]  # a count is once in a relation
    good = cv != 0
    other = ~mine & good[e_pair]
    return (v[good], cv[good], (size - 1)[good], e_var[other], e_coef[other])


class Unknown:
    """Membership in a boolean mask of counts (``u in mask``), as for a set of hidden counts."""

    def __init__(self, mask: np.ndarray):
        self.mask = mask

    def __contains__(self, u) -> bool:
        return bool(self.mask[u])


def touched(st, v: int, before: set) -> bool:
    """Whether the relation rule 3 would search first for ``v`` (the one with the fewest hidden counts, the
    one that pins it) got a hidden count that is not in ``before`` (this round's start)."""
    rel = st.m.relations
    if not st.var_rel[v]:
        return False
    return any(u in st.H and u not in before for k in st.var_rel[v] for u in rel[k][0])


def next_complement(st, v: int) -> int | None:
    """Rule 3's complement of ``v``, else any shown count reachable from ``v`` through the relations.

    Rule 3 searches a few relations deep; when it finds nothing, hiding goes on through the whole connected
    part of the model, nearest first (at worst every count linked to ``v`` is hidden), so the pass can always
    hide more until the audit passes. Returns None only when every count linked to ``v`` is already hidden.
    """
    c = st.complement(v)
    if c is not None and c not in st.H:
        return c
    m = st.m
    shown = ~st.hidden_rows(counts=True) if st.shown_only else None
    seen, frontier = {v}, [v]
    while frontier:
        nxt = []
        for w in frontier:
            for k in sorted(st.var_rel[w]):
                for u in sorted(m.relations[k][0]):
                    if u in seen:
                        continue
                    seen.add(u)
                    if u not in st.H and (shown is None or shown[st.var_rows[u]].any()):
                        return u
                    nxt.append(u)
        frontier = nxt
    return None


def pooled_near(st, parts, hp, sp, total, kind) -> bool:
    """Rule 4's value test of one relation (``_State.estimate_audit``): whether the pooled value of its hidden
    parts ``hp`` (the total's value minus the shown parts' ``sp``) lies within ``st.near`` of a bound of an
    outcome. A function of the relation, its hidden parts and its total alone (the model's counts and values
    are fixed), so the estimate audit keeps it by them (a clean-up try changes few relations)."""
    m = st.m
    near = False
    spec = m.specs[m.row_tid[parts[0]]]
    for col, bounds in spec.estimates.items():
        if bounds is None:
            continue
        lo, hi = bounds
        if kind == "gap":
            if col != "estimate":
                continue
            r0 = total
            ref_n, ref_est = m.row_ref[r0]
            tw = m.row_weight[r0] + ref_n
            ts = m.row_weight[r0] * m.row_est[r0].get(col, np.nan) + ref_n * ref_est
        else:
            tw = m.row_weight[total]
            ts = tw * m.row_est[total].get(col, np.nan)
        sh = ts - sum(m.row_weight[r] * m.row_est[r].get(col, np.nan) for r in sp)
        th = sum(m.row_weight[r] for r in hp)
        if not (th > 0) or math.isnan(sh):
            continue
        pooled = sh / th
        # when every part is hidden, the pooled value is the total's own published value: only a
        # total exactly at a bound (every student alike) says something about each hidden group
        span = 0.0 if not sp and abs(th - tw) < 0.5 else (hi - lo) * st.near
        if pooled <= lo + span + TOL or pooled >= hi - span - TOL:
            near = True
    return near
