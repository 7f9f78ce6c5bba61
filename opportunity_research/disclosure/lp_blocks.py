"""The block probe of the audit engine, and the HiGHS pieces it shares with :mod:`.lp`.

A component of the audit (:func:`opportunity_research.disclosure.lp.intervals`) with more than
:data:`~opportunity_research.disclosure.lp.LOCAL_MIN` hidden counts is first decided block by block
(:func:`local_points`): feasible points of a few schools' counts with the others held at their true values show
a count wide, the LP of the short relations near a count shows it narrow; only the counts decided neither way
get the component's own LPs. A later audit re-probes only the blocks its changes touch
(:func:`forget_changed_blocks`). The LP pieces (:func:`component_model`, :func:`highs_model`, :func:`spread`,
:func:`reach`) build and solve one component's or one block's LP with scipy's bundled HiGHS.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy import sparse

from .model_arrays import codes, ranges

__all__ = ["LOCAL_SCHOOLS", "TOL", "interval_width"]

#: Numerical tolerance of the bounds.
TOL = 1e-7


def _by_key(keys: np.ndarray) -> tuple[np.ndarray, list]:
    """The distinct keys (ascending) and the positions of each, in order (one sort, not a scan per key)."""
    order = np.argsort(keys, kind="stable")
    uniq, start = np.unique(keys[order], return_index=True)
    return uniq, np.split(order, start[1:])


def forget_changed_blocks(model, arr, shown_rows, fixed, unknown) -> None:
    """Forget the block probes (:func:`local_points`, kept in ``model.lp_cache``) this audit's changes touch.

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
    if not memo:
        return  # no probe kept (a model whose components are all small): nothing to forget
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


def digest(*parts) -> bytes:
    """A cache key naming arrays exactly (a 32-byte BLAKE2 digest of their bytes, not the bytes: a large
    district's protection rounds would otherwise keep megabytes of keys per component per audit)."""
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"|")
    return h.digest()


#: Schools per block of that probe (:func:`_blocks`): small blocks first, then larger ones for the targets
#: still open (a small group's count needs schools whose counts of it add up to ``need`` or more).
LOCAL_SCHOOLS = (8, 64, 256)


def _grid(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each variable's grid (unit, year, group variable), school and level, as codes (kept on the model)."""
    cache = model.__dict__.setdefault("lp_blocks", {})
    got = cache.get("grid")
    if got is not None and len(got[0]) == len(model.var_key):
        return got
    keys = model.var_key  # model_arrays.VarKeys: its columns' codes, numbered in the order first met
    grid = codes([keys.unit, keys.year_codes(nan_apart=False), keys.variable])[0]
    cache["grid"] = grid, keys.school.astype(np.int64), keys.level.astype(np.int64)
    return cache["grid"]


def _blocks(model, schools: int) -> np.ndarray:
    """Each variable's block for :func:`local_points`: its unit, year and group variable, and a group of
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
    out = codes([grid, chunk.astype(np.int64)])[0]
    cache[schools] = out
    return out


def local_points(model, arr, rows, members, unknown, b_all, lb, targets, need) -> dict:
    """Targets of one large component decided without an LP of the whole component.

    **Wide, from feasible points of small blocks.** Every count outside a block is held at its true value
    (the true counts satisfy every relation), so any solution of the block's LP (its counts free, the
    component's rows with the others' values substituted) is a feasible point of the whole component: a
    target whose values over such points span ``need`` has an interval at least that wide (reported as that
    inner range, as :func:`_lp_warm` does). Each block is probed with :func:`spread` and :func:`reach` (a
    few LPs for all its targets): blocks of :data:`LOCAL_SCHOOLS` schools, then, for a target still open, its
    grid's :data:`LOCAL_SCHOOLS` ``[-1]`` schools with the most students of its level in its relations (a
    small group needs schools whose counts of it add up).

    **Narrow, from a relaxation.** For a target still open, the LP of the short relations (at most
    :data:`RELAX_ROW` unknown counts) within :data:`RELAX_STEPS` steps of it (every other relation dropped,
    every count in them free) has a feasible set that contains the component's, so its min and max bound the
    exact interval from outside: when they are less than ``need`` apart, so is the exact interval (reported
    as that outer range).

    **Wide, from school blocks.** A target still open (a school's all-students count hidden with another
    school's, whose range needs every group variable of both schools to move) gets one more block: every count
    of its unit and year at the schools of the unknown counts within :data:`SCHOOL_STEPS` short relations of
    it and at the district, with its own group variable at the :data:`LOCAL_SCHOOLS` ``[1]`` schools with the
    most students of its level; besides the shared points, its own maximum and minimum over the block (two
    counts whose sum is shown are lifted by no sum of the targets). At 1,000,000 students this left no target
    of the protection rounds to the component's own LPs (about 100 CPU-s a round before).

    Targets decided neither way get the component's own LPs, so which targets are judged too narrow never
    depends on these shortcuts. Returns ``{target: (low, high)}`` for the targets decided; empty when a
    count of the component has no known value (a count suppressed in the input) or HiGHS is not available.
    A block none of whose counts or rows changed since the last audit keeps its result
    (:func:`forget_changed_blocks`); one probed before with the same inputs comes from the model's cache.
    The blocks of one size are independent: their LPs are solved side by side on :data:`LP_THREADS` threads
    (HiGHS lets go of the GIL while it solves; each LP is solved alone, from its own start, so what is found
    does not depend on the number of threads, and it is recorded in the blocks' order).
    """
    if LP_THREADS < 2:
        return _local_points(model, arr, rows, members, unknown, b_all, lb, targets, need, _Now())
    with ThreadPoolExecutor(LP_THREADS, thread_name_prefix="block-lp") as pool:
        return _local_points(model, arr, rows, members, unknown, b_all, lb, targets, need, pool)


#: Threads that solve the block LPs of :func:`local_points` side by side: the CPUs this process may use, at most 4.
LP_THREADS = max(
    1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
)


class _Now:
    """An executor that runs what it is given at once, in the calling thread (:data:`LP_THREADS` 1)."""

    def submit(self, fn, *args) -> Future:
        done = Future()
        done.set_result(fn(*args))
        return done


def _local_points(model, arr, rows, members, unknown, b_all, lb, targets, need, pool) -> dict:
    """:func:`local_points`, its block LPs solved on ``pool``."""
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
    eq = arr["eq"][rows]
    if (
        (np.abs(base[eq]) > TOL).any()
        or (base[~eq] < -TOL).any()
        or (x_true[members] < lb[members] - TOL).any()
    ):
        return {}  # the true counts do not satisfy the relations as read (inconsistent input): no shortcut
    a_cols = a_rows.tocsc()
    out: dict = {}

    queue = deque()  # the probes started and not yet recorded, in the order they were started
    started = {}  # LP digest -> the solves of a probe started and not yet recorded (a Future)

    def start(sub, ts, own=None, then=None):
        """Start the probe of one block (``sub``: its counts, ascending) for its targets ``ts`` (and, for the
        target ``own``, its own maximum and minimum over the block when those points leave it open); its
        solves run on ``pool`` while the next blocks are built. :func:`finish` records it."""
        touch, own_sums, entries = block_entries(a_cols, sub, x_true)
        if not len(touch):
            queue.append((then, None, None, None, {}))
            return
        b = base[touch] + own_sums  # the block's own counts free again
        key = digest(
            sub, rows[touch], np.round(b, 6) + 0.0, ts, need, "block" if own is None else ("own", own)
        )
        hit = model.lp_cache.get(key)
        if hit is not None:
            queue.append((then, None, None, None, hit))
            return
        lp = component_model(arr, rows[touch], sub, None, b, lb, entries)
        if lp is None:
            queue.append((then, key, None, None, {}))
            return
        cols = np.searchsorted(sub, ts)
        own_j = None if own is None else int(np.searchsorted(sub, own))
        # the solves are a function of the LP as built, the targets' places, the true counts and own: a block
        # of other rows or counts whose LP is the same one takes the points found for it
        same = digest(*_lp_parts(lp), cols, x_true[sub], need, own_j)
        found = model.lp_cache.get(same)
        if found is None:
            found = started.get(same)
        if found is None:
            found = started[same] = pool.submit(_probe_points, hc, lp, x_true[sub], cols, need, own_j)
        queue.append((then, key, sub, same, found))

    def finish(keep: int = 0) -> dict:
        """Record the probes started, in the order they were started, but the last ``keep``: the targets they
        decide go to ``out``, their points to the model's cache; ``then(hit)`` of each. Returns the last one's
        targets decided."""
        hit = {}
        while len(queue) > keep:
            then, key, sub, same, found = queue.popleft()
            if isinstance(found, Future):
                found = model.lp_cache[same] = found.result()
                started.pop(same, None)
            hit = found if sub is None else {int(sub[j]): ends for j, ends in found}
            if key is not None:
                model.lp_cache[key] = hit
            out.update(hit)
            if then is not None:
                then(hit)
        return hit

    def probe(sub, ts, own=None):
        """One block probe, done now (:func:`start`, :func:`finish`): the targets it decides."""
        start(sub, ts, own)
        return finish()

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
                queue.append((None, None, None, None, got[2]))
                continue
            start(sub, bts, then=lambda hit, m=mine, k=key, s=sub, t=bts: m.__setitem__(k, (s, t, hit)))
            finish(keep=2 * LP_THREADS)  # a few LPs ahead of the solves, not every block's at once
        finish()  # the blocks of one size are independent: their LPs are solved side by side
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
            key = digest(rows[near], sub, b_all[rows[near]], lb[sub], t, "relaxed")
            if key in model.lp_cache:
                ends = model.lp_cache[key]
            else:
                ends = model.lp_cache[key] = relaxed_ends(hc, arr, rows[near], sub, b_all, lb, t)
            if ends is not None and interval_width(ends) < need:
                out[t] = ends  # narrow: the exact interval lies within these ends
                break
            near = np.unique(a_cols[:, sub].indices)
            near = near[short[near]]
    # a count whose range needs counts of several group variables to move together (a school's all-students
    # count and the school's breakdowns by every variable, or a complement partnered with a count of another
    # variable): the block of every count of its unit and year at its school, at the schools of the unknown
    # counts within SCHOOL_STEPS short relations of it, and at the district
    unit_year, district = _unit_year(model)
    for t in still_open().tolist():
        if t in out:
            continue
        vs = np.array([t])
        for _ in range(SCHOOL_STEPS):
            near = np.unique(a_cols[:, vs].indices)
            near = near[short[near]]
            vs = np.unique(a_rows[near].indices)
            vs = vs[unknown[vs]]
        schools = np.unique(np.append(school[vs], school[t]))
        at_schools = np.isin(school[members], schools) | district[members]
        # and t's group variable at the schools with the most students of its level (as in the blocks above)
        mine = np.unique(a_rows[a_cols[:, t].indices].indices)
        mine = mine[level[mine] == level[t]]
        by_school = np.bincount(school[mine], weights=x_true[mine], minlength=int(school.max()) + 1)
        top = np.argsort(-by_school, kind="stable")[: LOCAL_SCHOOLS[1]]
        at_schools |= (grid[members] == grid[t]) & np.isin(school[members], top)
        sub = members[(unit_year[members] == unit_year[t]) & at_schools]
        if len(sub) > RELAX_MAX:
            continue
        at = sorted(i for u in sub[is_target[sub]].tolist() if u not in out for i in where[u])
        probe(sub, t_arr[at], own=t)
    return out


def _lp_parts(lp) -> tuple:
    """The arrays that make a block's LP (:func:`component_model`), and its shape, for :func:`digest`."""
    a = lp[0]
    return (a.shape, a.indptr, a.indices, a.data, *lp[1:])


def _probe_points(hc, lp, x_sub, cols, need, own_j) -> list:
    """One block probe's solves (:func:`local_points`): its targets (``cols``, places in the block) whose values
    over the feasible points found span ``need``, as ``[(place, (low, high)), ...]``; ``x_sub`` the block's true
    counts (a feasible point), ``own_j`` the place of the target whose own ends are solved for (or None)."""
    h = highs_model(hc, lp)
    seen_lo, seen_hi = x_sub.copy(), x_sub.copy()  # the true counts: a feasible point
    if spread(hc, h, len(x_sub), cols, need, seen_lo, seen_hi):
        reach(hc, h, lp, cols, need, seen_lo, seen_hi)
    if own_j is not None:
        _own_ends(hc, h, len(x_sub), own_j, need, seen_lo, seen_hi)
    wide = np.floor(seen_hi[cols] + TOL) - np.ceil(seen_lo[cols] - TOL) >= need
    return [(j, (float(seen_lo[j]), float(seen_hi[j]))) for j, ok in zip(cols.tolist(), wide.tolist()) if ok]


#: The school blocks of :func:`local_points`: the schools of the unknown counts within this many short relations
#: of a target.
SCHOOL_STEPS = 2


def _own_ends(hc, h, m, j, need, seen_lo, seen_hi) -> None:
    """Maximize, then minimize, count ``j`` of the block LP ``h`` while it is less than ``need`` wide over the
    points found (counts that trade against each other, e.g. two schools' totals under a shown district total,
    are lifted by no sum of the targets); every solution is a feasible point."""
    for sense in (hc.ObjSense.kMaximize, hc.ObjSense.kMinimize):
        if math.floor(seen_hi[j] + TOL) - math.ceil(seen_lo[j] - TOL) >= need:
            break
        h.changeColsCost(m, np.arange(m, dtype=np.int32), np.zeros(m))
        h.changeColCost(j, 1.0)
        h.changeObjectiveSense(sense)
        h.run()
        if h.getModelStatus() == hc.HighsModelStatus.kOptimal:
            x = np.asarray(h.getSolution().col_value)[:m]
            np.minimum(seen_lo, x, out=seen_lo)
            np.maximum(seen_hi, x, out=seen_hi)
    h.changeColCost(j, 0.0)


def _unit_year(model) -> tuple[np.ndarray, np.ndarray]:
    """Each variable's unit and year, as codes, and whether it counts the district (kept on the model)."""
    cache = model.__dict__.setdefault("lp_blocks", {})
    got = cache.get("unit_year")
    if got is not None and len(got[0]) == len(model.var_key):
        return got
    keys = model.var_key  # model_arrays.VarKeys
    unit_year = codes([keys.unit, keys.year_codes(nan_apart=False)])[0]
    got = cache["unit_year"] = unit_year, keys.schools[keys.school] == "all"
    return got


#: The relaxation of :func:`local_points`: at most this many steps out from a target, this many counts,
#: relations of at most this many unknown counts.
RELAX_STEPS, RELAX_MAX, RELAX_ROW = 6, 4000, 30


def relaxed_ends(hc, arr, rows, sub, b_all, lb, t) -> tuple[float, float] | None:
    """Min and max of ``t`` over ``rows`` alone (the counts ``sub`` free); None when not both are finite."""
    loc = np.zeros(len(arr["var_x"]), dtype=bool)
    loc[sub] = True
    lp = component_model(arr, rows, sub, loc, b_all[rows], lb)
    if lp is None:
        return None
    j = int(np.searchsorted(sub, t))
    h = highs_model(hc, lp)
    h.changeColCost(j, 1.0)
    ends = []
    for sense in (hc.ObjSense.kMinimize, hc.ObjSense.kMaximize):
        h.changeObjectiveSense(sense)
        h.run()
        if h.getModelStatus() != hc.HighsModelStatus.kOptimal:
            return None
        ends.append(float(np.asarray(h.getSolution().col_value)[j]))
    return None if ends[1] >= BIG * 0.5 else (ends[0], ends[1])


def highs_model(hc, model):
    """A HiGHS instance holding one LP in matrix form (:func:`component_model`), zero objective."""
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
    for k, v in OPTS.items():
        h.setOptionValue(k, v)
    h.passModel(lp)
    return h


def component_model(arr, rows, members, unknown, b, lb, entries=None):
    """One component's LP in matrix form: ``(A (CSC), col lower, col upper, row lower, row upper)``.

    ``rows`` are the component's rows of the model (:func:`_arrays`, in order), restricted to its unknown
    ``members`` (ascending), with right-hand sides ``b`` (one per row of ``rows``). The same relation often reaches the component
    several times (one per table that publishes it, once per count column): each distinct row is kept once
    (its first), and a row of one count is a bound of that count (a smaller model with the same feasible set;
    on a 100,000-student district 4 in 10 rows went). Zero coefficients are dropped. Returns None when the
    bounds contradict each other (no feasible point). ``entries``, when given, are the rows' entries of the
    ``members`` already, ``(row place in rows, place in members, coefficient)`` in any order but that of equal
    places (:func:`block_entries`); else they are read from the rows.
    """
    m = len(members)
    lower = np.asarray(lb, dtype=float)[members]
    upper = np.full(m, BIG)
    if entries is None:
        a_all = arr["a"]
        starts, ends = a_all.indptr[rows], a_all.indptr[rows + 1]
        lens = ends - starts
        nz = np.arange(int(lens.sum())) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
        k = np.repeat(np.arange(len(rows)), lens)
        var, coef = a_all.indices[nz], a_all.data[nz]
        keep = unknown[var] & (coef != 0)
        k, pos, coef = k[keep], np.searchsorted(members, var[keep]), coef[keep]
    else:
        k, pos, coef = entries
    order = np.lexsort((pos, k))
    k, pos, coef = k[order], pos[order], coef[order]
    cnt = np.bincount(k, minlength=len(rows))
    b = np.asarray(b, dtype=float)
    eq = arr["eq"][rows]
    one = cnt == 1
    at = np.flatnonzero(one[k])  # the entries of the rows of one count
    j, c, rk = pos[at], coef[at], k[at]
    val = b[rk] / c
    up, down = eq[rk] | (c > 0), eq[rk] | (c < 0)
    np.minimum.at(upper, j[up], val[up])
    np.maximum.at(lower, j[down], val[down])
    # each distinct row of two or more counts (or none) once, the first
    if (lower > upper + TOL).any():
        return None
    kept = first_distinct_rows(np.flatnonzero(~one), cnt, pos, coef, eq, b)
    new = np.full(len(rows), -1)
    new[kept] = np.arange(len(kept))
    sel = new[k] >= 0
    a = sparse.csc_matrix((coef[sel], (new[k][sel], pos[sel])), shape=(len(kept), m))
    bk = b[kept].astype(float)
    lo_r = np.where(eq[kept], bk, -np.inf)
    return a, lower, np.maximum(upper, lower), lo_r, bk


def block_entries(a_cols, sub, x) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A block's rows and entries for :func:`component_model`, read from its columns: ``a_cols`` is CSC (the
    component's rows by its counts), ``sub`` the block's counts (ascending), ``x`` a value of every count.

    Returns the rows the block's columns touch (``touch``, ascending), those rows' sums of the block's counts at
    ``x`` (``(a_cols[:, sub] @ x[sub])[touch]`` to the bit: each row's terms added in the columns' order) and the
    entries: each nonzero entry's place in ``touch``, its count's place in the block and its coefficient, column
    by column (the entries a read of the touched rows keeps, without reading the rest of those rows: a relation
    of every school's count of a group reaches each block). Read from the CSC arrays at once, without slicing a
    sparse matrix per block.

    Examples
    --------
    >>> cols = sparse.csc_matrix(np.array([[1.0, 0.0, 5.0], [0.0, 0.0, 7.0], [2.0, -1.0, 0.0]]))
    >>> touch, sums, entries = block_entries(cols, np.array([0, 1]), np.array([3.0, 4.0, 9.0]))
    >>> touch.tolist(), sums.tolist(), [x.tolist() for x in entries]
    ([0, 2], [3.0, 2.0], [[0, 1, 1], [0, 0, 1], [1.0, 2.0, -1.0]])
    """
    start, lens = a_cols.indptr[sub], a_cols.indptr[sub + 1] - a_cols.indptr[sub]
    nz = ranges(start, lens)
    ind, coef = a_cols.indices[nz], a_cols.data[nz]
    touch, place = _distinct_rows(ind, a_cols.shape[0])
    sums = np.bincount(place, weights=coef * np.repeat(x[sub], lens), minlength=len(touch)).astype(float)
    pos = np.repeat(np.arange(len(sub)), lens)
    keep = coef != 0
    return touch, sums, (place[keep], pos[keep], coef[keep])


def _distinct_rows(ind: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ind, return_inverse=True)`` of row numbers below ``n_rows``: by marking the rows when the entries
    are many for the rows (no sort of the entries; a block's columns reach their long relations' rows, thousands of
    entries), else by sorting.

    Examples
    --------
    >>> [x.tolist() for x in _distinct_rows(np.array([5, 1, 5, 3]), 8)]
    [[1, 3, 5], [2, 0, 2, 1]]
    """
    if len(ind) * DISTINCT_BY_MARKS < n_rows:
        return np.unique(ind, return_inverse=True)
    mark = np.zeros(n_rows, dtype=bool)
    mark[ind] = True
    touch = np.flatnonzero(mark).astype(ind.dtype, copy=False)
    at = np.empty(n_rows, dtype=np.int64)
    at[touch] = np.arange(len(touch), dtype=np.int64)
    return touch, at[ind]


#: :func:`_distinct_rows` marks rows instead of sorting the entries when there are at least one entry for this
#: many rows (measured: the two take about as long there).
DISTINCT_BY_MARKS = 100


def first_distinct_rows(
    rows: np.ndarray, cnt: np.ndarray, pos: np.ndarray, coef: np.ndarray, eq, b
) -> np.ndarray:
    """The first of each set of equal rows among ``rows`` (ascending), as a loop keeping a row whose key
    ``(positions, coefficients, equality, right-hand side)`` it has not seen keeps them; row ``r`` holds
    ``cnt[r]`` entries (``pos``, ``coef``, rows one after another). Right-hand sides compare as numbers (``-0.0``
    is ``0.0``; a missing one equals none), the rest by their bytes. Rows of each length are compared at once, as
    byte strings (a loop over the rows of every block took about 2 CPU-s at 1,000,000 students).

    Examples
    --------
    >>> cnt = np.array([2, 2, 0, 2, 0])
    >>> pos, coef = np.array([0, 1, 0, 1, 0, 2]), np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    >>> eq, b = np.ones(5, dtype=bool), np.array([0.0, -0.0, 3.0, 0.0, 3.0])
    >>> first_distinct_rows(np.arange(5), cnt, pos, coef, eq, b).tolist()
    [0, 2, 3]
    """
    rows = np.asarray(rows, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    b = np.asarray(b, dtype=float)[rows] + 0.0  # -0.0 as 0.0
    gone = np.isnan(b)  # a missing right-hand side equals no other (each such row is kept)
    kept = [rows[gone]]
    lens = np.asarray(cnt)[rows]
    for n in np.unique(lens[~gone]).tolist():
        at = np.flatnonzero((lens == n) & ~gone)
        ix = start[rows[at]][:, None] + np.arange(n)
        parts = [
            np.asarray(pos, dtype=np.int64)[ix],
            np.asarray(coef, dtype=float)[ix],
            np.asarray(eq, dtype=np.int64)[rows[at]][:, None],
            b[at][:, None],
        ]
        key = np.ascontiguousarray(
            np.concatenate(
                [p.view(np.uint8).reshape(len(at), p.shape[1] * p.itemsize) for p in parts], axis=1
            )
        )
        _, first = np.unique(key.view(f"V{key.shape[1]}").ravel(), return_index=True)
        kept.append(rows[at[first]])
    return np.sort(np.concatenate(kept))


def reach(hc, h, model, cols, need, seen_lo, seen_hi, rounds: int = 30) -> None:
    """Feasible points that lift every target still open to ``need`` above its lowest value found, together.

    The component's model ``h`` gets a capped copy ``y`` of each open target (``y <= x``, ``y <=`` the value
    it must reach) and maximizes the sum of the ``y``: no target gains from going beyond its mark, so the
    solution lifts as many targets as the relations allow at once, instead of one LP per target. Rounds
    re-solve (primal simplex, from the previous basis: the copies join it at their lower bound, feasible
    at the point :func:`spread` left) with the targets reached dropped from the objective and random weights
    on the others, until a round reaches no further target. The ``x`` part of every solution is a feasible
    point of the component, so, as in :func:`spread`, a target whose values over the points span ``need``
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


def spread(hc, h, m, cols, need, seen_lo, seen_hi, rounds: int = 2) -> bool:
    """Feasible points that push many targets to their ends at once (a few LPs with shared objectives).

    Minimizing, then maximizing, the sum of the targets (with more ``rounds``: random signed sums of the
    targets not yet ``need`` wide) sends many targets to an end of their range in one solve each; every
    solution found is a feasible point, so a target whose values over these points span ``need`` is wide
    enough without LPs of its own (the true interval contains the inner range). Stops when a round widens no
    further target. Two rounds by default: :func:`reach` then lifts the targets still open together.
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


OPTS = {"simplex_strategy": 4}  # primal simplex: a changed objective leaves the basis primal feasible
BIG = 1e9  # an upper bound no count reaches: a count bounded only by it is unbounded


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
