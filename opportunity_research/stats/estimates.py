"""Estimates with intervals per cell of a table: complete tables, protected later by the disclosure pass.

General statistics, vectorized over cells (no loop over groups): the Wilson interval for a share
(:func:`wilson_interval`), means and shares per cell with cluster-robust intervals (:func:`cell_estimates`),
the same for everyone and each level of several group variables (:func:`subgroup_estimates`), district
and school rows together (:func:`two_level_estimates`), and the published schema of such a complete table
(:func:`complete_table`; the joint disclosure pass, :mod:`opportunity_research.disclosure.joint`, decides
what is hidden). The study's analyses (climate, trajectories, equity,
measures) compute their indicators with these, so every indicator is computed the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "MIN_CLUSTERS",
    "cell_estimates",
    "complete_table",
    "level_strings",
    "subgroup_estimates",
    "two_level_estimates",
    "wilson_interval",
]

#: Fewest clusters for a cluster-robust interval; below it intervals cluster on the next level down.
MIN_CLUSTERS = 5


def wilson_interval(successes, n, *, confidence: float = 0.95, critical=None):
    """Wilson score interval for a share (vectorized).

    ``successes`` may be fractional (``share * n_effective``). ``critical`` overrides the normal
    quantile (e.g. a t quantile when the effective sample size comes from clustered data). Returns
    ``(ci_lower, ci_upper)`` as arrays (NaN where ``n`` is 0).

    Examples
    --------
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


def cell_estimates(
    data: pd.DataFrame,
    *,
    by: Sequence[str],
    value: str,
    kind: str = "mean",
    cluster: str | None = None,
    unit: str | None = None,
    confidence: float = 0.95,
    min_clusters: int = MIN_CLUSTERS,
    subcluster: str | None = None,
    _memo: dict | None = None,
) -> pd.DataFrame:
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

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4, "y": [1, 0, 1, 1, 0, 0, 1, 0]})
    >>> cell_estimates(df, by=["g"], value="y", kind="share")[["g", "n", "estimate"]].to_dict("list")
    {'g': ['a', 'b'], 'n': [4, 4], 'estimate': [0.75, 0.25]}
    """
    by = list(by)
    if kind not in ("mean", "share"):
        raise ValueError(f"cell_estimates: kind must be 'mean' or 'share', not {kind!r}")
    extra = [
        c for c in dict.fromkeys([cluster, unit, subcluster]) if c is not None and c not in by and c != value
    ]
    cols = by + [value] + extra
    # the rows with every key and the value (as ``data[cols].dropna(subset=...)`` keeps them), read column by
    # column: each column is taken once, and only if it is used
    col = _Rows(data, by + [value] + ([cluster] if cluster is not None else []), memo=_memo)
    # the cells of ``by`` and their row counts depend only on the keys' columns: with every row kept, made once
    # per frame (``_memo``) for every value and variable that groups by them
    ckey = ("cells", tuple(by)) if _memo is not None and col.rows is None else None
    got = _memo.get(ckey) if ckey is not None else None
    if got is None:
        # the cells of ``by`` refine those of ``by[:-1]`` (made first by subgroup_estimates, for everyone): their
        # numbers in sorted order start the combined code, instead of every key's codes made again
        prefix = _memo.get(("cells", tuple(by[:-1]))) if ckey is not None and len(by) > 1 else None
        codes, res, sizes = _cells(
            col, by, prefix=None if prefix is None else (prefix[0], prefix[2], prefix[1])
        )
        m = len(res) if not isinstance(res, dict) else len(res[by[0]])
        got = (codes, res, m, (np.bincount(codes, minlength=m) if sizes is None else sizes).astype(float))
        if ckey is not None:
            _memo[ckey] = got
    codes, res, m, n = got
    if not isinstance(res, dict):
        res = res.copy()  # the result gets its statistics as columns: not the memo's frame
    v = col(value).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.bincount(codes, weights=v, minlength=m) / n

    def pairs(name):
        """Per (cell, value of column ``name``): the cell of each pair, the pair's sum of v and its row count.

        Pairs are numbered in the order of their first row (as ``pd.factorize`` numbers them), which fixes the
        order of the sums over pairs below. When every row is used, ``_memo`` keeps what does not depend on ``v``:
        the column's codes (and the first row of each) per column, and the pairs of each set of cells with it
        per (cells, column); each value's sums per value. :func:`subgroup_estimates` passes one for the cells of
        every variable of one table, whose rows, values and clusters are the same (only the cells differ), so
        those passes over every row are made once, not once per variable or value.
        """
        key = ("pairs", name) if _memo is not None and col.rows is None else None
        got = _memo.get(key) if key is not None else None
        if got is None:
            x = col(name)
            sub = (
                x.to_numpy(dtype=np.int64)
                if pd.api.types.is_integer_dtype(x) and len(x) and x.min() >= 0
                else pd.factorize(x)[0].astype(np.int64)
            )
            got = {"sub": sub, "k": int(sub.max()) + 1 if len(sub) else 1, "first": None}
            if len(sub) and sub[0] == 0 and sub.min() >= 0:
                # codes 0..k-1 already numbered by first row (each new code one more than every code before it,
                # as factorize numbers them): the pairs are the codes, the first row of each is where the
                # running maximum steps up (no scatter of the first rows, no renumbering)
                top = np.maximum.accumulate(sub)
                step = np.diff(top, prepend=-1)
                if step.max() <= 1:
                    got["first"] = np.flatnonzero(step)
            if key is not None:
                _memo[key] = got
        # the pairs of these cells (independent of v): kept while the memo keeps these cells (every value's)
        mine = _memo.setdefault(("pairs_of", tuple(by)), {}) if key is not None else {}
        if name not in mine:
            how, owner, inv = _pair_cells(codes, got)
            # the pairs' row counts, the same for every value: counted once (hashed pairs: per set of cells)
            size = np.bincount(inv) if how == "hash" else None
            mine[name] = (how, owner, inv, size)
        how, owner, inv, size = mine[name]
        if how == "hash":  # pairs of these cells only: each value's sums made here
            return owner, np.bincount(inv, weights=v), size
        sums = got.setdefault(how, {})  # each value's sums over the pairs, for every set of cells
        if value not in sums:
            w = got["sub"] if how == "codes" else got["inv"]
            if ("size", how) not in got:
                got["size", how] = np.bincount(w)
            sums[value] = np.bincount(w, weights=v)
        return owner, sums[value], got["size", how]

    cl_pairs = pairs(cluster) if cluster is not None else None
    # what depends only on the cells and the clusters (not on v): made once per (cells, cluster, unit) when the
    # memo is used, for every value of the same cells
    skey = ("clusters", tuple(by), cluster, unit, confidence) if ckey is not None else None
    shared = _memo.get(skey) if skey is not None else None
    if shared is None:
        shared = {}
        if unit is not None:
            shared["n_units"] = np.bincount((cl_pairs if unit == cluster else pairs(unit))[0], minlength=m)
        else:
            shared["n_units"] = n
        if cluster is not None:
            cell, _, csize = cl_pairs
            # the clusters of each cell (counted above when they are the units)
            n_cl = (shared["n_units"] if unit == cluster else np.bincount(cell, minlength=m)).astype(float)
            # cells in one cluster only (e.g. a one-school district) fall back to independent rows
            clustered = (n_cl >= 2) & (np.bincount(cell[csize > 1], minlength=m) > 0)
            # the pairs of the clustered cells (None: every pair), whose residuals alone make a variance below
            held = clustered[cell]
            shared.update(
                n_cl=n_cl,
                clustered=clustered,
                G=np.where(clustered, n_cl, n),
                held=None if held.all() else np.flatnonzero(held),
            )
        else:
            shared.update(n_cl=None, clustered=np.zeros(m, dtype=bool), G=n.copy())
        with np.errstate(divide="ignore", invalid="ignore"):
            shared["tq"] = stats.t.ppf(0.5 + confidence / 2, shared["G"] - 1)
        if skey is not None:
            _memo[skey] = shared
    n_units, n_cl, clustered, G = shared["n_units"], shared["n_cl"], shared["clustered"], shared["G"]
    if kind == "mean":
        r = est[codes]  # each row's (v - estimate) ** 2, in place: no temporary per step
        np.subtract(v, r, out=r)
        ss = np.bincount(codes, weights=np.square(r, out=r), minlength=m)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_iid = np.where(n >= 2, ss / (n - 1) / n, np.nan)
    else:  # a share's interval uses only the clustered variance (Wilson's otherwise): no pass over the rows
        var_iid = np.full(m, np.nan)
    var = var_iid
    if cluster is not None and clustered.any():
        # the clustered cells' residuals only (each cell's over all its pairs, in their order: the same sums)
        cell, csum, csize = cl_pairs
        if (held := shared["held"]) is not None:
            cell, csum, csize = cell[held], csum[held], csize[held]
        r = est[cell]  # each pair's (csum - estimate * csize) ** 2, in place
        np.multiply(r, csize, out=r)
        np.subtract(csum, r, out=r)
        r2 = np.bincount(cell, weights=np.square(r, out=r), minlength=m)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(clustered, n_cl / (n_cl - 1) * r2 / n**2, var_iid)

    def interval(G, var, clustered, tq=None):
        with np.errstate(divide="ignore", invalid="ignore"):
            if tq is None:  # a share's unclustered cells take the normal quantile: no t quantile needed
                tq = stats.t.ppf(0.5 + confidence / 2, G - 1) if kind == "mean" or clustered.any() else 0.0
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
        return lo, hi

    lo, hi = interval(G, var, clustered, shared["tq"])
    stats_cols = {
        "n": n.astype(np.int64),
        "n_units": np.asarray(n_units).astype(np.int64),
        "n_clusters": (n_cl if cluster is not None else n).astype(np.int64),
        "estimate": est,
        "ci_lower": lo,
        "ci_upper": hi,
    }
    if isinstance(res, dict):  # the cells' keys, column by column: one frame of keys and estimates
        res = pd.DataFrame({**res, **stats_cols})
        res.columns = pd.Index(list(res.columns), dtype=object)  # as groupby's result
    else:
        for c, x in stats_cols.items():
            res[c] = x
    if cluster is not None and (few := clustered & (n_cl < min_clusters)).any():
        down = subcluster if subcluster is not None else unit if unit not in (None, cluster) else None
        if (
            down is None
        ):  # independent rows: their interval from the sums above (what a call without cluster gives)
            lo, hi = interval(n, var_iid, np.zeros(m, dtype=bool))
        else:
            sub = cell_estimates(
                col.frame(cols),
                by=by,
                value=value,
                kind=kind,
                cluster=down,
                unit=unit,
                confidence=confidence,
                min_clusters=min_clusters,
            )
            lo, hi = sub["ci_lower"].to_numpy(), sub["ci_upper"].to_numpy()
        res.loc[few, "ci_lower"] = lo[few]
        res.loc[few, "ci_upper"] = hi[few]
    return res


def _pair_cells(codes: np.ndarray, got: dict) -> tuple[str, np.ndarray, np.ndarray | None]:
    """How :func:`cell_estimates` pairs its cells (``codes``) with a column's codes (``got``: ``sub``, ``k``,
    ``first``): ``("codes", owner, None)`` when the codes, numbered by first row, each lie in one cell (the pairs are
    the codes); ``("ranked", owner, None)`` when codes in a narrow range each lie in one cell (the pairs are the
    codes renumbered by first row, ``got["inv"]``, made once per column); else ``("hash", owner, inv)``, the pairs
    of every (cell, code) numbered by first row (as ``pd.factorize`` numbers them; without hashing when the
    combinations are few; with codes numbered by first row, only the rows outside their code's first cell hashed).
    ``owner`` is each pair's cell."""
    sub, k, first = got["sub"], got["k"], got["first"]
    coded = bool(len(sub)) and sub.min() >= 0  # no missing code (-1)
    if first is not None:
        owner = codes[first]
        if _all_map(owner, sub, codes):  # each code in one cell only
            return "codes", owner, None
    if coded and k <= 2 * len(sub) + 1024:
        # integer codes in a narrow range, each in one cell only (e.g. student-in-cell ids): the pairs are
        # the codes themselves, numbered by first row without hashing every (cell, code) combination
        head = min(len(sub), _HEAD)
        owner = np.full(k, -1, dtype=np.int64)
        owner[sub[:head]] = codes[:head]
        one_cell = _all_map(owner, sub[:head], codes[:head])  # no code in two cells among the first rows
        if one_cell:  # nor among all rows
            owner[sub[head:]] = codes[head:]
            one_cell = _all_map(owner, sub, codes)
        if one_cell:
            if "inv" not in got:
                first = np.full(k, len(sub), dtype=np.int64)
                np.minimum.at(first, sub, np.arange(len(sub), dtype=np.int64))
                seen = np.flatnonzero(first < len(sub))
                at = first[seen]
                # codes already numbered by first row (a subset of rows of the frame that numbered them): no sort
                order = seen if bool(np.all(at[1:] > at[:-1])) else seen[np.argsort(at)]
                rank = np.empty(k, dtype=np.int64)
                rank[order] = np.arange(len(order), dtype=np.int64)
                got["order"], got["inv"] = order, rank[sub]
            return "ranked", owner[got["order"]], None
    combined = codes.astype(np.int64) * k + sub
    span = (int(codes.max()) + 1) * k if len(codes) else 0
    if coded and span <= 2 * len(sub) + 1024:
        # few combinations (e.g. schools within a few cells): numbered without hashing
        inv, order = first_numbered(combined, span)
        return "hash", order // k, inv
    if first is None:
        inv, uniq = pd.factorize(combined)
        return "hash", uniq // k, inv
    # codes numbered by first row, some in several cells (e.g. a student's two subjects on either side of a
    # variable): each code's pair with the cell of its first row, and the pairs of the rows in another cell (hashed,
    # those rows only), numbered together in the order of their first rows (factorize's numbering of every pair)
    lead = codes[first]
    other = np.flatnonzero(lead[sub] != codes)
    del combined
    oinv, ouniq = pd.factorize(codes[other].astype(np.int64) * k + sub[other])
    ofirst = other[np.flatnonzero(np.diff(np.maximum.accumulate(oinv), prepend=-1))]  # each one's first row
    starts = np.zeros(len(sub), dtype=bool)
    starts[first] = True
    starts[ofirst] = True
    number = np.cumsum(starts) - 1  # each pair's number at its first row
    del starts
    owner = np.empty(len(first) + len(ofirst), dtype=np.int64)
    lead_no, other_no = number[first], number[ofirst]
    owner[lead_no], owner[other_no] = lead, ouniq // k
    inv = lead_no[sub]
    inv[other] = other_no[oinv]
    return "hash", owner, inv


def first_numbered(keys: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(keys)`` of integers in ``0..span-1`` without hashing: each row's code (numbered in the order
    of first rows) and the keys of the codes, from each key's first row.

    Examples
    --------
    >>> [x.tolist() for x in first_numbered(np.array([5, 2, 5, 0]), 6)]
    [[0, 1, 0, 2], [5, 2, 0]]
    """
    n = len(keys)
    small = np.int32 if n < 2**31 - 1 else np.int64  # a table of 4 bytes per key: less than a hash table's
    first = np.full(span, n, dtype=small)
    np.minimum.at(first, keys, np.arange(n, dtype=small))
    is_first = np.zeros(n, dtype=bool)
    is_first[first[first < n]] = True
    order = keys[is_first]
    rank = first  # (reused: each key's first row is no longer needed)
    rank[order] = np.arange(len(order), dtype=small)
    return rank[keys].astype(np.int64), order


#: :func:`_all_map` compares this many rows first: a column whose codes lie in several cells usually shows it there.
_HEAD = 1 << 16


def _all_map(owner: np.ndarray, sub: np.ndarray, codes: np.ndarray) -> bool:
    """Whether ``owner[sub]`` equals ``codes`` (``np.array_equal``), the first :data:`_HEAD` rows compared first."""
    head = min(len(sub), _HEAD)
    return np.array_equal(owner[sub[:head]], codes[:head]) and np.array_equal(owner[sub[head:]], codes[head:])


def sorted_integer_codes(x: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize(x, sort=True)`` without hashing, for plain numpy integers spanning fewer values than about
    twice their length (years, grades, codes): the rank of each value among those present, and the values present
    (sorted, in ``x``'s dtype). None for other columns.

    Examples
    --------
    >>> [a.tolist() for a in sorted_integer_codes(pd.Series([2016, 2014, 2016]))]
    [[1, 0, 1], [2014, 2016]]
    >>> sorted_integer_codes(pd.Series([1.0, 2.0])) is None
    True
    """
    if not (isinstance(x.dtype, np.dtype) and x.dtype.kind in "iu") or not len(x):
        return None
    lo, hi = int(x.min()), int(x.max())
    if not (-(2**62) < lo and hi < 2**62 and hi - lo < 2 * len(x) + 1024):
        return None
    off = x.to_numpy().astype(np.int64) - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[off] = True
    return (np.cumsum(present) - 1)[off], (np.flatnonzero(present) + lo).astype(x.dtype)


class _Rows:
    """The rows of ``data`` with no missing value in the ``subset`` columns, column by column.

    ``rows(c)`` is ``data.dropna(subset=subset)[c]`` (same values, dtype and index labels), each column taken
    once; ``rows.take(by, positions)`` is ``data.dropna(subset=subset)[by].take(positions)`` and
    ``rows.frame(cols)`` the kept rows of those columns. Cheaper than ``data[cols].dropna(subset=...)`` for the
    few columns :func:`cell_estimates` reads (most often no row is dropped at all).
    """

    def __init__(self, data: pd.DataFrame, subset, memo: dict | None = None):
        self.data = data
        bad = None
        for c in dict.fromkeys(subset):
            # each column's missing rows (None: none), found once per frame when a memo of it is given
            na = memo.get(("missing", c), False) if memo is not None else False
            if na is False:
                x = data[c]
                if isinstance(x.dtype, np.dtype) and x.dtype.kind in "iub":  # never missing
                    na = None
                else:
                    if isinstance(x.dtype, np.dtype) and x.dtype.kind == "f":
                        na = np.isnan(x.to_numpy())
                    else:
                        na = np.asarray(x.array.isna(), dtype=bool)
                    na = na if na.any() else None
                if memo is not None:
                    memo[("missing", c)] = na
            if na is not None:
                bad = na if bad is None else bad | na
        #: positions of the kept rows (None: every row)
        self.rows = None if bad is None else np.flatnonzero(~bad)
        self.n = len(data) if self.rows is None else len(self.rows)
        self._got: dict = {}

    def __call__(self, c) -> pd.Series:
        got = self._got.get(c)
        if got is None:
            x = self.data[c]
            got = self._got[c] = x if self.rows is None else x.take(self.rows)
        return got

    def take(self, by: list, positions: np.ndarray) -> pd.DataFrame:
        return self.data[by].take(positions if self.rows is None else self.rows[positions])

    def frame(self, cols: list) -> pd.DataFrame:
        sel = self.data[cols]
        return sel if self.rows is None else sel.take(self.rows)


def _cells(
    col: _Rows, by: list[str], prefix=None
) -> tuple[np.ndarray, pd.DataFrame | dict, np.ndarray | None]:
    """The cell number of each row, the cells' ``by`` values and their row counts (None: not counted here), as
    ``groupby(by, sort=True, observed=True)`` numbers them (``ngroup``), without its multi-key grouping: each key's
    codes (a category's own codes, else sorted factorize codes) are combined into one integer whose sorted distinct
    values are the cells.

    ``prefix``: ``(codes, m, values)``, the cells of ``by[:-1]`` on the same rows as this function numbers them
    (``m`` cells, their values). Their numbers keep the sorted order of those keys' values, so combined with the
    last key's codes they give the same cells, in the same order, as every key's codes would.

    The cells' values are a ``{key: array}`` dict in cell order (a frame when pandas groups, or a key is named
    twice). When every key is a category or integers (a code has one value), a cell's values are read from its
    combined code (and the prefix cell's values), not from its first row.
    """
    n = col.n
    if not n or not by:
        g = col.frame(by).groupby(by, sort=True, observed=True)
        return g.ngroup().to_numpy(), g.size().reset_index()[by], None
    if prefix is not None and len(by) > 1:
        combined, span, own = prefix[0], max(int(prefix[1]), 1), by[-1:]
    else:
        combined, span, own = None, 1, by
    levels = {}  # each own key's value of each code (None: a code's value is its first row's)
    radix = []
    for c in own:
        x = col(c)
        if isinstance(x.dtype, pd.CategoricalDtype):
            cc, k = x.cat.codes.to_numpy(), len(x.cat.categories)
            levels[c] = x.dtype
        elif (got := sorted_integer_codes(x)) is not None:
            cc, levels[c] = got
            k = len(levels[c])
        else:
            cc, uniq = pd.factorize(x, sort=True)
            k = len(uniq)
            levels[c] = None
        span *= max(k, 1)
        if span >= 2**62:  # too many combinations for one integer: let pandas group
            g = col.frame(by).groupby(by, sort=True, observed=True)
            return g.ngroup().to_numpy(), g.size().reset_index()[by], None
        combined = cc.astype(np.int64) if combined is None else combined * k + cc
        radix.append(max(k, 1))
    sizes = None
    if span <= 2 * n + 1024:  # few combinations: the rank of each among those present, without hashing
        count = np.bincount(combined, minlength=span)
        at = np.flatnonzero(count)
        if len(at) == span:  # every combination present: the combined codes are the ranks
            codes, sizes = combined, count
        else:
            rank = np.zeros(span, dtype=np.int64)
            rank[at] = np.arange(len(at), dtype=np.int64)
            codes, sizes = rank[combined], count[at]
    else:
        codes, at = pd.factorize(combined, sort=True)
        codes = codes.astype(np.int64, copy=False)
    decoded = len(set(by)) == len(by) and all(levels[c] is not None for c in own)
    if decoded and prefix is not None and len(by) > 1:
        decoded = isinstance(prefix[2], dict) and all(
            isinstance(col(c).dtype, pd.CategoricalDtype)
            or (isinstance(col(c).dtype, np.dtype) and col(c).dtype.kind in "iu")
            for c in by[:-1]
        )
    if decoded:  # each key's code of each cell from its combined code, the last key's first
        out, rest = {}, np.asarray(at, dtype=np.int64)
        for c, k in zip(reversed(own), reversed(radix), strict=True):
            code, rest = rest % k, rest // k
            lv = levels[c]
            out[c] = (
                pd.Categorical.from_codes(code, dtype=lv) if isinstance(lv, pd.CategoricalDtype) else lv[code]
            )
        if len(own) < len(by):  # the prefix cell's values
            out.update({c: prefix[2][c].take(rest) for c in by[:-1]})
        return codes, {c: out[c] for c in by}, sizes
    first = np.full(len(at), n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
    if len(set(by)) < len(by):  # a key named twice: a frame, as groupby's
        res = col.take(by, first).reset_index(drop=True)
        res.columns = pd.Index(by, dtype=object)
        return codes, res, sizes
    return codes, {c: col(c).array.take(first) for c in by}, sizes


def level_strings(values: pd.Series) -> pd.Series:
    """Group levels as text: whole numbers without ``.0`` (``1.0`` -> ``"1"``), text unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> level_strings(pd.Series([1.0, 0.0, 2.5])).tolist(), level_strings(pd.Series(["black"])).tolist()
    (['1', '0', '2.5'], ['black'])
    """
    text = values.astype("str")
    return text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True).astype("str")


def subgroup_estimates(
    data: pd.DataFrame,
    *,
    keys: Sequence[str],
    variables: Sequence[str],
    value: str | Sequence[str],
    kind: str | Sequence[str] = "mean",
    cluster: str | None = None,
    unit: str | None = None,
    confidence: float = 0.95,
    subcluster: str | None = None,
    _memo: dict | None = None,
) -> pd.DataFrame | list[pd.DataFrame]:
    """:func:`cell_estimates` for everyone (``group="all"``) and for each level of each variable.

    Returns the :func:`cell_estimates` columns with ``keys``, plus ``group`` (``"all"`` or
    ``"<variable>=<level>"``) and ``variable`` (``"all"`` or the variable name); with a list of ``value``
    columns, a list of such tables, one per value (each the table of that value alone; ``kind`` may then be a list,
    one per value: the cells and clusters do not depend on it). The clusters' sums over
    every row are made once for all the variables' cells (and, with ``_memo``, a dict given again with the same
    ``data``, once for every call on it); each set of cells once for all the values.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"year": 2016, "low_income": [0, 0, 1, 1, 1], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> t = subgroup_estimates(df, keys=["year"], variables=["low_income"], value="y")
    >>> t[["group", "n", "estimate"]].to_dict("list")
    {'group': ['all', 'low_income=0', 'low_income=1'], 'n': [5, 2, 3], 'estimate': [3.0, 1.5, 4.0]}
    """
    # the clusters' sums over every row, made once for every variable (cell_estimates' pairs); with several values,
    # each variable's cells are made once for all of them and let go before the next variable's
    values = [value] if isinstance(value, str) else list(value)
    kinds = [kind] * len(values) if isinstance(kind, str) else list(kind)
    if len(kinds) != len(values):
        raise ValueError("subgroup_estimates: one kind per value")
    memo: dict = _memo if _memo is not None else {}
    parts: dict = {v: ([], [], []) for v in range(len(values))}  # per value: frames, group labels, variables
    for var in [None, *(v for v in variables if v in data.columns)]:
        by = list(keys) + ([var] if var is not None else [])
        for i, (val, how) in enumerate(zip(values, kinds, strict=True)):
            t = cell_estimates(
                data,
                by=by,
                value=val,
                kind=how,
                cluster=cluster,
                unit=unit,
                confidence=confidence,
                subcluster=subcluster,
                _memo=memo,
            )
            frames, groups, names = parts[i]
            if var is None:
                groups.append(np.full(len(t), "all", dtype=object))
                names.append(groups[-1])
                frames.append(t)
            else:
                groups.append(_group_labels(t[var], var))
                names.append(np.full(len(t), var, dtype=object))
                del t[var]  # (cell_estimates' own new frame: not copied to leave the column out)
                frames.append(t)
        if (
            var is not None
        ):  # the keys' cells are kept: every variable's cells (and the keys' refined) start from them
            memo.pop(("cells", tuple(by)), None)
            memo.pop(("pairs_of", tuple(by)), None)
    outs = []
    for frames, groups, names in parts.values():
        out = pd.concat(frames, ignore_index=True)
        # the labels of every part at once (as ``.assign(group=..., variable=...)`` on each part, then ``str``)
        out["group"] = pd.Series(np.concatenate(groups), index=out.index, dtype="str")
        out["variable"] = pd.Series(np.concatenate(names), index=out.index, dtype="str")
        outs.append(out)
    return outs[0] if isinstance(value, str) else outs


def _group_labels(values: pd.Series, variable: str) -> np.ndarray:
    """``variable + "=" + level_strings(values)`` as an object array, each distinct level written once (and kept:
    the same levels of the same variable recur in every table of a district)."""
    if values.dtype == object:  # mixed Python values: as they are, row by row
        return (variable + "=" + level_strings(values)).to_numpy(dtype=object)
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    key = (variable, values.dtype, tuple(map(repr, uniq)))  # repr: 0.0 and -0.0 (equal) are two levels
    text = _LABELS.get(key)
    if text is None:
        if len(_LABELS) > 4096:
            _LABELS.clear()
        text = _LABELS[key] = (variable + "=" + level_strings(pd.Series(uniq))).to_numpy(dtype=object)
    return text[codes]


#: Group labels of the levels already labelled (:func:`_group_labels`).
_LABELS: dict = {}


def two_level_estimates(
    frame: pd.DataFrame,
    *,
    keys: list[str],
    variables,
    value: str | Sequence[str],
    kind: str,
    cluster: str | None,
    confidence: float,
    subcluster: str | None = None,
    text: dict | None = None,
    _memo: dict | None = None,
) -> pd.DataFrame | list[pd.DataFrame]:
    """District rows (``school_id="all"``, clustered) and school rows (independent) of subgroup estimates.

    ``frame`` needs a ``_sid`` column of student codes (the unit counted). With fewer than
    :data:`MIN_CLUSTERS` clusters the district rows cluster on ``subcluster`` (else on students). ``text``: the
    frame's columns already made categories by :func:`text_as_categories` and their text dtypes (a frame used for
    several values is prepared once); the table gives them back as text, as it does its own. With a list of
    ``value`` columns, a list of tables, one per value (each the table of that value alone; the cells and the
    clusters' sums made once for all of them, as :func:`subgroup_estimates` makes them); ``_memo``, a dict given
    again with the same ``frame`` (e.g. for the values of another ``kind``), shares them with that call.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"year": 2016, "school_id": ["s1", "s1", "s2", "s2"], "low_income": [0, 1, 0, 1],
    ...                    "y": [1.0, 0.0, 1.0, 1.0], "_sid": [1, 2, 3, 4]})
    >>> t = two_level_estimates(df, keys=["year"], variables=["low_income"], value="y", kind="share", cluster=None,
    ...                         confidence=0.95)
    >>> t[["school_id", "group", "n", "estimate"]].head(3).to_dict("list")
    {'school_id': ['all', 'all', 'all'], 'group': ['all', 'low_income=0', 'low_income=1'], 'n': [4, 2, 2], 'estimate': [0.75, 1.0, 0.5]}
    """
    text = dict(text or {})
    frame, more = text_as_categories(frame, [c for c in [*keys, "school_id", *variables] if c not in text])
    text.update(more)
    # one frame: the students' codes and sums, made once for the district and school rows (and every value)
    memo: dict = _memo if _memo is not None else {}
    values = [value] if isinstance(value, str) else list(value)
    dist = subgroup_estimates(
        frame,
        keys=keys,
        variables=variables,
        value=values,
        kind=kind,
        cluster=cluster,
        unit="_sid",
        confidence=confidence,
        subcluster=subcluster,
        _memo=memo,
    )
    sch = subgroup_estimates(
        frame,
        keys=keys + ["school_id"],
        variables=variables,
        value=values,
        kind=kind,
        cluster=None,
        unit="_sid",
        confidence=confidence,
        _memo=memo,
    )
    outs = [
        pd.concat([text_back(d.assign(school_id="all"), text), text_back(t, text)], ignore_index=True)
        for d, t in zip(dist, sch, strict=True)
    ]
    return outs[0] if isinstance(value, str) else outs


def text_as_categories(frame: pd.DataFrame, columns) -> tuple[pd.DataFrame, dict]:
    """``frame`` with its text ``columns`` as categories, and their text dtypes (for :func:`text_back`).

    Every :func:`cell_estimates` call then groups on the category codes instead of hashing the text again (the
    same groups, in the same sorted order).

    Examples
    --------
    >>> import pandas as pd
    >>> f, text = text_as_categories(pd.DataFrame({"school_id": ["b", "a"], "y": [1.0, 2.0]}), ["school_id", "y"])
    >>> str(f["school_id"].dtype), list(text)
    ('category', ['school_id'])
    >>> back = text_back(f, text)["school_id"]
    >>> back.tolist(), back.dtype == text["school_id"]
    (['b', 'a'], True)
    """
    text = {
        c: frame[c].dtype
        for c in dict.fromkeys(columns)
        if c in frame.columns and (pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object)
    }
    return frame.astype({c: "category" for c in text}), text


def text_back(table: pd.DataFrame, text: dict) -> pd.DataFrame:
    """The columns :func:`text_as_categories` made categories, back to their text dtypes (see its example)."""
    # column by column (DataFrame.astype of a few columns goes through every column)
    out = table.copy(deep=False)
    for c, dt in text.items():
        if c in table.columns and isinstance(table[c].dtype, pd.CategoricalDtype):
            out[c] = table[c].astype(dt)
    return out


def complete_table(table: pd.DataFrame, *, counts: Sequence[str] = ()) -> pd.DataFrame:
    """A complete table in the published schema: every cell shown, its counts as nullable integers.

    Statistics compute complete tables; what a report hides is decided once, over everything a district
    publishes, by the joint disclosure pass (:mod:`opportunity_research.disclosure.joint`), which sets
    ``suppressed`` and ``suppression_reason`` and blanks the hidden cells. This adds those two columns with
    every row shown (``False``, ``""``), and makes the ``counts`` columns ``Int64`` (missing stays missing).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_id": "all", "group": ["all", "ell=1"], "n_units": [30.0, 3.0]})
    >>> complete_table(t, counts=["n_units"]).to_dict("list")
    {'school_id': ['all', 'all'], 'group': ['all', 'ell=1'], 'n_units': [30, 3], 'suppressed': [False, False], 'suppression_reason': ['', '']}
    """
    out = table.reset_index(drop=True).copy()
    for c in counts:
        out[c] = out[c].astype("Int64")
    out["suppressed"] = False
    out["suppression_reason"] = pd.Series("", index=out.index, dtype="str")
    return out
