"""Climate scales: scoring, Cronbach's alpha with Feldt's interval, summaries, suppression, indicators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.disclosure.joint import protect_table
from opportunity_research.intake.contract import CLIMATE_ITEMS
from opportunity_research.stats.estimates import wilson_interval
from opportunity_research.study import climate
from opportunity_research.study.indicators import INDICATOR_COLUMNS, validate_indicators
from opportunity_research.study.measures import cluster_mean_ci

BELONG = list(CLIMATE_ITEMS["belonging"])
ALL_ITEMS = [i for items in CLIMATE_ITEMS.values() for i in items]
# belonging score per student: S1 cycles 5,4,4,3,2 (12 of 20 favorable, mean 3.6); S2 4,3,3,2,1 (4 of 20, 2.6)
S1_V = [5, 4, 4, 3, 2] * 4
S2_V = [4, 3, 3, 2, 1] * 4


def _students():
    ids = [f"S-{i:016x}" for i in range(40)]
    low_income = [1] * 16 + [0] * 4 + [0] * 10 + [1] * 10  # S1: 4 not low-income (a small cell)
    return pd.DataFrame(
        {
            "student_id": ids,
            "school_id": ["S1"] * 20 + ["S2"] * 20,
            "race_ethnicity": ["white"] * 20 + ["black"] * 20,
            "low_income": low_income,
            "english_learner": 0,
            "disability": 0,
        }
    )


def _survey(year=2016):
    st = _students()
    v = np.array(S1_V + S2_V, dtype=float)
    data = {
        "response_id": [f"R{year}-{i}" for i in range(40)],
        "student_id": st["student_id"],
        "school_year": year,
    }
    for item in ALL_ITEMS:
        data[item] = v if item in BELONG else 3.0
    return pd.DataFrame(data)


def test_scale_scores_mean_of_answered_items_with_half_required():
    s = pd.DataFrame(
        {"cohere_1": [5, 4, 2, np.nan], "cohere_2": [4, np.nan, 2, np.nan], "cohere_3": [4, np.nan, 3, 5]}
    )
    out = climate.scale_scores(s, scales=["coherence"])
    # 3 items: at least 1.5 must be answered -> rows 2 and 4 (one answer) get no score
    np.testing.assert_allclose(out["coherence_score"], [13 / 3, np.nan, 7 / 3, np.nan])
    np.testing.assert_allclose(out["coherence_favorable"], [1.0, np.nan, 0.0, np.nan])
    assert out["coherence_answered"].tolist() == [3, 1, 3, 1]
    lenient = climate.scale_scores(s, scales=["coherence"], min_answered=0.3, favorable_at=4.5)
    np.testing.assert_allclose(lenient["coherence_score"], [13 / 3, 4, 7 / 3, 5])
    np.testing.assert_allclose(lenient["coherence_favorable"], [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="cohere_2 has 6"):
        climate.scale_scores(s.assign(cohere_2=6), scales=["coherence"])


def test_cronbach_alpha_hand_computed():
    x = pd.DataFrame({"a": [1, 2, 3, 4, 5], "b": [2, 2, 3, 5, 4], "c": [1, 3, 3, 4, 5]})
    # item variances 2.5, 1.7, 2.2; totals 4, 7, 9, 13, 14 with variance 17.3
    r = climate.cronbach_alpha(x)
    assert r["alpha"] == pytest.approx(1.5 * (1 - 6.4 / 17.3))
    assert (r["n"], r["n_items"]) == (5, 3)
    # incomplete rows are left out
    assert climate.cronbach_alpha(pd.concat([x, pd.DataFrame({"a": [1], "b": [np.nan], "c": [5]})]))["n"] == 5


def test_cronbach_alpha_and_feldt_interval_match_the_anova_route():
    # Hoyt (1941): alpha = 1 - MS_error / MS_persons; Feldt's interval = McGraw & Wong's ICC(C,k) interval
    rng = np.random.default_rng(7)
    x = np.clip(np.round(3 + rng.normal(0, 0.8, (60, 1)) + rng.normal(0, 0.7, (60, 4))), 1, 5)
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    ms_rows, ms_err = ss_rows / (n - 1), ss_err / ((n - 1) * (k - 1))
    f_obs = ms_rows / ms_err
    f_l = f_obs / stats.f.ppf(0.975, n - 1, (n - 1) * (k - 1))
    f_u = f_obs * stats.f.ppf(0.975, (n - 1) * (k - 1), n - 1)
    r = climate.cronbach_alpha(pd.DataFrame(x))
    assert r["alpha"] == pytest.approx(1 - ms_err / ms_rows)
    assert r["ci_lower"] == pytest.approx(1 - 1 / f_l) and r["ci_upper"] == pytest.approx(1 - 1 / f_u)


def test_feldt_interval_covers_the_population_alpha():
    # parallel items: reliability of one item rho = 1 / (1 + 0.8**2); alpha = k rho / (1 + (k - 1) rho)
    rng = np.random.default_rng(11)
    k, n, reps = 4, 40, 400
    rho = 1 / (1 + 0.8**2)
    true = k * rho / (1 + (k - 1) * rho)
    hits = 0
    for _ in range(reps):
        x = rng.normal(0, 1, (n, 1)) + rng.normal(0, 0.8, (n, k))
        r = climate.cronbach_alpha(pd.DataFrame(x))
        hits += r["ci_lower"] <= true <= r["ci_upper"]
    assert 0.92 <= hits / reps <= 0.98


def test_reliability_per_year_and_scale():
    rel = climate.climate_reliability(pd.concat([_survey(2015), _survey(2016)]))
    assert len(rel) == 6 and rel.attrs["needs"] == []
    # consistency items are all 3: no variance, alpha undefined rather than an error
    assert rel.loc[rel.scale == "consistency", "alpha"].isna().all()
    b = rel[(rel.scale == "belonging") & (rel.school_year == 2016)].iloc[0]
    assert b["alpha"] == pytest.approx(1.0) and b["n"] == 40 and b["n_items"] == 4


@pytest.fixture(scope="module")
def summary():
    return climate.climate_summary(_survey(), students=_students())


def test_summary_values_and_intervals_hand_computed(summary):
    s = summary[summary.scale == "belonging"].set_index(["school_id", "group"])
    assert s.loc[("all", "all"), "favorable"] == pytest.approx(16 / 40)
    assert s.loc[("all", "all"), "mean_score"] == pytest.approx(3.1)
    assert s.loc[("S1", "all"), "favorable"] == pytest.approx(12 / 20)
    lo, hi = wilson_interval(12, 20)
    assert (
        s.loc[("S1", "all"), "favorable_ci_lower"],
        s.loc[("S1", "all"), "favorable_ci_upper"],
    ) == pytest.approx((float(lo), float(hi)))
    v = np.array(S1_V, dtype=float)
    half = stats.t.ppf(0.975, 19) * v.std(ddof=1) / np.sqrt(20)
    assert s.loc[("S1", "all"), "mean_ci_lower"] == pytest.approx(3.6 - half)
    # district rows are clustered by school, but with 2 schools (t on 1 df: -3.25 to 9.45 on a 1-4 scale) the
    # interval clusters on the next level down, the students (one response each here)
    _, lo_c, hi_c, _, _ = cluster_mean_ci(S1_V + S2_V, range(40))
    assert 1 <= lo_c < 3.1 < hi_c <= 4
    assert (s.loc[("all", "all"), "mean_ci_lower"], s.loc[("all", "all"), "mean_ci_upper"]) == pytest.approx(
        (lo_c, hi_c)
    )
    # district low_income=0: S1's students 16-19 (4, 4, 3, 2) and S2's 20-29 (4, 3, 3, 2, 1, 4, 3, 3, 2, 1)
    assert s.loc[("all", "low_income=0"), "mean_score"] == pytest.approx(39 / 14)
    assert s.loc[("all", "low_income=0"), "favorable"] == pytest.approx(4 / 14)
    assert s.loc[("all", "low_income=0"), "n"] == 14


def test_summary_is_complete_and_the_joint_pass_hides_small_cells_and_their_complements(summary):
    full = summary[summary.scale == "belonging"].set_index(["school_id", "group"])
    assert full.loc[("S1", "low_income=0"), "n"] == 4 and not full["suppressed"].any()
    protected = protect_table(summary, "climate", min_n=10, year=2016)
    s = protected[protected.scale == "belonging"].set_index(["school_id", "group"])
    assert s.loc[("S1", "low_income=0"), "suppressed"]
    # within S1: low_income=1 = S1 - low_income=0; across schools: S2's cells = district - S1's cells
    assert s.loc[("S1", "low_income=1"), "suppressed"] or s.loc[("S1", "all"), "suppressed"]
    assert s.loc[("S2", "low_income=0"), "suppressed"] or s.loc[("all", "low_income=0"), "suppressed"]
    hidden = s[s["suppressed"]]
    assert hidden[["mean_score", "favorable", "favorable_ci_lower"]].isna().all().all()
    assert hidden["n"].isna().all()
    assert not s.loc[("all", "low_income=0"), "suppressed"]
    assert s.loc[("S1", "race_ethnicity=white"), "n"] == 20  # every S1 student is white


def test_item_summary_distribution_and_favorable():
    it = climate.item_summary(_survey(), students=_students())
    row = it[(it["item"] == "belong_1") & (it["school_id"] == "S1")].iloc[0]
    # S1 answers 5, 4, 4, 3, 2 (x4)
    assert row[["share_1", "share_2", "share_3", "share_4", "share_5"]].tolist() == pytest.approx(
        [0, 0.2, 0.2, 0.4, 0.2]
    )
    assert row["favorable"] == pytest.approx(0.6) and row["mean"] == pytest.approx(3.6)
    assert row["question"] == CLIMATE_ITEMS["belonging"]["belong_1"] and row["scale"] == "belonging"
    assert set(it["item"]) == set(ALL_ITEMS) and set(it["school_id"]) == {"all", "S1", "S2"}


def test_indicators_are_in_the_shared_format(summary):
    ind = climate.climate_indicators(summary)
    validate_indicators(ind)
    assert list(ind.columns) == list(INDICATOR_COLUMNS)
    assert set(ind["measure"]) == {"belonging_favorable", "consistency_favorable", "coherence_favorable"}
    row = ind[(ind.measure == "belonging_favorable") & (ind.school_id == "all") & (ind.group == "all")].iloc[
        0
    ]
    assert row["estimate"] == pytest.approx(0.4) and row["n"] == 40 and row["school_year"] == 2016


def test_district_without_a_climate_survey_gets_needs_not_an_error():
    st = _students()
    for t in (
        climate.climate_summary(None, students=st),
        climate.item_summary(None, students=st),
        climate.climate_reliability(None),
        climate.climate_gaps(None, students=st),
    ):
        assert t.empty and len(t.columns) > 0
        assert any("climate_surveys.csv" in s for s in t.attrs["needs"])
    ind = climate.climate_indicators(climate.climate_summary(None, students=st))
    assert ind.empty and list(ind.columns) == list(INDICATOR_COLUMNS)
    assert "climate_surveys.csv" in ind.attrs["needs"][0]


def test_climate_gaps_differences_between_groups():
    g = climate.climate_gaps(_survey(), students=_students(), scales=["belonging"], variables=["low_income"])
    row = g[(g.outcome == "score") & (g.level.astype(str).str.replace(".0", "", regex=False) == "1")].iloc[0]
    # all scores sum to 72 + 52 = 124; low_income=0 to 39 (14 students) -> low_income=1: 85 over 26
    assert row["n"] == 26 and row["estimate"] == pytest.approx(85 / 26)
    assert row["difference"] == pytest.approx(85 / 26 - 39 / 14)
