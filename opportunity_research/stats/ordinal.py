"""Gaps and group distributions from counts of students by ordered performance level (V statistic, HETOP).

Many districts, and every public state file, report only how many students of each group scored at each
performance level (below basic ... advanced). Two estimators turn such counts into comparable numbers:

* :func:`v_statistic` (Ho & Reardon 2012): the gap between two groups in pooled-SD units,
  ``V = sqrt(2) Phi^-1(AUC)``, which does not depend on where the cut scores fall and is unchanged by any
  monotone transformation of the score scale. It is estimated here by the binormal maximum-likelihood
  estimator (the probit-probit ROC fit): the two groups share the cut points of a latent scale on which the
  reference group ``b`` is ``N(0, 1)`` and group ``a`` is ``N(mu, sigma^2)``; then
  ``V = mu / sqrt((1 + sigma^2) / 2)``.
* :func:`hetop` (Reardon, Shear, Castellano & Ho 2017): every group's mean and SD from its counts by the
  heteroskedastic ordered probit, with cut points shared by all groups, on the scale whose population (all
  students of the groups, weighted by their numbers) has mean 0 and total SD 1 (as SEDA reports). A
  shared-SD option gives small groups one common SD (the "partially heteroskedastic" model), which keeps their
  means estimable.

Both maximise the grouped ordered-probit likelihood over groups x levels at once (numpy, analytic gradient,
``scipy.optimize.minimize``); standard errors come from the inverse Fisher information at the optimum and the
delta method. Levels with no student in any group are dropped (their cut points are not identified). A group
with every student in the lowest or the highest level has no finite mean: it is left out of the fit and
reported as missing with the reason.

References: Ho, A. D., & Reardon, S. F. (2012). Estimating achievement gaps from test scores reported in
ordinal "proficiency" categories. *Journal of Educational and Behavioral Statistics*, 37(4), 489-517.
Reardon, S. F., Shear, B. R., Castellano, K. E., & Ho, A. D. (2017). Using heteroskedastic ordered probit models
to recover moments of continuous test score distributions from coarsened data. *Journal of Educational and
Behavioral Statistics*, 42(1), 3-45.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

__all__ = ["HETOP_COLUMNS", "V_COLUMNS", "HetopResult", "hetop", "v_statistic"]

#: Columns of :func:`v_statistic`'s result.
V_COLUMNS = ("v", "std_error", "ci_lower", "ci_upper", "n_a", "n_b", "levels_used", "converged", "note")
#: Columns of :attr:`HetopResult.groups`.
HETOP_COLUMNS = (
    "group",
    "n",
    "mean",
    "mean_se",
    "mean_ci_lower",
    "mean_ci_upper",
    "sd",
    "sd_se",
    "sd_ci_lower",
    "sd_ci_upper",
    "sd_shared",
    "note",
)
_FLOOR = 1e-300
#: The standard normal density's constant, as ``scipy.stats.norm.pdf`` divides by it.
_PDF_C = np.sqrt(2 * np.pi)


# ------------------------------------------------------------------------------------------------------------
# the grouped ordered-probit likelihood
# ------------------------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Which free parameter each group's mean and log-SD is (-1: fixed at 0)."""

    n_cuts: int
    mu_index: np.ndarray  # (G,) index among the free means, -1 for the reference group
    ls_index: np.ndarray  # (G,) index among the free log-SDs, -1 for the reference SD class
    n_mu: int
    n_ls: int

    @property
    def size(self) -> int:
        return self.n_cuts + self.n_mu + self.n_ls


def _layout(n_groups: int, n_levels: int, shared: np.ndarray, reference: int) -> _Layout:
    mu_index = np.full(n_groups, -1)
    others = np.flatnonzero(np.arange(n_groups) != reference)
    mu_index[others] = np.arange(len(others))
    # SD classes: every heteroskedastic group its own class, all shared groups one class
    cls = np.where(shared, -1, np.arange(n_groups))
    _, cls = np.unique(cls, return_inverse=True)
    ref_cls = cls[reference]
    free = np.unique(cls[cls != ref_cls])
    ls_index = np.full(n_groups, -1)
    pos = np.searchsorted(free, cls)
    ls_index[cls != ref_cls] = pos[cls != ref_cls]
    return _Layout(n_levels - 1, mu_index, ls_index, len(others), len(free))


def _unpack(theta: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cuts = theta[: lay.n_cuts]
    mu_free = theta[lay.n_cuts : lay.n_cuts + lay.n_mu]
    ls_free = theta[lay.n_cuts + lay.n_mu :]
    mu = np.where(lay.mu_index >= 0, mu_free[np.maximum(lay.mu_index, 0)] if lay.n_mu else 0.0, 0.0)
    ls = np.where(lay.ls_index >= 0, ls_free[np.maximum(lay.ls_index, 0)] if lay.n_ls else 0.0, 0.0)
    return cuts, mu, ls


def _pieces(cuts: np.ndarray, mu: np.ndarray, ls: np.ndarray):
    """Level probabilities P (G x K) and the padded density terms of their derivatives."""
    sigma = np.exp(ls)
    z = (cuts[None, :] - mu[:, None]) / sigma[:, None]
    G = len(mu)
    inf = np.full((G, 1), np.inf)
    lo, hi = np.hstack([-inf, z]), np.hstack([z, inf])
    # differences of the upper tail are the accurate ones above the median
    P = np.where(lo > 0, special.ndtr(-lo) - special.ndtr(-hi), special.ndtr(hi) - special.ndtr(lo))
    P = np.maximum(P, 0.0)
    # stats.norm.pdf(z), to the bit (its expression), without its argument checks on every call
    phi = np.exp(-(z**2) / 2.0) / _PDF_C
    zero = np.zeros((G, 1))
    phiP = np.hstack([zero, phi, zero])
    zphiP = np.hstack([zero, z * phi, zero])
    return P, phi, phiP, zphiP, sigma


def _loglik_grad(theta: np.ndarray, counts: np.ndarray, lay: _Layout) -> tuple[float, np.ndarray]:
    cuts, mu, ls = _unpack(theta, lay)
    if np.any(np.diff(cuts) <= 0):
        return -np.inf, np.zeros_like(theta)
    P, phi, phiP, zphiP, sigma = _pieces(cuts, mu, ls)
    pos = counts > 0
    ll = float(np.sum(counts[pos] * np.log(np.maximum(P[pos], _FLOOR))))
    w = np.where(pos, counts / np.maximum(P, _FLOOR), 0.0)
    g_cut = np.sum(phi / sigma[:, None] * (w[:, :-1] - w[:, 1:]), axis=0)
    g_mu_all = np.sum(w * -(phiP[:, 1:] - phiP[:, :-1]), axis=1) / sigma
    g_ls_all = np.sum(w * -(zphiP[:, 1:] - zphiP[:, :-1]), axis=1)
    m, s = lay.mu_index >= 0, lay.ls_index >= 0
    g_mu = np.bincount(lay.mu_index[m], weights=g_mu_all[m], minlength=lay.n_mu)
    g_ls = np.bincount(lay.ls_index[s], weights=g_ls_all[s], minlength=lay.n_ls)
    return ll, np.concatenate([g_cut, g_mu, g_ls])


def _information(theta: np.ndarray, counts: np.ndarray, lay: _Layout) -> np.ndarray:
    """Expected (Fisher) information of the natural parameters (cuts, free means, free log-SDs)."""
    cuts, mu, ls = _unpack(theta, lay)
    P, phi, phiP, zphiP, sigma = _pieces(cuts, mu, ls)
    G, K = P.shape
    J = np.zeros((G, K, lay.size))
    idx = np.arange(K - 1)
    J[:, idx, idx] += phi / sigma[:, None]  # level j's upper cut is cut j
    J[:, idx + 1, idx] -= phi / sigma[:, None]  # level j+1's lower cut is cut j
    g = np.arange(G)
    m = lay.mu_index >= 0
    J[g[m], :, lay.n_cuts + lay.mu_index[m]] = (-(phiP[:, 1:] - phiP[:, :-1]) / sigma[:, None])[m]
    s = lay.ls_index >= 0
    J[g[s], :, lay.n_cuts + lay.n_mu + lay.ls_index[s]] = (-(zphiP[:, 1:] - zphiP[:, :-1]))[s]
    weight = counts.sum(axis=1)[:, None] / np.maximum(P, _FLOOR)
    M = (J * np.sqrt(weight)[:, :, None]).reshape(G * K, lay.size)
    return M.T @ M


def _to_opt(theta: np.ndarray, n_cuts: int) -> np.ndarray:
    c = theta[:n_cuts]
    return np.concatenate([[c[0]], np.log(np.diff(c)), theta[n_cuts:]])


def _from_opt(u: np.ndarray, n_cuts: int) -> np.ndarray:
    c = u[0] + np.concatenate([[0.0], np.cumsum(np.exp(u[1:n_cuts]))])
    return np.concatenate([c, u[n_cuts:]])


def _start(counts: np.ndarray, lay: _Layout, reference: int) -> np.ndarray:
    """Cut points from the reference group's (pooled where empty) cumulative shares; means by probit shifts."""
    K = counts.shape[1]

    def cum_probit(c):
        cum = np.cumsum(c, axis=-1)[..., :-1] / np.maximum(c.sum(axis=-1, keepdims=True), 1)
        return stats.norm.ppf(np.clip(cum, 0.02, 0.98))

    pooled = cum_probit(counts.sum(axis=0))
    ref = cum_probit(counts[reference])
    cuts = np.where(np.isfinite(ref), ref, pooled)
    cuts = np.maximum.accumulate(cuts + 1e-3 * np.arange(K - 1))
    cuts = cuts + 0.05 * np.arange(K - 1)  # strictly increasing
    shift = (cuts[None, :] - cum_probit(counts)).mean(axis=1)
    theta = np.zeros(lay.size)
    theta[: lay.n_cuts] = cuts - shift[reference]
    m = lay.mu_index >= 0
    theta[lay.n_cuts + lay.mu_index[m]] = (shift - shift[reference])[m]
    return theta


def _fit(counts: np.ndarray, shared: np.ndarray, reference: int) -> tuple[np.ndarray, _Layout, bool, float]:
    lay = _layout(counts.shape[0], counts.shape[1], shared, reference)
    n_total = counts.sum()

    def f(u):
        theta = _from_opt(u, lay.n_cuts)
        ll, g = _loglik_grad(theta, counts, lay)
        c = theta[: lay.n_cuts]
        gu = g.copy()
        gc = g[: lay.n_cuts]
        tail = np.cumsum(gc[::-1])[::-1]  # dL/dc summed over cuts j >= i
        gu[0] = gc.sum()
        gu[1 : lay.n_cuts] = tail[1:] * np.diff(c)
        return -ll / n_total, -gu / n_total

    theta0 = _start(counts, lay, reference)
    theta, ok = _scoring(theta0, counts, lay)
    if not ok:  # Fisher scoring failed to settle: quasi-Newton on the ordered-cut parameterisation
        res = optimize.minimize(
            f,
            _to_opt(theta0, lay.n_cuts),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-10},
        )
        theta = _from_opt(res.x, lay.n_cuts)
    ll, g = _loglik_grad(theta, counts, lay)
    converged = bool(
        np.isfinite(ll)
        and np.max(np.abs(g)) / max(n_total, 1) < 1e-5
        and np.all(np.abs(theta[lay.n_cuts :]) < 50)
    )
    return theta, lay, converged, ll


def _scoring(
    theta: np.ndarray, counts: np.ndarray, lay: _Layout, max_iter: int = 100
) -> tuple[np.ndarray, bool]:
    """Fisher scoring with step halving: a few iterations for these smooth, nearly quadratic likelihoods."""
    ll, g = _loglik_grad(theta, counts, lay)
    for _ in range(max_iter):
        info = _information(theta, counts, lay)
        try:
            step = np.linalg.solve(info + 1e-10 * np.eye(lay.size) * np.trace(info) / lay.size, g)
        except np.linalg.LinAlgError:
            return theta, False
        decrement = float(g @ step)
        if decrement < 1e-12:
            return theta, bool(np.isfinite(ll))
        t = 1.0
        while t > 1e-8:
            cand = theta + t * step
            ll_c, g_c = _loglik_grad(cand, counts, lay)
            if np.isfinite(ll_c) and ll_c >= ll - 1e-12 * abs(ll):
                break
            t /= 2
        else:
            return theta, False
        theta, ll, g = cand, ll_c, g_c
    return theta, False


def _clean_counts(counts, what: str) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    if c.ndim != 2 or c.shape[1] < 2:
        raise ValueError(f"{what}: give counts over at least two ordered levels (got shape {c.shape})")
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError(f"{what}: counts must be finite and non-negative (got {c.tolist()})")
    return c


# ------------------------------------------------------------------------------------------------------------
# V
# ------------------------------------------------------------------------------------------------------------
def v_statistic(counts_a, counts_b, *, level: float = 0.95) -> dict:
    """Ho & Reardon's V: the gap between group ``a`` and group ``b`` in pooled-SD units, from level counts.

    Binormal maximum likelihood: both groups share the cut points of a latent scale on which ``b`` is
    ``N(0, 1)`` and ``a`` is ``N(mu, sigma^2)``; ``V = mu / sqrt((1 + sigma^2) / 2) = sqrt(2) Phi^-1(AUC)``.
    The standard error is the delta method on the inverse Fisher information of ``(cuts, mu, log sigma)``.
    Only the order of the levels matters, so ``V`` is the same under any monotone transformation of the scale.
    With only two levels in use the variances cannot be told apart and are assumed equal (``note`` says so).

    Parameters
    ----------
    counts_a, counts_b
        Numbers of students of each group at each level, lowest level first (same levels for both).
    level
        Confidence level of the interval.

    Returns
    -------
    dict
        ``v`` (positive when ``a`` scores higher), ``std_error``, ``ci_lower``, ``ci_upper``, ``n_a``, ``n_b``,
        ``levels_used`` (levels with students), ``converged``, ``note`` (empty, or why ``v`` is missing or what was
        assumed).

    Examples
    --------
    >>> from scipy.stats import norm
    >>> cuts = np.array([-0.5, 0.3, 1.2])
    >>> pa = np.diff(np.r_[0, norm.cdf(cuts, 0.5, 1.2), 1]); pb = np.diff(np.r_[0, norm.cdf(cuts), 1])
    >>> r = v_statistic(1e6 * pa, 1e6 * pb)
    >>> round(r["v"], 4), round(float(0.5 / np.sqrt((1.2**2 + 1) / 2)), 4)
    (0.4527, 0.4527)
    >>> r = v_statistic([10, 30, 40, 20], [25, 35, 30, 10])
    >>> round(r["v"], 3), round(r["ci_lower"], 3), round(r["ci_upper"], 3)
    (0.518, 0.218, 0.818)
    """
    c = _clean_counts(
        np.vstack([np.asarray(counts_b, dtype=float), np.asarray(counts_a, dtype=float)]), "v_statistic"
    )
    n_b, n_a = c.sum(axis=1)
    out = {
        "v": np.nan,
        "std_error": np.nan,
        "ci_lower": np.nan,
        "ci_upper": np.nan,
        "n_a": float(n_a),
        "n_b": float(n_b),
        "levels_used": 0,
        "converged": False,
        "note": "",
    }
    c = c[:, c.sum(axis=0) > 0]
    out["levels_used"] = int(c.shape[1])
    if min(n_a, n_b) == 0:
        out["note"] = "a group has no students"
        return out
    used = (c > 0).sum(axis=1)
    extreme = [(row[0] == row.sum()) or (row[-1] == row.sum()) for row in c]
    if c.shape[1] < 2 or (used == 1).all() or (any(extreme) and c.shape[1] == 2 and (used == 1).any()):
        out["note"] = "every student of a group is in one level: no gap can be estimated"
        return out
    if any(e and u == 1 for e, u in zip(extreme, used)):
        out["note"] = "every student of a group is in the lowest or the highest level: the gap is not finite"
        return out
    equal = c.shape[1] == 2
    theta, lay, ok, _ = _fit(c, np.array([equal, equal]), reference=0)
    mu = theta[lay.n_cuts]
    ls = theta[lay.n_cuts + 1] if lay.n_ls else 0.0
    s2 = np.exp(2 * ls)
    a = (1 + s2) / 2
    v = mu / np.sqrt(a)
    info = _information(theta, c, lay)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
    grad = np.zeros(lay.size)
    grad[lay.n_cuts] = 1 / np.sqrt(a)
    if lay.n_ls:
        grad[lay.n_cuts + 1] = -0.5 * mu * a**-1.5 * s2
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    z = stats.norm.ppf(0.5 + level / 2)
    out.update(
        v=float(v),
        std_error=se,
        ci_lower=float(v - z * se),
        ci_upper=float(v + z * se),
        converged=ok,
        note="two levels: equal variances assumed" if equal else "",
    )
    if not ok:
        out["note"] = "the maximum-likelihood fit did not converge"
    return out


# ------------------------------------------------------------------------------------------------------------
# HETOP
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HetopResult:
    """Result of :func:`hetop`.

    Attributes
    ----------
    groups
        One row per group (:data:`HETOP_COLUMNS`): ``group``, ``n``, ``mean``, ``mean_se``, ``mean_ci_lower``,
        ``mean_ci_upper``, ``sd``, ``sd_se``, ``sd_ci_lower``, ``sd_ci_upper`` (interval on the log scale),
        ``sd_shared`` (the group has the common SD), ``note`` (why an estimate is missing, if so). Means and SDs
        are on the scale whose population (the fitted groups' students) has mean 0 and total SD 1.
    cut_points
        ``cut`` (1 = between the lowest two levels), ``estimate``, ``std_error`` on the same scale.
    converged
        Whether the optimizer reached a verified maximum.
    log_likelihood
        At the optimum.

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame([[30, 40, 20, 10], [10, 30, 40, 20]], index=["a", "b"])
    >>> fit = hetop(data, shared_sd=True)
    >>> isinstance(fit, HetopResult), fit.converged, list(fit.cut_points["cut"])
    (True, True, [1, 2, 3])
    """

    groups: pd.DataFrame
    cut_points: pd.DataFrame
    converged: bool
    log_likelihood: float


def hetop(data, *, shared_sd=False, level: float = 0.95) -> HetopResult:
    """Group means and SDs from counts by ordered level: the heteroskedastic ordered probit (HETOP).

    Every group ``g`` is ``N(mu_g, sigma_g^2)`` on a latent scale cut into the levels at cut points shared by
    all groups; the parameters maximise the multinomial likelihood of the counts and are reported on the scale
    whose population (all fitted students, each group weighted by its number) has mean 0 and total SD 1
    (Reardon, Shear, Castellano & Ho 2017). Standard errors: inverse Fisher information of the identified
    parameterisation (one group at mean 0 and SD 1), carried to the standardized scale by the delta method,
    with the group shares treated as fixed.

    Parameters
    ----------
    data
        Counts, one row per group and one column per level, lowest level first: a DataFrame (its index names
        the groups) or a 2-D array.
    shared_sd
        ``False`` (each group its own SD), ``True`` (one SD for all: the homoskedastic ordered probit) or a
        boolean per group: those groups share one SD (for small groups). A group with students in fewer than
        three levels always gets the shared SD (its own SD is not identified).
    level
        Confidence level of the intervals.

    Returns
    -------
    HetopResult

    Raises
    ------
    ValueError
        Counts that are negative or not finite, fewer than two groups, or fewer than three levels in use without
        a shared SD.

    Examples
    --------
    >>> from scipy.stats import norm
    >>> cuts = np.array([-1.0, 0.0, 1.0])
    >>> def counts(m, s, n):
    ...     return n * np.diff(np.r_[0, norm.cdf(cuts, m, s), 1])
    >>> data = pd.DataFrame([counts(-0.4, 0.9, 2e5), counts(0.2, 1.0, 2e5), counts(0.6, 1.2, 1e5)],
    ...                     index=["a", "b", "c"])
    >>> fit = hetop(data)  # truth: population mean 0.04, SD 1.078, so a is (-0.4 - 0.04) / 1.078 = -0.408
    >>> fit.groups[["group", "mean", "sd"]].round(3).to_string(index=False).split("\\n")[1]
    '    a -0.408 0.835'
    """
    if isinstance(data, pd.DataFrame):
        names = list(data.index)
        c = _clean_counts(data.to_numpy(dtype=float), "hetop")
    else:
        c = _clean_counts(data, "hetop")
        names = list(range(c.shape[0]))
    G = c.shape[0]
    shared = np.broadcast_to(np.asarray(shared_sd, dtype=bool), (G,)).copy()
    n = c.sum(axis=1)
    out = pd.DataFrame({"group": names, "n": n})
    for col in HETOP_COLUMNS[2:]:
        out[col] = np.nan
    out["sd_shared"] = shared
    out["note"] = ""
    c_used = c[:, c.sum(axis=0) > 0]
    used = (c_used > 0).sum(axis=1)
    empty = n == 0
    extreme = ~empty & ((c_used[:, 0] == n) | (c_used[:, -1] == n))
    out.loc[empty, "note"] = "no students"
    out.loc[extreme, "note"] = "every student in the lowest or the highest level: mean not finite"
    keep = ~empty & ~extreme
    if keep.sum() < 2:
        raise ValueError(
            f"hetop: at least two groups with students outside one extreme level are needed "
            f"(got {int(keep.sum())})"
        )
    ck = c_used[keep]
    ck = ck[:, ck.sum(axis=0) > 0]
    K = ck.shape[1]
    sh = shared[keep] | (used[keep] < 3)
    if K < 3 and not sh.all():
        raise ValueError(
            f"hetop: only {K} levels have students; group SDs need at least three levels. Use shared_sd=True"
        )
    ref = int(np.argmax(np.where(~sh, n[keep], -1))) if (~sh).any() else int(np.argmax(n[keep]))
    theta, lay, ok, ll = _fit(ck, sh, reference=ref)
    info = _information(theta, ck, lay)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(info)
    w = n[keep] / n[keep].sum()

    def standardized(th):
        cuts, mu, ls = _unpack(th, lay)
        sig = np.exp(ls)
        m = w @ mu
        s = np.sqrt(w @ (sig**2 + mu**2) - m**2)
        return np.concatenate([(mu - m) / s, np.log(sig / s), (cuts - m) / s])

    est = standardized(theta)
    h = 1e-6
    jac = np.empty((len(est), lay.size))
    for i in range(lay.size):  # parameters, not students or groups' data: a handful of columns per group
        e = np.zeros(lay.size)
        e[i] = h
        jac[:, i] = (standardized(theta + e) - standardized(theta - e)) / (2 * h)
    var = np.einsum("ij,jk,ik->i", jac, cov, jac)
    se = np.sqrt(np.maximum(var, 0))
    Gk = int(keep.sum())
    z = stats.norm.ppf(0.5 + level / 2)
    mu, mu_se = est[:Gk], se[:Gk]
    lsd, lsd_se = est[Gk : 2 * Gk], se[Gk : 2 * Gk]
    sd = np.exp(lsd)
    out.loc[keep, "mean"] = mu
    out.loc[keep, "mean_se"] = mu_se
    out.loc[keep, "mean_ci_lower"] = mu - z * mu_se
    out.loc[keep, "mean_ci_upper"] = mu + z * mu_se
    out.loc[keep, "sd"] = sd
    out.loc[keep, "sd_se"] = sd * lsd_se
    out.loc[keep, "sd_ci_lower"] = np.exp(lsd - z * lsd_se)
    out.loc[keep, "sd_ci_upper"] = np.exp(lsd + z * lsd_se)
    out.loc[keep, "sd_shared"] = sh
    cuts = pd.DataFrame({"cut": np.arange(1, K), "estimate": est[2 * Gk :], "std_error": se[2 * Gk :]})
    return HetopResult(groups=out[list(HETOP_COLUMNS)], cut_points=cuts, converged=ok, log_likelihood=ll)
