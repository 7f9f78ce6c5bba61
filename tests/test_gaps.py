"""Gap tables: hand-computed values, published and independent intervals, references, missing data, seeds."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from opportunity_research.disclosure.joint import protect_table
from opportunity_research.stats.gaps import ALL_OTHERS, GAP_COLUMNS, gap_table, hedges_g

RACES = ["asian", "black", "hispanic_latino", "white"]


def clustered(n_clusters=300, size=25, seed=0, icc_sd=0.6, gap=0.3):
    """Students in classrooms: a classroom effect, a group whose share varies by classroom, a planted gap."""
    rng = np.random.default_rng(seed)
    c = np.repeat(np.arange(n_clusters), size)
    u = rng.normal(0, icc_sd, n_clusters)
    p_group = rng.beta(2, 3, n_clusters)  # the group is concentrated in some classrooms
    d = (rng.random(len(c)) < p_group[c]).astype(int)
    y = u[c] + gap * d + rng.normal(0, 1, len(c))
    b = (rng.random(len(c)) < 1 / (1 + np.exp(-(u[c] + gap * d)))).astype(int)
    return pd.DataFrame({"classroom_id": [f"C{i:04d}" for i in c], "d": d, "y": y, "b": b})


# --------------------------------------------------------------------------------------------
# Hedges' g


def test_hedges_g_by_hand():
    x, y = [1, 2, 3, 4], [2, 3, 4, 5, 6]
    # means 2.5 and 4; variances 5/3 and 5/2; pooled variance (3 * 5/3 + 4 * 5/2) / 7 = 15/7
    d = (2.5 - 4) / math.sqrt(15 / 7)  # -1.0246951
    j = 1 - 3 / (4 * 9 - 9)  # 8/9
    assert hedges_g(x, y) == pytest.approx(j * d, abs=1e-12)
    assert hedges_g(x, y) == pytest.approx(-0.9108401, abs=1e-7)
    res = hedges_g(x, y, ci=True)
    se = j * math.sqrt(9 / 20 + d**2 / 18)  # (n1 + n2) / (n1 n2) + d^2 / (2 (n1 + n2))
    z = 1.959963984540054
    assert (res.g, res.ci_lower, res.ci_upper) == pytest.approx(
        (j * d, j * d - z * se, j * d + z * se), abs=1e-12
    )
    assert hedges_g([1, 2, 3, 4, np.nan], y) == pytest.approx(j * d)  # missing values ignored
    assert np.isnan(hedges_g([1], y)) and np.isnan(hedges_g([1, 1], [2, 2]))


def test_gap_table_by_hand_against_all_other_students():
    df = pd.DataFrame(
        {"y": [1.0, 2, 3, 4, 2, 3, 4, 5, 6] * 2, "g": ["a"] * 4 + ["b"] * 5 + ["a"] * 4 + ["b"] * 5}
    )
    t = gap_table(df, outcome="y", group="g")
    assert list(t.columns) == list(GAP_COLUMNS)
    a = t.set_index("level").loc["a"]
    xa, xb = [1.0, 2, 3, 4] * 2, [2.0, 3, 4, 5, 6] * 2
    assert (a["n"], a["reference_n"], a["reference"]) == (8, 10, ALL_OTHERS)
    assert (a["estimate"], a["reference_estimate"], a["difference"]) == pytest.approx((2.5, 4.0, -1.5))
    assert a["ratio"] == pytest.approx(2.5 / 4)
    assert a["hedges_g"] == pytest.approx(hedges_g(xa, xb), abs=1e-12)
    # no cluster: Welch's t interval, as scipy computes it
    ci = stats.ttest_ind(xa, xb, equal_var=False).confidence_interval(0.95)
    assert (a["ci_lower"], a["ci_upper"]) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert a["ci_method"] == "welch_t" and a["kind"] == "continuous" and a["outcome"] == "y"
    b = t.set_index("level").loc["b"]
    assert b["difference"] == pytest.approx(1.5) and b["hedges_g"] == pytest.approx(-a["hedges_g"])


def test_binary_outcome_ratio_and_newcombe_interval_match_published_values():
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80, hybrid score method 10: 0.0524 to 0.3339
    df = pd.DataFrame({"y": [1] * 56 + [0] * 14 + [1] * 48 + [0] * 32, "g": ["x"] * 70 + ["z"] * 80})
    t = gap_table(df, outcome="y", group="g")
    x = t.set_index("level").loc["x"]
    assert x["kind"] == "binary" and np.isnan(x["hedges_g"]) and x["ci_method"] == "newcombe_score"
    assert x["estimate"] == pytest.approx(0.8) and x["reference_estimate"] == pytest.approx(0.6)
    assert x["ratio"] == pytest.approx(0.8 / 0.6)  # risk ratio: share in the group / share of all others
    assert (x["ci_lower"], x["ci_upper"]) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    # example (b): 9/10 vs 3/10: 0.1705 to 0.8090
    df2 = pd.DataFrame({"y": [1] * 9 + [0] + [1] * 3 + [0] * 7, "g": ["x"] * 10 + ["z"] * 10})
    x2 = gap_table(df2, outcome="y", group="g").set_index("level").loc["x"]
    assert (x2["ci_lower"], x2["ci_upper"]) == pytest.approx((0.1705, 0.8090), abs=5e-5)


def test_kind_detection():
    base = pd.DataFrame({"g": ["a", "b"] * 15})
    assert gap_table(base.assign(y=[0, 1, 1] * 10), outcome="y", group="g")["kind"].eq("binary").all()
    assert (
        gap_table(base.assign(y=[True, False, True] * 10), outcome="y", group="g")["kind"].eq("binary").all()
    )
    y = pd.Series([0.0, 1.0, np.nan] * 10)
    assert gap_table(base.assign(y=y), outcome="y", group="g")["kind"].eq("binary").all()
    t = gap_table(base.assign(y=[0, 1, 2] * 10), outcome="y", group="g")
    assert t["kind"].eq("continuous").all() and t["hedges_g"].notna().all()
    # a 0/1 outcome can be analysed as continuous on request (Hedges' g then reported)
    assert (
        gap_table(base.assign(y=[0, 1, 1] * 10), outcome="y", group="g", kind="continuous")["hedges_g"]
        .notna()
        .all()
    )
    with pytest.raises(ValueError, match="kind='binary'"):
        gap_table(base.assign(y=[0, 1, 2] * 10), outcome="y", group="g", kind="binary")
    with pytest.raises(TypeError, match="'y' is not numeric"):
        gap_table(base.assign(y="x"), outcome="y", group="g")
    with pytest.raises(KeyError, match="nope"):
        gap_table(base.assign(y=1.0), outcome="y", group="nope")


def test_missing_outcome_or_group_is_dropped_and_counted_and_input_untouched():
    df = pd.DataFrame(
        {
            "y": [1.0, 2, 3, np.nan] * 10 + [5.0] * 10,
            "g": ["a", "b", "a", "b"] * 10 + [None] * 10,
            "h": ["u"] * 25 + ["v"] * 25,
        }
    )
    before = df.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 10 missing group values >= min_n: no warning
        t = gap_table(df, outcome="y", group=["g", "h"])
    pd.testing.assert_frame_equal(df, before)
    g = t[t["group"] == "g"].set_index("level")
    assert g.loc["a", "n"] == 20 and g.loc["b", "n"] == 10  # b's NaN outcomes dropped
    assert g.loc["a", "estimate"] == pytest.approx(2.0) and g.loc["b", "estimate"] == pytest.approx(2.0)
    h = t[t["group"] == "h"].set_index("level")
    assert h.loc["u", "n"] + h.loc["v", "n"] == 40  # the missing-g students count for h
    assert t.attrs["dropped"] == {"outcome": 10, "group": {"g": 10, "h": 0}}
    # a few students missing a group value would be revealed by comparing totals: warned
    df2 = df.assign(g=df["g"].fillna("a"))
    df2.loc[0, "g"] = None
    with pytest.warns(UserWarning, match="have no 'g' value"):
        gap_table(df2, outcome="y", group="g")


def test_named_reference_level():
    rng = np.random.default_rng(3)
    race = rng.choice(RACES, 2000, p=[0.1, 0.3, 0.3, 0.3])
    df = pd.DataFrame(
        {
            "race": race,
            "y": rng.normal(size=2000) + (race == "white") * 0.5,
            "li": (rng.random(2000) < 0.5).astype(int),
        }
    )
    t = gap_table(df, outcome="y", group="race", reference="white")
    assert list(t["level"]) == ["asian", "black", "hispanic_latino"]  # no row for the reference itself
    white = df.loc[df["race"] == "white", "y"]
    assert (t["reference"] == "white").all() and (t["reference_n"] == len(white)).all()
    assert t["reference_estimate"].to_numpy() == pytest.approx(np.full(3, white.mean()))
    for _, r in t.iterrows():
        x = df.loc[df["race"] == r["level"], "y"]
        assert r["difference"] == pytest.approx(x.mean() - white.mean())
        assert r["hedges_g"] == pytest.approx(hedges_g(x, white), abs=1e-12)
    # dict form: named reference for race, all other students for low income
    t2 = gap_table(df, outcome="y", group=["race", "li"], reference={"race": "white"})
    assert (t2.loc[t2["group"] == "race", "reference"] == "white").all()
    assert (t2.loc[t2["group"] == "li", "reference"] == ALL_OTHERS).all()
    pd.testing.assert_frame_equal(
        t2[t2["group"] == "race"].reset_index(drop=True).drop(columns="level"),
        t.drop(columns="level"),
        check_dtype=False,
    )
    # numeric levels match numeric references
    t3 = gap_table(df, outcome="y", group="li", reference=0)
    assert list(t3["level"]) == [1] and t3["reference"].iloc[0] == "0"
    with pytest.raises(ValueError, match="several group columns"):
        gap_table(df, outcome="y", group=["race", "li"], reference="white")
    with pytest.raises(ValueError, match="not group columns"):
        gap_table(df, outcome="y", group="race", reference={"li": 0})
    with pytest.warns(UserWarning, match="'White' does not occur"):
        t4 = gap_table(df, outcome="y", group="race", reference="White")
    # no comparison exists: the rows show their own group, no reference (the table is complete)
    assert (t4["reference_n"] == 0).all() and t4["difference"].isna().all() and not t4["suppressed"].any()


def test_weights():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6] * 5, "g": ["a", "a", "b", "b", "b", "a"] * 5})
    plain = gap_table(df, outcome="y", group="g")
    same = gap_table(df.assign(w=2.0), outcome="y", group="g", weights="w")
    cols = ["n", "estimate", "reference_estimate", "difference", "hedges_g", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(plain[cols], same[cols])
    w = np.tile([1.0, 3, 1, 1, 2, 1], 5)
    t = gap_table(df.assign(w=w), outcome="y", group="g", weights="w").set_index("level")
    a = df["g"] == "a"
    assert t.loc["a", "estimate"] == pytest.approx(np.average(df.loc[a, "y"], weights=w[a]))
    assert t.loc["a", "n"] == a.sum()  # n still counts students
    with pytest.raises(ValueError, match="negative"):
        gap_table(df.assign(w=-1.0), outcome="y", group="g", weights="w")


# --------------------------------------------------------------------------------------------
# Clustered intervals


def _statsmodels_cluster_ci(df, outcome):
    fit = smf.ols(f"{outcome} ~ d", data=df).fit(
        cov_type="cluster", cov_kwds={"groups": df["classroom_id"]}, use_t=True
    )
    lo, hi = fit.conf_int().loc["d"]
    return fit.params["d"], lo, hi, fit


@pytest.mark.parametrize("outcome", ["y", "b"])
def test_cluster_robust_interval_equals_statsmodels_ols(outcome):
    df = clustered(seed=1)
    t = gap_table(df, outcome=outcome, group="d", cluster="classroom_id", n_boot=0).set_index("level")
    est, lo, hi, _fit = _statsmodels_cluster_ci(df, outcome)
    row = t.loc[1]
    assert row["ci_method"] == "cluster_robust_t"
    assert row["clusters"] == df.loc[df["d"] == 1, "classroom_id"].nunique()  # classrooms holding the group
    assert row["difference"] == pytest.approx(est, abs=1e-12)
    # statsmodels' CR1 adds the factor (N - 1) / (N - 2) to G / (G - 1); both use t on G - 1 df
    n = len(df)
    half = (hi - lo) / 2 / math.sqrt((n - 1) / (n - 2))
    assert (row["ci_upper"] - row["ci_lower"]) / 2 == pytest.approx(half, rel=1e-9)


@pytest.mark.parametrize("outcome", ["y", "b"])
def test_cluster_bootstrap_agrees_with_cluster_robust_ols(outcome):
    df = clustered(seed=2)
    t = gap_table(df, outcome=outcome, group="d", cluster="classroom_id", n_boot=2000, seed=5).set_index(
        "level"
    )
    est, lo, hi, _ = _statsmodels_cluster_ci(df, outcome)
    row = t.loc[1]
    assert row["ci_method"] == "cluster_bootstrap_percentile"
    assert row["difference"] == pytest.approx(est, abs=1e-12)
    width, ref_width = row["ci_upper"] - row["ci_lower"], hi - lo
    assert width == pytest.approx(ref_width, rel=0.10)  # Monte Carlo error of 2000 replicates is ~3%
    assert (row["ci_lower"] + row["ci_upper"]) / 2 == pytest.approx(est, abs=0.1 * ref_width)
    if outcome == "y":  # ignoring the clustering would give a much narrower (wrong) interval here
        naive = gap_table(df, outcome=outcome, group="d").set_index("level").loc[1]
        assert naive["ci_upper"] - naive["ci_lower"] < 0.8 * ref_width


def _naive_bootstrap(df, *, outcome, group, n_boot, seed, confidence=0.95):
    """Per-replicate pandas recomputation with the same resampled clusters (same draws as gap_table)."""
    codes, _ = pd.factorize(df["classroom_id"])  # order of first appearance, as gap_table numbers clusters
    n_clusters = codes.max() + 1
    draws = np.random.default_rng(seed).integers(0, n_clusters, size=(n_boot, n_clusters))
    by_cluster = {c: part for c, part in df.groupby(codes)}
    levels = sorted(df[group].unique())
    reps = []
    for r in range(n_boot):
        sample = pd.concat([by_cluster[c] for c in draws[r]])
        means = sample.groupby(group)[outcome].agg(["sum", "count"])
        tot_s, tot_n = means["sum"].sum(), means["count"].sum()
        reps.append(
            [
                means.loc[lv, "sum"] / means.loc[lv, "count"]
                - (tot_s - means.loc[lv, "sum"]) / (tot_n - means.loc[lv, "count"])
                if lv in means.index
                else np.nan
                for lv in levels
            ]
        )
    reps = np.array(reps)
    a = 1 - confidence
    lo, hi = np.nanquantile(reps, [a / 2, 1 - a / 2], axis=0)
    # documented small-sample widening about the estimate: sqrt(G / (G - 1)) * t(G - 1) / z
    full = sample_diffs(df, outcome=outcome, group=group, levels=levels)
    scale = (
        math.sqrt(n_clusters / (n_clusters - 1))
        * stats.t.ppf(1 - a / 2, n_clusters - 1)
        / stats.norm.ppf(1 - a / 2)
    )
    return full - scale * (full - lo), full + scale * (hi - full)


def sample_diffs(df, *, outcome, group, levels):
    tot_s, tot_n = df[outcome].sum(), len(df)
    g = df.groupby(group)[outcome].agg(["sum", "count"])
    return np.array(
        [
            g.loc[lv, "sum"] / g.loc[lv, "count"] - (tot_s - g.loc[lv, "sum"]) / (tot_n - g.loc[lv, "count"])
            for lv in levels
        ]
    )


def test_vectorized_bootstrap_equals_a_naive_per_replicate_loop():
    rng = np.random.default_rng(8)
    c = np.repeat(np.arange(40), 12)
    df = pd.DataFrame(
        {
            "classroom_id": [f"C{i:02d}" for i in c],
            "race": rng.choice(RACES, len(c)),
            "y": rng.normal(size=len(c)),
        }
    )
    t = gap_table(df, outcome="y", group="race", cluster="classroom_id", n_boot=200, seed=11)
    lo, hi = _naive_bootstrap(df, outcome="y", group="race", n_boot=200, seed=11)
    assert t["ci_lower"].to_numpy() == pytest.approx(lo, abs=1e-12)
    assert t["ci_upper"].to_numpy() == pytest.approx(hi, abs=1e-12)


def test_seeded_reproducibility_and_stacking():
    df = clustered(n_clusters=80, seed=4)
    df["race"] = np.random.default_rng(0).choice(RACES, len(df))
    a = gap_table(df, outcome="y", group="race", cluster="classroom_id", n_boot=300, seed=7)
    b = gap_table(df, outcome="y", group="race", cluster="classroom_id", n_boot=300, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = gap_table(df, outcome="y", group="race", cluster="classroom_id", n_boot=300, seed=8)
    assert not np.allclose(a["ci_lower"], c["ci_lower"])
    assert a["difference"].equals(c["difference"])  # only the interval depends on the seed
    # a variable's rows do not depend on which other variables are stacked with it
    both = gap_table(df, outcome="y", group=["d", "race"], cluster="classroom_id", n_boot=300, seed=7)
    pd.testing.assert_frame_equal(both[both["group"] == "race"].reset_index(drop=True), a, check_dtype=False)
    assert list(both["group"].unique()) == ["d", "race"]


def test_few_clusters_give_no_interval():
    df = pd.DataFrame(
        {
            "classroom_id": ["A"] * 15 + ["B"] * 15 + ["C"] * 15,
            "y": np.arange(45.0),
            "g": ["x"] * 15 + ["z"] * 30,
        }
    )  # group x sits in one classroom
    t = gap_table(df, outcome="y", group="g", cluster="classroom_id", n_boot=100).set_index("level")
    assert (
        t.loc["x", "clusters"] == 1 and np.isnan(t.loc["x", "ci_lower"]) and np.isnan(t.loc["z", "ci_upper"])
    )


def test_small_groups_shown_by_gap_table_and_hidden_by_the_joint_pass():
    rng = np.random.default_rng(5)
    race = np.array(["black"] * 300 + ["white"] * 300 + ["asian"] * 40 + ["two_or_more"] * 6)
    df = pd.DataFrame(
        {
            "race": race,
            "y": rng.uniform(size=len(race)),
            "classroom_id": [f"C{i % 26}" for i in range(len(race))],
        }
    )
    full = gap_table(df, outcome="y", group="race", cluster="classroom_id", n_boot=200)
    # the statistics are complete: the 6 students are a row like any other
    assert not full["suppressed"].any() and full.set_index("level").loc["two_or_more", "n"] == 6
    t = protect_table(full.assign(measure="grade_appropriate", subject="ela"), "gaps", min_n=10)
    t = t.set_index("level")
    assert (
        t.loc["two_or_more", "suppressed"] and t.loc["asian", "suppressed"]
    )  # the small cell and a complement
    hidden = t[t["suppressed"]]
    value_cols = [
        "n",
        "reference_n",
        "estimate",
        "reference_estimate",
        "difference",
        "ratio",
        "hedges_g",
        "ci_lower",
        "ci_upper",
        "clusters",
    ]
    assert hidden[value_cols].isna().all().all()
    assert t.loc[["black", "white"], value_cols].notna().all().all()
    assert not t.loc["black", "suppressed"]


def test_empty_after_dropping_gives_empty_table():
    df = pd.DataFrame({"y": [np.nan] * 4, "g": ["a", "b"] * 2})
    t = gap_table(df, outcome="y", group="g")
    assert len(t) == 0 and list(t.columns) == list(GAP_COLUMNS)


@pytest.mark.slow
def test_cluster_bootstrap_coverage():
    """Over 200 simulated districts the 95% cluster-bootstrap interval covers the planted gap ~95% of the time.

    In ``clustered`` the classroom effects are independent of the classrooms' group shares, so the population
    difference E[y | d=1] - E[y | d=0] is the planted 0.3.
    """
    hits = []
    for s in range(200):
        df = clustered(n_clusters=60, size=20, seed=1000 + s, gap=0.3)
        t = gap_table(df, outcome="y", group="d", cluster="classroom_id", n_boot=400, seed=s).set_index(
            "level"
        )
        hits.append(t.loc[1, "ci_lower"] <= 0.3 <= t.loc[1, "ci_upper"])
    assert 0.91 <= np.mean(hits) <= 0.985


@pytest.mark.parametrize(
    "opts", [{}, {"cluster": "cl", "n_boot": 0}, {"cluster": "cl", "n_boot": 200}, {"weights": "w"}]
)
@pytest.mark.parametrize("outcome", ["y", "b"])
def test_a_table_of_several_group_columns_stacks_their_own_tables(outcome, opts):
    # every row's intervals (its own estimate's and its ratio's included, computed once over all group columns'
    # rows since issue 21) are those of its group column's table alone
    rng = np.random.default_rng(21)
    n = 600
    df = pd.DataFrame(
        {
            "y": rng.gamma(4.0, 1.5, n),  # positive: every ratio has an interval
            "b": (rng.random(n) < 0.3).astype(float),
            "w": rng.random(n),
            "g": rng.choice(["a", "b", "c"], n),
            "h": rng.choice([0, 1], n),
            "cl": rng.integers(0, 30, n),
        }
    )
    both = gap_table(df, outcome=outcome, group=["g", "h"], **opts)
    alone = pd.concat(
        [gap_table(df, outcome=outcome, group=g, **opts) for g in ("g", "h")], ignore_index=True
    )
    pd.testing.assert_frame_equal(both, alone, check_exact=True)
    assert both["estimate_ci_lower"].notna().all() and both["ratio_ci_upper"].notna().all()
