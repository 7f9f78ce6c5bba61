"""The profiled (RE)ML likelihood of a nested mixed model and the optimizer chain that maximises and verifies it.

See :mod:`opportunity_research.stats.models` for the method (Woodbury identity level by level, per-size
sufficient statistics, L-BFGS-B and Powell chains polished by Newton, checks at the optimum)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, sparse

from .design import Design

__all__ = ["SINGULAR_TOL", "THETA_MAX", "Profile", "one_blas_thread", "optimize_profile"]


#: Relative SD (theta) below which a variance is called zero, as lme4's isSingular.
SINGULAR_TOL = 1e-4
#: Relative SD (theta) beyond which an optimum is dominated by round-off and rejected, not called better.
THETA_MAX = 1e4


class Profile:
    """Profiled (RE)ML deviance of a nested linear mixed model from group-sum slabs.

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> from opportunity_research.stats.design import build_design
    >>> prof = Profile(build_design(df, "y ~ x", ("school",), None, None, patsy.EvalEnvironment.capture()), reml=True)
    >>> prof.theta_names, bool(prof.deviance(np.array([0.6])) < prof.deviance(np.array([0.0])))
    (['school (intercept SD / residual SD)'], True)
    """

    def __init__(self, d: Design, reml: bool, scratch: dict | None = None):
        """``scratch``: a dict kept by a caller that fits several models of many rows, in which the (n x m) working
        array is kept for the next (the first writes of a fresh array of a million rows cost more than the writes)."""
        self.reml = reml
        n, p = d.X.shape
        q = d.U.shape[1]
        self.n, self.p, self.q = n, p, q
        # centre X (when it has an intercept) and y for conditioning; beta is mapped back with T
        maybe = np.flatnonzero(d.X[0] == 1.0) if n else range(p)  # the columns whose first row is 1
        icpt = [j for j in maybe if (d.X[:, j] == 1.0).all()]
        self.icpt = int(icpt[0]) if icpt else None
        self.xmeans = np.zeros(p)
        self.ymean = 0.0
        if self.icpt is not None:
            self.xmeans = d.X.mean(axis=0)
            self.xmeans[self.icpt] = 0.0
            self.ymean = float(d.y.mean())
        # A = [U, centred X, centred y], written once (U first, so rows 0..q-1 of any slab are the Z columns)
        self.m = m = q + p + 1
        A = np.empty((n, m)) if scratch is None else _scratch(scratch, n * m).reshape(n, m)
        A[:, :q] = d.U
        np.subtract(d.X, self.xmeans, out=A[:, q : q + p])  # (minus zeros without an intercept)
        np.subtract(d.y, self.ymean, out=A[:, -1])
        self.AtA = A.T @ A
        self.level_cols = d.level_cols
        self.K = len(d.codes)
        self.n_groups = d.n_groups
        inner = d.codes[-1]
        ind = sparse.csr_matrix((np.ones(n), (inner, np.arange(n))), shape=(d.n_groups[-1], n))
        # sufficient statistics per innermost group: the (m x q) slab of sums A' z over its rows
        self.P0 = np.stack(
            [ind @ A if k == 0 else ind @ (A * d.U[:, [k]]) for k in range(q)], axis=2
        )  # (G, m, q)
        del A
        self.agg = []  # agg[l] sums level-(l+1) slabs into level-l groups
        for level in range(self.K - 1):
            par = d.parents[level]
            self.agg.append(
                sparse.csr_matrix(
                    (np.ones(len(par)), (par, np.arange(len(par)))), shape=(d.n_groups[level], len(par))
                )
            )
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

    def _size_buckets(self, d: Design) -> dict | None:
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
            vb = v[order[bounds[b] : bounds[b + 1]]]
            S[b] = vb.T @ vb
        out = {"sizes": sizes, "count": np.bincount(inv, minlength=k).astype(float), "S": S}
        if self.K > 1:
            par = d.parents[-1]
            n_par = d.n_groups[-2]
            cell = sparse.csr_matrix((np.ones(G), (par * k + inv, np.arange(G))), shape=(n_par * k, G))
            # sums of P_g[:, 0] per (parent, size), laid out (parent * m, size) for one matrix-vector product
            out["R0"] = np.ascontiguousarray((cell @ v).reshape(n_par, k, self.m).transpose(0, 2, 1)).reshape(
                -1, k
            )
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
        XtX = Q[q : q + p, q : q + p]
        Xty = Q[q : q + p, -1]
        yty = Q[-1, -1]
        R = np.linalg.cholesky(XtX)
        beta = np.linalg.solve(R.T, np.linalg.solve(R, Xty))
        r2 = float(yty - Xty @ beta)
        return {
            "XtX": XtX,
            "beta": beta,
            "r2": r2,
            "logdet": logdet,
            "logdet_x": 2.0 * np.log(np.diag(R)).sum(),
        }

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
            return float(
                s["logdet"] + s["logdet_x"] + (n - p) * (1.0 + np.log(2.0 * np.pi * s["r2"] / (n - p)))
            )
        return float(s["logdet"] + n * (1.0 + np.log(2.0 * np.pi * s["r2"] / n)))


def _scratch(scratch: dict, size: int) -> np.ndarray:
    """The first ``size`` values of the float array ``scratch`` keeps (a larger one made and kept when it has none
    as large)."""
    if scratch.get("array") is None or scratch["array"].size < size:
        scratch["array"] = None  # the smaller one let go first
        scratch["array"] = np.empty(size)
    return scratch["array"][:size]


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
            H[a, b] = H[b, a] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * h[i] * h[j]
            )
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
        if np.isfinite(lower[i]) and 0 < x[i] - lower[i] < SINGULAR_TOL / 10:
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


def _verify(
    f, x: np.ndarray, lower: np.ndarray, fx: float, tol: float, names: Sequence[str]
) -> tuple[list[str], dict]:
    """Problems that prevent calling ``x`` a verified optimum (empty list = verified), and diagnostics."""
    problems = []
    idx = _free(x, lower, f, fx)
    diag: dict[str, Any] = {
        "free": idx.tolist(),
        "gradient": [],
        "newton_decrement": 0.0,
        "scaled_gradient": 0.0,
        "hessian_min_eigenvalue": np.nan,
    }
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
            problems.append(
                f"the deviance is flat to round-off in {', '.join(flat)} (its curvature is at noise "
                f"level): that variance is not identified by the data"
            )
        elif w.min() <= 1e-10 * max(1.0, abs(w).max()):
            problems.append(
                f"the Hessian of the deviance is not positive definite at the optimum (smallest "
                f"eigenvalue {w.min():.3g}): the variance parameters are not identified or the point "
                f"is not a minimum"
            )
        else:
            step = np.linalg.solve(H, g)
            dec = float(g @ step)
            diag["newton_decrement"] = dec
            diag["scaled_gradient"] = float(np.abs(step).max())
            if dec > tol:
                problems.append(
                    f"the gradient check failed: a Newton step would still lower the deviance by "
                    f"{dec / 2:.3g} (tolerance {tol / 2:.3g}); scaled gradient {np.abs(step).max():.3g}"
                )
    for i in range(len(x)):
        if i in set(idx.tolist()):
            continue
        e = np.zeros_like(x)
        e[i] = 1e-3
        if f(x + e) < fx - 1e-8 * max(1.0, abs(fx)):
            problems.append(f"boundary check failed for {names[i]}: moving it off zero improves the deviance")
    return problems, diag


def optimize_profile(prof: Profile, *, max_iter: int, tol: float, start: np.ndarray | None) -> dict:
    """Run the optimizer chain with BLAS on one thread.

    Every deviance evaluation works on small per-group arrays (sufficient statistics), where a multithreaded
    BLAS only adds synchronisation: on a busy 2-core machine it made each evaluation up to 15x slower.

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> from opportunity_research.stats.design import build_design
    >>> prof = Profile(build_design(df, "y ~ x", ("school",), None, None, patsy.EvalEnvironment.capture()), reml=True)
    >>> opt = optimize_profile(prof, max_iter=1000, tol=1e-6, start=None)
    >>> opt["problems"], round(float(opt["theta"][0]), 2)
    ([], 0.52)
    """
    with one_blas_thread():
        return _optimize_chain(prof, max_iter=max_iter, tol=tol, start=start)


def one_blas_thread():
    """A context in which BLAS and LAPACK run on one thread (``threadpoolctl``; a no-op without it).

    For work on small arrays (per-group sufficient statistics), where a multithreaded BLAS only adds
    synchronisation: on a busy 2-core machine a least-squares fit of 8,000 rows by 25 columns took 60x the CPU time
    on two threads that it takes on one. One thread may change a result in its last bits (a sum split differently
    among threads): use it where the numbers stay the same.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     beta = np.linalg.lstsq(np.eye(3), np.ones(3), rcond=None)[0]
    >>> beta.tolist()
    [1.0, 1.0, 1.0]
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its default thread count
        import contextlib

        return contextlib.nullcontext()
    import sys

    # the loaded libraries are found once (a scan of every shared object, ~4 ms a call in the analysis, twice per
    # growth model), again after any import, which may have loaded a BLAS
    if _BLAS[0] != len(sys.modules):
        _BLAS[:] = [len(sys.modules), ThreadpoolController()]
    return _BLAS[1].limit(limits=1, user_api="blas")


#: :func:`one_blas_thread`'s ``[len(sys.modules) when made, threadpoolctl.ThreadpoolController]``.
_BLAS: list = [-1, None]


def _optimize_chain(prof: Profile, *, max_iter: int, tol: float, start: np.ndarray | None) -> dict:
    f = prof.deviance
    lower = prof.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    x1 = prof.start.copy() if start is None else np.asarray(start, dtype=float)
    x2 = (
        np.where(prof.start == 1.0, 0.3, prof.start)
        if start is None
        else np.asarray(start, dtype=float) * 0.5
    )

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
        r1 = optimize.minimize(
            f,
            x1,
            jac=jac,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-8},
        )
        r2 = optimize.minimize(
            f, x2, method="Powell", bounds=bounds, options={"maxiter": max_iter, "xtol": 1e-5, "ftol": 1e-10}
        )
        for name, r in (("L-BFGS-B", r1), ("Powell", r2)):
            xr, fr = _newton(f, np.asarray(r.x, dtype=float), lower, max_steps=min(max_iter, 25))
            runs.append(
                {
                    "optimizer": name,
                    "theta": xr,
                    "deviance": fr,
                    "iterations": int(r.nit),
                    "optimizer_success": bool(r.success),
                    "message": str(r.message),
                }
            )
    else:
        runs.append(
            {
                "optimizer": "none",
                "theta": x1,
                "deviance": f(x1),
                "iterations": 0,
                "optimizer_success": False,
                "message": "max_iter=0: no optimization",
            }
        )
    # round-off guard: an optimum with a relative SD beyond THETA_MAX sits where the criterion is flat and
    # dominated by round-off (an unidentified variance); its "better" deviance is noise, so it is never chosen
    # over an optimum in the credible range
    for r in runs:
        r["roundoff"] = bool(np.any(np.abs(r["theta"]) > THETA_MAX))
    credible = [r for r in runs if not r["roundoff"]] or runs
    best = min(credible, key=lambda r: r["deviance"])
    x, fx = best["theta"], best["deviance"]
    problems, diag = _verify(f, x, lower, fx, tol, prof.theta_names)
    notes = []
    if best["roundoff"]:
        big = [nm for nm, t in zip(prof.theta_names, x) if abs(t) > THETA_MAX]
        problems.append(
            f"the optimum is dominated by round-off: {', '.join(big)} beyond {THETA_MAX:g} (a variance "
            f"the data cannot identify; drop that level)"
        )
    for r in runs:
        if r["roundoff"] and r is not best:
            notes.append(
                f"{r['optimizer']} stopped at relative SDs beyond {THETA_MAX:g} (deviance {r['deviance']:.6f}), "
                f"where the criterion is dominated by round-off; that point was rejected, not called better"
            )
    if len(runs) == 2:
        a, b = runs
        ddev = abs(a["deviance"] - b["deviance"])
        dtheta = float(np.abs(a["theta"] - b["theta"]).max())
        diag["chain_deviance_difference"] = ddev
        diag["chain_theta_difference"] = dtheta
        if (ddev > max(tol, 1e-9 * abs(fx)) or dtheta > 1e-3) and not (a["roundoff"] or b["roundoff"]):
            worse = a if a is not best else b
            notes.append(
                f"the optimizer chain disagreed: {worse['optimizer']} stopped at deviance "
                f"{worse['deviance']:.6f} vs {fx:.6f} for {best['optimizer']}; the better optimum was "
                f"checked and is reported"
            )
    diag["runs"] = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in runs]
    diag["n_evaluations"] = prof.n_evals
    diag["theta_names"] = list(prof.theta_names)
    return {
        "theta": x,
        "deviance": fx,
        "problems": problems,
        "notes": notes,
        "diagnostics": diag,
        "optimizer": "L-BFGS-B + Powell, Newton-polished" if max_iter > 0 else "none",
    }
