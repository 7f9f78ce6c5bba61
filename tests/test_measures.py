"""TNTP scoring rules on hand-built cases, and access measures against the planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.study import measures as M

from .demo import district, truth


def test_assignment_cut_point_and_missing_items():
    a = pd.DataFrame(
        {"content": [2, 2, 1, 0, 2], "practice": [1, 1, 1, 0, None], "relevance": [1, 0, 1, 0, 2]}
    )
    out = M.score_assignments(a)
    assert out["assignment_score"].tolist()[:4] == [4, 3, 3, 0]
    assert out["grade_appropriate"].tolist()[:4] == [1, 0, 0, 0]  # 4 is in, 3 is out
    assert np.isnan(out["grade_appropriate"].iloc[4])  # a missing item is not a "no"
    assert M.score_assignments(a, cut=3)["grade_appropriate"].tolist()[:3] == [1, 1, 1]


def test_ipg_composite_rescales_and_cuts_at_two():
    o = pd.DataFrame(
        {
            "ca1a": [1, 1, 0],
            "ca1b": [1, 0, 0],
            "ca1c": [0, 0, 0],
            "ca2": [3, 3, 1],
            "ca3": [3, 2, 1],
            "col": [2, 3, 1],
        }
    )
    out = M.score_observations(o)
    # (col-1 + ca1 + ca2-1 + ca3-1) / 4: (1+2+2+2)/4 = 1.75; (2+1+2+1)/4 = 1.5; 0
    assert out["ipg_composite"].tolist() == [1.75, 1.5, 0.0]
    assert out["strong_instruction"].tolist() == [0, 0, 0]
    o2 = o.assign(col=[4, 4, 1], ca3=[4, 3, 1])  # (3+2+2+3)/4 = 2.5 ; (3+1+2+2)/4 = 2.0 (boundary)
    assert M.score_observations(o2)["strong_instruction"].tolist() == [1, 1, 0]


def test_engagement_boundary():
    e = pd.DataFrame(
        {
            "eng_interest": [2, 2, 3],
            "eng_like": [2, 2, 3],
            "eng_losttrack": [2, 1, None],
            "eng_moreabout": [2, 2, 3],
        }
    )
    out = M.score_engagement(e)
    assert out["engagement_score"].tolist()[:2] == [8, 7]
    assert out["engaged"].tolist()[:2] == [1, 0]
    assert np.isnan(out["engaged"].iloc[2])


def test_expectations_both_forms_with_reverse_coding():
    t = pd.DataFrame(
        {
            "form": ["current", "current", "old", "old"],
            "exp_fairtomaster": [3, 3, None, None],
            "exp_oneyearenough": [3, 3, None, None],
            "exp_allstudents": [3, 2, 5, 5],
            "exp_appropriate": [3, 3, None, None],
            "exp_toochallenging": [None, None, 0, 2],
            "exp_oneyear": [None, None, 3, 3],
            "exp_different": [None, None, 1, 2],
            "exp_overburden": [None, None, 5, 5],
            "exp_began": [None, None, 2, 2],
        }
    )
    out = M.score_expectations(t)
    # old: 5 + 3 + (5-0) + (5-1) + (5-5) + (5-2) = 20 >= 18; second: 5 + 3 + 3 + 3 + 0 + 3 = 17
    assert out["expectations_score"].tolist() == [12, 11, 20, 17]
    assert out["high_expectations"].tolist() == [1, 0, 1, 0]


def test_cluster_mean_ci_matches_hand_computation():
    est, lo, hi, n, g = M.cluster_mean_ci([1, 0, 1, 1, 0, 0], ["a", "a", "b", "b", "c", "c"])
    # cluster sums 1, 2, 0; sizes 2; mean .5: var = 3/2 * ((1-1)^2 + (2-1)^2 + (0-1)^2) / 36 = 1/12
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * np.sqrt(1 / 12)
    assert (est, n, g) == (0.5, 6, 3)
    # a share: Wilson on n / deff with deff = (1/12) / (0.25/6) = 2, t(2) critical value; inside 0-1 where
    # the t interval (0.5 -+ 1.24) is not
    from opportunity_research.stats.estimates import wilson_interval

    wl, wh = wilson_interval(1.5, 3, critical=stats.t.ppf(0.975, 2))
    assert lo == pytest.approx(float(wl)) and hi == pytest.approx(float(wh)) and 0 <= lo < hi <= 1
    assert 0.5 - half < 0  # what the t interval would have published
    # a mean of non-binary values keeps the t interval
    est, lo, hi, n, g = M.cluster_mean_ci([2, 0, 2, 2, 0, 0], ["a", "a", "b", "b", "c", "c"])
    assert lo == pytest.approx(1 - 2 * half) and hi == pytest.approx(1 + 2 * half)


def test_student_access_recovers_planted_overall_rates():
    d, t = district("demo_lakeside"), truth("demo_lakeside")
    acc = M.student_access(d)
    assert set(acc["subject"]) == {"ela", "math"}
    for r in M.RESOURCES:
        for s in ("ela", "math"):
            got = acc.loc[acc["subject"] == s, r].mean()
            # one expectations survey per section (~60 per subject): a wider tolerance for that resource
            tol = 0.15 if r == "high_expectations" else 0.04
            assert got == pytest.approx(t["access"][r][s]["overall"], abs=tol), (r, s)


def test_hours_without_follow_from_the_share():
    d = district("demo_riverton")
    cls = M.classroom_access(d)
    assert np.allclose(
        cls["hours_without_grade_appropriate"], (1 - cls["grade_appropriate"]) * 180, equal_nan=True
    )
    rates = M.resource_rates(d)
    assert (rates["hours_with"] + rates["hours_without"]).round(9).eq(180).all()


def test_demands_vs_standards_contrast():
    t = M.demands_vs_standards(district("demo_lakeside")).set_index("measure")
    assert t.loc["met_demands", "estimate"] > 0.6
    assert t.loc["met_grade_level", "estimate"] < 0.25
    assert (
        t.loc["met_grade_level", "ci_lower"]
        < t.loc["met_grade_level", "estimate"]
        < t.loc["met_grade_level", "ci_upper"]
    )
