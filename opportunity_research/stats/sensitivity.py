"""Sensitivity of an estimate to unmeasured confounding: partial R2, robustness values, bounds, E-values.

Pure functions of summary statistics (a t value, its degrees of freedom, partial R2 values), so they apply to
any linear estimate whose t value and residual degrees of freedom are known, including a contrast from a
multilevel model once the degrees of freedom are chosen for the level at which the treatment varies (see
:func:`opportunity_research.study.growth.fit_study_models`, which uses the number of classrooms minus the
between-classroom parameters).

Definitions follow Cinelli & Hazlett (2020), "Making sense of sensitivity: extending omitted variable bias",
*Journal of the Royal Statistical Society B* 82(1), 39-67, and their R package ``sensemakr`` (whose Darfur
example gives this module's reference values), and VanderWeele & Ding (2017), "Sensitivity analysis in
observational research: introducing the E-value", *Annals of Internal Medicine* 167(4), 268-274, with the
approximate conversion of a standardized mean difference to a risk ratio RR = exp(0.91 d) (VanderWeele 2017,
Hasselblad & Hedges 1995).

Interpretation: the robustness value ``RV_q`` is the partial R2 that an unmeasured confounder must have with
*both* the treatment and the outcome (after the observed covariates) to reduce the estimate by ``100 q``
percent; ``RV_{q, alpha}`` is the partial R2 that would make the reduced estimate no longer significant at
level ``alpha``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "adjusted_estimate",
    "covariate_partial_r2",
    "e_value",
    "ovb_bounds",
    "partial_r2",
    "risk_ratio_from_d",
    "robustness_value",
]


def _check_dof(dof: float) -> float:
    if not np.all(np.asarray(dof, dtype=float) > 0):
        raise ValueError(f"dof must be positive (got {dof!r})")
    return dof


def partial_r2(t, dof):
    """Partial R2 of the treatment with the outcome, from its t value: ``t^2 / (t^2 + dof)``.

    Parameters
    ----------
    t
        t value(s) of the estimate (scalar or array).
    dof
        Residual degrees of freedom.

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(partial_r2(4.18445, 783), 6)  # Cinelli & Hazlett's Darfur example
    0.021873
    """
    _check_dof(dof)
    t = np.asarray(t, dtype=float)
    out = t**2 / (t**2 + np.asarray(dof, dtype=float))
    return float(out) if out.ndim == 0 else out


def robustness_value(t, dof, *, q: float = 1.0, alpha: float | None = None):
    """Robustness value ``RV_q`` (or ``RV_{q, alpha}``) of an estimate (Cinelli & Hazlett 2020).

    ``RV_q`` is the smallest partial R2 that an unmeasured confounder must have with both the treatment and the
    outcome to reduce the estimate by ``100 q`` percent: with ``f_q = q |t| / sqrt(dof)``,
    ``RV_q = (sqrt(f_q^4 + 4 f_q^2) - f_q^2) / 2``.

    With ``alpha``, the confounder need only bring the adjusted estimate to where a test at level ``alpha``
    would no longer reject ``(1 - q)`` times the estimate. With ``f_crit = |t*_{alpha/2, dof-1}| / sqrt(dof - 1)``
    and ``f = f_q - f_crit``:

    * ``f <= 0`` (the estimate is already not significant): ``RV = 0``;
    * ``f_q > 1 / f_crit`` (a confounder weakly associated with the outcome suffices, the bound on the
      treatment binds): ``RV = (f_q^2 - f_crit^2) / (1 + f_q^2)`` (the extreme robustness value);
    * otherwise ``RV = (sqrt(f^4 + 4 f^2) - f^2) / 2``.

    These are ``sensemakr``'s ``robustness_value`` (its ``alpha = 1`` is this function's ``alpha=None``).

    Parameters
    ----------
    t
        t value(s) of the estimate (scalar or array).
    dof
        Residual degrees of freedom of the model (must exceed 1 with ``alpha``).
    q
        Share of the estimate the confounder must remove (1 = bring it to zero).
    alpha
        Significance level, or ``None`` for the point-estimate version.

    Returns
    -------
    float or numpy.ndarray
        Between 0 and 1.

    Examples
    --------
    >>> round(robustness_value(4.18445, 783), 5), round(robustness_value(4.18445, 783, alpha=0.05), 5)
    (0.13878, 0.07626)
    >>> robustness_value(1.5, 783, alpha=0.05)  # not significant to begin with
    0.0
    >>> round(robustness_value(-4.18445, 783, q=0.5), 5)  # halving the estimate takes less
    0.07203
    """
    _check_dof(dof)
    if q <= 0:
        raise ValueError(f"q must be positive (got {q!r})")
    t = np.asarray(t, dtype=float)
    dof = np.asarray(dof, dtype=float)
    fq = q * np.abs(t) / np.sqrt(dof)
    if alpha is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            rv = np.where(fq > 0, 2.0 / (1.0 + np.sqrt(1.0 + 4.0 / fq**2)), 0.0)
    else:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1 (got {alpha!r})")
        if np.any(dof <= 1):
            raise ValueError(
                f"dof must exceed 1 for a robustness value at a significance level (got {dof!r})"
            )
        f_crit = np.abs(stats.t.ppf(alpha / 2, dof - 1)) / np.sqrt(dof - 1)
        f = fq - f_crit
        with np.errstate(divide="ignore", invalid="ignore"):
            binding = 2.0 / (1.0 + np.sqrt(1.0 + 4.0 / f**2))
        extreme = (fq**2 - f_crit**2) / (1.0 + fq**2)
        rv = np.where(f <= 0, 0.0, np.where(fq > 1.0 / f_crit, extreme, binding))
    rv = np.where(np.isnan(t), np.nan, rv)
    return float(rv) if rv.ndim == 0 else rv


def _bias(se, dof, r2dz_x, r2yz_dx):
    return np.sqrt(r2yz_dx * r2dz_x / (1 - r2dz_x)) * se * np.sqrt(dof)


def adjusted_estimate(
    estimate: float, se: float, dof: float, *, r2dz_x, r2yz_dx, alpha: float = 0.05
) -> dict:
    """An estimate, its standard error, t value and interval after adjusting for a confounder of given strength.

    The confounder ``Z`` explains ``r2dz_x`` of the treatment's and ``r2yz_dx`` of the outcome's residual
    variance; it is assumed to move the estimate towards zero (Cinelli & Hazlett 2020, eq. 11-12).

    Parameters
    ----------
    estimate, se, dof
        The observed estimate, its standard error and residual degrees of freedom.
    r2dz_x, r2yz_dx
        Partial R2 of the confounder with the treatment and with the outcome (scalars or arrays).
    alpha
        Level of the adjusted interval (t with ``dof`` degrees of freedom, as ``sensemakr::ovb_bounds``).

    Returns
    -------
    dict
        ``estimate``, ``std_error``, ``t``, ``ci_lower``, ``ci_upper`` (floats or arrays).

    Examples
    --------
    >>> r = adjusted_estimate(0.09731582, 0.02325654, 783, r2dz_x=0.00916428667504862, r2yz_dx=0.12464092303637)
    >>> round(r["estimate"], 4), round(r["std_error"], 4), round(r["t"], 3)
    (0.0752, 0.0219, 3.439)
    """
    _check_dof(dof)
    r2dz_x, r2yz_dx = np.asarray(r2dz_x, dtype=float), np.asarray(r2yz_dx, dtype=float)
    if np.any((r2dz_x < 0) | (r2dz_x >= 1) | (r2yz_dx < 0) | (r2yz_dx > 1)):
        raise ValueError("partial R2 values must lie in [0, 1) for the treatment and [0, 1] for the outcome")
    sign = -1.0 if estimate < 0 else 1.0
    est = sign * (abs(estimate) - _bias(se, dof, r2dz_x, r2yz_dx))
    new_se = np.sqrt(1 - r2yz_dx) / np.sqrt(1 - r2dz_x) * se * np.sqrt(dof / (dof - 1))
    crit = stats.t.ppf(1 - alpha / 2, dof)
    with np.errstate(divide="ignore", invalid="ignore"):  # a confounder explaining all of the outcome: se 0
        t_new = est / new_se
    out = {
        "estimate": est,
        "std_error": new_se,
        "t": t_new,
        "ci_lower": est - crit * new_se,
        "ci_upper": est + crit * new_se,
    }
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in out.items()}


def ovb_bounds(r2dxj_x, r2yxj_dx, *, kd=1.0, ky=None) -> dict:
    """Bounds on a confounder ``kd`` (``ky``) times as strong as an observed covariate (Cinelli & Hazlett 2020).

    An unmeasured confounder ``Z`` that explains ``kd`` times as much of the treatment, and ``ky`` times as much
    of the outcome, as the observed covariate ``X_j`` does (both after the other covariates) has at most

    * ``r2dz_x = kd * r2dxj_x / (1 - r2dxj_x)`` with the treatment, and
    * ``r2yz_dx = ((sqrt(ky) + sqrt(eta)) / sqrt(1 - eta))^2 * r2yxj_dx / (1 - r2yxj_dx)`` with the outcome,
      where ``eta = kd r2dxj_x^2 / ((1 - kd r2dxj_x)(1 - r2dxj_x))`` (their footnote 10), capped at 1.

    Parameters
    ----------
    r2dxj_x
        Partial R2 of the covariate with the treatment, given the other covariates.
    r2yxj_dx
        Partial R2 of the covariate with the outcome, given the treatment and the other covariates.
    kd, ky
        Multiples (``ky`` defaults to ``kd``); scalars or arrays.

    Returns
    -------
    dict
        ``r2dz_x``, ``r2yz_dx`` (floats or arrays); feed them to :func:`adjusted_estimate`.

    Raises
    ------
    ValueError
        If ``kd`` is so large that the implied partial R2 with the treatment reaches 1.

    Examples
    --------
    The Darfur example's "female" benchmark (``sensemakr::ovb_bounds``: 0.00916, 0.12464 for 1x):

    >>> b = ovb_bounds(0.009081065190328759, 0.10903391542784283, kd=[1, 2, 3])
    >>> [round(float(x), 4) for x in b["r2dz_x"]], [round(float(x), 4) for x in b["r2yz_dx"]]
    ([0.0092, 0.0183, 0.0275], [0.1246, 0.2493, 0.3741])
    """
    ky = kd if ky is None else ky
    r2d, r2y = np.asarray(r2dxj_x, dtype=float), np.asarray(r2yxj_dx, dtype=float)
    kd, ky = np.asarray(kd, dtype=float), np.asarray(ky, dtype=float)
    r2dz = kd * r2d / (1 - r2d)
    if np.any(r2dz >= 1):
        raise ValueError(f"kd = {kd} implies a partial R2 with the treatment of at least 1; use a smaller kd")
    eta = kd * r2d**2 / ((1 - kd * r2d) * (1 - r2d))
    if np.any(eta >= 1):
        raise ValueError(f"kd = {kd} is impossible for this covariate; use a smaller kd")
    r2yz = np.minimum(((np.sqrt(ky) + np.sqrt(eta)) / np.sqrt(1 - eta)) ** 2 * r2y / (1 - r2y), 1.0)
    return {
        "r2dz_x": float(r2dz) if r2dz.ndim == 0 else r2dz,
        "r2yz_dx": float(r2yz) if r2yz.ndim == 0 else r2yz,
    }


def risk_ratio_from_d(d):
    """Approximate risk ratio of a standardized mean difference ``d``: ``exp(0.91 d)`` (VanderWeele 2017).

    Examples
    --------
    >>> round(risk_ratio_from_d(0.2), 4)
    1.1996
    """
    out = np.exp(0.91 * np.asarray(d, dtype=float))
    return float(out) if out.ndim == 0 else out


def e_value(d=None, *, rr=None):
    """E-value (VanderWeele & Ding 2017) of a standardized effect ``d`` (or of a risk ratio ``rr``).

    The minimum strength of association, on the risk-ratio scale, that an unmeasured confounder would need with
    both the treatment and the outcome to explain the association away: ``E = RR + sqrt(RR (RR - 1))``, with
    ``RR = exp(0.91 d)`` and ``1 / RR`` used when ``RR < 1``. Apply it to the interval limit closer to zero
    to get the E-value for the interval (1 when the interval includes zero).

    Parameters
    ----------
    d
        Standardized mean difference(s) (effect in SD units).
    rr
        A risk ratio instead of ``d``.

    Returns
    -------
    float or numpy.ndarray
        At least 1.

    Examples
    --------
    >>> round(e_value(0.2), 4), round(e_value(-0.2), 4), e_value(0.0)
    (1.689, 1.689, 1.0)
    >>> round(e_value(rr=3.9), 2)  # VanderWeele & Ding's example
    7.26
    """
    if (d is None) == (rr is None):
        raise ValueError("give exactly one of d and rr")
    r = risk_ratio_from_d(d) if rr is None else np.asarray(rr, dtype=float)
    r = np.asarray(r, dtype=float)
    if np.any(r <= 0):
        raise ValueError(f"a risk ratio must be positive (got {rr!r})")
    r = np.where(r < 1, 1 / r, r)
    out = r + np.sqrt(r * (r - 1))
    return float(out) if out.ndim == 0 else out


def _t_values(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, int]:
    """OLS t values of every column of ``X`` (classical standard errors) and the residual degrees of freedom."""
    # lstsq's rank uses matrix_rank's tolerance (singular values above max(M, N) * eps * the largest)
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    dof = X.shape[0] - int(rank)
    resid = y - X @ beta
    s2 = resid @ resid / dof
    cov = s2 * np.linalg.pinv(X.T @ X)
    return beta / np.sqrt(np.diag(cov)), dof


def covariate_partial_r2(
    data: pd.DataFrame, *, outcome: str, treatment: str, covariates, controls=()
) -> pd.DataFrame:
    """Partial R2 of each observed covariate with the treatment and with the outcome, for :func:`ovb_bounds`.

    As ``sensemakr``: the treatment is regressed (OLS, with an intercept) on every covariate and control; a
    covariate's partial R2 with the treatment is ``partial_r2`` of its t value there, and its partial R2 with the
    outcome is ``partial_r2`` of its t value in the outcome regression that adds the treatment.

    Parameters
    ----------
    data
        One row per unit (e.g. per classroom), complete rows only are used.
    outcome, treatment
        Column names.
    covariates
        The candidate benchmarks (column names).
    controls
        Further regressors (column names), not benchmarks.

    Returns
    -------
    pandas.DataFrame
        ``covariate``, ``r2_treatment`` (``R2_{D~X_j|X_-j}``), ``r2_outcome`` (``R2_{Y~X_j|D,X_-j}``), ``dof``
        (residual degrees of freedom of the outcome regression), ``n`` (units).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=200)
    >>> df = pd.DataFrame({"x": x, "d": 0.5 * x + rng.normal(size=200)})
    >>> df["y"] = df["d"] + 0.3 * x + rng.normal(size=200)
    >>> covariate_partial_r2(df, outcome="y", treatment="d", covariates=["x"]).round(3).to_dict("records")
    [{'covariate': 'x', 'r2_treatment': 0.141, 'r2_outcome': 0.083, 'dof': 197, 'n': 200}]
    """
    covariates, controls = list(covariates), list(controls)
    d = data[[outcome, treatment, *covariates, *controls]].dropna()
    regs = d[covariates + controls].to_numpy(dtype=float)
    one = np.ones((len(d), 1))
    t_d, dof_d = _t_values(d[treatment].to_numpy(dtype=float), np.hstack([one, regs]))
    t_y, dof_y = _t_values(
        d[outcome].to_numpy(dtype=float), np.hstack([one, d[[treatment]].to_numpy(float), regs])
    )
    k = len(covariates)
    return pd.DataFrame(
        {
            "covariate": covariates,
            "r2_treatment": partial_r2(t_d[1 : 1 + k], dof_d),
            "r2_outcome": partial_r2(t_y[2 : 2 + k], dof_y),
            "dof": dof_y,
            "n": len(d),
        }
    )
