"""Multilevel growth models: a verified (RE)ML engine, OLS cross-checks, months of learning, study models.

The engine
----------
:func:`fit_growth_model` fits the linear mixed model

    y = X beta + sum over levels of Z_l b_l + e,    e ~ N(0, sigma^2 I),   b_l ~ N(0, sigma^2 Lambda_l Lambda_l')

for students nested in any number of grouping levels (outermost first, e.g. ``("school_id",
"classroom_id")``), with a random intercept at every level and, optionally, one random slope (with its
covariance with the intercept) at one level. It maximises the profiled REML (default) or ML likelihood in
lme4's parameterisation (``theta`` = the elements of the relative Cholesky factors ``Lambda_l``). Because
the random effects are nested, the likelihood is exact and cheap from group sums alone: the Woodbury
identity is applied level by level, innermost first, on per-group ``(p + 2) x q`` cross-product slabs
(``q`` <= 2 random-effect columns), so one evaluation costs O(number of innermost groups), vectorised with
batched 1x1/2x2 algebra; the data are read once. When the innermost level has a random intercept only (the
study's classrooms), a group's weight depends on ``theta`` only through its size, so that level is summed per
distinct group size once and an evaluation costs O(groups one level up x distinct sizes). The design is built
from the columns (patsy gives the layout; categorical columns are coded without evaluating the formula row by
row). Standard errors are ``sigma^2 (X' W^-1 X)^-1`` at the optimum, as lme4, SAS PROC MIXED and HLM compute
them.

Trustworthy fitting
-------------------
statsmodels ``MixedLM`` with default settings stops short of, or away from, the optimum on ordinary
random-slope and nested models with only a ``ConvergenceWarning`` (20-40% errors in variance components on
the High School and Beyond data). This engine instead runs an optimizer chain and verifies the answer:

1. L-BFGS-B from lme4's start (``theta = 1``) and derivative-free Powell from a second start;
2. Newton polishing of both results with a finite-difference Hessian (bounds respected: a variance may sit
   at zero);
3. checks at the reported optimum: the Newton decrement ``g' H^-1 g`` (the deviance still to gain) is below
   ``tol``, the Hessian on the interior parameters is positive definite, moving any boundary parameter into
   the interior does not improve the deviance, and the two chains agree.

If the checks fail, ``converged`` is False and ``warnings`` says why (or, with ``strict=True``,
:class:`ConvergenceError` is raised). A variance estimated at (almost) zero is reported as a *singular fit*.
:func:`mixedlm_check` fits the same model with statsmodels, compares, and flags the statsmodels issue 10239
pattern (a group variance collapsing to ~0 makes MixedLM return exactly 0.0 for every predictor that is
constant within groups, while reporting convergence). :func:`ols_cluster_check` gives OLS with
cluster-robust standard errors side by side with the mixed model.

Names
-----
Fixed-effect terms carry patsy's names (``Intercept``, ``cses``, ``meanses:cses``, ``C(x)[T.b]``).
Variance components are named after the grouping columns: ``<level>`` (random intercept variance),
``<level>:<slope>`` (random slope variance), ``<level>:cov(intercept,<slope>)`` (their covariance; its
``correlation`` column holds the correlation) and ``residual``.

Months of learning
------------------
:func:`months_of_learning` converts an effect in SD units into an *approximate* number of school months:
effect / typical annual gain for the grade and subject x 9. The benchmark table (Hill, Bloom, Black &
Lipsey 2008, shipped as ``resources/annual_gains.csv``) is a replaceable input.

Study models
------------
:func:`fit_study_models` fits *The Opportunity Myth*'s growth models on a growth frame: spring score on fall
score, access to a resource, access x started behind and student characteristics, with school and classroom
random intercepts; one model per resource and one with all four, per subject.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> school = np.repeat(np.arange(30), 40)
>>> df = pd.DataFrame({"school": school, "x": rng.normal(size=1200)})
>>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 30)[school] + rng.normal(size=1200)
>>> fit = fit_growth_model(df, formula="y ~ x", groups=("school",))
>>> fit.converged, fit.method, round(float(fit.coefficients.set_index("term").loc["x", "estimate"]), 2)
(True, 'REML', 0.51)
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
import re
import statistics
import warnings as _warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as _resources
from typing import Any

import numpy as np
import pandas as pd
import patsy
from scipy import optimize, sparse, stats

__all__ = [
    "MONTHS_CAVEAT",
    "STUDY_COVARIATES",
    "STUDY_RESOURCES",
    "ConvergenceError",
    "ConvergenceWarning",
    "GrowthModelResult",
    "StudyModels",
    "add_months_of_learning",
    "annual_gains",
    "fit_growth_model",
    "fit_study_models",
    "identify_levels",
    "mixedlm_check",
    "months_of_learning",
    "ols_cluster_check",
]

STUDY_RESOURCES = ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")
STUDY_COVARIATES = ("low_income", "english_learner", "disability")
#: Sentence every report shows next to a months-of-learning figure.
MONTHS_CAVEAT = ("Months of learning are an approximation: the effect in standard deviations (for the growth "
                 "models, the contrast between classrooms at the district's 75th and 25th percentiles of access) "
                 "divided by a typical annual gain for the grade and subject (by default Hill, Bloom, Black & Lipsey "
                 "2008, national norms), times 9 school months; not given where that gain is below 0.10 SD or the "
                 "result would exceed one school year; the benchmark's own uncertainty is not included.")
#: Smallest benchmark annual gain (SD) that months of learning are computed from.
MIN_ANNUAL_GAIN = 0.10
_SINGULAR_TOL = 1e-4  # relative SD (theta) below which a variance is called zero, as lme4's isSingular
_SUBJECT_ALIASES = {"ela": "reading", "english": "reading", "english language arts": "reading",
                    "reading": "reading", "math": "math", "mathematics": "math", "maths": "math"}


class ConvergenceError(RuntimeError):
    """A mixed model fit could not be verified as converged (raised by ``strict=True`` fits)."""


class ConvergenceWarning(UserWarning):
    """A mixed model fit could not be verified as converged (``converged`` is False on the result)."""


# ----------------------------------------------------------------------------------------------------------
# design
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Design:
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


def _check_columns(data: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise KeyError(f"{what}: column(s) {missing} not in the data (columns: {list(data.columns)})")


def _nested_codes(frame: pd.DataFrame, groups: Sequence[str]) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
    """Codes of the nested groups: an inner id need only be unique within its outer group."""
    codes, sizes, parents = [], [], []
    parent = np.zeros(len(frame), dtype=np.int64)
    for level, col in enumerate(groups):
        own, uniq = pd.factorize(frame[col], sort=True)
        key = parent * np.int64(len(uniq) + 1) + own
        code, kuniq = pd.factorize(key, sort=True)
        code = code.astype(np.int64)
        if level > 0:
            par = np.empty(len(kuniq), dtype=np.int64)
            par[code] = parent
            parents.append(par)
        codes.append(code)
        sizes.append(len(kuniq))
        parent = code
    return codes, sizes, parents


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_C_OF_NAME = re.compile(r"^C\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")


def _column_design(data: pd.DataFrame, keep: np.ndarray, formula: str,
                   eval_env) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray] | None:
    """Build ``(y, X, names, rows)`` straight from the columns, without per-row formula evaluation.

    patsy evaluates categorical factors value by value in Python (two passes per row), which dominates a fit
    at a million students. For formulas whose factors are plain columns or ``C(column)``, the design is built
    here instead: the column layout (term order, names, contrast matrices) comes from patsy run on a tiny frame
    that has every level, and the columns are filled from the data with vectorized products. ``rows`` are the
    positions in ``data`` of the complete rows (grouping columns and every formula variable present), as patsy's
    ``NA_action="drop"`` would keep. Returns None when the formula needs patsy's general evaluation (functions,
    arithmetic, contrasts other than the default); :func:`_design` then falls back to patsy.
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
    # categorical levels as patsy would sniff them: over the rows with their grouping columns present
    levels: dict[str, Any] = {}
    codes: dict[str, np.ndarray] = {}
    for code, kind in kinds.items():
        if kind != "categorical" or code in codes:
            continue
        s = part[columns[code]]
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels[code] = s.cat.categories
            codes[code] = s.cat.codes.to_numpy()[rows_g].astype(np.int64)
            continue
        vals = s.to_numpy()[rows_g]
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
        ok &= part[col].notna().to_numpy()[rows_g]
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
        _, info = patsy.design_matrix_builders([desc.lhs_termlist, desc.rhs_termlist], lambda: iter([frame]),
                                               eval_env, NA_action="raise")
    except patsy.PatsyError:
        return None
    rows = rows_g[ok]
    n = len(rows)
    values = {code: part[columns[code]].to_numpy(dtype=float, na_value=np.nan)[rows]
              for code, k in kinds.items() if k == "numeric"}
    cats = {code: c[ok] for code, c in codes.items()}
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
                col = np.ones(n)
                for f, idx in zip(st.factors, combo[::-1]):
                    if f in st.contrast_matrices:
                        col = col * st.contrast_matrices[f].matrix[cats[f.code], idx]
                    else:
                        col = col * values[f.code]
                X[:, j] = col
                j += 1
        if j != stop:
            return None
    y = part[ycode].to_numpy(dtype=float, na_value=np.nan)[rows]
    return y, X, list(info.column_names), rows


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _design(data: pd.DataFrame, formula: str, groups: Sequence[str], random_slope: str | None,
            slope_level: str | None, eval_env) -> _Design:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if isinstance(groups, str):
        groups = (groups,)
    groups = tuple(groups)
    if not groups:
        raise ValueError("groups: give at least one grouping column, outermost first, e.g. ('school_id',)")
    if len(set(groups)) != len(groups):
        raise ValueError(f"groups: repeated column in {groups}")
    _check_columns(data, groups, "groups")
    extra = [random_slope] if random_slope else []
    _check_columns(data, extra, "random_slope")
    keep = data[list(groups) + extra].notna().all(axis=1).to_numpy()
    fast = _column_design(data, keep, formula, eval_env)
    if fast is not None:  # the common case: plain columns and C(column), built without per-row evaluation
        yv, Xv, names, rows = fast
        sub = data[list(dict.fromkeys(list(groups) + extra))].iloc[rows]
    else:
        sub = data.loc[keep].reset_index(drop=True)  # positional index: any (even duplicated) input index works
        try:
            y, X = patsy.dmatrices(formula, sub, NA_action="drop", return_type="dataframe", eval_env=eval_env)
        except patsy.PatsyError as exc:
            raise ValueError(f"formula {formula!r}: {exc}") from exc
        if y.shape[1] != 1:
            raise ValueError(f"formula {formula!r}: the outcome must be one numeric column, got {list(y.columns)}")
        sub = sub.iloc[X.index.to_numpy()]
        Xv = X.to_numpy(dtype=float)
        yv = y.iloc[:, 0].to_numpy(dtype=float)
        names = list(X.columns)
    n = len(sub)
    n_dropped = int(len(data) - n)
    codes, sizes, parents = _nested_codes(sub, groups)
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
            raise ValueError(f"grouping column {col!r} has {g} group(s) among the {n} complete rows; a variance "
                             f"between {col} groups cannot be estimated: drop it from groups")
    if sizes[-1] >= n:
        raise ValueError(f"every {groups[-1]!r} group has a single row: its variance is not separable from the "
                         f"residual; drop {groups[-1]!r} from groups")
    _check_rank(Xv, names, formula)
    return _Design(y=yv, X=Xv, names=names, U=np.column_stack(u), u_names=u_names, codes=codes,
                   n_groups=sizes, parents=parents, level_cols=level_cols, n_dropped=n_dropped, groups=groups)


def _check_rank(X: np.ndarray, names: list[str], formula: str) -> None:
    from scipy.linalg import qr

    raw = X.T @ X  # one BLAS pass over the rows; everything below is p x p
    scale = np.sqrt(np.diag(raw))
    if np.any(scale == 0):
        bad = [nm for nm, s in zip(names, scale) if s == 0]
        raise ValueError(f"formula {formula!r}: term(s) {bad} are zero in every complete row")
    gram = raw / np.outer(scale, scale)  # rank(X) = rank(X'X); pivoted QR of the Gram matrix names the redundant terms
    _, r, piv = qr(gram, pivoting=True)
    d = np.abs(np.diag(r))
    rank = int(np.sum(d > d[0] * 1e-11))
    if rank < X.shape[1]:
        bad = [names[i] for i in piv[rank:]]
        raise ValueError(f"formula {formula!r}: the fixed-effect design is rank deficient; term(s) {bad} are "
                         f"linear combinations of the others (e.g. constant, duplicated, or a group-level "
                         f"variable with one value)")


# ----------------------------------------------------------------------------------------------------------
# profiled likelihood
# ----------------------------------------------------------------------------------------------------------
class _Profile:
    """Profiled (RE)ML deviance of a nested linear mixed model from group-sum slabs."""

    def __init__(self, d: _Design, reml: bool):
        self.reml = reml
        n, p = d.X.shape
        q = d.U.shape[1]
        self.n, self.p, self.q = n, p, q
        # centre X (when it has an intercept) and y for conditioning; beta is mapped back with T
        icpt = np.flatnonzero(np.all(d.X == 1.0, axis=0))
        self.icpt = int(icpt[0]) if len(icpt) else None
        self.xmeans = np.zeros(p)
        self.ymean = 0.0
        if self.icpt is not None:
            self.xmeans = d.X.mean(axis=0)
            self.xmeans[self.icpt] = 0.0
            self.ymean = float(d.y.mean())
        # A = [U, centred X, centred y], written once (U first, so rows 0..q-1 of any slab are the Z columns)
        self.m = m = q + p + 1
        A = np.empty((n, m))
        A[:, :q] = d.U
        A[:, q:q + p] = d.X
        A[:, -1] = d.y
        if self.icpt is not None:
            A[:, q:q + p] -= self.xmeans
            A[:, -1] -= self.ymean
        self.AtA = A.T @ A
        self.level_cols = d.level_cols
        self.K = len(d.codes)
        self.n_groups = d.n_groups
        inner = d.codes[-1]
        ind = sparse.csr_matrix((np.ones(n), (inner, np.arange(n))), shape=(d.n_groups[-1], n))
        # sufficient statistics per innermost group: the (m x q) slab of sums A' z over its rows
        self.P0 = np.stack([ind @ A if k == 0 else ind @ (A * d.U[:, [k]]) for k in range(q)], axis=2)  # (G, m, q)
        del A
        self.agg = []  # agg[l] sums level-(l+1) slabs into level-l groups
        for level in range(self.K - 1):
            par = d.parents[level]
            self.agg.append(sparse.csr_matrix((np.ones(len(par)), (par, np.arange(len(par)))),
                                              shape=(d.n_groups[level], len(par))))
        self._bucket = self._size_buckets(d)
        # theta layout, outer level first
        self.slices, lower, start, self.theta_names = [], [], [], []
        for level, cols in enumerate(d.level_cols):
            k0 = len(lower)
            name = d.groups[level] if d.groups else f"level {level}"
            if len(cols) == 1:
                lower += [0.0]
                start += [1.0]
                self.theta_names += [f"{name} (intercept SD / residual SD)"]
            else:
                lower += [0.0, -np.inf, 0.0]
                start += [1.0, 0.0, 1.0]
                self.theta_names += [f"{name} Cholesky factor [{i}]" for i in ("1,1", "2,1", "2,2")]
            self.slices.append(slice(k0, len(lower)))
        self.lower = np.array(lower)
        self.start = np.array(start)
        self.n_evals = 0

    def lam(self, theta: np.ndarray, level: int) -> np.ndarray:
        t = theta[self.slices[level]]
        if len(t) == 1:
            return np.array([[t[0]]])
        return np.array([[t[0], 0.0], [t[1], t[2]]])

    def _size_buckets(self, d: _Design) -> dict | None:
        """Per-size sufficient statistics of the innermost level, when it has a random intercept only.

        With an intercept-only innermost level, a group's Woodbury weight depends on theta only through its size
        n_g: w = t^2 / (1 + t^2 n_g). So its contribution to A' W^-1 A is sum_k w(k) S_k with
        S_k = sum over groups of size k of P_g P_g', and the slabs it passes to the parent level are fixed
        combinations of per-(parent, size) sums. One deviance evaluation then costs O(parents x sizes x m)
        instead of O(innermost groups x m): the data and the groups are read once, here.
        """
        if len(self.level_cols[-1]) != 1:
            return None
        P0 = self.P0
        G = P0.shape[0]
        sizes, inv = np.unique(P0[:, 0, 0], return_inverse=True)  # exact integer counts
        k = len(sizes)
        if k > max(8, G // 4):  # nearly every group its own size: no gain
            return None
        v = P0[:, :, 0]  # (G, m)
        S = np.zeros((k, self.m, self.m))
        order = np.argsort(inv, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(inv, minlength=k))]
        for b in range(k):  # one matrix product per distinct group size (not per group)
            vb = v[order[bounds[b]:bounds[b + 1]]]
            S[b] = vb.T @ vb
        out = {"sizes": sizes, "count": np.bincount(inv, minlength=k).astype(float), "S": S}
        if self.K > 1:
            par = d.parents[-1]
            n_par = d.n_groups[-2]
            cell = sparse.csr_matrix((np.ones(G), (par * k + inv, np.arange(G))), shape=(n_par * k, G))
            # sums of P_g[:, 0] per (parent, size), laid out (parent * m, size) for one matrix-vector product
            out["R0"] = np.ascontiguousarray((cell @ v).reshape(n_par, k, self.m).transpose(0, 2, 1)).reshape(-1, k)
            if self.q == 2:
                out["R1"] = self.agg[-1] @ P0[:, :, 1]  # (parents, m)
                R1x = (cell @ (v * P0[:, 1, 0][:, None])).reshape(n_par, k, self.m)
                out["R1x"] = np.ascontiguousarray(R1x.transpose(0, 2, 1)).reshape(-1, k)
        return out

    def _inner_by_size(self, theta: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, float]:
        b = self._bucket
        t = theta[self.slices[-1]][0]
        t2 = t * t
        denom = 1.0 + t2 * b["sizes"]
        w = t2 / denom
        logdet = float(b["count"] @ np.log(denom))
        corr = np.tensordot(w, b["S"], axes=1)
        if self.K == 1:
            return None, corr, logdet
        n_par = b["R0"].shape[0] // self.m
        P = np.empty((n_par, self.m, self.q))
        P[:, :, 0] = (b["R0"] @ (1.0 / denom)).reshape(n_par, self.m)
        if self.q == 2:
            P[:, :, 1] = b["R1"] - (b["R1x"] @ w).reshape(n_par, self.m)
        return P, corr, logdet

    def quad(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """A' W^-1 A and log det W (W = V / sigma^2) at ``theta``."""
        q = self.q
        top = self.K - 1
        if self._bucket is not None:  # innermost level from per-size sufficient statistics
            P, corr, logdet = self._inner_by_size(theta)
            top = self.K - 2
        else:
            P = self.P0
            corr = np.zeros((self.m, self.m))
            logdet = 0.0
        for level in range(top, -1, -1):
            if level < self.K - 1 and not (self._bucket is not None and level == self.K - 2):
                G = self.agg[level].shape[0]
                P = (self.agg[level] @ P.reshape(P.shape[0], -1)).reshape(G, self.m, q)
            s = self.level_cols[level]
            lam = self.lam(theta, level)
            if len(s) == 1:  # random intercept only: plain 2-D arrays (fast path)
                t = lam[0, 0]
                Lv = P[:, :, 0] * t  # (G, m)
                c = np.sqrt(1.0 + t * Lv[:, 0])
                logdet += 2.0 * np.log(c).sum()
                Kv = Lv / c[:, None]
                corr += Kv.T @ Kv
                if level > 0:
                    P = P - Kv[:, :, None] * Kv[:, None, :q]
                continue
            # random intercept and slope (2x2): lme4's Lambda = [[l11, 0], [l21, l22]]
            l11, l21, l22 = lam[0, 0], lam[1, 0], lam[1, 1]
            P0, P1 = P[:, :, 0], P[:, :, 1]  # (G, m) slabs A' W^-1 z for z = 1 and z = slope variable
            L0 = P0 * l11 + P1 * l21  # columns of P Lambda
            L1 = P1 * l22
            m11 = 1.0 + l11 * L0[:, 0] + l21 * L0[:, 1]  # I + Lambda' (Z' W^-1 Z) Lambda
            m21 = l22 * L0[:, 1]
            m22 = 1.0 + l22 * L1[:, 1]
            c11 = np.sqrt(m11)
            c21 = m21 / c11
            c22 = np.sqrt(np.maximum(m22 - c21**2, 1e-300))
            logdet += 2.0 * (np.log(c11).sum() + np.log(c22).sum())
            k0 = L0 / c11[:, None]
            k1 = (L1 - c21[:, None] * k0) / c22[:, None]
            corr += k0.T @ k0 + k1.T @ k1
            if level > 0:
                P = P - k0[:, :, None] * k0[:, None, :q] - k1[:, :, None] * k1[:, None, :q]
        return self.AtA - corr, logdet

    def solve(self, theta: np.ndarray) -> dict:
        Q, logdet = self.quad(theta)
        q, p = self.q, self.p
        XtX = Q[q:q + p, q:q + p]
        Xty = Q[q:q + p, -1]
        yty = Q[-1, -1]
        R = np.linalg.cholesky(XtX)
        beta = np.linalg.solve(R.T, np.linalg.solve(R, Xty))
        r2 = float(yty - Xty @ beta)
        return {"XtX": XtX, "beta": beta, "r2": r2, "logdet": logdet, "logdet_x": 2.0 * np.log(np.diag(R)).sum()}

    def deviance(self, theta: np.ndarray) -> float:
        self.n_evals += 1
        try:
            s = self.solve(np.asarray(theta, dtype=float))
        except np.linalg.LinAlgError:
            return np.inf
        if not s["r2"] > 0:
            return np.inf
        n, p = self.n, self.p
        if self.reml:
            return float(s["logdet"] + s["logdet_x"] + (n - p) * (1.0 + np.log(2.0 * np.pi * s["r2"] / (n - p))))
        return float(s["logdet"] + n * (1.0 + np.log(2.0 * np.pi * s["r2"] / n)))


# ----------------------------------------------------------------------------------------------------------
# optimisation and verification
# ----------------------------------------------------------------------------------------------------------
def _steps(x: np.ndarray) -> np.ndarray:
    return 1e-4 * np.maximum(np.abs(x), 0.05)


def _grad_hess(f, x: np.ndarray, idx: np.ndarray, f0: float) -> tuple[np.ndarray, np.ndarray]:
    """Central finite-difference gradient and Hessian of ``f`` over the coordinates ``idx``."""
    h = _steps(x)
    k = len(idx)
    g, H = np.zeros(k), np.zeros((k, k))
    for a, i in enumerate(idx):
        e = np.zeros_like(x)
        e[i] = h[i]
        fp, fm = f(x + e), f(x - e)
        g[a] = (fp - fm) / (2 * h[i])
        H[a, a] = (fp - 2 * f0 + fm) / h[i] ** 2
    for a in range(k):
        for b in range(a + 1, k):
            i, j = idx[a], idx[b]
            ei, ej = np.zeros_like(x), np.zeros_like(x)
            ei[i], ej[j] = h[i], h[j]
            H[a, b] = H[b, a] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return g, H


def _free(x: np.ndarray, lower: np.ndarray, f, f0: float) -> np.ndarray:
    """Coordinates to treat as interior: off the bound, or on it but improvable by moving inward."""
    free = []
    for i in range(len(x)):
        if not np.isfinite(lower[i]) or x[i] > lower[i]:
            free.append(i)
            continue
        e = np.zeros_like(x)
        e[i] = 1e-3
        if f(x + e) < f0 - 1e-10 * max(1.0, abs(f0)):
            free.append(i)
    return np.array(free, dtype=int)


def _newton(f, x: np.ndarray, lower: np.ndarray, max_steps: int) -> tuple[np.ndarray, float]:
    """Polish ``x`` with bounded Newton steps on a finite-difference Hessian, with backtracking."""
    x = np.maximum(x.copy(), lower)
    fx = f(x)
    # snap tiny relative SDs to the bound when that is no worse
    for i in range(len(x)):
        if np.isfinite(lower[i]) and 0 < x[i] - lower[i] < _SINGULAR_TOL / 10:
            z = x.copy()
            z[i] = lower[i]
            fz = f(z)
            if fz <= fx:
                x, fx = z, fz
    for _ in range(max_steps):
        idx = _free(x, lower, f, fx)
        if len(idx) == 0:
            break
        g, H = _grad_hess(f, x, idx, fx)
        w, V = np.linalg.eigh(H)
        if w.min() > 1e-10 * max(1.0, np.abs(w).max()):
            step = -np.linalg.solve(H, g)
        else:
            # not convex here (e.g. a variance stuck at zero while the optimum is interior, where the
            # deviance is flat by symmetry): modified Newton plus a step along the negative-curvature direction,
            # signed to point into the feasible region
            step = -V @ ((V.T @ g) / np.maximum(np.abs(w), 1e-8 * max(1.0, np.abs(w).max())))
            v = V[:, np.argmin(w)]
            at_bound = np.isfinite(lower[idx]) & (x[idx] <= lower[idx])
            if (at_bound.any() and v[at_bound].sum() < 0) or (not at_bound.any() and g @ v > 0):
                v = -v
            step = step + v * max(0.5, float(np.abs(x[idx]).max()))
        full = np.zeros_like(x)
        full[idx] = step
        improved = False
        t = 1.0
        for _ in range(40):
            z = np.maximum(x + t * full, lower)
            fz = f(z)
            if fz < fx:
                improved = True
                break
            t /= 2
        if not improved:
            break
        gain = fx - fz
        x, fx = z, fz
        if gain < 1e-12 * max(1.0, abs(fx)):
            break
    return x, fx


def _verify(f, x: np.ndarray, lower: np.ndarray, fx: float, tol: float,
            names: Sequence[str]) -> tuple[list[str], dict]:
    """Problems that prevent calling ``x`` a verified optimum (empty list = verified), and diagnostics."""
    problems = []
    idx = _free(x, lower, f, fx)
    diag: dict[str, Any] = {"free": idx.tolist(), "gradient": [], "newton_decrement": 0.0, "scaled_gradient": 0.0,
                            "hessian_min_eigenvalue": np.nan}
    if len(idx):
        g, H = _grad_hess(f, x, idx, fx)
        w = np.linalg.eigvalsh(H)
        diag["gradient"] = g.tolist()
        diag["hessian_min_eigenvalue"] = float(w.min())
        # curvature at round-off level: away from the boundary (relative SD >= 1, where the difference step is
        # not tiny) the deviance changes over a finite-difference step by no more than its own rounding error,
        # so the point is not an identified optimum however small the gradient
        change = np.abs(np.diag(H)) * _steps(x)[idx] ** 2
        noise = 1e3 * np.finfo(float).eps * max(1.0, abs(fx))
        flat = [names[i] for i, c in zip(idx, change) if c <= noise and abs(x[i]) >= 1.0]
        if flat:
            problems.append(f"the deviance is flat to round-off in {', '.join(flat)} (its curvature is at noise "
                            f"level): that variance is not identified by the data")
        elif w.min() <= 1e-10 * max(1.0, abs(w).max()):
            problems.append(f"the Hessian of the deviance is not positive definite at the optimum (smallest "
                            f"eigenvalue {w.min():.3g}): the variance parameters are not identified or the point "
                            f"is not a minimum")
        else:
            step = np.linalg.solve(H, g)
            dec = float(g @ step)
            diag["newton_decrement"] = dec
            diag["scaled_gradient"] = float(np.abs(step).max())
            if dec > tol:
                problems.append(f"the gradient check failed: a Newton step would still lower the deviance by "
                                f"{dec / 2:.3g} (tolerance {tol / 2:.3g}); scaled gradient {np.abs(step).max():.3g}")
    for i in range(len(x)):
        if i in set(idx.tolist()):
            continue
        e = np.zeros_like(x)
        e[i] = 1e-3
        if f(x + e) < fx - 1e-8 * max(1.0, abs(fx)):
            problems.append(f"boundary check failed for {names[i]}: moving it off zero improves the deviance")
    return problems, diag


def _optimize(prof: _Profile, *, max_iter: int, tol: float, start: np.ndarray | None) -> dict:
    """Run the optimizer chain with BLAS on one thread.

    Every deviance evaluation works on small per-group arrays (sufficient statistics), where a multithreaded
    BLAS only adds synchronisation: on a busy 2-core machine it made each evaluation up to 15x slower.
    """
    with _one_blas_thread():
        return _optimize_chain(prof, max_iter=max_iter, tol=tol, start=start)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it BLAS keeps its default thread count
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _optimize_chain(prof: _Profile, *, max_iter: int, tol: float, start: np.ndarray | None) -> dict:
    f = prof.deviance
    lower = prof.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    x1 = prof.start.copy() if start is None else np.asarray(start, dtype=float)
    x2 = np.where(prof.start == 1.0, 0.3, prof.start) if start is None else np.asarray(start, dtype=float) * 0.5

    def jac(x):
        idx = np.arange(len(x))
        h = _steps(x)
        g = np.zeros(len(x))
        for i in idx:
            e = np.zeros_like(x)
            e[i] = h[i]
            g[i] = (f(x + e) - f(x - e)) / (2 * h[i])
        return g

    runs = []
    if max_iter > 0:
        r1 = optimize.minimize(f, x1, jac=jac, method="L-BFGS-B", bounds=bounds,
                               options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-8})
        r2 = optimize.minimize(f, x2, method="Powell", bounds=bounds,
                               options={"maxiter": max_iter, "xtol": 1e-5, "ftol": 1e-10})
        for name, r in (("L-BFGS-B", r1), ("Powell", r2)):
            xr, fr = _newton(f, np.asarray(r.x, dtype=float), lower, max_steps=min(max_iter, 25))
            runs.append({"optimizer": name, "theta": xr, "deviance": fr, "iterations": int(r.nit),
                         "optimizer_success": bool(r.success), "message": str(r.message)})
    else:
        runs.append({"optimizer": "none", "theta": x1, "deviance": f(x1), "iterations": 0,
                     "optimizer_success": False, "message": "max_iter=0: no optimization"})
    # round-off guard: an optimum with a relative SD beyond _THETA_MAX sits where the criterion is flat and
    # dominated by round-off (an unidentified variance); its "better" deviance is noise, so it is never chosen
    # over an optimum in the credible range
    for r in runs:
        r["roundoff"] = bool(np.any(np.abs(r["theta"]) > _THETA_MAX))
    credible = [r for r in runs if not r["roundoff"]] or runs
    best = min(credible, key=lambda r: r["deviance"])
    x, fx = best["theta"], best["deviance"]
    problems, diag = _verify(f, x, lower, fx, tol, prof.theta_names)
    notes = []
    if best["roundoff"]:
        big = [nm for nm, t in zip(prof.theta_names, x) if abs(t) > _THETA_MAX]
        problems.append(f"the optimum is dominated by round-off: {', '.join(big)} beyond {_THETA_MAX:g} (a variance "
                        f"the data cannot identify; drop that level)")
    for r in runs:
        if r["roundoff"] and r is not best:
            notes.append(f"{r['optimizer']} stopped at relative SDs beyond {_THETA_MAX:g} (deviance {r['deviance']:.6f}), "
                         f"where the criterion is dominated by round-off; that point was rejected, not called better")
    if len(runs) == 2:
        a, b = runs
        ddev = abs(a["deviance"] - b["deviance"])
        dtheta = float(np.abs(a["theta"] - b["theta"]).max())
        diag["chain_deviance_difference"] = ddev
        diag["chain_theta_difference"] = dtheta
        if (ddev > max(tol, 1e-9 * abs(fx)) or dtheta > 1e-3) and not (a["roundoff"] or b["roundoff"]):
            worse = a if a is not best else b
            notes.append(f"the optimizer chain disagreed: {worse['optimizer']} stopped at deviance "
                         f"{worse['deviance']:.6f} vs {fx:.6f} for {best['optimizer']}; the better optimum was "
                         f"checked and is reported")
    diag["runs"] = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in runs]
    diag["n_evaluations"] = prof.n_evals
    diag["theta_names"] = list(prof.theta_names)
    return {"theta": x, "deviance": fx, "problems": problems, "notes": notes, "diagnostics": diag,
            "optimizer": "L-BFGS-B + Powell, Newton-polished" if max_iter > 0 else "none"}


# ----------------------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------------------
def _fmt_table(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}" if abs(v) >= 1e5 or
                                (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}")
    return out


@dataclass(frozen=True, eq=False)
class GrowthModelResult:
    """Read-only result of :func:`fit_growth_model`.

    Attributes
    ----------
    formula, groups, method, random_slope, slope_level
        The model as fitted (``method`` is ``"REML"`` or ``"ML"``).
    n_obs, n_dropped
        Rows used, and rows dropped for missing values.
    coefficients
        DataFrame (a copy on every access): ``term``, ``estimate``, ``std_error``, ``z``, ``ci_lower``,
        ``ci_upper``, ``p_value`` (Wald, normal reference), ``n`` (rows used).
    vcov
        Covariance matrix of the fixed effects (DataFrame indexed by term).
    variance_components
        ``component`` (``<level>``, ``<level>:<slope>``, ``<level>:cov(intercept,<slope>)``, ``residual``),
        ``level``, ``term``, ``variance`` (the covariance on the covariance row), ``std_dev``, ``correlation``
        (covariance row only), ``n_groups``.
    icc
        ``level``, ``variance`` (random-intercept variance), ``icc`` (its share of the total variance:
        intercept variances plus residual), ``icc_cumulative`` (correlation of two students who share this
        level's group and hence every outer one), ``n_groups``. With a random slope the intercept variance is
        the variance at slope variable = 0.
    levels
        ``level``, ``n_groups``, ``min_size``, ``median_size``, ``max_size`` (rows per group).
    log_likelihood, deviance, aic, bic
        Maximised (REML or ML) log-likelihood on lme4's scale (REML: the REML criterion / -2).
    sigma2
        Residual variance.
    theta
        lme4's relative Cholesky parameters, outer level first.
    optimizer, converged, singular, warnings
        How the optimum was found, whether it passed every check, whether a variance is ~0, and every warning
        (non-convergence reasons, singular fit, dropped rows, thin levels).
    diagnostics
        Gradient, Newton decrement, Hessian eigenvalue, optimizer runs.
    cross_check
        OLS with cluster-robust standard errors side by side (``cross_check=True``), else None.
    """

    formula: str
    groups: tuple[str, ...]
    method: str
    random_slope: str | None
    slope_level: str | None
    n_obs: int
    n_dropped: int
    log_likelihood: float
    deviance: float
    aic: float
    bic: float
    sigma2: float
    theta: tuple[float, ...]
    optimizer: str
    converged: bool
    singular: bool
    warnings: tuple[str, ...]
    _coefficients: pd.DataFrame = field(repr=False)
    _vcov: pd.DataFrame = field(repr=False)
    _variance_components: pd.DataFrame = field(repr=False)
    _icc: pd.DataFrame = field(repr=False)
    _levels: pd.DataFrame = field(repr=False)
    _cross_check: pd.DataFrame | None = field(repr=False, default=None)
    _diagnostics: dict = field(repr=False, default_factory=dict)
    _identification: pd.DataFrame | None = field(repr=False, default=None)

    @property
    def identification(self) -> pd.DataFrame | None:
        """The pre-fit check of every requested level (:func:`identify_levels`); None if it was skipped."""
        return None if self._identification is None else self._identification.copy()

    @property
    def coefficients(self) -> pd.DataFrame:
        return self._coefficients.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        return self._vcov.copy()

    @property
    def variance_components(self) -> pd.DataFrame:
        return self._variance_components.copy()

    @property
    def icc(self) -> pd.DataFrame:
        return self._icc.copy()

    @property
    def levels(self) -> pd.DataFrame:
        return self._levels.copy()

    @property
    def n_groups(self) -> dict[str, int]:
        """Number of groups per level, e.g. ``{"school_id": 40, "classroom_id": 310}``."""
        return dict(zip(self._levels["level"], self._levels["n_groups"].astype(int)))

    @property
    def cross_check(self) -> pd.DataFrame | None:
        return None if self._cross_check is None else self._cross_check.copy()

    @property
    def diagnostics(self) -> dict:
        import copy

        return copy.deepcopy(self._diagnostics)

    def estimate(self, term: str) -> float:
        """The estimate of one fixed-effect term."""
        t = self._coefficients.set_index("term")
        if term not in t.index:
            raise KeyError(f"term {term!r} not in the model; terms: {list(t.index)}")
        return float(t.at[term, "estimate"])

    def contrast(self, weights: Mapping[str, float], *, level: float = 0.95) -> dict[str, float]:
        """Estimate, standard error and Wald interval of a linear combination ``sum w_t * beta_t``."""
        names = list(self._vcov.index)
        missing = [t for t in weights if t not in names]
        if missing:
            raise KeyError(f"terms {missing} not in the model; terms: {names}")
        w = np.array([weights.get(t, 0.0) for t in names])
        b = self._coefficients.set_index("term").loc[names, "estimate"].to_numpy()
        est = float(w @ b)
        se = float(np.sqrt(w @ self._vcov.to_numpy() @ w))
        zq = stats.norm.ppf(0.5 + level / 2)
        return {"estimate": est, "std_error": se, "ci_lower": est - zq * se, "ci_upper": est + zq * se,
                "p_value": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else np.nan}

    def _header(self) -> list[str]:
        lv = ", ".join(f"{k}: {v}" for k, v in self.n_groups.items())
        status = "yes" if self.converged else "NO - see warnings"
        return [f"Linear mixed model ({self.method}): {self.formula}",
                f"groups (outermost first): {lv}; observations: {self.n_obs}"
                + (f" ({self.n_dropped} rows dropped for missing values)" if self.n_dropped else ""),
                "random effects: intercept at every level"
                + (f"; slope on {self.random_slope} at {self.slope_level}" if self.random_slope else ""),
                f"log-likelihood: {self.log_likelihood:.4f}   AIC: {self.aic:.2f}   BIC: {self.bic:.2f}",
                f"optimizer: {self.optimizer}   converged (verified): {status}"
                + ("   singular fit" if self.singular else "")]

    def summary(self) -> str:
        """A plain-text summary (estimates rounded for display only)."""
        lines = self._header()
        lines += ["", "Fixed effects (Wald 95% intervals):",
                  _fmt_table(self._coefficients.drop(columns=["n"])).to_string(index=False), "",
                  "Variance components:",
                  _fmt_table(self._variance_components.drop(columns=["level", "term"])).to_string(index=False), "",
                  "Intraclass correlations:", _fmt_table(self._icc).to_string(index=False)]
        if self._cross_check is not None:
            lines += ["", "Cross-check: OLS with cluster-robust standard errors:",
                      _fmt_table(self._cross_check).to_string(index=False)]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = ["<div class='growth-model'>"]
        parts += [f"<p>{esc(line)}</p>" for line in self._header()]
        parts += ["<h4>Fixed effects</h4>", _fmt_table(self._coefficients).to_html(index=False),
                  "<h4>Variance components</h4>", _fmt_table(self._variance_components).to_html(index=False),
                  "<h4>Intraclass correlations</h4>", _fmt_table(self._icc).to_html(index=False)]
        if self._cross_check is not None:
            parts += ["<h4>Cross-check: OLS, cluster-robust SEs</h4>",
                      _fmt_table(self._cross_check).to_html(index=False)]
        if self.warnings:
            parts += ["<h4>Warnings</h4><ul>"] + [f"<li>{esc(w)}</li>" for w in self.warnings] + ["</ul>"]
        parts.append("</div>")
        return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------------
# identifiability of the variance components (checked before any optimisation)
# ----------------------------------------------------------------------------------------------------------
#: Relative SD (theta) beyond which an optimum is dominated by round-off and rejected, not called better.
_THETA_MAX = 1e4
_IDENT_COLUMNS = ("level", "n_groups", "identified", "reason")


def _complete_rows(data: pd.DataFrame, formula: str, groups: Sequence[str], random_slope: str | None,
                   eval_env) -> tuple[np.ndarray, pd.DataFrame]:
    """Fixed-effect matrix and grouping columns of the rows a fit would use (same rule as ``_design``)."""
    extra = [random_slope] if random_slope else []
    _check_columns(data, list(groups) + extra, "groups")
    keep = data[list(groups) + extra].notna().all(axis=1).to_numpy()
    sub = data.loc[keep].reset_index(drop=True)
    try:
        _, X = patsy.dmatrices(formula, sub, NA_action="drop", return_type="dataframe", eval_env=eval_env)
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r}: {exc}") from exc
    return X.to_numpy(dtype=float), sub.iloc[X.index.to_numpy()][list(groups)]


def _identification(X: np.ndarray, codes: Sequence[np.ndarray], sizes: Sequence[int],
                    groups: Sequence[str]) -> pd.DataFrame:
    """Which random-intercept levels the design identifies, and why not where it does not.

    A level is dropped when (1) it has fewer than two groups; (2) its group indicators lie in the column
    space of the fixed effects (e.g. every grade in one school while grade is a fixed effect): the
    likelihood is then flat in its variance, which any value fits equally well; or (3) it is the same
    partition as an outer level that is kept (every outer group holds exactly one inner group), so the two
    variances are not separable and only their sum is identified. Checks (2) and (3) are exact linear
    algebra on the complete rows: the residual of the level's indicator matrix after projection on the
    fixed effects, ``trace(Z'Z) - trace(Z'X (X'X)^+ X'Z)``, from group sums of ``X``.
    ``codes`` are nested group codes (unique across outer groups), as ``_nested_codes`` returns them.
    """
    n, p = X.shape
    scale = np.sqrt(np.einsum("ij,ij->j", X, X)) if n else np.ones(p)
    Xs = X / np.where(scale > 0, scale, 1.0)
    w, V = np.linalg.eigh(Xs.T @ Xs)  # pseudo-inverse of the small Gram matrix (rank-safe)
    keep = w > max(w.max(initial=0.0), 1e-300) * 1e-12
    ginv = (V[:, keep] / w[keep]) @ V[:, keep].T
    rows = []
    for level, (col, code, g) in enumerate(zip(groups, codes, sizes)):
        reason = ""
        if g < 2:
            reason = (f"only {g} {col} group among the {n} complete rows: a variance between {col} groups needs at "
                      f"least two")
        else:
            sums = sparse.csr_matrix((np.ones(n), (code, np.arange(n))), shape=(g, n)) @ Xs  # Z'X, (g, p)
            # trace of Z'(I - H)Z with H the hat matrix of X: zero iff every column of Z lies in span(X)
            residual = n - float(np.einsum("gi,ij,gj->", sums, ginv, sums))
            if residual <= 1e-8 * n:
                reason = (f"every {col} group is determined by the fixed effects (its indicators are linear "
                          f"combinations of the fixed-effect columns, e.g. each grade in one {col}): the likelihood "
                          f"is flat in the {col} variance, which the data cannot identify")
            else:
                for outer in range(level):
                    if sizes[outer] == g and not rows[outer]["reason"]:
                        reason = (f"each {groups[outer]} group holds exactly one {col} group: the two levels are the "
                                  f"same partition of the students, so only the sum of their variances is "
                                  f"identified; it is reported at {groups[outer]}")
                        break
        rows.append({"level": col, "n_groups": int(g), "identified": not reason, "reason": reason})
    return pd.DataFrame(rows, columns=list(_IDENT_COLUMNS))


def _identified_design(data, formula, groups, random_slope, slope_level, env):
    """Build the design of the identified levels only; return it with the identification table.

    Levels with a single group among the rows with every grouping value are dropped before the design is
    built; the rank and partition checks run on the design's own matrices (no second formula evaluation),
    and unidentified levels are then removed from it (nested codes stay nested: inner codes are unique
    across outer groups).
    """
    extra = [random_slope] if random_slope else []
    _check_columns(data, list(groups) + extra, "groups")
    present = data[list(groups)].dropna()
    _, sizes0, _ = _nested_codes(present, groups)
    single = {col for col, g in zip(groups, sizes0) if g < 2}
    pre = tuple(g for g in groups if g not in single)
    slope_at = (groups[0] if slope_level is None else slope_level) if random_slope else None
    if pre and (slope_at is None or slope_at in pre):
        d = _design(data, formula, pre, random_slope, slope_at, env)
        rest = _identification(d.X, d.codes, d.n_groups, pre)
    else:
        d, rest = None, pd.DataFrame(columns=list(_IDENT_COLUMNS))
    one = pd.DataFrame([{"level": col, "n_groups": int(g), "identified": False,
                         "reason": (f"only {g} {col} group among the {len(present)} rows with every grouping value: "
                                    f"a variance between {col} groups needs at least two")}
                        for col, g in zip(groups, sizes0) if col in single], columns=list(_IDENT_COLUMNS))
    ident = pd.concat([x for x in (one, rest) if len(x)], ignore_index=True).set_index("level").loc[list(groups)]
    ident = ident.reset_index().astype({"identified": bool, "n_groups": int})
    kept = tuple(ident.loc[ident["identified"], "level"])
    if not kept:
        raise ValueError(f"no grouping level of {groups} has a variance this design can identify (formula "
                         f"{formula!r}): " + "; ".join(f"{r.level}: {r.reason}" for r in ident.itertuples())
                         + ". Fit the fixed effects by OLS (ols_cluster_check) instead")
    if slope_at is not None and slope_at not in kept:
        raise ValueError(f"the random slope on {random_slope!r} is at level {slope_at!r}, whose variance this design "
                         f"cannot identify: " + ident.set_index("level").at[slope_at, "reason"])
    if kept != d.groups:
        idx = [d.groups.index(g) for g in kept]
        codes = [d.codes[i] for i in idx]
        n_groups = [d.n_groups[i] for i in idx]
        parents = []
        for a in range(1, len(idx)):
            par = np.empty(n_groups[a], dtype=np.int64)
            par[codes[a]] = codes[a - 1]
            parents.append(par)
        d = dataclasses.replace(d, codes=codes, n_groups=n_groups, parents=parents,
                                level_cols=[d.level_cols[i] for i in idx], groups=kept)
    return d, ident


def _nest_kept(data: pd.DataFrame, groups: Sequence[str], kept: Sequence[str]) -> pd.DataFrame:
    """A copy of ``data`` where each kept level nested in a dropped one is keyed by its full nesting."""
    for k, col in enumerate(groups):
        if col in kept and any(g not in kept for g in groups[:k]):
            keys = list(groups[: k + 1])
            code = data.groupby(keys, sort=True, dropna=True).ngroup()
            data = data.assign(**{col: code.where(data[keys].notna().all(axis=1))})
    return data


def identify_levels(data: pd.DataFrame, *, formula: str, groups: Sequence[str] | str,
                    random_slope: str | None = None, _eval_env: Any = None) -> pd.DataFrame:
    """Check, before fitting, which grouping levels' variances the design can identify.

    :func:`fit_growth_model` runs this check and fits only the identified levels (``drop_unidentified=True``,
    the default), stating the reason for each level it drops in ``warnings`` and in
    ``result.identification``. An unidentified level makes the REML criterion flat in its variance; an
    optimizer then wanders to an arbitrary (often astronomically large) value where round-off can make the
    criterion look better than at the true optimum.

    Parameters
    ----------
    data, formula, groups, random_slope
        As for :func:`fit_growth_model` (the same complete rows are used).

    Returns
    -------
    DataFrame
        ``level``, ``n_groups`` (among the complete rows), ``identified`` (bool), ``reason`` (empty when
        identified).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"grade": np.repeat([3, 4, 5], 40), "classroom": np.repeat(np.arange(12), 10)})
    >>> df["school"] = df["grade"]  # every grade in its own school
    >>> df["y"] = rng.normal(size=120)
    >>> identify_levels(df, formula="y ~ C(grade)", groups=("school", "classroom"))[["level", "identified"]]
           level  identified
    0     school       False
    1  classroom        True
    """
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    env = _eval_env if _eval_env is not None else patsy.EvalEnvironment.capture(1)
    X, frame = _complete_rows(data, formula, groups, random_slope, env)
    codes, sizes, _ = _nested_codes(frame, groups)
    return _identification(X, codes, sizes, groups)


# ----------------------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------------------
def fit_growth_model(data: pd.DataFrame, *, formula: str, groups: Sequence[str] | str,
                     random_slope: str | None = None, slope_level: str | None = None, method: str = "REML",
                     ci_level: float = 0.95, cross_check: bool | str = False, strict: bool = False,
                     max_iter: int = 1000, tol: float = 1e-6, start: Sequence[float] | None = None,
                     drop_unidentified: bool = True, _eval_env: Any = None) -> GrowthModelResult:
    """Fit a nested linear mixed model (random intercepts at every level, optional random slope), verified.

    Parameters
    ----------
    data
        Any DataFrame with one row per observation (student); not modified.
    formula
        Fixed effects as a patsy formula, e.g. ``"spring_z ~ fall_z + access * started_behind"``,
        ``"mathach ~ meanses * cses + C(sector)"``. Rows with a missing value in any variable used (or in a
        grouping column or the slope variable) are dropped and counted in ``n_dropped``.
    groups
        Nested grouping columns, outermost first, e.g. ``("school_id", "classroom_id")``. An inner id only
        needs to be unique within its outer group (classroom "1" in two schools are two classrooms).
    random_slope
        Optional numeric column whose slope varies randomly (correlated with the intercept) at
        ``slope_level`` (default: the outermost level). It is usually also a fixed effect in ``formula``.
    method
        ``"REML"`` (default) or ``"ML"`` (for likelihood-ratio comparisons of fixed effects).
    ci_level
        Level of the Wald intervals.
    cross_check
        ``True`` (or a level name) adds :func:`ols_cluster_check`'s table, clustered on the outermost level
        (or the named one), as ``result.cross_check``.
    strict
        Raise :class:`ConvergenceError` when the fit cannot be verified, instead of returning it with
        ``converged=False`` (and a :class:`ConvergenceWarning`).
    max_iter, tol
        Iteration limit of each optimizer in the chain; tolerance on the Newton decrement of the deviance.
    start
        Optional start for ``theta`` (lme4's relative Cholesky factors, outer level first: 1 value per
        intercept-only level, ``(l11, l21, l22)`` for the level with the slope).
    drop_unidentified
        Check the design before fitting (:func:`identify_levels`) and fit only the levels whose variance it
        identifies (default); each dropped level and the reason are in ``warnings`` and
        ``result.identification``, and ``result.groups`` lists the levels fitted. With ``False`` every level is
        fitted as given.

    Returns
    -------
    GrowthModelResult
        Read-only; see its attributes for every table and column.

    Raises
    ------
    KeyError
        A named column is missing.
    ValueError
        Bad formula, rank-deficient fixed effects, a level with one group, or an innermost level with one
        row per group.
    ConvergenceError
        With ``strict=True``, when the optimum cannot be verified.
    """
    method_u = str(method).upper()
    if method_u not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML', not {method!r}")
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    env = _eval_env if _eval_env is not None else patsy.EvalEnvironment.capture(1)
    ident, requested = None, groups
    if drop_unidentified:
        d, ident = _identified_design(data, formula, groups, random_slope, slope_level, env)
        groups = d.groups
    else:
        d = _design(data, formula, groups, random_slope, slope_level, env)
    prof = _Profile(d, reml=method_u == "REML")
    if start is not None and len(start) != len(prof.start):
        raise ValueError(f"start must have {len(prof.start)} values (theta layout: one per intercept-only level, "
                         f"three for the level with the random slope)")
    opt = _optimize(prof, max_iter=int(max_iter), tol=float(tol), start=None if start is None else np.array(start))
    theta = opt["theta"]
    sol = prof.solve(theta)
    n, p = prof.n, prof.p
    sigma2 = sol["r2"] / (n - p if prof.reml else n)
    # back-transform beta and its covariance from the centred design
    T = np.eye(p)
    shift = np.zeros(p)
    if prof.icpt is not None:
        T[prof.icpt, :] -= prof.xmeans
        T[prof.icpt, prof.icpt] = 1.0
        shift[prof.icpt] = prof.ymean
    beta = T @ sol["beta"] + shift
    cov = sigma2 * (T @ np.linalg.inv(sol["XtX"]) @ T.T)
    cov = 0.5 * (cov + cov.T)
    se = np.sqrt(np.diag(cov))
    zq = stats.norm.ppf(0.5 + ci_level / 2)
    z = beta / se
    coefs = pd.DataFrame({"term": d.names, "estimate": beta, "std_error": se, "z": z, "ci_lower": beta - zq * se,
                          "ci_upper": beta + zq * se, "p_value": 2 * stats.norm.sf(np.abs(z)), "n": n})
    vcov = pd.DataFrame(cov, index=d.names, columns=d.names)

    # variance components
    rows, singular_levels = [], []
    slope_at = None
    for level, col in enumerate(groups):
        lam = prof.lam(theta, level)
        S = sigma2 * lam @ lam.T
        ng = d.n_groups[level]
        rows.append({"component": col, "level": col, "term": "intercept", "variance": S[0, 0],
                     "std_dev": math.sqrt(S[0, 0]), "correlation": np.nan, "n_groups": ng})
        if abs(lam[0, 0]) < _SINGULAR_TOL:
            singular_levels.append(col if lam.shape[0] == 1 else f"{col} (intercept)")
        if lam.shape[0] == 2 and abs(lam[1, 1]) < _SINGULAR_TOL:
            singular_levels.append(f"{col}:{d.u_names[1]} (slope, or its correlation with the intercept is +-1)")
        if lam.shape[0] == 2:
            slope_at = col
            sl = d.u_names[1]
            corr = S[0, 1] / math.sqrt(S[0, 0] * S[1, 1]) if S[0, 0] > 0 and S[1, 1] > 0 else np.nan
            rows.append({"component": f"{col}:{sl}", "level": col, "term": sl, "variance": S[1, 1],
                         "std_dev": math.sqrt(S[1, 1]), "correlation": np.nan, "n_groups": ng})
            rows.append({"component": f"{col}:cov(intercept,{sl})", "level": col, "term": f"intercept,{sl}",
                         "variance": S[0, 1], "std_dev": np.nan, "correlation": corr, "n_groups": ng})
    rows.append({"component": "residual", "level": "residual", "term": "residual", "variance": sigma2,
                 "std_dev": math.sqrt(sigma2), "correlation": np.nan, "n_groups": n})
    vc = pd.DataFrame(rows)
    icpt_var = np.array([r["variance"] for r in rows if r["term"] == "intercept"])
    total = icpt_var.sum() + sigma2
    icc = pd.DataFrame({"level": list(groups), "variance": icpt_var, "icc": icpt_var / total,
                        "icc_cumulative": np.cumsum(icpt_var) / total, "n_groups": d.n_groups})
    sizes = [np.bincount(c) for c in d.codes]
    levels = pd.DataFrame({"level": list(groups), "n_groups": d.n_groups,
                           "min_size": [int(s.min()) for s in sizes],
                           "median_size": [float(np.median(s)) for s in sizes],
                           "max_size": [int(s.max()) for s in sizes]})

    # warnings
    msgs = list(opt["problems"])
    converged = not opt["problems"]
    if not converged:
        msgs.insert(0, "NOT CONVERGED: the optimum could not be verified; do not use these estimates")
    if ident is not None:
        msgs += [f"{r.level} variance not identified by this design and not fitted: {r.reason}"
                 for r in ident.itertuples() if not r.identified]
    msgs += opt["notes"]
    singular = bool(singular_levels)
    if singular:
        msgs.append(f"singular fit: the random-effect variance of {' and of '.join(singular_levels)} is estimated "
                    f"at (or near) zero; the model is at the boundary of its parameter space (estimates are valid "
                    f"but that level adds nothing; consider dropping it)")
    for col, g in zip(groups, d.n_groups):
        if g < 5:
            msgs.append(f"only {g} groups of {col}: its variance is poorly estimated")
    if d.n_dropped:
        msgs.append(f"{d.n_dropped} rows dropped for missing values")
    exact_zero = [t for t, b in zip(d.names, beta) if b == 0.0]
    if exact_zero:
        msgs.append(f"estimate(s) of {exact_zero} are exactly 0.0: check the data (the statsmodels issue 10239 "
                    f"pattern)")
    ll = -opt["deviance"] / 2
    df_model = p + len(theta) + 1
    cc = None
    if cross_check:
        cl = groups[0] if cross_check is True else str(cross_check)
        cc = ols_cluster_check(_nest_kept(data, requested, groups), formula=formula, groups=groups, cluster=cl,
                               mixed=None, ci_level=ci_level, _eval_env=env)
        m = coefs.set_index("term")
        cc = cc.assign(mixed_estimate=cc["term"].map(m["estimate"]), mixed_std_error=cc["term"].map(m["std_error"]))
        cc["difference"] = cc["estimate"] - cc["mixed_estimate"]
        cc["se_ratio"] = cc["std_error"] / cc["mixed_std_error"]
    diag = dict(opt["diagnostics"])
    result = GrowthModelResult(
        formula=formula, groups=groups, method=method_u, random_slope=random_slope,
        slope_level=slope_at, n_obs=n, n_dropped=d.n_dropped, log_likelihood=ll, deviance=opt["deviance"],
        aic=opt["deviance"] + 2 * df_model, bic=opt["deviance"] + math.log(n) * df_model, sigma2=sigma2,
        theta=tuple(float(t) for t in theta), optimizer=opt["optimizer"], converged=converged, singular=singular,
        warnings=tuple(msgs), _coefficients=coefs, _vcov=vcov, _variance_components=vc, _icc=icc, _levels=levels,
        _cross_check=cc, _diagnostics=diag, _identification=ident)
    if not converged:
        text = "; ".join(opt["problems"])
        if strict:
            raise ConvergenceError(f"mixed model {formula!r} with groups {groups} did not converge: {text}")
        _warnings.warn(f"mixed model {formula!r} with groups {groups} did not converge: {text}", ConvergenceWarning,
                       stacklevel=2)
    return result


# ----------------------------------------------------------------------------------------------------------
# cross-checks
# ----------------------------------------------------------------------------------------------------------
def ols_cluster_check(data: pd.DataFrame, *, formula: str, groups: Sequence[str] | str, cluster: str | None = None,
                      mixed: GrowthModelResult | None = None, ci_level: float = 0.95,
                      _eval_env: Any = None) -> pd.DataFrame:
    """OLS with cluster-robust (CR1) standard errors, optionally side by side with a mixed model.

    Parameters
    ----------
    data, formula, groups
        As for :func:`fit_growth_model` (rows with missing values are dropped the same way).
    cluster
        Level to cluster on (default: the outermost; nested ids are combined with their outer levels).
    mixed
        A fitted :class:`GrowthModelResult` to compare with.

    Returns
    -------
    DataFrame
        ``term``, ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value`` (OLS, cluster-robust,
        t reference with G - 1 df as statsmodels does), ``n``, ``n_clusters``, ``cluster``; with ``mixed``
        also ``mixed_estimate``, ``mixed_std_error``, ``difference`` (OLS - mixed) and ``se_ratio``.
    """
    import statsmodels.api as sm

    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    cluster = groups[0] if cluster is None else cluster
    if cluster not in groups:
        raise ValueError(f"cluster {cluster!r} is not one of the groups {groups}")
    env = _eval_env if _eval_env is not None else patsy.EvalEnvironment.capture(1)
    d = _design(data, formula, groups, None, None, env)
    codes = d.codes[groups.index(cluster)]
    fit = sm.OLS(d.y, d.X).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    ci = fit.conf_int(alpha=1 - ci_level)
    out = pd.DataFrame({"term": d.names, "estimate": fit.params, "std_error": fit.bse, "ci_lower": ci[:, 0],
                        "ci_upper": ci[:, 1], "p_value": fit.pvalues, "n": len(d.y),
                        "n_clusters": int(codes.max() + 1), "cluster": cluster})
    if mixed is not None:
        m = mixed._coefficients.set_index("term")
        out["mixed_estimate"] = out["term"].map(m["estimate"])
        out["mixed_std_error"] = out["term"].map(m["std_error"])
        out["difference"] = out["estimate"] - out["mixed_estimate"]
        out["se_ratio"] = out["std_error"] / out["mixed_std_error"]
    return out.reset_index(drop=True)


def mixedlm_check(data: pd.DataFrame, result: GrowthModelResult, *, fit_kwargs: Mapping | None = None,
                  ) -> pd.DataFrame:
    """Fit ``result``'s model with statsmodels MixedLM and compare; flag the statsmodels issue 10239 pattern.

    Nested levels below the outermost become statsmodels variance components (``vc_formula``). ``fit_kwargs``
    go to ``MixedLM.fit`` (default: statsmodels' defaults, the point being to see what they give).

    Returns
    -------
    DataFrame
        ``kind`` (``fixed`` / ``variance``), ``term`` (fixed-effect term or variance component),
        ``estimate`` (this engine), ``statsmodels_estimate``, ``difference``, ``relative_difference``,
        ``statsmodels_converged``, ``statsmodels_log_likelihood``, ``log_likelihood``, ``flag``
        (``"statsmodels-10239: zeroed between-group predictor"`` where statsmodels returns 0.0 (|b| < 1e-10)
        for a predictor that is constant within outermost groups while this engine does not; else empty).
    """
    import statsmodels.formula.api as smf

    groups = result.groups
    env = patsy.EvalEnvironment.capture(1)
    d = _design(data, result.formula, groups, result.random_slope, result.slope_level, env)
    if result.random_slope and result.slope_level != groups[0]:
        raise ValueError("mixedlm_check supports a random slope at the outermost level only")
    frame = pd.DataFrame(d.X, columns=[f"x{i}" for i in range(d.X.shape[1])])
    frame["y_"] = d.y
    frame["g0_"] = d.codes[0]
    for level in range(1, len(groups)):
        frame[f"g{level}_"] = d.codes[level]
    rhs = " + ".join(frame.columns[: d.X.shape[1]])
    re = "1" if not result.random_slope else "1 + u1_"
    if result.random_slope:
        frame["u1_"] = d.U[:, 1]
    vc = {groups[level]: f"0 + C(g{level}_)" for level in range(1, len(groups))}
    model = smf.mixedlm(f"y_ ~ 0 + {rhs}", frame, groups=frame["g0_"], re_formula=re, vc_formula=vc or None)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        fit = model.fit(reml=result.method == "REML", **dict(fit_kwargs or {}))
    sm_conv = bool(fit.converged) and not any("converge" in str(w.message).lower() for w in caught)
    sm_beta = np.asarray(fit.fe_params)
    ours = result._coefficients["estimate"].to_numpy()
    within_const = []
    for j in range(d.X.shape[1]):
        col = d.X[:, j]
        gmin = pd.Series(col).groupby(d.codes[0]).agg(["min", "max"])
        within_const.append(bool((gmin["min"] == gmin["max"]).all()))
    rows = []
    for j, term in enumerate(d.names):
        flag = ""
        if within_const[j] and abs(sm_beta[j]) < 1e-10 and abs(ours[j]) > 1e-6:
            flag = "statsmodels-10239: zeroed between-group predictor"
        rows.append({"kind": "fixed", "term": term, "estimate": ours[j], "statsmodels_estimate": sm_beta[j],
                     "flag": flag})
    vcs = result._variance_components.set_index("component")["variance"]
    scale = float(fit.scale)
    cov_re = np.asarray(fit.cov_re)
    sm_vc = {groups[0]: cov_re[0, 0], "residual": scale}
    if result.random_slope:
        sm_vc[f"{groups[0]}:{result.random_slope}"] = cov_re[1, 1]
        sm_vc[f"{groups[0]}:cov(intercept,{result.random_slope})"] = cov_re[0, 1]
    for level in range(1, len(groups)):
        sm_vc[groups[level]] = float(np.asarray(fit.vcomp)[level - 1])
    for comp, v in sm_vc.items():
        rows.append({"kind": "variance", "term": comp, "estimate": float(vcs[comp]), "statsmodels_estimate": float(v),
                     "flag": ""})
    out = pd.DataFrame(rows)
    out["difference"] = out["statsmodels_estimate"] - out["estimate"]
    out["relative_difference"] = out["difference"] / out["estimate"].abs().where(out["estimate"] != 0)
    out["statsmodels_converged"] = sm_conv
    out["statsmodels_log_likelihood"] = float(fit.llf)
    out["log_likelihood"] = result.log_likelihood
    return out[["kind", "term", "estimate", "statsmodels_estimate", "difference", "relative_difference",
                "statsmodels_converged", "statsmodels_log_likelihood", "log_likelihood", "flag"]]


# ----------------------------------------------------------------------------------------------------------
# months of learning
# ----------------------------------------------------------------------------------------------------------
def annual_gains(table: pd.DataFrame | str | None = None) -> pd.DataFrame:
    """The benchmark table of typical annual gains (SD units) by subject and grade.

    Parameters
    ----------
    table
        None for the default, Hill, Bloom, Black & Lipsey (2008), Table 1 (reading and math, national norms;
        ``resources/annual_gains.csv``); or a replacement DataFrame / CSV path with columns ``subject``,
        ``grade_to`` (the grade whose school year the gain covers) and ``annual_gain``, optionally ``source``.

    Returns
    -------
    DataFrame
        ``subject``, ``grade_from``, ``grade_to``, ``annual_gain``, ``source``.
    """
    if table is None:
        with _resources.files("opportunity_research").joinpath("resources/annual_gains.csv").open("r") as fh:
            t = pd.read_csv(fh, comment="#")
    elif isinstance(table, pd.DataFrame):
        t = table.copy()
    else:
        t = pd.read_csv(table, comment="#")
    missing = [c for c in ("subject", "grade_to", "annual_gain") if c not in t.columns]
    if missing:
        raise KeyError(f"annual gains table: missing column(s) {missing}; need subject, grade_to, annual_gain")
    t["subject"] = t["subject"].astype(str).str.lower()
    if "grade_from" not in t.columns:
        t["grade_from"] = t["grade_to"] - 1
    if "source" not in t.columns:
        t["source"] = "user-supplied table"
    if (t["annual_gain"] <= 0).any():
        raise ValueError("annual gains table: every annual_gain must be positive")
    return t[["subject", "grade_from", "grade_to", "annual_gain", "source"]].reset_index(drop=True)


def _gain_lookup(grade, subject: str, table) -> np.ndarray:
    t = annual_gains(table)
    subj = _SUBJECT_ALIASES.get(str(subject).lower(), str(subject).lower())
    part = t[t["subject"] == subj]
    if part.empty:
        raise ValueError(f"no annual gains for subject {subject!r} (as {subj!r}); table subjects: "
                         f"{sorted(t['subject'].unique())}")
    lookup = part.set_index("grade_to")["annual_gain"]
    g = np.atleast_1d(np.asarray(grade))
    gains = pd.Series(g).map(lookup).to_numpy(dtype=float)
    if np.isnan(gains).any():
        bad = sorted(set(g[np.isnan(gains)].tolist()))
        raise ValueError(f"no annual gain for grade(s) {bad} in {subj}; table grades: {sorted(lookup.index)}")
    return gains


def months_of_learning(effect_sd, *, grade, subject: str, table: pd.DataFrame | str | None = None,
                       months_per_year: float = 9, min_gain: float = MIN_ANNUAL_GAIN):
    """Approximate months of learning: ``effect_sd / annual_gain(grade, subject) * months_per_year``.

    An approximation (see :data:`MONTHS_CAVEAT`): the typical annual gain comes from national norms (by
    default Hill, Bloom, Black & Lipsey 2008, Table 1), not from the district, and its uncertainty is not
    carried into the figure. Linear in the effect, so interval bounds convert bound by bound.

    Parameters
    ----------
    effect_sd
        Effect(s) in SD units (scalar or array).
    grade
        The grade the students are in during the school year (scalar or array, broadcast with ``effect_sd``);
        grade 4 uses the 3-4 transition. Kindergarten is 0.
    subject
        ``"math"`` or ``"reading"`` (``"ela"`` and ``"english"`` map to reading), or a subject of ``table``.
    table
        Replacement benchmark (see :func:`annual_gains`).
    months_per_year
        School months in a year (9).
    min_gain
        Smallest annual gain converted (default 0.10 SD); below it the result is NaN (grade 12 math gains
        0.01 SD a year: 0.1 SD would read as 90 months).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> round(months_of_learning(0.10, grade=4, subject="ela"), 3)   # 0.10 / 0.36 * 9
    2.5
    >>> months_of_learning([0.052, 0.104], grade=4, subject="math").round(2).tolist()
    [0.9, 1.8]
    """
    eff = np.asarray(effect_sd, dtype=float)
    gains = _gain_lookup(grade, subject, table)
    gains = gains.reshape(np.shape(grade)) if np.ndim(grade) else gains[0]
    out = np.where(gains >= min_gain, eff / gains * months_per_year, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def add_months_of_learning(table: pd.DataFrame, *, grade, subject: str, gains: pd.DataFrame | str | None = None,
                           months_per_year: float = 9, columns=("estimate", "ci_lower", "ci_upper"),
                           min_gain: float = MIN_ANNUAL_GAIN, max_months: float | None = None) -> pd.DataFrame:
    """Return a copy of ``table`` with months-of-learning columns for its estimate and interval bounds.

    Adds ``grade_used``, ``annual_gain``, ``months``, ``months_ci_lower``, ``months_ci_upper`` (from the
    columns named in ``columns``) and ``months_note`` (:data:`MONTHS_CAVEAT`, or why months are not given).
    ``grade`` may be a scalar or the name of a column of ``table``.

    Months are left missing ("n/a", with the reason in ``months_note``) where the benchmark annual gain is
    below ``min_gain`` SD (default 0.10: dividing by a near-zero gain, e.g. 0.01 SD in grade 12 math, turns
    any effect into years), and, with ``max_months``, where the estimate lies beyond that many months either
    way (the interval alone is dropped when only its bounds do): a conversion that large is outside what the
    benchmark can support.

    Examples
    --------
    >>> t = pd.DataFrame({"estimate": [0.05, 0.05], "ci_lower": [0.01, 0.01], "ci_upper": [0.09, 0.09],
    ...                   "grade": [4, 12]})
    >>> out = add_months_of_learning(t, grade="grade", subject="math")
    >>> out["months"].round(2).tolist(), out["months_note"].iloc[1][:4]
    ([0.87, nan], 'n/a:')
    """
    out = table.copy()
    g = out[grade].to_numpy() if isinstance(grade, str) and grade in out.columns else np.full(len(out), grade)
    gain = _gain_lookup(g, subject, gains) if len(out) else np.array([])
    out["grade_used"] = g
    out["annual_gain"] = gain
    vals = {}
    for src, dst in zip(columns, ("months", "months_ci_lower", "months_ci_upper")):
        vals[dst] = out[src].to_numpy(dtype=float) / gain * months_per_year
    note = np.full(len(out), MONTHS_CAVEAT, dtype=object)
    low = gain < min_gain
    note[low] = [f"n/a: the benchmark annual gain for grade {gr} ({ga:.2f} SD) is below {min_gain:.2f} SD, where "
                 f"dividing by it would inflate any effect into implausible months" for gr, ga in zip(g[low], gain[low])]
    drop_all = low.copy()
    drop_ci = low.copy()
    if max_months is not None:
        big = ~low & (np.abs(vals["months"]) > max_months)
        note[big] = (f"n/a: the effect converts to more than {max_months:g} months (one school year), beyond what "
                     f"the benchmark conversion can support")
        ci_big = ~low & ~big & ((np.abs(vals["months_ci_lower"]) > max_months)
                                | (np.abs(vals["months_ci_upper"]) > max_months))
        note[ci_big] = (MONTHS_CAVEAT + f" The interval is not converted: it extends beyond {max_months:g} months "
                        f"(one school year).")
        drop_all |= big
        drop_ci |= big | ci_big
    out["months"] = np.where(drop_all, np.nan, vals["months"])
    out["months_ci_lower"] = np.where(drop_ci, np.nan, vals["months_ci_lower"])
    out["months_ci_upper"] = np.where(drop_ci, np.nan, vals["months_ci_upper"])
    out["months_note"] = note
    return out


# ----------------------------------------------------------------------------------------------------------
# the study's models
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StudyModels:
    """Read-only result of :func:`fit_study_models`.

    Attributes
    ----------
    models
        ``{(subject, model): GrowthModelResult}``; ``model`` is a resource name or ``"all_four"``.
    effects
        Tidy table (a copy on access), one row per subject, model, resource and effect:
        ``subject``, ``model``, ``resource``, ``effect`` (``access``: per-unit effect of going from no access (0)
        to full access (1) for students who did not start behind; ``extra_if_behind``: the additional effect for
        students who started behind (the interaction); ``access_if_behind``: their sum, the effect for students
        who started behind), ``term``, ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value``
        (SD units of the spring score, Wald 95%), ``n`` (students), ``n_started_behind``, ``n_classrooms``,
        ``n_schools``, ``converged``; ``access_p25``, ``access_p75`` (the district's 25th and 75th percentiles
        of classroom access to the resource), ``contrast_estimate``, ``contrast_ci_lower``,
        ``contrast_ci_upper`` (the effect of going from the 25th to the 75th percentile: the per-unit effect
        times ``access_p75 - access_p25``; the study's "more vs less access"), ``contrast_note`` (why there is
        no contrast, if so); ``n_eligible`` (students with scores and covariates), ``n_excluded`` (of those,
        left out of this model because their classroom lacks a resource it needs), ``sample`` (the model's
        students and the exclusion reason), ``levels_fitted`` (grouping levels with a variance in the model);
        then ``grade_used``, ``annual_gain``, ``months``, ``months_ci_lower``, ``months_ci_upper`` (from the
        contrast; missing where the annual gain is below 0.10 SD or the months would exceed one school year),
        ``months_note`` (see :func:`add_months_of_learning`).
    warnings
        ``(subject, model, message)`` for every warning of every model, plus dropped covariates.
    """

    _models: dict = field(repr=False)
    _effects: pd.DataFrame = field(repr=False)
    warnings: tuple = ()

    @property
    def models(self) -> dict:
        return dict(self._models)

    @property
    def effects(self) -> pd.DataFrame:
        return self._effects.copy()

    @property
    def converged(self) -> bool:
        return all(m.converged for m in self._models.values())

    def summary(self) -> str:
        cols = ["subject", "model", "resource", "effect", "estimate", "ci_lower", "ci_upper", "contrast_estimate",
                "contrast_ci_lower", "contrast_ci_upper", "months", "months_ci_lower", "months_ci_upper", "n",
                "converged"]
        lines = [("Growth models: spring score (SD) on fall score, access (0-1 share), access x started behind, "
                  "student characteristics; school and classroom random intercepts (levels the design cannot "
                  "identify are dropped, see warnings). estimate: per unit of access (never -> always); contrast: "
                  "classrooms at the district's 75th vs 25th percentile of access; months from the contrast."),
                 _fmt_table(self._effects[cols], 3).to_string(index=False), "", MONTHS_CAVEAT]
        if not self.converged:
            bad = [f"{s}/{m}" for (s, m), r in self._models.items() if not r.converged]
            lines.append(f"NOT CONVERGED (estimates unusable): {', '.join(bad)}")
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w} ({where})" for w, where in self._grouped_warnings()]
        return "\n".join(lines)

    def _grouped_warnings(self) -> list[tuple[str, str]]:
        """Each distinct message once, with the subject/model pairs it applies to."""
        seen: dict[str, list[str]] = {}
        for s, m, w in self.warnings:
            seen.setdefault(w, []).append(f"{s}/{m}")
        return [(w, ", ".join(where)) for w, where in seen.items()]

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        cols = ["subject", "model", "resource", "effect", "estimate", "ci_lower", "ci_upper", "contrast_estimate",
                "contrast_ci_lower", "contrast_ci_upper", "months", "months_ci_lower", "months_ci_upper", "n",
                "converged"]
        parts = ["<div class='study-models'>", _fmt_table(self._effects[cols], 3).to_html(index=False),
                 f"<p><em>{html.escape(MONTHS_CAVEAT)}</em></p>"]
        if self.warnings:
            parts += ["<ul>"] + [f"<li>{html.escape(f'{w} ({where})')}</li>" for w, where in self._grouped_warnings()]
            parts.append("</ul>")
        parts.append("</div>")
        return "\n".join(parts)


def _access_quartiles(part: pd.DataFrame, resource: str, groups: Sequence[str]) -> tuple[float, float, int]:
    """25th and 75th percentiles of classroom-level access (one value per classroom), and the classroom count."""
    per = part.dropna(subset=[resource]).groupby(list(groups), sort=False)[resource].mean()
    if per.empty:
        return np.nan, np.nan, 0
    q25, q75 = np.quantile(per.to_numpy(dtype=float), [0.25, 0.75])
    return float(q25), float(q75), len(per)


def fit_study_models(frame: pd.DataFrame, *, subject: str | None = None, resources: Sequence[str] = STUDY_RESOURCES,
                     covariates: Sequence[str] = STUDY_COVARIATES, groups: Sequence[str] = ("school_id", "classroom_id"),
                     outcome: str = "spring_z", prior: str = "fall_z", behind: str = "started_behind",
                     method: str = "REML", grade: int | str = "median", gains: pd.DataFrame | str | None = None,
                     months_per_year: float = 9, strict: bool = False, grade_effects: bool = True,
                     fit_options: Mapping[str, Any] | None = None) -> StudyModels:
    """Fit the study's growth models: one per resource and one with all four, per subject.

    For each resource ``r`` the model is ``spring_z ~ fall_z + started_behind + r + r:started_behind +
    covariates`` with random intercepts for schools and classrooms within schools; the ``all_four`` model has
    every resource and every interaction.

    Samples: each model uses its own students. A one-resource model uses every student with both scores,
    a started-behind status, the covariates and that resource measured in their classroom; the ``all_four``
    model is restricted to students whose classrooms have every resource measured (e.g. the engagement
    survey covers grades 6-12 only), and says so. Each row of ``effects`` carries the model's ``n``, the
    students left out (``n_excluded``) and why (``sample``).

    Identifiability: before fitting, a grouping level whose variance the design cannot identify (one group,
    groups determined by the fixed effects, e.g. every grade in one school with grade fixed effects, or the
    same partition as another level) is dropped with the reason in ``warnings`` (see :func:`identify_levels`).

    Effects: access terms are estimated per unit of access (0 = never, 1 = always; the technical ``estimate``
    columns), and reported as the contrast between classrooms at the district's 25th and 75th percentiles of
    access to that resource (the study's "more vs less access"; ``contrast_*`` columns). Months of learning
    are computed from that contrast only, where the benchmark annual gain is at least 0.10 SD and the result
    stays within one school year (otherwise "n/a" with the reason in ``months_note``).

    Parameters
    ----------
    frame
        One row per student and subject (:func:`opportunity_research.study.measures.growth_frame`): ``student_id``,
        ``school_id``, ``classroom_id``, ``subject``, ``grade``, ``spring_z``, ``fall_z``, ``started_behind``
        (0/1), the resource shares (missing where a classroom has no evidence) and the covariates.
    subject
        Fit only this subject; default: every subject in ``frame`` (each separately).
    resources, covariates, groups, outcome, prior, behind
        Column names. A covariate with no variation in a model's sample is dropped (noted in ``warnings``).
    method
        ``"REML"`` or ``"ML"``.
    grade
        Grade used to convert effects to months of learning: ``"median"`` (default: the lower median grade of
        the subject's students, a single benchmark per subject so that months stay comparable across models) or
        an integer grade.
    gains, months_per_year
        Benchmark table (:func:`annual_gains`) and school months per year.
    strict
        Raise :class:`ConvergenceError` if any model cannot be verified.
    grade_effects
        Add grade fixed effects (``C(grade)``) when a model's sample spans several grades (default). Scores are
        standardized within grade, so without them a between-grade difference in access would be confounded
        with the grade-level centring of the outcome.
    fit_options
        Further keyword arguments for :func:`fit_growth_model` (e.g. ``max_iter``, ``tol``).

    Returns
    -------
    StudyModels
    """
    need = [outcome, prior, behind, *resources, *covariates, *groups, "grade"]
    _check_columns(frame, need, "fit_study_models")
    if subject is not None:
        _check_columns(frame, ["subject"], "fit_study_models")
        parts = [(subject, frame[frame["subject"] == subject])]
        if parts[0][1].empty:
            raise ValueError(f"no rows with subject == {subject!r}; subjects: {sorted(frame['subject'].unique())}")
    elif "subject" in frame.columns:
        parts = [(s, part) for s, part in frame.groupby("subject", sort=True)]
    else:
        raise KeyError("fit_study_models: give subject= or a 'subject' column (needed for months of learning)")
    models, rows, warns = {}, [], []
    env = patsy.EvalEnvironment.capture(0)
    stats_cols = ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")
    for subj, part in parts:
        eligible = part.dropna(subset=[outcome, prior, behind, "grade", *groups, *covariates])
        n_eligible = len(eligible)
        if n_eligible < len(part):
            warns.append((subj, "all", (f"{len(part) - n_eligible} students without both scores, a started-behind "
                                        f"status, a classroom or a covariate are in no model")))
        res = [r for r in resources if eligible[r].nunique(dropna=True) > 1]
        for r in [r for r in resources if r not in res]:
            msg = (f"access to {r!r} has no variation among these students (every classroom at "
                   f"{eligible[r].dropna().unique().tolist()}): its effect cannot be estimated; no model for it, and "
                   f"it is left out of all_four")
            warns.append((subj, "all", msg))
        if not len(eligible):
            continue
        g_used = (int(statistics.median_low(eligible["grade"].astype(int).tolist())) if grade == "median"
                  else int(grade))
        quart = {r: _access_quartiles(eligible, r, groups) for r in res}
        specs = [(r, [r]) for r in res] + ([("all_four", res)] if len(resources) > 1 and res else [])
        for name, rs in specs:
            sample = eligible.dropna(subset=list(rs))
            n_excl = n_eligible - len(sample)
            if name == "all_four":
                what = (f"students whose classrooms have all {len(rs)} resources measured ("
                        + ", ".join(r.replace("_", " ") for r in rs) + ")")
            else:
                what = f"students whose classrooms have {rs[0].replace('_', ' ')} measured"
            note = what + (f"; {n_excl} of {n_eligible} students with scores left out: their classrooms lack "
                           f"{'that measure' if name != 'all_four' else 'at least one of these measures'}"
                           if n_excl else "; no student with scores left out")
            covs = [c for c in covariates if sample[c].nunique(dropna=True) > 1]
            for c in [c for c in covariates if c not in covs]:
                warns.append((subj, name, (f"covariate {c!r} has no variation among this model's students and "
                                           f"was dropped")))
            rhs = [prior, behind] + [t for r in rs for t in (r, f"{r}:{behind}")] + covs
            if grade_effects and sample["grade"].nunique() > 1:
                rhs.append("C(grade)")
            formula = f"{outcome} ~ " + " + ".join(rhs)
            fit = fit_growth_model(sample, formula=formula, groups=groups, method=method, strict=strict, _eval_env=env,
                                   **dict(fit_options or {}))
            models[(subj, name)] = fit
            warns += [(subj, name, w) for w in fit.warnings]
            common = {"subject": subj, "model": name, "n": fit.n_obs,
                      "n_started_behind": int((sample[behind] == 1).sum()),
                      "n_classrooms": int(sample.groupby(list(groups)).ngroups),
                      "n_schools": int(sample[groups[0]].nunique()), "converged": fit.converged,
                      "n_eligible": n_eligible, "n_excluded": n_excl, "sample": note,
                      "levels_fitted": ", ".join(fit.groups)}
            coefs = fit._coefficients.set_index("term")
            for r in rs:
                inter = f"{r}:{behind}"
                q25, q75, n_cls = quart[r]
                width = q75 - q25
                for effect, term, weights in (("access", r, {r: 1.0}), ("extra_if_behind", inter, {inter: 1.0}),
                                              ("access_if_behind", f"{r} + {inter}", {r: 1.0, inter: 1.0})):
                    if effect == "access_if_behind":
                        c = fit.contrast(weights)
                    else:
                        c = coefs.loc[term, list(stats_cols)].to_dict()
                    ok = width > 0
                    cnote = "" if ok else (f"n/a: at least half of the {n_cls} classrooms have the same access "
                                           f"({q25:.0%}), so the 25th and 75th percentiles coincide")
                    rows.append({"subject": subj, "model": name, "resource": r, "effect": effect, "term": term,
                                 **{k: float(c[k]) for k in stats_cols},
                                 **{k: common[k] for k in ("n", "n_started_behind", "n_classrooms", "n_schools",
                                                           "converged")},
                                 "access_p25": q25, "access_p75": q75,
                                 "contrast_estimate": c["estimate"] * width if ok else np.nan,
                                 "contrast_ci_lower": c["ci_lower"] * width if ok else np.nan,
                                 "contrast_ci_upper": c["ci_upper"] * width if ok else np.nan,
                                 "contrast_note": cnote,
                                 **{k: common[k] for k in ("n_eligible", "n_excluded", "sample", "levels_fitted")},
                                 "grade_used": g_used})
    eff = pd.DataFrame(rows)
    if eff.empty:
        return StudyModels(_models=models, _effects=eff, warnings=tuple(warns))
    pieces = []
    for subj, part in eff.groupby("subject", sort=False):
        pieces.append(add_months_of_learning(part, grade="grade_used", subject=subj, gains=gains,
                                             months_per_year=months_per_year,
                                             columns=("contrast_estimate", "contrast_ci_lower", "contrast_ci_upper"),
                                             max_months=months_per_year))
    eff = pd.concat(pieces, ignore_index=True)
    eff["months_note"] = eff["months_note"].where(eff["contrast_note"] == "", eff["contrast_note"])
    return StudyModels(_models=models, _effects=eff, warnings=tuple(warns))
