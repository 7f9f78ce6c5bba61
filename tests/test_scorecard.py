"""The indicator format, the interval and suppression helpers, goal status and the scorecard page."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.disclosure.joint import TableSpec, audit_published, protect_tables
from opportunity_research.report.reporting import external_resources
from opportunity_research.stats import estimates
from opportunity_research.study import indicators
from opportunity_research.study import scorecard as sc
from opportunity_research.study.measures import cluster_mean_ci


def _ind(rows):
    """Indicator rows from (measure, school_id, group, year, n, estimate) tuples; n=None -> suppressed."""
    out = []
    for m, s, g, y, n, e in rows:
        sup = n is None
        out.append(
            {
                "measure": m,
                "school_id": s,
                "group": g,
                "school_year": y,
                "n": pd.NA if sup else n,
                "estimate": np.nan if sup else e,
                "ci_lower": np.nan if sup else e - 0.05,
                "ci_upper": np.nan if sup else e + 0.05,
                "suppressed": sup,
                "suppression_reason": "n < 10" if sup else "",
            }
        )
    return pd.DataFrame(out)


# --- intervals and cells -----------------------------------------------------------------------


def test_wilson_interval_matches_published_values():
    # Wilson 95% interval for 5/20 and 3/10 (Newcombe 1998, Table I style values)
    lo, hi = estimates.wilson_interval([5, 3, 0], [20, 10, 10])
    np.testing.assert_allclose(lo, [0.1119, 0.1078, 0.0], atol=1e-4)
    np.testing.assert_allclose(hi, [0.4687, 0.6032, 0.2775], atol=1e-4)


def test_cell_estimates_means_match_t_and_cluster_robust_intervals():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {
            "cell": np.repeat(["a", "b"], 40),
            "school": np.tile(np.repeat(list("wxyz"), 10), 2),
            "y": rng.normal(3, 1, 80),
        }
    )
    iid = estimates.cell_estimates(df, by=["cell"], value="y", kind="mean")
    a = df.loc[df.cell == "a", "y"]
    half = stats.t.ppf(0.975, 39) * a.std(ddof=1) / np.sqrt(40)
    assert iid.loc[0, "n"] == 40
    np.testing.assert_allclose(
        [iid.loc[0, "estimate"], iid.loc[0, "ci_lower"], iid.loc[0, "ci_upper"]],
        [a.mean(), a.mean() - half, a.mean() + half],
    )
    cl = estimates.cell_estimates(df, by=["cell"], value="y", kind="mean", cluster="school", min_clusters=4)
    ref = cluster_mean_ci(a, df.loc[df.cell == "a", "school"])
    np.testing.assert_allclose([cl.loc[0, "estimate"], cl.loc[0, "ci_lower"], cl.loc[0, "ci_upper"]], ref[:3])
    assert cl.loc[0, "n_clusters"] == 4
    # fewer than MIN_CLUSTERS (5) clusters: a t on 3 df is not trusted; the next level down (here the rows)
    few = estimates.cell_estimates(df, by=["cell"], value="y", kind="mean", cluster="school")
    np.testing.assert_allclose(
        few[["ci_lower", "ci_upper"]].to_numpy(), iid[["ci_lower", "ci_upper"]].to_numpy()
    )
    df["classroom"] = np.arange(80) // 5
    sub = estimates.cell_estimates(
        df, by=["cell"], value="y", kind="mean", cluster="school", subcluster="classroom"
    )
    ref = cluster_mean_ci(a, df.loc[df.cell == "a", "classroom"])
    np.testing.assert_allclose(sub.loc[0, ["ci_lower", "ci_upper"]].to_numpy(dtype=float), ref[1:3])
    # all rows in one cluster (a one-school district): the interval for independent rows
    one = estimates.cell_estimates(
        df.assign(school="w"), by=["cell"], value="y", kind="mean", cluster="school"
    )
    np.testing.assert_allclose(
        one[["ci_lower", "ci_upper"]].to_numpy(), iid[["ci_lower", "ci_upper"]].to_numpy()
    )


def test_cell_estimates_student_in_cell_clusters_give_the_student_clusters_to_the_bit():
    # ids of a student's rows within a cell each fall in one cell (paired by first row, without hashing every
    # (cell, student) combination): the same clusters, in the same order, as the students themselves
    rng = np.random.default_rng(5)
    n = 4000
    df = pd.DataFrame(
        {
            "cell": rng.integers(0, 6, n),
            "student": rng.integers(0, 500, n),
            "y": rng.normal(size=n),
            "b": rng.integers(0, 2, n).astype(float),
        }
    )
    df["g"] = df["student"] % 3  # constant per student: (cell, g) cells keep each student's rows together
    pair = pd.factorize(df["cell"] * 1000 + df["student"])[0]
    df["in_order"] = pair  # numbered in the order of first rows
    df["in_cell"] = rng.permutation(pair.max() + 1)[pair]  # numbered out of that order
    assert df.groupby("student")["cell"].nunique().max() > 1  # students span cells: hashed pairs
    for by in (["cell"], ["cell", "g"]):
        for kind, value in (("mean", "y"), ("share", "b")):
            hashed = estimates.cell_estimates(
                df, by=by, value=value, kind=kind, cluster="student", unit="student"
            )
            for ids in ("in_order", "in_cell"):
                direct = estimates.cell_estimates(df, by=by, value=value, kind=kind, cluster=ids, unit=ids)
                pd.testing.assert_frame_equal(hashed, direct, check_exact=True)
                assert (direct["n_clusters"] < direct["n"]).all()  # clusters of several rows


def test_cell_estimates_cells_are_groupby_cells_for_every_key_type():
    # the cells (their order and key values, dtypes included) are those of a sorted pandas groupby, whatever
    # the keys: narrow and wide integers, negative ones, text, categories (unused and out of alphabetical
    # order), booleans and floats; the estimate of each cell is its own rows' mean
    rng = np.random.default_rng(7)
    n = 400
    df = pd.DataFrame(
        {
            "year": rng.integers(2016, 2020, n),
            "offset": rng.integers(-3, 3, n),
            "wide": rng.choice([5, 10**12, -(10**12)], n),
            "school": rng.choice(["S2", "S10", "S1"], n),
            "race": pd.Categorical(rng.choice(["white", "black"], n), categories=["white", "black", "asian"]),
            "flag": rng.random(n) > 0.5,
            "half": rng.choice([0.5, 1.0, 1.5], n),
            "y": rng.normal(size=n),
        }
    )
    for by in (["year"], ["offset", "school"], ["wide", "race"], ["race", "flag", "half", "year", "school"]):
        got = estimates.cell_estimates(df, by=by, value="y")
        ref = df.groupby(by, sort=True, observed=True)["y"].agg(["size", "mean"]).reset_index()
        pd.testing.assert_frame_equal(got[by], ref[by], check_column_type=False)
        np.testing.assert_array_equal(got["n"].to_numpy(), ref["size"].to_numpy())
        np.testing.assert_allclose(got["estimate"].to_numpy(), ref["mean"].to_numpy(), rtol=1e-12)


def test_cell_estimates_share_is_wilson_and_widens_with_clustering():
    df = pd.DataFrame({"cell": "a", "x": [1.0] * 5 + [0.0] * 15, "sid": np.arange(20)})
    plain = estimates.cell_estimates(df, by=["cell"], value="x", kind="share")
    np.testing.assert_allclose(
        [plain.loc[0, "ci_lower"], plain.loc[0, "ci_upper"]], [0.1119, 0.4687], atol=1e-4
    )
    # one row per cluster: still the plain Wilson interval
    single = estimates.cell_estimates(df, by=["cell"], value="x", kind="share", cluster="sid")
    np.testing.assert_allclose(
        single[["ci_lower", "ci_upper"]].to_numpy(), plain[["ci_lower", "ci_upper"]].to_numpy()
    )
    # each student twice, identical: design effect 2 * G/(G-1) -> Wilson on n_eff = 40 / (2 * 20/19) = 19
    # students with a t(19) quantile
    pairs = pd.concat([df, df], ignore_index=True)
    cl = estimates.cell_estimates(pairs, by=["cell"], value="x", kind="share", cluster="sid")
    lo, hi = estimates.wilson_interval(0.25 * 19, 19, critical=stats.t.ppf(0.975, 19))
    np.testing.assert_allclose([cl.loc[0, "ci_lower"], cl.loc[0, "ci_upper"]], [lo, hi], rtol=1e-6)
    assert cl.loc[0, "n"] == 40 and cl.loc[0, "estimate"] == 0.25


def test_school_by_group_cells_are_complete_and_protected_two_ways_by_the_joint_pass():
    # school S1: group x=1 has 4 students. The statistics show it (a complete table); the joint pass hides it
    # and enough cells that neither S1's total (within the school) nor the district's x=1 (across schools)
    # gives it back
    t = pd.DataFrame(
        {
            "school_year": 2016,
            "school_id": ["all", "all", "all", "S1", "S1", "S1", "S2", "S2", "S2"],
            "variable": ["all", "x", "x"] * 3,
            "group": ["all", "x=0", "x=1"] * 3,
            "n": [100.0, 70, 30, 40, 36, 4, 60, 34, 26],
            "estimate": np.linspace(0.1, 0.9, 9),
        }
    )
    full = estimates.complete_table(t, counts=["n"])
    assert full["n"].dtype == "Int64" and full["n"].tolist()[5] == 4 and not full["suppressed"].any()
    spec = TableSpec(
        "cell", universe=("school_year",), year="school_year", estimates={"estimate": (0.0, 1.0)}
    )
    out, report = protect_tables({"t": (full, spec)}, min_n=10, year=2016)
    p = out["t"]
    assert report.passed and p.loc[5, "suppressed"]
    assert p.loc[p["school_id"].eq("S1") & p["suppressed"]].shape[0] >= 2  # within the school
    assert p.loc[p["group"].eq("x=1") & p["suppressed"]].shape[0] >= 2  # across schools
    assert p.loc[p["suppressed"], ["n", "estimate"]].isna().all().all()
    rep = audit_published({"t": (p, spec)}, min_n=10, year=2016)
    widths = np.floor(rep.intervals["high"] + 1e-7) - np.ceil(rep.intervals["low"] - 1e-7)
    assert rep.passed and (widths >= 10).all()


# --- the indicator format ----------------------------------------------------------------------


def test_validate_indicators_normalizes_and_rejects_bad_tables():
    ind = _ind([("catch_up_rate", "all", "low_income=1.0", 2016, 40, 0.3)])
    out = indicators.validate_indicators(ind)
    assert out.loc[0, "group"] == "low_income=1" and out["n"].dtype == "Int64"
    with pytest.raises(ValueError, match="missing column.*ci_upper"):
        indicators.validate_indicators(ind.drop(columns="ci_upper"))
    with pytest.raises(ValueError, match="'reading_score'"):
        indicators.validate_indicators(ind.assign(measure="reading_score"))
    with pytest.raises(ValueError, match="group has 'low income'"):
        indicators.validate_indicators(ind.assign(group="low income"))
    with pytest.raises(ValueError, match="still shows"):
        indicators.validate_indicators(ind.assign(suppressed=True))
    with pytest.raises(ValueError, match="duplicate"):
        indicators.validate_indicators(pd.concat([ind, ind]))
    assert list(indicators.INDICATOR_COLUMNS) == [
        "measure",
        "school_id",
        "group",
        "school_year",
        "n",
        "estimate",
        "ci_lower",
        "ci_upper",
        "suppressed",
        "suppression_reason",
    ]


def test_unavailable_carries_needs():
    t = indicators.unavailable(indicators.INDICATOR_COLUMNS, "climate_surveys.csv for belonging")
    assert t.empty and list(t.columns) == list(indicators.INDICATOR_COLUMNS)
    assert t.attrs["needs"] == ["climate_surveys.csv for belonging"]
    assert indicators.needs_of(
        t, indicators.unavailable(["a"], ["x", "climate_surveys.csv for belonging"])
    ) == ["climate_surveys.csv for belonging", "x"]


# --- goals -------------------------------------------------------------------------------------


GOALS = pd.DataFrame(
    [
        # goal_id, measure, group, baseline_year, target, target_year
        ("met", "catch_up_rate", "all", 2014, 0.30, 2018),
        ("path_on", "belonging_favorable", "all", 2014, 0.60, 2018),
        ("path_off", "coherence_favorable", "all", 2014, 0.60, 2018),
        ("absence_met", "chronic_absence_rate", "all", 2015, 0.10, 2017),
        ("absence_off", "chronic_absence_rate", "low_income=1", 2015, 0.10, 2017),
        ("small", "catch_up_rate", "race_ethnicity=asian", 2014, 0.30, 2018),
        ("no_survey", "consistency_favorable", "all", 2014, 0.60, 2018),
        ("no_group", "catch_up_rate", "disability=1", 2014, 0.30, 2018),
        ("late", "growth_grade_levels", "all", 2014, 1.3, 2016),
        ("no_baseline", "engaged_share", "all", None, 0.9, 2018),
    ],
    columns=["goal_id", "measure", "group", "baseline_year", "target", "target_year"],
)

IND = _ind(
    [
        ("catch_up_rate", "all", "all", 2014, 200, 0.20),
        ("catch_up_rate", "all", "all", 2016, 210, 0.31),
        ("catch_up_rate", "all", "race_ethnicity=asian", 2016, None, None),
        ("belonging_favorable", "all", "all", 2014, 300, 0.40),
        ("belonging_favorable", "all", "all", 2016, 300, 0.50),
        ("coherence_favorable", "all", "all", 2014, 300, 0.40),
        ("coherence_favorable", "all", "all", 2016, 300, 0.49),
        ("chronic_absence_rate", "all", "all", 2015, 500, 0.14),
        ("chronic_absence_rate", "all", "all", 2016, 500, 0.10),
        ("chronic_absence_rate", "all", "low_income=1", 2015, 300, 0.20),
        ("chronic_absence_rate", "all", "low_income=1", 2016, 300, 0.19),
        ("growth_grade_levels", "all", "all", 2014, 400, 1.0),
        ("growth_grade_levels", "all", "all", 2016, 400, 1.2),
        ("engaged_share", "all", "all", 2016, 900, 0.5),
        ("catch_up_rate", "S1", "all", 2016, 80, 0.25),
        ("belonging_favorable", "S1", "all", 2016, None, None),
    ]
)


@pytest.fixture(scope="module")
def card():
    return sc.opportunity_scorecard(IND, goals=GOALS)


def test_goal_status_rules(card):
    g = card.goals.set_index("goal_id")
    assert g.loc["met", "status"] == "met" and g.loc["met", "current"] == pytest.approx(0.31)
    # belonging: path from 0.40 (2014) to 0.60 (2018) expects 0.50 in 2016; current 0.50 -> on track
    assert g.loc["path_on", "expected"] == pytest.approx(0.50) and g.loc["path_on", "status"] == "on track"
    # coherence: 0.49 < 0.50 expected -> off track
    assert (
        g.loc["path_off", "status"] == "off track"
        and "behind the straight-line path" in g.loc["path_off", "reason"]
    )
    # lower is better: 0.10 <= 0.10 met; low-income 0.19 vs path 0.20 -> 0.15 (2016) -> off track
    assert g.loc["absence_met", "status"] == "met"
    assert (
        g.loc["absence_off", "expected"] == pytest.approx(0.15)
        and g.loc["absence_off", "status"] == "off track"
    )
    assert g.loc["late", "status"] == "off track" and "target year 2016" in g.loc["late", "reason"]
    assert g.loc["no_baseline", "status"] == "off track" and "no baseline" in g.loc["no_baseline", "reason"]


def test_goal_on_suppressed_or_missing_data_says_so(card):
    g = card.goals.set_index("goal_id")
    assert g.loc["small", "status"] == "no data"
    assert g.loc["small", "reason"] == "suppressed (n < 10) in 2016"
    assert np.isnan(g.loc["small", "current"])
    assert g.loc["no_survey", "status"] == "no data" and "climate survey data" in g.loc["no_survey", "reason"]
    assert g.loc["no_group", "status"] == "no data" and "disability=1" in g.loc["no_group", "reason"]
    assert set(card.goals["status"]) <= set(sc.GOAL_STATUSES)


def test_goal_status_lower_is_better_on_track():
    ind = _ind(
        [
            ("chronic_absence_rate", "all", "all", 2015, 500, 0.20),
            ("chronic_absence_rate", "all", "all", 2016, 500, 0.14),
        ]
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["A"],
            "measure": ["chronic_absence_rate"],
            "group": ["all"],
            "baseline_year": [2015],
            "target": [0.10],
            "target_year": [2017],
        }
    )
    g = sc.opportunity_scorecard(ind, goals=goals).goals.iloc[0]
    assert g["expected"] == pytest.approx(0.15) and g["status"] == "on track"


def test_percent_targets_are_read_as_shares_with_a_warning():
    goals = GOALS.iloc[:1].assign(target=30.0)
    with pytest.warns(UserWarning, match="percentage"):
        g = sc.opportunity_scorecard(IND, goals=goals).goals.iloc[0]
    assert g["target"] == pytest.approx(0.30) and g["status"] == "met"


def test_scorecard_table_trend_and_protected_rows(card):
    t = card.table.set_index(["school_id", "measure", "group"])
    r = t.loc[("all", "catch_up_rate", "all")]
    assert (r["school_year"], r["first_year"], r["n_years"]) == (2016, 2014, 2)
    assert r["change"] == pytest.approx(0.11)
    assert t.loc[("all", "engaged_share", "all"), "n_years"] == 1
    assert pd.isna(t.loc[("all", "engaged_share", "all"), "change"])
    # the scorecard shows the indicators as protected: a row hidden by the disclosure pass stays hidden with
    # its reason; a shown row is not hidden again (the joint pass is the one place that hides cells)
    hid = _ind([("catch_up_rate", "S2", "all", 2016, None, None)]).assign(
        suppression_reason="n < 10 or complementary"
    )
    row = sc.opportunity_scorecard(hid).table.iloc[0]
    assert (
        row["suppressed"]
        and np.isnan(row["estimate"])
        and row["suppression_reason"] == "n < 10 or complementary"
    )
    shown = sc.opportunity_scorecard(_ind([("catch_up_rate", "S2", "all", 2016, 12, 0.5)])).table.iloc[0]
    assert not shown["suppressed"] and shown["estimate"] == 0.5
    # current_year limits what counts as current
    t15 = sc.opportunity_scorecard(IND, current_year=2015).table.set_index(["school_id", "measure", "group"])
    assert t15.loc[("all", "catch_up_rate", "all"), "school_year"] == 2014


def test_largest_gaps_picks_the_most_negative_unsuppressed_difference():
    gaps = pd.DataFrame(
        {
            "measure": ["grade_appropriate"] * 4 + ["engaged"] * 2,
            "label": ["Grade-appropriate assignments"] * 4 + ["Deep engagement"] * 2,
            "group": [
                "low_income",
                "low_income",
                "race_ethnicity",
                "race_ethnicity",
                "low_income",
                "low_income",
            ],
            "level": [1.0, 0.0, "black", "asian", 1.0, 0.0],
            "n": [300, 200, 150, 8, 300, 200],
            "reference": "all others",
            "estimate": [0.2, 0.3, 0.18, np.nan, 0.6, 0.55],
            "reference_estimate": [0.3, 0.2, 0.26, np.nan, 0.55, 0.6],
            "difference": [-0.10, 0.10, -0.08, np.nan, 0.05, -0.05],
            "ci_lower": [-0.15, 0.05, -0.14, np.nan, 0, -0.1],
            "ci_upper": [-0.05, 0.15, -0.02, np.nan, 0.1, 0.0],
            "suppressed": [False, False, False, True, False, False],
        }
    )
    lg = sc.largest_gaps(gaps).set_index("measure")
    assert lg.loc["grade_appropriate", "group_label"] == "low_income=1"
    assert lg.loc["grade_appropriate", "difference"] == pytest.approx(-0.10)
    assert lg.loc["engaged", "group_label"] == "low_income=0"


def test_scorecard_page_is_self_contained_and_marks_status_and_suppression(card):
    """The page is built by the presentation layer; the statistics module has no HTML."""
    from opportunity_research.report.presentation import scorecard_page

    assert not hasattr(sc, "scorecard_html") and "reporting" not in sc.__dict__
    page = scorecard_page(card, district_id="lake_<side>", school_names={"S1": "Oak & Pine"})
    assert external_resources(page) == []
    assert "Lake &lt;side&gt;" in page and "Oak &amp; Pine" in page
    assert "@media print" in page and "<script" not in page and "counter(page)" in page
    for symbol, word in (("✓", "Met"), ("↗", "On track"), ("✗", "Off track"), ("○", "No data")):
        assert f"{symbol} {word}" in page
    assert "‡</strong> Hidden to protect small groups" in page and 'data-label="Value">‡</td>' in page
    assert re.search(r"climate survey data", page)
    assert "Synthetic demonstration data" not in page  # only demo_* districts carry the banner


def test_scorecard_without_any_data_still_renders():
    empty = indicators.unavailable(indicators.INDICATOR_COLUMNS, ["climate_surveys.csv for belonging"])
    card = sc.opportunity_scorecard(empty, goals=GOALS.iloc[:2])
    assert card.table.empty and (card.goals["status"] == "no data").all()
    assert card.needs == ("climate_surveys.csv for belonging",)
    from opportunity_research.report.presentation import scorecard_page

    page = scorecard_page(card, district_id="demo_pinebrook")
    assert "Not available for this district" in page and external_resources(page) == []
    assert "Synthetic demonstration data" in page and "<h1>Pinebrook</h1>" in page


def test_shares_stay_inside_0_1_and_constant_outcomes_get_no_zero_width_interval():
    rng = np.random.default_rng(4)
    # three schools (t on 2 df would give intervals beyond 0-100%); fractional shares of time
    df = pd.DataFrame(
        {
            "cell": "a",
            "school": np.repeat([0, 1, 2], 30),
            "classroom": np.repeat(np.arange(9), 10),
            "x": rng.beta(2, 2, 90),
        }
    )
    t = estimates.cell_estimates(
        df, by=["cell"], value="x", kind="share", cluster="school", subcluster="classroom"
    )
    assert 0 <= t.loc[0, "ci_lower"] < t.loc[0, "estimate"] < t.loc[0, "ci_upper"] <= 1
    zero = estimates.cell_estimates(df.assign(x=0.0), by=["cell"], value="x", kind="share", cluster="school")
    assert zero.loc[0, "ci_lower"] == 0 and zero.loc[0, "ci_upper"] > 0.02  # Wilson: reflects sampling
    const = estimates.cell_estimates(df.assign(x=2.0), by=["cell"], value="x", kind="mean")
    assert np.isnan(const.loc[0, "ci_lower"]) and np.isnan(const.loc[0, "ci_upper"])  # no variation observed


def test_baseline_only_goal_is_baseline_set_not_on_track():
    """A goal whose baseline year is the current year has one measured year: nothing to track yet."""
    ind = pd.DataFrame(
        {
            "measure": "catch_up_rate",
            "school_id": "all",
            "group": "all",
            "school_year": [2016],
            "n": [120],
            "estimate": [0.20],
            "ci_lower": [0.14],
            "ci_upper": [0.28],
            "suppressed": False,
            "suppression_reason": "",
        }
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["G1", "G2"],
            "measure": "catch_up_rate",
            "group": "all",
            "baseline_year": [2016, 2016],
            "target": [0.40, 0.15],
            "target_year": [2019, 2019],
        }
    )
    g = sc.opportunity_scorecard(ind, goals=goals).goals.set_index("goal_id")
    assert g.loc["G1", "status"] == "baseline set" and "only the baseline year 2016" in g.loc["G1", "reason"]
    assert g.loc["G2", "status"] == "met"  # a target already reached is met, whatever the years
    # a second measured year makes progress judgeable
    two = pd.concat([ind, ind.assign(school_year=2017, estimate=0.27)], ignore_index=True)
    g2 = sc.opportunity_scorecard(two, goals=goals).goals.set_index("goal_id")
    assert g2.loc["G1", "status"] == "on track"  # path 0.20 -> 0.40 over 3 years expects 0.267 in 2017
    # every status has its rule stated, and the page prints them
    assert set(sc.GOAL_STATUS_RULES) == set(sc.GOAL_STATUSES)
    from opportunity_research.report.presentation import scorecard_page

    page = scorecard_page(sc.opportunity_scorecard(ind, goals=goals), district_id="test")
    assert "Baseline set" in page and "How a status is decided" in page
    assert all(rule.split(":")[0][:40] in page for rule in sc.GOAL_STATUS_RULES.values())


def test_goal_for_a_pooled_race_group_says_why_it_has_no_value():
    """A goal about a race/ethnicity group the analysis pooled is explained, not left as 'no data'."""
    ind = pd.DataFrame(
        {
            "measure": "engaged_share",
            "school_id": "all",
            "group": ["all", "race_ethnicity=white", "race_ethnicity=pooled_small_groups"],
            "school_year": 2016,
            "n": [300, 200, 30],
            "estimate": [0.5, 0.5, 0.4],
            "ci_lower": [0.4, 0.4, 0.3],
            "ci_upper": [0.6, 0.6, 0.5],
            "suppressed": False,
            "suppression_reason": "",
        }
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["G1", "G2"],
            "measure": "engaged_share",
            "group": ["race_ethnicity=native_hawaiian_pacific_islander", "low_income=1"],
            "target": [0.6, 0.6],
            "target_year": [2018, 2018],
        }
    )
    g = sc.opportunity_scorecard(ind, goals=goals).goals.set_index("goal_id")
    assert g.loc["G1", "status"] == "no data"
    assert "reported only together with the district's other smaller" in g.loc["G1", "reason"]
    assert g.loc["G2", "reason"] == "no data for this group (low_income=1)"


def _frame_with_gaps(n=400, seed=21):
    """Keys, values and clusters of every kind, each with some missing values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "year": rng.integers(2016, 2019, n),
            "school": pd.Series(rng.choice(["S1", "S2", "S10", None], n), dtype="str"),
            "race": pd.Categorical(
                rng.choice(["white", "black", None], n), categories=["white", "black", "asian"]
            ),
            "ell": pd.array(rng.choice([0, 1, None], n), dtype="Int64"),
            "half": rng.choice([0.5, 1.0, 2.0, np.nan], n),
            "flag": rng.random(n) < 0.5,
            "cls": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.nan], n),
            "sid": rng.integers(0, n // 2, n),
            "y": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "x": np.where(rng.random(n) < 0.1, np.nan, (rng.random(n) < 0.4).astype(float)),
        }
    )


def test_cell_estimates_leave_out_rows_missing_a_key_the_value_or_the_cluster_as_dropna_does():
    # issue 21: the rows are chosen column by column instead of by data[...].dropna(); the same table, to the bit
    df = _frame_with_gaps()
    for by in (["year"], ["school", "race"], ["ell", "half", "flag"], ["race", "year"]):
        for value, kind in (("y", "mean"), ("x", "share")):
            for opts in ({}, {"cluster": "cls", "unit": "sid"}, {"cluster": "school", "subcluster": "cls"}):
                if opts.get("cluster") in by:
                    continue
                subset = by + [value] + ([opts["cluster"]] if "cluster" in opts else [])
                got = estimates.cell_estimates(df, by=by, value=value, kind=kind, **opts)
                want = estimates.cell_estimates(
                    df.dropna(subset=subset), by=by, value=value, kind=kind, **opts
                )
                pd.testing.assert_frame_equal(got, want, check_exact=True)
                assert list(got.columns) == by + [
                    "n",
                    "n_units",
                    "n_clusters",
                    "estimate",
                    "ci_lower",
                    "ci_upper",
                ]


def test_subgroup_estimates_label_each_level_as_level_strings_does():
    # issue 21: the group labels are written once per level; the table is the one built part by part
    df = _frame_with_gaps()
    variables = ["race", "ell", "half", "flag", "school"]

    def part_by_part(data, keys, variables, **kw):
        frames = [estimates.cell_estimates(data, by=keys, **kw).assign(group="all", variable="all")]
        for v in variables:
            t = estimates.cell_estimates(data, by=keys + [v], **kw)
            t["group"] = v + "=" + estimates.level_strings(t[v])
            frames.append(t.drop(columns=[v]).assign(variable=v))
        out = pd.concat(frames, ignore_index=True)
        return out.astype({"group": "str", "variable": "str"})

    for keys, vs in ((["year"], variables), (["year", "school"], variables[:-1])):
        kw = {"value": "y", "kind": "mean", "cluster": "cls", "unit": "sid"}
        got = estimates.subgroup_estimates(df, keys=keys, variables=vs, **kw)
        pd.testing.assert_frame_equal(got, part_by_part(df, keys, vs, **kw), check_exact=True)
        if keys == ["year"]:
            labels = set(got["group"])
    assert {"half=0.5", "half=1", "half=2", "flag=True", "ell=0", "race=black", "school=S10"} <= labels
