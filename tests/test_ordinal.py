"""V statistic and HETOP: known answers on exact proportions, invariance, and interval coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.stats.ordinal import HETOP_COLUMNS, V_COLUMNS, hetop, v_statistic

TRUE_V = 0.5 / np.sqrt((1.2**2 + 1) / 2)  # 0.45268


def exact_counts(cuts, mean=0.0, sd=1.0, n=1e7):
    return np.round(n * np.diff(np.r_[0.0, stats.norm.cdf(cuts, mean, sd), 1.0]))


@pytest.mark.parametrize("cuts", [(-0.5, 0.3, 1.2), (-2.0, -1.0, 0.0), (0.2, 0.9, 2.5), (-1.0, 0.0, 1.0)])
def test_v_known_answer_at_any_three_cuts(cuts):
    r = v_statistic(exact_counts(cuts, 0.5, 1.2), exact_counts(cuts))
    assert set(r) == set(V_COLUMNS)
    assert TRUE_V == pytest.approx(0.45268, abs=1e-5)
    assert r["v"] == pytest.approx(TRUE_V, abs=1e-3)
    assert r["converged"] and r["note"] == "" and r["levels_used"] == 4
    assert r["ci_lower"] < r["v"] < r["ci_upper"] and r["std_error"] < 0.002
    # swapping the groups flips the sign
    assert v_statistic(exact_counts(cuts), exact_counts(cuts, 0.5, 1.2))["v"] == pytest.approx(
        -r["v"], abs=1e-6
    )


def test_v_is_invariant_under_monotone_transformations():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.4, 1.3, 800), rng.normal(0, 1, 900)
    cuts = np.array([-0.8, 0.1, 0.9, 1.6])

    def counts(x, c):
        return np.bincount(np.searchsorted(c, x), minlength=len(c) + 1)

    base = v_statistic(counts(a, cuts), counts(b, cuts))
    for f in (np.exp, lambda x: x**3, lambda x: 10 + 50 * stats.norm.cdf(x)):
        r = v_statistic(counts(f(a), f(cuts)), counts(f(b), f(cuts)))
        assert r["v"] == pytest.approx(base["v"], abs=1e-12)
    # and it estimates sqrt(2) Phi^-1(AUC) of the continuous scores
    auc = (a[:, None] > b[None, :]).mean()
    assert base["v"] == pytest.approx(np.sqrt(2) * stats.norm.ppf(auc), abs=2 * base["std_error"])


def test_v_by_hand_two_levels_and_edge_cases():
    # two levels: equal variances, so V is the probit difference of the shares above the cut
    r = v_statistic([40, 60], [70, 30])
    assert r["v"] == pytest.approx(stats.norm.ppf(0.6) - stats.norm.ppf(0.3), abs=1e-6)
    assert "equal variances" in r["note"]
    # levels nobody is in are dropped
    assert v_statistic([10, 0, 30, 40, 20], [25, 0, 35, 30, 10])["v"] == pytest.approx(
        v_statistic([10, 30, 40, 20], [25, 35, 30, 10])["v"], abs=1e-9
    )
    assert np.isnan(v_statistic([0, 0, 50], [10, 20, 30])["v"])  # all of a group at the top
    assert np.isnan(v_statistic([0, 0, 0], [10, 20, 30])["v"])
    with pytest.raises(ValueError, match="non-negative"):
        v_statistic([1, -2, 3], [1, 2, 3])


def _v_coverage(reps, seed):
    rng = np.random.default_rng(seed)
    cuts = np.array([-0.6, 0.2, 1.0])
    pa = np.diff(np.r_[0, stats.norm.cdf(cuts, 0.5, 1.2), 1])
    pb = np.diff(np.r_[0, stats.norm.cdf(cuts), 1])
    hits = 0
    for _ in range(reps):  # replications, not students: each fit is vectorised over levels
        r = v_statistic(rng.multinomial(300, pa), rng.multinomial(250, pb))
        hits += r["ci_lower"] <= TRUE_V <= r["ci_upper"]
    return hits / reps


def test_v_interval_coverage_fast():
    assert 0.90 <= _v_coverage(200, seed=11) <= 0.99


@pytest.mark.slow
def test_v_interval_coverage_93_to_97_percent():
    assert 0.93 <= _v_coverage(2000, seed=12) <= 0.97


def test_hetop_recovers_exact_parameters():
    cuts = np.array([-1.2, -0.3, 0.5, 1.4])
    means, sds, ns = (
        np.array([-0.5, 0.0, 0.3, 0.8]),
        np.array([0.8, 1.0, 1.1, 1.3]),
        np.array([3e6, 4e6, 2e6, 1e6]),
    )
    data = pd.DataFrame([exact_counts(cuts, m, s, n) for m, s, n in zip(means, sds, ns)], index=list("abcd"))
    fit = hetop(data)
    assert fit.converged and list(fit.groups.columns) == list(HETOP_COLUMNS)
    w = ns / ns.sum()
    m = w @ means
    s = np.sqrt(w @ (sds**2 + means**2) - m**2)
    np.testing.assert_allclose(fit.groups["mean"], (means - m) / s, atol=1e-3)
    np.testing.assert_allclose(fit.groups["sd"], sds / s, atol=1e-3)
    np.testing.assert_allclose(fit.cut_points["estimate"], (cuts - m) / s, atol=1e-3)
    # the standardized scale: weighted mean 0, total SD 1
    g = fit.groups
    w = g["n"] / g["n"].sum()
    assert w @ g["mean"] == pytest.approx(0, abs=1e-9)
    assert w @ (g["mean"] ** 2 + g["sd"] ** 2) == pytest.approx(1, abs=1e-9)


def test_hetop_shared_sd_and_degenerate_groups():
    cuts = np.array([-1.0, 0.0, 1.0])
    data = np.array(
        [exact_counts(cuts, -0.3, 1.0, 1e6), exact_counts(cuts, 0.4, 1.0, 1e6), [0, 0, 0, 40], [0, 5, 3, 0]]
    )
    fit = hetop(data, shared_sd=True)
    g = fit.groups
    assert np.isnan(g.loc[2, "mean"]) and "highest" in g.loc[2, "note"]
    assert g["sd_shared"].all() and g.loc[0, "sd"] == pytest.approx(g.loc[1, "sd"])
    assert g.loc[0, "mean"] < g.loc[3, "mean"] < g.loc[1, "mean"] + 1  # the small group still gets a mean
    # a group in only two levels gets the shared SD even in the heteroskedastic model
    fit2 = hetop(data[[0, 1, 3]])
    assert fit2.groups["sd_shared"].tolist() == [False, False, True]
    # two levels only: every SD is the shared one (the homoskedastic probit), means still estimated
    two = hetop([[10, 20], [20, 10]]).groups
    assert two["sd_shared"].all() and two.loc[0, "mean"] > two.loc[1, "mean"]
    with pytest.raises(ValueError, match="two groups"):
        hetop([[10, 20, 0], [0, 0, 5]])


def _hetop_coverage(reps, seed):
    rng = np.random.default_rng(seed)
    cuts = np.array([-1.0, -0.2, 0.6, 1.5])
    means, sds = np.array([-0.4, 0.0, 0.2, 0.5, -0.1]), np.array([0.9, 1.0, 1.1, 1.2, 0.85])
    ns = np.array([400, 600, 500, 300, 450])
    w = ns / ns.sum()
    m = w @ means
    s = np.sqrt(w @ (sds**2 + means**2) - m**2)
    tm, ts = (means - m) / s, sds / s
    probs = np.array([np.diff(np.r_[0, stats.norm.cdf(cuts, mu, sd), 1]) for mu, sd in zip(means, sds)])
    hit_m = hit_s = 0
    for _ in range(reps):  # replications; each fit is vectorised over groups x levels
        counts = np.array([rng.multinomial(n, p) for n, p in zip(ns, probs)])
        g = hetop(counts).groups
        hit_m += ((g["mean_ci_lower"] <= tm) & (tm <= g["mean_ci_upper"])).sum()
        hit_s += ((g["sd_ci_lower"] <= ts) & (ts <= g["sd_ci_upper"])).sum()
    return hit_m / (reps * len(ns)), hit_s / (reps * len(ns))


def test_hetop_interval_coverage_fast():
    cm, cs = _hetop_coverage(60, seed=5)
    assert cm >= 0.90 and cs >= 0.90


@pytest.mark.slow
def test_hetop_recovers_planted_means_and_sds_within_intervals():
    cm, cs = _hetop_coverage(600, seed=6)
    assert 0.93 <= cm <= 0.975 and 0.93 <= cs <= 0.975


def test_hetop_shared_sd_matches_statsmodels_ordered_probit():
    """With one shared SD, HETOP is the ordered probit with group indicators (statsmodels OrderedModel)."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    counts = np.array([[30, 50, 40, 10], [15, 40, 55, 30], [40, 45, 20, 5]])
    fit = hetop(counts, shared_sd=True)
    g = fit.groups
    rows = np.repeat(np.arange(3), counts.sum(axis=1))
    level = np.concatenate([np.repeat(np.arange(4), c) for c in counts])
    exog = pd.DataFrame({"g1": (rows == 1).astype(float), "g2": (rows == 2).astype(float)})
    ref = OrderedModel(level, exog, distr="probit").fit(method="bfgs", disp=False, maxiter=2000)
    sd = g["sd"].iloc[0]
    assert (g["mean"].iloc[1] - g["mean"].iloc[0]) / sd == pytest.approx(ref.params["g1"], abs=1e-4)
    assert (g["mean"].iloc[2] - g["mean"].iloc[0]) / sd == pytest.approx(ref.params["g2"], abs=1e-4)
    # the same maximum of the likelihood
    assert fit.log_likelihood == pytest.approx(ref.llf, abs=1e-6)


def test_density_is_scipys_to_the_bit():
    """The likelihood's normal density (no scipy call per evaluation) is ``scipy.stats.norm.pdf``, bit for bit."""
    from opportunity_research.stats import ordinal

    rng = np.random.default_rng(0)
    cuts = np.sort(np.concatenate([rng.normal(size=5) * 4, [0.0, 39.0]]))
    mu = np.concatenate([rng.normal(size=50), [-0.0, 1e3]])
    ls = np.concatenate([rng.normal(size=50), [0.0, -3.0]])
    _, phi, *_ = ordinal._pieces(cuts, mu, ls)
    z = (cuts[None, :] - mu[:, None]) / np.exp(ls)[:, None]
    np.testing.assert_array_equal(phi, stats.norm.pdf(z))
    assert np.array_equal(phi.view(np.int64), stats.norm.pdf(z).view(np.int64))
