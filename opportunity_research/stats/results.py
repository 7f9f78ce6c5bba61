"""The read-only result of a growth model fit, and the errors and warnings of unverified fits."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "GrowthModelResult",
    "NotIdentifiedError",
    "rounded_table",
]


class ConvergenceError(RuntimeError):
    """A mixed model fit could not be verified as converged (raised by ``strict=True`` fits).

    Examples
    --------
    >>> issubclass(ConvergenceError, RuntimeError)
    True
    """


class NotIdentifiedError(ValueError):
    """The data cannot identify a model: a rank-deficient fixed-effect design, or no grouping level whose variance
    the design can identify (typically too few students or classrooms, e.g. one classroom per grade).

    A finding about the district's data, not a fault: the district analysis reports it and publishes the rest.

    Examples
    --------
    >>> issubclass(NotIdentifiedError, ValueError)
    True
    """


class ConvergenceWarning(UserWarning):
    """A mixed model fit could not be verified as converged (``converged`` is False on the result).

    Examples
    --------
    >>> issubclass(ConvergenceWarning, UserWarning)
    True
    """


def rounded_table(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy of ``df`` with its float columns rounded to ``digits`` significant places for display.

    Examples
    --------
    >>> import pandas as pd
    >>> rounded_table(pd.DataFrame({"term": ["x"], "estimate": [0.123456789]}))["estimate"].tolist()
    ['0.1235']
    """
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(
                lambda v: (
                    ""
                    if pd.isna(v)
                    else f"{v:.{digits}g}"
                    if abs(v) >= 1e5 or (v != 0 and abs(v) < 1e-3)
                    else f"{v:.{digits}f}"
                )
            )
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

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> from opportunity_research.stats.models import fit_growth_model
    >>> fit = fit_growth_model(df, formula="y ~ x", groups=("school",))
    >>> isinstance(fit, GrowthModelResult), fit.n_obs, fit.converged
    (True, 600, True)
    >>> fit.variance_components[["component", "n_groups"]].to_dict("list")
    {'component': ['school', 'residual'], 'n_groups': [20, 600]}
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
        return {
            "estimate": est,
            "std_error": se,
            "ci_lower": est - zq * se,
            "ci_upper": est + zq * se,
            "p_value": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else np.nan,
        }

    def _header(self) -> list[str]:
        lv = ", ".join(f"{k}: {v}" for k, v in self.n_groups.items())
        status = "yes" if self.converged else "NO - see warnings"
        return [
            f"Linear mixed model ({self.method}): {self.formula}",
            f"groups (outermost first): {lv}; observations: {self.n_obs}"
            + (f" ({self.n_dropped} rows dropped for missing values)" if self.n_dropped else ""),
            "random effects: intercept at every level"
            + (f"; slope on {self.random_slope} at {self.slope_level}" if self.random_slope else ""),
            f"log-likelihood: {self.log_likelihood:.4f}   AIC: {self.aic:.2f}   BIC: {self.bic:.2f}",
            f"optimizer: {self.optimizer}   converged (verified): {status}"
            + ("   singular fit" if self.singular else ""),
        ]

    def summary(self) -> str:
        """A plain-text summary (estimates rounded for display only)."""
        lines = self._header()
        lines += [
            "",
            "Fixed effects (Wald 95% intervals):",
            rounded_table(self._coefficients.drop(columns=["n"])).to_string(index=False),
            "",
            "Variance components:",
            rounded_table(self._variance_components.drop(columns=["level", "term"])).to_string(index=False),
            "",
            "Intraclass correlations:",
            rounded_table(self._icc).to_string(index=False),
        ]
        if self._cross_check is not None:
            lines += [
                "",
                "Cross-check: OLS with cluster-robust standard errors:",
                rounded_table(self._cross_check).to_string(index=False),
            ]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = ["<div class='growth-model'>"]
        parts += [f"<p>{esc(line)}</p>" for line in self._header()]
        parts += [
            "<h4>Fixed effects</h4>",
            rounded_table(self._coefficients).to_html(index=False),
            "<h4>Variance components</h4>",
            rounded_table(self._variance_components).to_html(index=False),
            "<h4>Intraclass correlations</h4>",
            rounded_table(self._icc).to_html(index=False),
        ]
        if self._cross_check is not None:
            parts += [
                "<h4>Cross-check: OLS, cluster-robust SEs</h4>",
                rounded_table(self._cross_check).to_html(index=False),
            ]
        if self.warnings:
            parts += ["<h4>Warnings</h4><ul>"] + [f"<li>{esc(w)}</li>" for w in self.warnings] + ["</ul>"]
        parts.append("</div>")
        return "\n".join(parts)
