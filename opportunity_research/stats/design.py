"""The design of a mixed model: fixed-effect matrix, nested group codes and the checks on them.

Built from the columns (patsy gives the layout; categorical columns are coded without evaluating the formula
row by row); used by :func:`~opportunity_research.stats.models.fit_growth_model` and the cross-checks."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .results import NotIdentifiedError

__all__ = ["Design", "build_design", "check_columns", "nested_codes", "sorted_codes"]


@dataclass
class Design:
    """The arrays of one mixed model: response, fixed effects, random-effect columns and nested group codes.

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> d = build_design(df, "y ~ x", ("school",), None, None, patsy.EvalEnvironment.capture())
    >>> isinstance(d, Design), d.names, d.X.shape, d.n_groups
    (True, ['Intercept', 'x'], (600, 2), [20])
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    U: np.ndarray  # (n, q) random-effect columns: intercept, then the slope variable if any
    u_names: list[str]
    codes: list[np.ndarray]  # per level (outer first): group code of each row
    n_groups: list[int]
    parents: list[np.ndarray]  # per level l >= 1: parent code (level l-1) of each level-l group
    level_cols: list[np.ndarray]  # per level: which U columns carry random effects there
    n_dropped: int
    groups: tuple[str, ...] = ()
    xtx: np.ndarray | None = None  # X'X (the rank check's), for the identification check


def check_columns(data: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    """Raise a KeyError naming ``what`` and every column of ``cols`` that ``data`` lacks.

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame({"a": [1]}), ["a"], "groups")  # present: nothing happens
    >>> try:
    ...     check_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "groups")
    ... except KeyError as e:
    ...     print(e)
    "groups: column(s) ['b'] not in the data (columns: ['a'])"
    """
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"{what}: column(s) {missing} not in the data (columns: {list(data.columns)})")


def nested_codes(
    frame: pd.DataFrame, groups: Sequence[str]
) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
    """Codes of the nested groups: an inner id need only be unique within its outer group.

    A level's groups are numbered in the sorted order of (outer group, own value), as ``pd.factorize(outer *
    (values + 1) + own, sort=True)`` numbers them. ``frame`` has no missing value in ``groups``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"school": ["A", "A", "B"], "room": [1, 2, 1]})
    >>> codes, sizes, parents = nested_codes(frame, ["school", "room"])
    >>> [c.tolist() for c in codes], sizes, [p.tolist() for p in parents]
    ([[0, 0, 1], [0, 1, 2]], [2, 3], [[0, 0, 1]])
    """
    codes, sizes, parents = [], [], []
    for level, col in enumerate(groups):
        own, n_own = sorted_codes(frame[col])
        if level == 0:  # no outer group: the own values' ranks
            code, size = own, n_own
        else:
            code, size = _within(codes[-1], own, n_own)
            par = np.empty(size, dtype=np.int64)
            par[code] = codes[-1]
            parents.append(par)
        codes.append(code)
        sizes.append(size)
    return codes, sizes, parents


def sorted_codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """``pd.factorize(values, sort=True)``: each value's rank among the distinct values (int64), and their number.

    For values without a missing one. Integers spanning a range at most a few times their count (group codes) are
    ranked by marking a table of that range, without a hash table or a sort; anything else goes to pandas.

    Examples
    --------
    >>> import numpy as np
    >>> codes, k = sorted_codes(np.array([7, 3, 7, 5]))
    >>> codes.tolist(), k
    ([2, 0, 2, 1], 3)
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu" and len(values):
        v = np.asarray(values)
        lo, hi = int(v.min()), int(v.max())
        if hi < 2**63 and hi - lo < 4 * len(v) + 4096:
            shifted = np.subtract(v, lo, dtype=np.int64)
            present = np.zeros(hi - lo + 1, dtype=bool)
            present[shifted] = True
            rank = np.cumsum(present, dtype=np.int64) - 1
            return rank[shifted], int(rank[-1]) + 1
    codes, uniq = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), len(uniq)


def _within(outer: np.ndarray, own: np.ndarray, n_own: int) -> tuple[np.ndarray, int]:
    """Codes of the (outer, own) pairs in sorted order and their number, from dense codes ``outer`` and ``own``.

    When every own value lies in one outer group (classroom ids unique across schools) the pairs are the own
    values, ranked by their outer group first; otherwise the pairs' integer keys are ranked.
    """
    up = np.empty(n_own, dtype=np.int64)
    up[own] = outer
    if np.array_equal(up[own], outer):
        rank = np.empty(n_own, dtype=np.int64)
        rank[np.lexsort((np.arange(n_own), up))] = np.arange(n_own)
        return rank[own], n_own
    return sorted_codes(outer * np.int64(n_own + 1) + own)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_C_OF_NAME = re.compile(r"^C\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")


def _column_design(
    data: pd.DataFrame, keep: np.ndarray, formula: str, eval_env
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray] | None:
    """Build ``(y, X, names, rows)`` straight from the columns, without per-row formula evaluation.

    patsy evaluates categorical factors value by value in Python (two passes per row), which dominates a fit
    at a million students. For formulas whose factors are plain columns or ``C(column)``, the design is built
    here instead: the column layout (term order, names, contrast matrices) comes from patsy run on a tiny frame
    that has every level, and the columns are filled from the data with vectorized products. ``rows`` are the
    positions in ``data`` of the complete rows (grouping columns and every formula variable present), as patsy's
    ``NA_action="drop"`` would keep. Returns None when the formula needs patsy's general evaluation (functions,
    arithmetic, contrasts other than the default); :func:`build_design` then falls back to patsy.
    """
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError:
        return None
    if len(desc.lhs_termlist) != 1 or len(desc.lhs_termlist[0].factors) != 1:
        return None
    ycode = desc.lhs_termlist[0].factors[0].code
    if not _NAME.match(ycode) or ycode not in data.columns or not _is_numeric(data[ycode]):
        return None
    kinds: dict[str, str] = {}  # factor code -> "numeric" / "categorical"
    columns: dict[str, str] = {ycode: ycode}  # factor code -> data column
    for term in desc.rhs_termlist:
        for factor in term.factors:
            code = factor.code
            m = _C_OF_NAME.match(code)
            if m and m.group(1) in data.columns:
                kinds[code], columns[code] = "categorical", m.group(1)
            elif _NAME.match(code) and code in data.columns:
                kinds[code] = "numeric" if _is_numeric(data[code]) else "categorical"
                columns[code] = code
            else:
                return None
    used = list(dict.fromkeys(columns.values()))
    part = data[used]
    rows_g = np.flatnonzero(keep)
    every = len(rows_g) == len(
        data
    )  # every row has its grouping columns: the columns as they are, not a selection

    def of_rows_g(a: np.ndarray) -> np.ndarray:
        return a if every else a[rows_g]

    # categorical levels as patsy would sniff them: over the rows with their grouping columns present
    levels: dict[str, Any] = {}
    codes: dict[str, np.ndarray] = {}
    for code, kind in kinds.items():
        if kind != "categorical" or code in codes:
            continue
        s = part[columns[code]]
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels[code] = s.cat.categories
            codes[code] = of_rows_g(s.cat.codes.to_numpy()).astype(np.int64)
            continue
        vals = of_rows_g(s.to_numpy())
        try:
            c, uniq = pd.factorize(vals, sort=True, use_na_sentinel=True)
        except TypeError:  # unorderable mix of types: let patsy decide
            return None
        if s.dtype == bool:
            uniq = pd.Index([False, True])
            c = vals.astype(np.int64)
        levels[code], codes[code] = uniq, c.astype(np.int64)
    # complete rows among rows_g
    ok = np.ones(len(rows_g), dtype=bool)
    for col in used:
        ok &= of_rows_g(part[col].notna().to_numpy())
    for c in codes.values():
        ok &= c >= 0
    # layout from patsy on a tiny frame holding every level
    L = max([2] + [len(v) for v in levels.values()])
    tiny = {}
    for code, col in columns.items():
        if kinds.get(code) == "categorical":
            lev = levels[code]
            if not len(lev):  # no level at all: let patsy report it
                return None
            tiny[col] = pd.Categorical.from_codes(np.arange(L) % len(lev), categories=lev)
        elif col not in tiny:
            tiny[col] = np.arange(1.0, L + 1.0)
    frame = pd.DataFrame(tiny)
    try:  # the layout only (no matrices built): patsy's design_matrix_builders on the tiny frame
        _, info = patsy.design_matrix_builders(
            [desc.lhs_termlist, desc.rhs_termlist], lambda: iter([frame]), eval_env, NA_action="raise"
        )
    except patsy.PatsyError:
        return None
    rows = rows_g[ok]
    n = len(rows)
    complete = every and n == len(data)  # every row used: the columns' values as they are (read only)

    def of_rows(a: np.ndarray) -> np.ndarray:
        return a if complete else a[rows]

    values = {
        code: of_rows(part[columns[code]].to_numpy(dtype=float, na_value=np.nan))
        for code, k in kinds.items()
        if k == "numeric"
    }
    cats = {code: c if complete else c[ok] for code, c in codes.items()}
    X = np.empty((n, len(info.column_names)), order="F")
    for term, subterms in info.term_codings.items():
        j = info.term_slices[term].start
        stop = info.term_slices[term].stop
        for st in subterms:
            per_factor = []
            for f in st.factors:
                if f in st.contrast_matrices:
                    per_factor.append(st.contrast_matrices[f].matrix.shape[1])
                elif info.factor_infos[f].num_columns == 1:
                    per_factor.append(1)
                else:
                    return None
            # patsy's order: the left-most factor's columns vary fastest
            for combo in itertools.product(*[range(k) for k in reversed(per_factor)]):
                parts = [
                    st.contrast_matrices[f].matrix[cats[f.code], idx]
                    if f in st.contrast_matrices
                    else values[f.code]
                    for f, idx in zip(st.factors, combo[::-1])
                ]
                # the factors' product, left to right, made in place (1.0 times the first factor is that factor)
                col = X[:, j]
                col[:] = parts[0] if parts else 1.0
                for v in parts[1:]:
                    np.multiply(col, v, out=col)
                j += 1
        if j != stop:
            return None
    y = of_rows(part[ycode].to_numpy(dtype=float, na_value=np.nan, copy=True))
    return y, X, list(info.column_names), rows


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def build_design(
    data: pd.DataFrame,
    formula: str,
    groups: Sequence[str],
    random_slope: str | None,
    slope_level: str | None,
    eval_env,
) -> Design:
    """The :class:`Design` of ``formula`` with random intercepts for ``groups`` (outermost first) and an optional random slope; rows with a missing value are dropped (counted in ``n_dropped``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> d = build_design(df, "y ~ x", ("school",), None, None, patsy.EvalEnvironment.capture())
    >>> d.names, d.X.shape, d.n_groups, d.n_dropped
    (['Intercept', 'x'], (600, 2), [20], 0)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if isinstance(groups, str):
        groups = (groups,)
    groups = tuple(groups)
    if not groups:
        raise ValueError("groups: give at least one grouping column, outermost first, e.g. ('school_id',)")
    if len(set(groups)) != len(groups):
        raise ValueError(f"groups: repeated column in {groups}")
    check_columns(data, groups, "groups")
    extra = [random_slope] if random_slope else []
    check_columns(data, extra, "random_slope")
    keep = data[list(groups) + extra].notna().all(axis=1).to_numpy()
    fast = _column_design(data, keep, formula, eval_env)
    if fast is not None:  # the common case: plain columns and C(column), built without per-row evaluation
        yv, Xv, names, rows = fast
        sub = data[list(dict.fromkeys(list(groups) + extra))].iloc[rows]
    else:
        sub = data.loc[keep].reset_index(
            drop=True
        )  # positional index: any (even duplicated) input index works
        try:
            y, X = patsy.dmatrices(formula, sub, NA_action="drop", return_type="dataframe", eval_env=eval_env)
        except patsy.PatsyError as exc:
            raise ValueError(f"formula {formula!r}: {exc}") from exc
        if y.shape[1] != 1:
            raise ValueError(
                f"formula {formula!r}: the outcome must be one numeric column, got {list(y.columns)}"
            )
        sub = sub.iloc[X.index.to_numpy()]
        Xv = X.to_numpy(dtype=float)
        yv = y.iloc[:, 0].to_numpy(dtype=float)
        names = list(X.columns)
    n = len(sub)
    n_dropped = int(len(data) - n)
    codes, sizes, parents = nested_codes(sub, groups)
    u = [np.ones(n)]
    u_names = ["intercept"]
    level_cols = [np.array([0]) for _ in groups]
    if random_slope:
        level = groups[0] if slope_level is None else slope_level
        if level not in groups:
            raise ValueError(f"slope_level {slope_level!r} is not one of the groups {groups}")
        try:
            u.append(sub[random_slope].to_numpy(dtype=float))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"random_slope {random_slope!r} must be a numeric column") from exc
        u_names.append(random_slope)
        level_cols[groups.index(level)] = np.array([0, 1])
    if n <= Xv.shape[1] + 1:
        raise ValueError(f"only {n} complete rows for {Xv.shape[1]} fixed effects (formula {formula!r})")
    for level, (col, g) in enumerate(zip(groups, sizes)):
        if g < 2:
            raise ValueError(
                f"grouping column {col!r} has {g} group(s) among the {n} complete rows; a variance "
                f"between {col} groups cannot be estimated: drop it from groups"
            )
    if sizes[-1] >= n:
        raise ValueError(
            f"every {groups[-1]!r} group has a single row: its variance is not separable from the "
            f"residual; drop {groups[-1]!r} from groups"
        )
    xtx = _check_rank(Xv, names, formula)
    return Design(
        y=yv,
        X=Xv,
        names=names,
        U=np.column_stack(u),
        u_names=u_names,
        codes=codes,
        n_groups=sizes,
        parents=parents,
        level_cols=level_cols,
        n_dropped=n_dropped,
        groups=groups,
        xtx=xtx,
    )


def _check_rank(X: np.ndarray, names: list[str], formula: str) -> np.ndarray:
    """Raise NotIdentifiedError naming the redundant terms when ``X`` is rank deficient; return ``X'X``."""
    from scipy.linalg import qr

    raw = X.T @ X  # one BLAS pass over the rows; everything below is p x p
    scale = np.sqrt(np.diag(raw))
    if np.any(scale == 0):
        bad = [nm for nm, s in zip(names, scale) if s == 0]
        raise NotIdentifiedError(f"formula {formula!r}: term(s) {bad} are zero in every complete row")
    gram = raw / np.outer(
        scale, scale
    )  # rank(X) = rank(X'X); pivoted QR of the Gram matrix names the redundant terms
    _, r, piv = qr(gram, pivoting=True)
    d = np.abs(np.diag(r))
    rank = int(np.sum(d > d[0] * 1e-11))
    if rank < X.shape[1]:
        bad = [names[i] for i in piv[rank:]]
        raise NotIdentifiedError(
            f"formula {formula!r}: the fixed-effect design is rank deficient; term(s) {bad} are "
            f"linear combinations of the others (e.g. constant, duplicated, or a group-level "
            f"variable with one value)"
        )
    return raw
