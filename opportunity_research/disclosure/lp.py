"""The audit engine of the joint disclosure pass: interval bounds of hidden counts by linear programming.

:func:`intervals` splits the relations into independent components and solves each as one HiGHS model
re-solved from the previous basis (scipy's bundled solver; :func:`scipy.optimize.linprog` blocks when it
is not available), with feasible-point shortcuts (see :mod:`opportunity_research.disclosure.joint`). A
component of more than :data:`LOCAL_MIN` counts is first decided block by block (:func:`_local_points`:
feasible points of a few schools' counts with the others held at their true values show a count wide, the
LP of the short relations near a count shows it narrow); only the counts decided neither way get the
component's own LPs.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from .lp_exact import exact_bounds

if TYPE_CHECKING:
    from .model import PopulationModel

__all__ = ["TOL", "interval_width", "intervals"]

#: Numerical tolerance of the bounds.
TOL = 1e-7


def _arrays(model):
    """The model's relations, then its entries, as one CSR matrix (each row's coefficients in its dict order).

    Built once per model (kept in ``model.lp_arrays``) so that :func:`intervals` substitutes the shown values
    and finds the components with sparse products instead of a loop over every relation.
    """
    sizes = (len(model.var_key), len(model.entries), len(model.relations), len(model.row_vars))
    got = model.lp_arrays
    if got is not None and got["sizes"] == sizes:
        return got
    nv, ne, nr = sizes[:3]
    rows = [c for c, _ in model.relations] + [c for _, c, _ in model.entries]
    lens = np.fromiter((len(c) for c in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=nnz)
    data = np.fromiter(itertools.chain.from_iterable(c.values() for c in rows), dtype=float, count=nnz)
    shape = (len(rows), nv)
    ent_val = np.array([value for _, _, value in model.entries], dtype=float).reshape(ne)
    single = lens[nr:] == 1
    first = indptr[nr:-1]
    rv_lens = np.fromiter((len(vs) for vs in model.row_vars), dtype=np.int64, count=sizes[3])
    rv_idx = np.fromiter(
        itertools.chain.from_iterable(model.row_vars), dtype=np.int64, count=int(rv_lens.sum())
    )
    got = model.lp_arrays = {
        "sizes": sizes,
        "a": sparse.csr_matrix((data, indices, indptr), shape=shape),
        "ones": sparse.csr_matrix((np.ones(nnz), indices, indptr), shape=shape),
        "row_of": np.repeat(np.arange(len(rows)), lens),
        "indptr": indptr.tolist(),
        "indices": indices,
        "index_list": indices.tolist(),
        "data_list": data.tolist(),
        "sense": [s for _, s in model.relations] + ["eq"] * ne,
        "rhs": np.concatenate([np.zeros(nr), ent_val]),
        "ent_rid": np.array([rid for rid, _, _ in model.entries], dtype=np.int64).reshape(ne),
        "ent_val": ent_val,
        "single": single,
        "ent_v": np.where(single, indices[np.minimum(first, max(nnz - 1, 0))] if nnz else 0, -1),
        "ent_c": np.where(single, data[np.minimum(first, max(nnz - 1, 0))] if nnz else 1.0, 1.0),
        "var_x": np.array(model.var_x, dtype=float),
        "row_vars": sparse.csr_matrix(
            (np.ones(len(rv_idx)), (np.repeat(np.arange(sizes[3]), rv_lens), rv_idx)), shape=(sizes[3], nv)
        ),
    }
    return got


def _reduce(model, shown_rows):
    """The fixed values, the rows that still hold unknowns (with their right-hand sides) and the components.

    A shown entry of one variable fixes it (the last such entry wins, as in a loop over the entries); the
    other shown entries are equations. Known values are substituted by a sparse product (in each row's order,
    from 0, as a Python ``sum``). Returns ``(fixed, unknown, active rows, b, labels)`` with ``labels`` the
    connected component of every variable (then of every row) through the active rows.
    """
    arr = _arrays(model)
    nv = len(model.var_key)
    nr = len(model.relations)
    ok = np.asarray(shown_rows, dtype=bool)[arr["ent_rid"]] & ~np.isnan(arr["ent_val"])
    fixed = np.full(nv, np.nan)
    idx = np.flatnonzero(ok & arr["single"])[::-1]
    if len(idx):
        vs, last = np.unique(arr["ent_v"][idx], return_index=True)
        fixed[vs] = (arr["ent_val"][idx] / arr["ent_c"][idx])[last]
    unknown = np.isnan(fixed)
    row_ok = np.concatenate([np.ones(nr, dtype=bool), ok & ~arr["single"]])
    active = row_ok & (arr["ones"] @ unknown.astype(float) > 0)
    b = arr["rhs"] - arr["a"] @ np.where(unknown, 0.0, fixed)
    keep = unknown[arr["indices"]] & active[arr["row_of"]]
    n_rows = len(row_ok)
    graph = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (arr["indices"][keep], nv + arr["row_of"][keep])), shape=(nv + n_rows,) * 2
    )
    _, labels = connected_components(graph, directed=False)
    return fixed, unknown, active, b, labels


def intervals(
    model: PopulationModel, shown_rows: np.ndarray, targets: Sequence[int], need: float = math.inf
) -> dict[int, tuple[float, float]]:
    """LP interval of each target variable given the shown rows' entries and the relations.

    A target whose feasible values found along the way already span ``need`` gets that inner range (enough
    to decide protection); the others get their exact LP bounds.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from opportunity_research.disclosure.model import PopulationModel, TableSpec
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, np.nan, np.nan],
    ...                   "suppressed": [False, True, True]})
    >>> m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=False, min_n=10)
    >>> hidden = [v for v, x in enumerate(m.var_x) if np.isnan(x)]
    >>> iv = intervals(m, ~np.array(m.pre_hidden), hidden)
    >>> [tuple(map(float, iv[v])) for v in hidden]
    [(1.0, 49.0), (1.0, 49.0)]
    """
    nv = len(model.var_key)
    arr = _arrays(model)
    fixed, unknown, active, b_all, labels = _reduce(model, shown_rows)
    _forget_changed_blocks(model, arr, shown_rows, fixed, unknown)
    var_x = arr["var_x"]
    lb = np.where(var_x == 0, 0.0, 1.0) if model.known else np.ones(nv)
    unpub = getattr(model, "unpublished", None)
    if model.known and unpub is not None and len(unpub) and unpub.any():
        # a count whose rows are all unpublished may be 0 for all an attacker knows (a published row shows that
        # its group has students; a row left out shows nothing)
        seen = arr["row_vars"].T @ (~np.asarray(unpub, dtype=bool)).astype(float) > 0
        lb = np.where(seen, lb, 0.0)
    out: dict[int, tuple[float, float]] = {}
    wanted = defaultdict(list)
    for t in targets:
        if not unknown[t]:
            out[t] = (fixed[t], fixed[t])
        else:
            wanted[labels[t]].append(t)
    if not wanted:
        return out
    # the unknown variables (ascending) and the active rows (in order) of each component
    unk = np.flatnonzero(unknown)
    unk = unk[np.argsort(labels[unk], kind="stable")]
    unk_lab = labels[unk]
    act = np.flatnonzero(active)
    act = act[np.argsort(labels[nv + act], kind="stable")]
    act_lab = labels[nv + act]
    unknown_list = unknown.tolist()
    indptr, index_list, data_list, senses = arr["indptr"], arr["index_list"], arr["data_list"], arr["sense"]

    def con(r):
        lo, hi = indptr[r], indptr[r + 1]
        rest = {v: c for v, c in zip(index_list[lo:hi], data_list[lo:hi]) if unknown_list[v]}
        return rest, float(b_all[r]), senses[r]

    for lab, ts in wanted.items():
        members = unk[np.searchsorted(unk_lab, lab) : np.searchsorted(unk_lab, lab, side="right")]
        rows = act[np.searchsorted(act_lab, lab) : np.searchsorted(act_lab, lab, side="right")]
        if not len(rows):
            for t in ts:
                out[t] = (lb[t], math.inf)
            continue
        if len(rows) == 1 and senses[rows[0]] == "eq":
            coefs, b, _ = con(rows[0])
            if all(c == 1.0 for c in coefs.values()):
                lbs = {v: lb[v] for v in coefs}
                s = sum(lbs.values())
                for t in ts:
                    out[t] = (lbs[t], b - (s - lbs[t]))
                continue
        # the LP is its rows (each restricted to the component's variables) and their right-hand sides: the
        # key names them exactly (rows by their index in the model; right-hand sides rounded as before)
        key = _digest(members, rows, np.round(b_all[rows], 6) + 0.0, np.asarray(ts, dtype=np.int64), need)
        hit = model.lp_cache.get(key)
        if hit is None and len(members) > LOCAL_MIN and math.isfinite(need):
            # a large component: targets that feasible points of small blocks already show wide need no LP of
            # the whole component (_local_points); the others get it, as before
            hit = _local_points(model, arr, rows, members, unknown, b_all, lb, ts, need)
            rest = [t for t in ts if t not in hit]
            if rest:
                lp = _component_model(arr, rows, members, unknown, b_all[rows], lb)
                hit.update(
                    _solve_component(
                        members.tolist(),
                        lambda rows=rows: [con(r) for r in rows.tolist()],
                        lb,
                        rest,
                        need,
                        lp,
                    )
                )
            model.lp_cache[key] = hit
        if hit is None:
            lp = _component_model(arr, rows, members, unknown, b_all[rows], lb)
            hit = _solve_component(
                members.tolist(), lambda rows=rows: [con(r) for r in rows.tolist()], lb, ts, need, lp
            )
            model.lp_cache[key] = hit
        out.update(hit)
    return out


def _by_key(keys: np.ndarray) -> tuple[np.ndarray, list]:
    """The distinct keys (ascending) and the positions of each, in order (one sort, not a scan per key)."""
    order = np.argsort(keys, kind="stable")
    uniq, start = np.unique(keys[order], return_index=True)
    return uniq, np.split(order, start[1:])


def _forget_changed_blocks(model, arr, shown_rows, fixed, unknown) -> None:
    """Forget the block probes (:func:`_local_points`, kept in ``model.lp_cache``) this audit's changes touch.

    A probe is a function of a block's unknown counts, the rows holding them (right-hand sides) and its
    targets. A count whose status, fixed value or multi-count shown entry changed since the last audit
    changes its rows: blocks with such a count, or an unknown count in such a row, are probed again; the
    others keep their results without rebuilding their keys (a round costs what its changes touch)."""
    cache = model.lp_cache
    nr = len(model.relations)
    ok = np.asarray(shown_rows, dtype=bool)[arr["ent_rid"]] & ~np.isnan(arr["ent_val"])
    last = cache.get("blocks-last")
    cache["blocks-last"] = (unknown.copy(), fixed.copy(), ok)
    memo = cache.setdefault("blocks", {})
    if last is None or len(last[0]) != len(unknown) or len(last[2]) != len(ok):
        memo.clear()
        return
    was_unknown, was_fixed, was_ok = last
    changed = (was_unknown != unknown) | ~((was_fixed == fixed) | (np.isnan(was_fixed) & np.isnan(fixed)))
    flipped = np.flatnonzero(was_ok != ok)
    if len(flipped):
        changed |= np.asarray(arr["ones"][nr + flipped].sum(axis=0)).ravel() > 0
    if not changed.any() or not memo:
        return
    rows_hit = arr["ones"] @ changed.astype(float) > 0
    dirty = changed | (arr["ones"].T @ rows_hit.astype(float) > 0)
    for size, blocks_memo in memo.items():
        gone = set(np.unique(_blocks(model, size)[dirty]).tolist())
        for k in [k for k in blocks_memo if k[0] in gone]:
            del blocks_memo[k]


def _digest(*parts) -> bytes:
    """A cache key naming arrays exactly (a 32-byte BLAKE2 digest of their bytes, not the bytes: a large
    district's protection rounds would otherwise keep megabytes of keys per component per audit)."""
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"|")
    return h.digest()


#: A component with more hidden counts than this is first probed block by block (:func:`_local_points`).
LOCAL_MIN = 2000
#: Schools per block of that probe (:func:`_blocks`): small blocks first, then larger ones for the targets
#: still open (a small group's count needs schools whose counts of it add up to ``need`` or more).
LOCAL_SCHOOLS = (8, 64, 256)


def _grid(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each variable's grid (unit, year, group variable), school and level, as codes (kept on the model)."""
    cache = model.__dict__.setdefault("lp_blocks", {})
    got = cache.get("grid")
    if got is not None and len(got[0]) == len(model.var_key):
        return got
    keys = model.var_key
    grid = pd.factorize(
        pd.MultiIndex.from_arrays(
            [[str(k[0]) for k in keys], [str(k[1]) for k in keys], [str(k[3]) for k in keys]]
        )
    )[0]
    school = pd.factorize(np.array([str(k[2]) for k in keys], dtype=object))[0]
    level = pd.factorize(np.array([str(k[4]) for k in keys], dtype=object))[0]
    cache["grid"] = grid, school, level
    return cache["grid"]


def _blocks(model, schools: int) -> np.ndarray:
    """Each variable's block for :func:`_local_points`: its unit, year and group variable, and a group of
    ``schools`` schools (ranked within them), every table, subject, level and count column.

    A count shown in several tables is one variable, so a block follows it into each of them: what a block
    holds is a few schools' whole breakdown by one group variable in one year.
    """
    cache = model.__dict__.setdefault("lp_blocks", {})
    nv = len(model.var_key)
    got = cache.get(schools)
    if got is not None and len(got) == nv:
        return got
    grid, school, _ = _grid(model)
    frame = pd.DataFrame({"g": grid, "s": school})
    # ranks cut into chunks of at least `schools` schools (the last one is not left with a few)
    rank = frame.groupby("g")["s"].rank(method="dense").to_numpy() - 1
    n = frame.groupby("g")["s"].transform("nunique").to_numpy()
    chunk = np.floor(rank * np.maximum(n // schools, 1) / n)
    out = pd.factorize(pd.MultiIndex.from_arrays([grid, chunk.astype(np.int64)]))[0].astype(np.int64)
    cache[schools] = out
    return out


def _local_points(model, arr, rows, members, unknown, b_all, lb, targets, need) -> dict:
    """Targets of one large component decided without an LP of the whole component.

    **Wide, from feasible points of small blocks.** Every count outside a block is held at its true value
    (the true counts satisfy every relation), so any solution of the block's LP (its counts free, the
    component's rows with the others' values substituted) is a feasible point of the whole component: a
    target whose values over such points span ``need`` has an interval at least that wide (reported as that
    inner range, as :func:`_lp_warm` does). Each block is probed with :func:`_spread` and :func:`_reach` (a
    few LPs for all its targets): blocks of :data:`LOCAL_SCHOOLS` schools, then, for a target still open, its
    grid's :data:`LOCAL_SCHOOLS` ``[-1]`` schools with the most students of its level in its relations (a
    small group needs schools whose counts of it add up).

    **Narrow, from a relaxation.** For a target still open, the LP of the short relations (at most
    :data:`RELAX_ROW` unknown counts) within :data:`RELAX_STEPS` steps of it (every other relation dropped,
    every count in them free) has a feasible set that contains the component's, so its min and max bound the
    exact interval from outside: when they are less than ``need`` apart, so is the exact interval (reported
    as that outer range).

    Targets decided neither way get the component's own LPs, so which targets are judged too narrow never
    depends on these shortcuts. Returns ``{target: (low, high)}`` for the targets decided; empty when a
    count of the component has no known value (a count suppressed in the input) or HiGHS is not available.
    A block none of whose counts or rows changed since the last audit keeps its result
    (:func:`_forget_changed_blocks`); one probed before with the same inputs comes from the model's cache.
    """
    try:
        from scipy.optimize._highspy import _core as hc

        hc._Highs  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover - older or newer scipy layouts
        return {}
    x_true = arr["var_x"]
    if np.isnan(x_true[members]).any():
        return {}
    a_rows = arr["a"][rows]
    x_out = np.zeros(len(x_true))
    x_out[members] = x_true[members]
    base = b_all[rows] - a_rows @ x_out  # every member held at its true value
    eq = np.array([arr["sense"][r] == "eq" for r in rows.tolist()], dtype=bool)
    if (
        (np.abs(base[eq]) > TOL).any()
        or (base[~eq] < -TOL).any()
        or (x_true[members] < lb[members] - TOL).any()
    ):
        return {}  # the true counts do not satisfy the relations as read (inconsistent input): no shortcut
    a_cols = a_rows.tocsc()
    out: dict = {}

    def probe(sub, ts):
        """Feasible points of one block (``sub``: its counts, ascending) for its targets ``ts``."""
        cols_sub = a_cols[:, sub]
        touch = np.unique(cols_sub.indices)
        if not len(touch):
            return {}
        b = base[touch] + (cols_sub @ x_true[sub])[touch]  # the block's own counts free again
        key = _digest(sub, rows[touch], np.round(b, 6) + 0.0, ts, need, "block")
        hit = model.lp_cache.get(key)
        if hit is None:
            hit = {}
            loc = np.zeros(len(x_true), dtype=bool)
            loc[sub] = True
            lp = _component_model(arr, rows[touch], sub, loc, b, lb)
            if lp is not None:
                cols = np.searchsorted(sub, ts)
                h = _highs(hc, lp)
                seen_lo, seen_hi = x_true[sub].copy(), x_true[sub].copy()  # the true counts: a feasible point
                if _spread(hc, h, len(sub), cols, need, seen_lo, seen_hi):
                    _reach(hc, h, lp, cols, need, seen_lo, seen_hi)
                wide = np.floor(seen_hi[cols] + TOL) - np.ceil(seen_lo[cols] - TOL) >= need
                hit = {
                    int(sub[j]): (float(seen_lo[j]), float(seen_hi[j]))
                    for j, ok in zip(cols.tolist(), wide.tolist())
                    if ok
                }
            model.lp_cache[key] = hit
        out.update(hit)
        return hit

    def still_open():
        return np.array([t for t in targets if t not in out], dtype=np.int64)

    memo = model.lp_cache.setdefault("blocks", {})
    for size in LOCAL_SCHOOLS:
        ts = still_open()
        blocks = _blocks(model, size)
        mine = memo.setdefault(size, {})
        m_keys, m_idx = _by_key(blocks[members])
        t_keys, t_idx = _by_key(blocks[ts])
        for blk, j, ti in zip(t_keys.tolist(), np.searchsorted(m_keys, t_keys).tolist(), t_idx):
            sub, bts = members[m_idx[j]], ts[ti]
            key = (blk, need, sub[0] if len(sub) else -1)
            got = mine.get(key)
            if got is not None and np.array_equal(got[0], sub) and np.array_equal(got[1], bts):
                out.update(got[2])
                continue
            mine[key] = (sub, bts, probe(sub, bts))
    grid, school, level = _grid(model)
    t_arr = np.asarray(targets, dtype=np.int64)
    is_target = np.zeros(len(x_true), dtype=bool)
    is_target[t_arr] = True
    where = defaultdict(list)  # each target's places in targets
    for i, u in enumerate(t_arr.tolist()):
        where[u].append(i)
    for t in still_open().tolist():
        if t in out:
            continue
        same = members[grid[members] == grid[t]]
        # the schools with the most students of t's level in the relations of t (its universes' schools)
        mine = np.unique(a_rows[a_cols[:, t].indices].indices)
        mine = mine[level[mine] == level[t]]
        by_school = np.bincount(school[mine], weights=x_true[mine], minlength=int(school.max()) + 1)
        top = np.argsort(-by_school, kind="stable")[: LOCAL_SCHOOLS[-1]]
        sub = same[np.isin(school[same], np.append(top, school[t]))]
        # the open targets among sub, in the order of targets (the same as filtering every open target)
        at = sorted(i for u in sub[is_target[sub]].tolist() if u not in out for i in where[u])
        probe(sub, t_arr[at])
    is_member = np.zeros(len(x_true))
    is_member[members] = 1.0
    short = np.asarray(arr["ones"][rows] @ is_member) <= RELAX_ROW  # relations of few unknown counts
    for t in still_open().tolist():
        # the short relations within a few steps of t, every count in them free: an outer bound of t's
        # interval (a long relation, e.g. every school's count of a group, is dropped: the bound stays valid)
        near = a_cols[:, t].indices
        near = near[short[near]]
        for _ in range(RELAX_STEPS):
            # the unknown counts of the component's rows are its members (no intersection with every member)
            sub = np.unique(a_rows[near].indices)
            sub = sub[unknown[sub]]
            if not len(near) or len(sub) > RELAX_MAX:
                break
            # the relaxation is a function of its rows, their right-hand sides, its counts and t: a round whose
            # new hidden counts are elsewhere takes it from the model's cache
            key = _digest(rows[near], sub, b_all[rows[near]], lb[sub], t, "relaxed")
            if key in model.lp_cache:
                ends = model.lp_cache[key]
            else:
                ends = model.lp_cache[key] = _relaxed(hc, arr, rows[near], sub, b_all, lb, t)
            if ends is not None and interval_width(ends) < need:
                out[t] = ends  # narrow: the exact interval lies within these ends
                break
            near = np.unique(a_cols[:, sub].indices)
            near = near[short[near]]
    return out


#: The relaxation of :func:`_local_points`: at most this many steps out from a target, this many counts,
#: relations of at most this many unknown counts.
RELAX_STEPS, RELAX_MAX, RELAX_ROW = 6, 4000, 30


def _relaxed(hc, arr, rows, sub, b_all, lb, t) -> tuple[float, float] | None:
    """Min and max of ``t`` over ``rows`` alone (the counts ``sub`` free); None when not both are finite."""
    loc = np.zeros(len(arr["var_x"]), dtype=bool)
    loc[sub] = True
    lp = _component_model(arr, rows, sub, loc, b_all[rows], lb)
    if lp is None:
        return None
    j = int(np.searchsorted(sub, t))
    h = _highs(hc, lp)
    h.changeColCost(j, 1.0)
    ends = []
    for sense in (hc.ObjSense.kMinimize, hc.ObjSense.kMaximize):
        h.changeObjectiveSense(sense)
        h.run()
        if h.getModelStatus() != hc.HighsModelStatus.kOptimal:
            return None
        ends.append(float(np.asarray(h.getSolution().col_value)[j]))
    return None if ends[1] >= _BIG * 0.5 else (ends[0], ends[1])


def _solve_component(members, cons, lb, targets, need, model):
    """Intervals of the targets of one component; warm-started HiGHS when available, else linprog blocks.

    ``cons`` makes the component's rows (``({var: coef}, rhs, sense)``, for linprog) and ``model`` is the
    component's LP in matrix form (:func:`_component_model`).
    """
    try:
        from scipy.optimize._highspy import _core as hc  # scipy's bundled HiGHS (private; fallback below)

        hc._Highs  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover - older or newer scipy layouts
        return _lp(members, cons(), lb, targets)
    return _lp_warm(hc, members, cons, lb, targets, need, model)


def _lp_warm(hc, members, cons, lb, targets, need, model):
    """Min and max of each target over one component: one HiGHS model, re-solved from the previous basis.

    Changing the objective keeps the basis, so each further target costs a few simplex pivots. Every
    solution found is a feasible point: a target whose values over the points found so far already span
    ``need`` or more is wide enough without solving for it (its interval is reported as that inner range,
    which the true interval contains). :func:`_spread` first finds points that push many targets to their
    ends at once and :func:`_reach` lifts the targets still open to their mark together, so most targets that
    are wide enough cost no LP of their own; the re-solves use primal simplex (a changed objective leaves the
    basis primal feasible). A target that still needs its own LPs is maximized first; its minimum is not
    solved for when the points found already span ``need`` or one of them sits on the target's lower bound
    (that is its minimum). Which targets are judged too narrow never depends on these shortcuts (only the
    inner range reported for a wide one does). On a 100,000-student district's four largest components
    (4,573 hidden counts, 35,390 relations; :func:`_component_model` keeps 18,704 rows) the CPU time went
    from 9.7 s to 2.0 s with the same decisions.
    """
    pos = {v: i for i, v in enumerate(members)}
    m = len(members)
    if model is None:  # bounds that contradict each other: relations read as exact do not hold
        return exact_bounds(members, cons(), lb, targets, big=_BIG, fallback=_lp)
    lower = model[1]
    h = _highs(hc, model)
    seen_lo = np.full(m, np.inf)
    seen_hi = np.full(m, -np.inf)
    out = {}
    cols = [pos[t] for t in targets]
    first = not _spread(hc, h, m, cols, need, seen_lo, seen_hi)
    if not first and math.isfinite(need):
        _reach(hc, h, model, cols, need, seen_lo, seen_hi)

    def wide(j):
        return math.floor(seen_hi[j] + TOL) - math.ceil(seen_lo[j] - TOL) >= need

    for t in targets:
        j = pos[t]
        if not first and wide(j):
            out[t] = (float(seen_lo[j]), float(seen_hi[j]))
            continue
        h.changeColCost(j, 1.0)
        res = {}
        for sense in (hc.ObjSense.kMaximize, hc.ObjSense.kMinimize):
            if sense == hc.ObjSense.kMinimize and not first:
                if wide(j):  # the points found already span need: the inner range decides it
                    res[sense] = float(seen_lo[j])
                    break
                if seen_lo[j] <= lower[j] + TOL:  # a point found sits on the count's lower bound: its minimum
                    res[sense] = float(seen_lo[j])
                    break
            h.changeObjectiveSense(sense)
            h.run()
            if h.getModelStatus() == hc.HighsModelStatus.kOptimal:
                x = np.asarray(h.getSolution().col_value)[:m]  # (without _reach's capped copies)
                np.minimum(seen_lo, x, out=seen_lo)
                np.maximum(seen_hi, x, out=seen_hi)
                first = False
                res[sense] = float(x[j])
            elif h.getModelStatus() == hc.HighsModelStatus.kInfeasible:
                h.changeColCost(j, 0.0)
                return exact_bounds(members, cons(), lb, targets, big=_BIG, fallback=_lp)  # read as <=
            else:
                res[sense] = None
        h.changeColCost(j, 0.0)
        low = res.get(hc.ObjSense.kMinimize)
        low = float(lb[t]) if low is None else low
        high = res.get(hc.ObjSense.kMaximize)
        high = math.inf if high is None else high
        out[t] = (low, math.inf if high >= _BIG * 0.5 else high)
    return out


def _highs(hc, model):
    """A HiGHS instance holding one LP in matrix form (:func:`_component_model`), zero objective."""
    a, lower, upper, lo_r, hi_r = model
    m = a.shape[1]
    lp = hc.HighsLp()
    lp.num_col_, lp.num_row_ = m, a.shape[0]
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = m, a.shape[0]
    lp.a_matrix_.format_ = hc.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.col_cost_ = np.zeros(m)
    lp.col_lower_, lp.col_upper_ = lower, upper
    lp.row_lower_, lp.row_upper_ = lo_r, hi_r
    h = hc._Highs()
    h.setOptionValue("output_flag", False)
    for k, v in _OPTS.items():
        h.setOptionValue(k, v)
    h.passModel(lp)
    return h


def _component_model(arr, rows, members, unknown, b, lb):
    """One component's LP in matrix form: ``(A (CSC), col lower, col upper, row lower, row upper)``.

    ``rows`` are the component's rows of the model (:func:`_arrays`, in order), restricted to its unknown
    ``members`` (ascending), with right-hand sides ``b`` (one per row of ``rows``). The same relation often reaches the component
    several times (one per table that publishes it, once per count column): each distinct row is kept once
    (its first), and a row of one count is a bound of that count (a smaller model with the same feasible set;
    on a 100,000-student district 4 in 10 rows went). Zero coefficients are dropped. Returns None when the
    bounds contradict each other (no feasible point).
    """
    m = len(members)
    lower = np.asarray(lb, dtype=float)[members]
    upper = np.full(m, _BIG)
    a_all = arr["a"]
    starts, ends = a_all.indptr[rows], a_all.indptr[rows + 1]
    lens = ends - starts
    nz = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
    k = np.repeat(np.arange(len(rows)), lens)
    var, coef = a_all.indices[nz], a_all.data[nz]
    keep = unknown[var] & (coef != 0)
    k, pos, coef = k[keep], np.searchsorted(members, var[keep]), coef[keep]
    order = np.lexsort((pos, k))
    k, pos, coef = k[order], pos[order], coef[order]
    cnt = np.bincount(k, minlength=len(rows))
    b = np.asarray(b, dtype=float)
    eq = np.array([arr["sense"][r] == "eq" for r in rows.tolist()], dtype=bool)
    one = cnt == 1
    at = np.flatnonzero(one[k])  # the entries of the rows of one count
    j, c, rk = pos[at], coef[at], k[at]
    val = b[rk] / c
    up, down = eq[rk] | (c > 0), eq[rk] | (c < 0)
    np.minimum.at(upper, j[up], val[up])
    np.maximum.at(lower, j[down], val[down])
    # each distinct row of two or more counts (or none) once, the first
    start = np.concatenate([[0], np.cumsum(cnt)])
    pos_b, coef_b = pos.astype(np.int64).tobytes(), coef.tobytes()
    seen, kept = set(), []
    for r in np.flatnonzero(~one).tolist():
        lo, hi = start[r] * 8, start[r + 1] * 8
        key = (pos_b[lo:hi], coef_b[lo:hi], bool(eq[r]), float(b[r]))
        if key not in seen:
            seen.add(key)
            kept.append(r)
    if (lower > upper + TOL).any():
        return None
    kept = np.array(kept, dtype=np.int64)
    new = np.full(len(rows), -1)
    new[kept] = np.arange(len(kept))
    sel = new[k] >= 0
    a = sparse.csc_matrix((coef[sel], (new[k][sel], pos[sel])), shape=(len(kept), m))
    bk = b[kept].astype(float)
    lo_r = np.where(eq[kept], bk, -np.inf)
    return a, lower, np.maximum(upper, lower), lo_r, bk


def _reach(hc, h, model, cols, need, seen_lo, seen_hi, rounds: int = 30) -> None:
    """Feasible points that lift every target still open to ``need`` above its lowest value found, together.

    The component's model ``h`` gets a capped copy ``y`` of each open target (``y <= x``, ``y <=`` the value
    it must reach) and maximizes the sum of the ``y``: no target gains from going beyond its mark, so the
    solution lifts as many targets as the relations allow at once, instead of one LP per target. Rounds
    re-solve (primal simplex, from the previous basis: the copies join it at their lower bound, feasible
    at the point :func:`_spread` left) with the targets reached dropped from the objective and random weights
    on the others, until a round reaches no further target. The ``x`` part of every solution is a feasible
    point of the component, so, as in :func:`_spread`, a target whose values over the points span ``need``
    is wide enough; the targets not reached keep their own exact LPs (the copies stay in ``h`` with no cost:
    they bound nothing, since ``y`` may sit at its lower bound, at most any ``x``). On a 100,000-student
    district it left none of the 4,300 open targets of the four largest components to their own LPs.
    """
    cols = np.asarray(cols, dtype=np.int64)

    def still_open(c):
        return ~(np.floor(seen_hi[c] + TOL) - np.ceil(seen_lo[c] - TOL) >= need)

    todo = cols[still_open(cols)]
    if not len(todo):
        return
    lower = model[1]
    m, k = len(seen_lo), len(todo)
    ks = np.arange(k, dtype=np.int32)
    cap = np.ceil(seen_lo[todo] - TOL) + need
    y = (m + ks).astype(np.int32)
    h.addCols(k, np.ones(k), np.minimum(lower[todo], cap), cap, 0, np.zeros(k, dtype=np.int32), [], [])
    idx = np.column_stack([y, todo.astype(np.int32)]).ravel()
    val = np.tile([1.0, -1.0], k)
    h.addRows(k, np.full(k, -np.inf), np.zeros(k), 2 * k, 2 * ks, idx, val)
    h.changeObjectiveSense(hc.ObjSense.kMaximize)
    rng = np.random.default_rng(1)
    active = np.ones(k, dtype=bool)
    for _ in range(rounds):
        h.run()
        if h.getModelStatus() != hc.HighsModelStatus.kOptimal:
            break
        x = np.asarray(h.getSolution().col_value)[:m]
        np.minimum(seen_lo, x, out=seen_lo)
        np.maximum(seen_hi, x, out=seen_hi)
        left = active & still_open(todo)
        if left.sum() == active.sum() or not left.any():
            break
        active = left
        h.changeColsCost(k, y, np.where(active, rng.uniform(0.5, 1.5, size=k), 0.0))
    h.changeColsCost(k, y, np.zeros(k))


def _spread(hc, h, m, cols, need, seen_lo, seen_hi, rounds: int = 2) -> bool:
    """Feasible points that push many targets to their ends at once (a few LPs with shared objectives).

    Minimizing, then maximizing, the sum of the targets (with more ``rounds``: random signed sums of the
    targets not yet ``need`` wide) sends many targets to an end of their range in one solve each; every
    solution found is a feasible point, so a target whose values over these points span ``need`` is wide
    enough without LPs of its own (the true interval contains the inner range). Stops when a round widens no
    further target. Two rounds by default: :func:`_reach` then lifts the targets still open together.
    Returns whether any point was found; the objective is left at zero.
    """
    cols = np.asarray(cols, dtype=np.int32)
    rng = np.random.default_rng(0)
    found = False

    def open_cols():
        lo, hi = seen_lo[cols], seen_hi[cols]
        return cols[~(np.floor(hi + TOL) - np.ceil(lo - TOL) >= need)]

    todo = open_cols()
    for r in range(rounds):
        if not len(todo):
            break
        cost = np.zeros(m)
        cost[todo] = 1.0 if r < 2 else rng.choice([-1.0, 1.0], size=len(todo))
        h.changeColsCost(m, np.arange(m, dtype=np.int32), cost)
        h.changeObjectiveSense(hc.ObjSense.kMinimize if r % 2 == 0 else hc.ObjSense.kMaximize)
        h.run()
        if h.getModelStatus() != hc.HighsModelStatus.kOptimal:
            break
        x = np.asarray(h.getSolution().col_value)
        np.minimum(seen_lo, x, out=seen_lo)
        np.maximum(seen_hi, x, out=seen_hi)
        found = True
        left = open_cols()
        if r >= 2 and len(left) == len(todo):
            break
        todo = left
    h.changeColsCost(m, np.arange(m, dtype=np.int32), np.zeros(m))
    return found


_OPTS = {"simplex_strategy": 4}  # primal simplex: a changed objective leaves the basis primal feasible
_BIG = 1e9  # an upper bound no count reaches: a count bounded only by it is unbounded


def _lp(members, cons, lb, targets):
    """Min and max of each target over one component, as two block-diagonal LPs (one block per target).

    The blocks are independent copies of the component, so minimizing the sum of the targets' copies
    minimizes each target: two :func:`scipy.optimize.linprog` calls (HiGHS) per component instead of two
    per target.
    """
    pos = {v: i for i, v in enumerate(members)}
    m, k = len(members), len(targets)

    def matrix(rows):
        data, ri, ci = [], [], []
        for r, (coefs, _) in enumerate(rows):
            for v, c in coefs.items():
                data.append(c)
                ri.append(r)
                ci.append(pos[v])
        return sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), m))

    eq = [(c, b) for c, b, s in cons if s == "eq"]
    ub = [(c, b) for c, b, s in cons if s != "eq"]
    bounds = [(lb[v], _BIG) for v in members] * k
    c = np.zeros(m * k)
    c[[i * m + pos[t] for i, t in enumerate(targets)]] = 1.0

    def solve(eq, ub, sign):
        kw = {"bounds": bounds, "method": "highs"}
        if eq:
            kw["A_eq"] = sparse.kron(sparse.identity(k, format="csr"), matrix(eq), format="csr")
            kw["b_eq"] = np.tile([b for _, b in eq], k)
        if ub:
            kw["A_ub"] = sparse.kron(sparse.identity(k, format="csr"), matrix(ub), format="csr")
            kw["b_ub"] = np.tile([b for _, b in ub], k)
        return linprog(sign * c, **kw)

    lo = solve(eq, ub, 1.0)
    if lo.status == 2:  # infeasible: relations assumed exact do not all hold; read them as <=
        eq, ub = [], eq + ub
        lo = solve(eq, ub, 1.0)
    hi = solve(eq, ub, -1.0)
    out = {}
    for i, t in enumerate(targets):
        j = i * m + pos[t]
        low = float(lo.x[j]) if lo.status == 0 else float(lb[t])
        high = float(hi.x[j]) if hi.status == 0 else math.inf
        out[t] = (low, math.inf if high >= _BIG * 0.5 else high)
    return out


def interval_width(interval) -> float:
    """How many whole counts lie strictly between an interval's ends (its protection width).

    Examples
    --------
    >>> interval_width((1.0, 12.0)), interval_width((2.5, 9.5)), interval_width((1.0, math.inf))
    (11, 6, inf)
    """
    lo, hi = interval
    if math.isinf(hi):
        return math.inf
    return math.floor(hi + TOL) - math.ceil(lo - TOL)
