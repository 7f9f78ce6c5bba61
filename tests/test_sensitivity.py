"""Sensitivity statistics against Cinelli & Hazlett's Darfur example (sensemakr) and independent root-finding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from opportunity_research.stats.sensitivity import (
    adjusted_estimate,
    e_value,
    ovb_bounds,
    partial_r2,
    risk_ratio_from_d,
    robustness_value,
)

DARFUR = json.loads((Path(__file__).parent / "reference" / "darfur_sensemakr.json").read_text())


def test_darfur_known_answers():
    t, dof = 4.18445, 783
    assert partial_r2(t, dof) == pytest.approx(0.021873, abs=1e-6)
    assert robustness_value(t, dof) == pytest.approx(0.13878, abs=1e-4)
    assert robustness_value(t, dof, alpha=0.05) == pytest.approx(0.07626, abs=1e-4)
    exp = DARFUR["expected"]
    assert partial_r2(DARFUR["t"], DARFUR["dof"]) == pytest.approx(exp["r2yd_x"], abs=1e-5)
    assert robustness_value(DARFUR["t"], DARFUR["dof"]) == pytest.approx(exp["rv_q"], abs=1e-5)
    assert robustness_value(DARFUR["t"], DARFUR["dof"], alpha=0.05) == pytest.approx(exp["rv_qa"], abs=1e-5)


def test_darfur_bounds_match_sensemakr():
    exp = DARFUR["expected"]
    b = ovb_bounds(DARFUR["r2dxj_x_female"], DARFUR["r2yxj_dx_female"], kd=exp["kd"])
    np.testing.assert_allclose(b["r2dz_x"], exp["r2dz_x"], rtol=1e-9)
    np.testing.assert_allclose(b["r2yz_dx"], exp["r2yz_dx"], rtol=1e-9)
    a = adjusted_estimate(DARFUR["estimate"], DARFUR["std_error"], DARFUR["dof"], **b)
    np.testing.assert_allclose(a["estimate"], exp["adjusted_estimate"], rtol=1e-8)
    np.testing.assert_allclose(a["std_error"], exp["adjusted_se"], rtol=1e-8)
    np.testing.assert_allclose(a["t"], exp["adjusted_t"], rtol=1e-8)
    np.testing.assert_allclose(a["ci_lower"], exp["adjusted_lower_CI"], atol=1e-8)
    np.testing.assert_allclose(a["ci_upper"], exp["adjusted_upper_CI"], atol=1e-8)


def _diagonal_root(t, dof, *, q=1.0, alpha=None):
    """Independent RV: the r with r2dz = r2yz = r at which the adjusted estimate (or its t) reaches the target."""
    se, est = 1.0, t

    def gap(r):
        a = adjusted_estimate(est, se, dof, r2dz_x=r, r2yz_dx=r)
        if alpha is None:
            return a["estimate"] - (1 - q) * est
        return (a["estimate"] - (1 - q) * est) / a["std_error"] - stats.t.ppf(1 - alpha / 2, dof - 1)

    return optimize.brentq(gap, 1e-12, 1 - 1e-9, xtol=1e-14)


@pytest.mark.parametrize("t,dof,q", [(4.18445, 783, 1.0), (2.5, 60, 1.0), (3.0, 40, 0.5), (8.0, 2000, 1.0)])
def test_robustness_value_is_the_diagonal_root(t, dof, q):
    assert robustness_value(t, dof, q=q) == pytest.approx(_diagonal_root(t, dof, q=q), abs=1e-8)
    assert robustness_value(-t, dof, q=q) == robustness_value(t, dof, q=q)


@pytest.mark.parametrize("t,dof", [(4.18445, 783), (3.0, 40), (5.0, 120)])
def test_robustness_value_alpha_binding_case_is_the_diagonal_root(t, dof):
    fq = abs(t) / np.sqrt(dof)
    f_crit = stats.t.ppf(0.975, dof - 1) / np.sqrt(dof - 1)
    assert fq < 1 / f_crit  # the binding case
    assert robustness_value(t, dof, alpha=0.05) == pytest.approx(_diagonal_root(t, dof, alpha=0.05), abs=1e-6)


def test_robustness_value_alpha_edge_cases():
    # already not significant at 5% (t below the critical value at dof - 1): 0
    assert robustness_value(1.9, 1000, alpha=0.05) == 0.0
    assert robustness_value(0.0, 10) == 0.0
    # f_q > 1 / f_crit: the extreme robustness value (f_q^2 - f_crit^2) / (1 + f_q^2), as sensemakr
    t, dof = 30.0, 20
    fq2 = t**2 / dof
    fc2 = stats.t.ppf(0.975, dof - 1) ** 2 / (dof - 1)
    assert np.sqrt(fq2) > 1 / np.sqrt(fc2)
    assert robustness_value(t, dof, alpha=0.05) == pytest.approx((fq2 - fc2) / (1 + fq2), abs=1e-12)
    # vectorised, NaN passes through
    out = robustness_value(np.array([4.18445, np.nan, 1.0]), 783, alpha=0.05)
    assert out[0] == pytest.approx(0.07626, abs=1e-4) and np.isnan(out[1]) and out[2] == 0.0
    with pytest.raises(ValueError, match="dof"):
        robustness_value(3.0, 0)
    with pytest.raises(ValueError, match="alpha"):
        robustness_value(3.0, 100, alpha=1.5)


def test_bounds_refuse_impossible_multiples():
    with pytest.raises(ValueError, match="kd"):
        ovb_bounds(0.4, 0.1, kd=3)


def test_e_value_by_hand():
    rr = np.exp(0.91 * 0.3)
    assert risk_ratio_from_d(0.3) == pytest.approx(rr)
    assert e_value(0.3) == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    assert e_value(-0.3) == pytest.approx(e_value(0.3))
    assert e_value(rr=3.9) == pytest.approx(7.26, abs=0.005)  # VanderWeele & Ding (2017)
    assert e_value(rr=0.5) == pytest.approx(2 + np.sqrt(2))
    with pytest.raises(ValueError):
        e_value(0.2, rr=1.2)


def test_covariate_partial_r2_matches_statsmodels_ols():
    import pandas as pd
    import statsmodels.formula.api as smf

    from opportunity_research.stats.sensitivity import covariate_partial_r2

    rng = np.random.default_rng(4)
    n = 300
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.binomial(1, 0.4, n), "c": rng.normal(size=n)})
    df["d"] = 0.4 * df["x1"] - 0.3 * df["x2"] + 0.2 * df["c"] + rng.normal(size=n)
    df["y"] = 0.5 * df["d"] + 0.3 * df["x1"] + 0.6 * df["x2"] + rng.normal(size=n)
    out = covariate_partial_r2(df, outcome="y", treatment="d", covariates=["x1", "x2"], controls=["c"])
    md = smf.ols("d ~ x1 + x2 + c", df).fit()
    my = smf.ols("y ~ d + x1 + x2 + c", df).fit()
    for row in out.itertuples():
        assert row.r2_treatment == pytest.approx(
            md.tvalues[row.covariate] ** 2 / (md.tvalues[row.covariate] ** 2 + md.df_resid), rel=1e-10
        )
        assert row.r2_outcome == pytest.approx(
            my.tvalues[row.covariate] ** 2 / (my.tvalues[row.covariate] ** 2 + my.df_resid), rel=1e-10
        )
    assert (out["dof"] == my.df_resid).all() and (out["n"] == n).all()
