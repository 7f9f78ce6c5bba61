"""Cross-checks of a mixed model fit: OLS with cluster-robust standard errors, and statsmodels ``MixedLM``
(flagging the statsmodels issue 10239 pattern)."""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .design import build_design
from .results import GrowthModelResult

__all__ = ["mixedlm_check", "ols_cluster_check"]


def ols_cluster_check(
    data: pd.DataFrame,
    *,
    formula: str,
    groups: Sequence[str] | str,
    cluster: str | None = None,
    mixed: GrowthModelResult | None = None,
    ci_level: float = 0.95,
    _eval_env: Any = None,
) -> pd.DataFrame:
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

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> t = ols_cluster_check(df, formula="y ~ x", groups=("school",))
    >>> list(t["term"]), round(float(t.set_index("term").loc["x", "estimate"]), 2)
    (['Intercept', 'x'], 0.56)
    """
    import statsmodels.api as sm

    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    cluster = groups[0] if cluster is None else cluster
    if cluster not in groups:
        raise ValueError(f"cluster {cluster!r} is not one of the groups {groups}")
    env = _eval_env if _eval_env is not None else patsy.EvalEnvironment.capture(1)
    d = build_design(data, formula, groups, None, None, env)
    codes = d.codes[groups.index(cluster)]
    fit = sm.OLS(d.y, d.X).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    ci = fit.conf_int(alpha=1 - ci_level)
    out = pd.DataFrame(
        {
            "term": d.names,
            "estimate": fit.params,
            "std_error": fit.bse,
            "ci_lower": ci[:, 0],
            "ci_upper": ci[:, 1],
            "p_value": fit.pvalues,
            "n": len(d.y),
            "n_clusters": int(codes.max() + 1),
            "cluster": cluster,
        }
    )
    if mixed is not None:
        m = mixed._coefficients.set_index("term")
        out["mixed_estimate"] = out["term"].map(m["estimate"])
        out["mixed_std_error"] = out["term"].map(m["std_error"])
        out["difference"] = out["estimate"] - out["mixed_estimate"]
        out["se_ratio"] = out["std_error"] / out["mixed_std_error"]
    return out.reset_index(drop=True)


def mixedlm_check(
    data: pd.DataFrame,
    result: GrowthModelResult,
    *,
    fit_kwargs: Mapping | None = None,
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

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> from opportunity_research.stats.models import fit_growth_model
    >>> fit = fit_growth_model(df, formula="y ~ x", groups=("school",))
    >>> c = mixedlm_check(df, fit)
    >>> c[["kind", "term"]].to_dict("list")
    {'kind': ['fixed', 'fixed', 'variance', 'variance'], 'term': ['Intercept', 'x', 'school', 'residual']}
    """
    import statsmodels.formula.api as smf

    groups = result.groups
    env = patsy.EvalEnvironment.capture(1)
    d = build_design(data, result.formula, groups, result.random_slope, result.slope_level, env)
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
        rows.append(
            {
                "kind": "fixed",
                "term": term,
                "estimate": ours[j],
                "statsmodels_estimate": sm_beta[j],
                "flag": flag,
            }
        )
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
        rows.append(
            {
                "kind": "variance",
                "term": comp,
                "estimate": float(vcs[comp]),
                "statsmodels_estimate": float(v),
                "flag": "",
            }
        )
    out = pd.DataFrame(rows)
    out["difference"] = out["statsmodels_estimate"] - out["estimate"]
    out["relative_difference"] = out["difference"] / out["estimate"].abs().where(out["estimate"] != 0)
    out["statsmodels_converged"] = sm_conv
    out["statsmodels_log_likelihood"] = float(fit.llf)
    out["log_likelihood"] = result.log_likelihood
    return out[
        [
            "kind",
            "term",
            "estimate",
            "statsmodels_estimate",
            "difference",
            "relative_difference",
            "statsmodels_converged",
            "statsmodels_log_likelihood",
            "log_likelihood",
            "flag",
        ]
    ]
