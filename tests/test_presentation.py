"""The presentation layer: labelled, formatted tables; headline findings; the first screen; no cycles."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from opportunity_research.report import headlines as H
from opportunity_research.report import presentation as P
from opportunity_research.report.reporting import external_resources
from opportunity_research.study.labels import SUPPRESSED_MARK


def gaps():
    return pd.DataFrame(
        {
            "measure": "grade_appropriate",
            "subject": ["ela", "ela", "ela", "math"],
            "group": ["low_income", "low_income", "disability", "low_income"],
            "level": [1.0, 0.0, 1.0, 1.0],
            "n": pd.array([412, 1388, pd.NA, 400], dtype="Int64"),
            "estimate": [0.214, 0.281, np.nan, 0.2],
            "reference": "all other students",
            "reference_n": pd.array([1388, 412, pd.NA, 1300], dtype="Int64"),
            "reference_estimate": [0.281, 0.214, np.nan, 0.25],
            "difference": [-0.067, 0.067, np.nan, -0.05],
            "ci_lower": [-0.1, 0.03, np.nan, -0.09],
            "ci_upper": [-0.03, 0.1, np.nan, -0.01],
            "ratio": [0.76, 1.31, np.nan, 0.8],
            "suppressed": [False, False, True, False],
            "suppression_reason": ["", "", "n < 10", ""],
        }
    )


def test_gap_table_labels_formats_and_marks():
    t = P.gaps_table(gaps(), "grade_appropriate")
    # every row is compared with all other students (the subtitle says so): no "Compared with" column
    assert t.headers == [
        "Group",
        "Students",
        "Group's share",
        "Comparison group's share",
        "Difference (points)",
        "95% interval",
        "Ratio",
    ]
    rows = t.frame.to_dict("records")
    assert rows[0] == {
        "Group": "Low-income students",
        "Students": "412",
        "Group's share": "21%",
        "Comparison group's share": "28%",
        "Difference (points)": "−6.7",
        "95% interval": "−10.0 to −3.0",
        "Ratio": "0.76×",
    }
    # one row per contrast: "not low-income vs all others" mirrors "low-income vs all others" and is dropped
    assert "Students not from low-income families" not in [r["Group"] for r in rows] and len(rows) == 3
    # a suppressed row keeps its label; every number, its count included, shows the mark
    assert rows[1]["Group"] == "Students with disabilities"
    assert {v for k, v in rows[1].items() if k != "Group"} == {SUPPRESSED_MARK}
    # the group names are row headers; each subject its own table whose repeated header names the subject
    html = t._repr_html_()
    assert "<caption>" in html and "Grade-appropriate assignments: access by student group" in html
    assert ">ELA<" in html and ">Math<" in html  # subjects as row groups
    assert '<th scope="row"' in html and html.count("<thead>") == 2
    assert re.search(r'<thead>.*?scope="colgroup"[^>]*>Math</th>.*?</thead>', html, re.DOTALL)
    assert 'data-label="95% interval"' in html and 'table class="gt_table reflow"' in html
    assert "<style" not in html and external_resources(html) == []
    assert "Hidden to protect small groups: describes fewer than 10 students" in html
    # a group family hidden in every row says so in one sentence; a family with a shown row does not
    assert (
        "Students with disabilities (IEP): every group in this table is hidden to protect small groups."
        in html
    )
    assert "Low income: every group" not in html
    assert not re.search(r"low_income|ci_lower|>1\.0<|nan", html)


def test_every_table_needs_a_caption_and_no_identifier_column():
    with pytest.raises(ValueError, match="caption"):
        P.table(pd.DataFrame({"n": [1]}), ["n"], caption="")
    with pytest.raises(ValueError, match="identifier"):
        P.table(pd.DataFrame({"student_id": ["a"]}), ["student_id"], caption="x")
    empty = P.table(pd.DataFrame(columns=["n"]), ["n"], caption="Nothing", empty="No rows here.")
    assert "No rows here." in empty.html and "<table" not in empty.html


def analysis_stub():
    rates = pd.DataFrame(
        {
            "resource": ["grade_appropriate", "strong_instruction"],
            "subject": "all",
            "n": [500, 200],
            "estimate": [0.18, 0.15],
            "ci_lower": [0.15, 0.10],
            "ci_upper": [0.21, 0.20],
        }
    )
    demands = pd.DataFrame(
        {
            "measure": ["met_demands", "met_grade_level"],
            "n": [800, 800],
            "estimate": [0.72, 0.12],
            "ci_lower": [0.70, 0.10],
            "ci_upper": [0.74, 0.14],
        }
    )
    growth = pd.DataFrame(
        {
            "subject": "ela",
            "model": "all_four",
            "effect": "access",
            "resource": ["grade_appropriate", "engaged"],
            "estimate": [0.3, 0.1],
            "ci_lower": [0.1, -0.2],
            "ci_upper": [0.5, 0.4],
            "contrast_estimate": [0.09, 0.03],
            "contrast_ci_lower": [0.03, -0.06],
            "contrast_ci_upper": [0.15, 0.12],
            "months": [2.5, 0.8],
            "months_ci_lower": [0.8, -1.7],
            "months_ci_upper": [4.2, 3.3],
            "n": 900,
            "converged": [True, True],
        }
    )
    return SimpleNamespace(rates=rates, demands=demands, gaps=gaps(), growth=growth, catch_up=pd.DataFrame())


def test_headline_findings_are_ranked_by_hours_students_lose():
    found = H.headline_findings(analysis_stub())
    assert 3 <= len(found) <= 5
    scores = [f.score for f in found]
    assert scores == sorted(scores, reverse=True)
    # one finding per kind, the kind that loses the most hours first: work below grade level (88% of 180 hours),
    # then the resource students lack most (strong instruction, 85%; grade-appropriate assignments, 82%, not shown)
    what = [f.what for f in found]
    assert what[0] == "Showed mastery of grade-level standards" and found[0].number == "12%"
    assert found[0].interval == "95% interval 10% to 14%; 800 work samples" and found[
        0
    ].score == pytest.approx(0.88 * 180)
    assert what[1] == "Strong instruction" and found[1].score == pytest.approx(0.85 * 180)
    assert "About 153 of 180 class hours" in found[1].meaning and "not a target" in found[1].meaning
    assert "Grade-appropriate assignments" not in what
    # the largest clear gap: -6.7 points (interval excludes 0) -> 12 fewer hours; its n is the group and the others
    gap = next(f for f in found if f.indicator == "gap.grade_appropriate")
    assert gap.number == "−6.7 points" and gap.interval == "95% interval −10.0 to −3.0; 412 vs 1,388 students"
    assert gap.score == pytest.approx(0.067 * 180)
    # growth: the number is the 25th -> 75th contrast, and the months come from that same contrast
    g = next(f for f in found if f.indicator == "growth.ela")
    assert g.number == "0.09 SD" and g.interval.startswith("95% interval 0.03 to 0.15")
    assert "Roughly 2.5 months of learning (95% interval 0.8 to 4.2" in g.meaning
    assert g.score == pytest.approx(2.5 * 20)


def test_district_names_and_demo_flag():
    assert P.district_name("demo_lakeside") == "Lakeside" and P.is_demo("demo_lakeside")
    assert P.district_name("north_valley_usd") == "North Valley USD" and not P.is_demo("north_valley_usd")


def test_scorecard_module_returns_data_only_and_there_is_no_import_cycle():
    # in a fresh interpreter: importing the statistics module loads no presentation module
    code = (
        "import sys, opportunity_research.study.scorecard; "
        "print(sorted(m for m in sys.modules if m in ('opportunity_research.report.reporting', "
        "'opportunity_research.report.presentation', 'opportunity_research.report.pages')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
    sc = importlib.import_module("opportunity_research.study.scorecard")
    src = Path(sc.__file__).read_text(encoding="utf-8")
    assert "<table" not in src and "import reporting" not in src and "from .reporting" not in src
    labels_src = Path(importlib.import_module("opportunity_research.study.labels").__file__).read_text(
        encoding="utf-8"
    )
    assert "from .presentation" not in labels_src and "from .reporting" not in labels_src


def test_ratio_finding_prints_the_ratios_own_interval_and_catch_up_comes_last():
    a = analysis_stub()
    a.composition = pd.DataFrame(
        {
            "measure": "strong_instruction",
            "group": "majority_low_income",
            "level": [0.0, 1.0],
            "n": [26, 96],
            "estimate": [0.23, 0.06],
            "reference_n": [96, 26],
            "reference_estimate": [0.06, 0.23],
            "difference": [0.17, -0.17],
            "ci_lower": [0.07, -0.27],
            "ci_upper": [0.27, -0.07],
            "ratio": [3.8, 0.26],
            "ratio_ci_lower": [2.0, 0.15],
            "ratio_ci_upper": [6.6, 0.5],
            "suppressed": False,
        }
    )
    a.catch_up = pd.DataFrame(
        {
            "school_id": "all",
            "group": "all",
            "subject": "all",
            "start_year": [2014, 2015],
            "years_later": 1,
            "n": [300, 310],
            "estimate": [0.2, 0.25],
            "ci_lower": [0.15, 0.2],
            "ci_upper": [0.25, 0.3],
            "suppressed": False,
        }
    )
    found = {f.what: f for f in H.headline_findings(a, top=10)}
    comp = found["Strong instruction: higher- vs lower-income classrooms"]
    # the ratio's own interval (2.0 to 6.6), never the difference's (+7.0 to +27.0 points)
    assert comp.number == "3.8×" and comp.interval == "95% interval 2.0 to 6.6; 26 vs 96 classrooms"
    assert "about five times as much" in comp.meaning and comp.score == pytest.approx(0.17 * 180)
    assert not any(f.startswith("Caught up") for f in found)  # not a headline while others stand out
    few = H.headline_findings(
        SimpleNamespace(
            rates=a.rates.iloc[1:],
            demands=a.demands.iloc[:0],
            gaps=a.gaps.iloc[:0],
            growth=a.growth.iloc[:0],
            catch_up=a.catch_up,
        )
    )
    assert few[-1].what == "Caught up a year later (students behind in 2015-16)"
    assert few[-1].number == "25%" and "three years later" in few[-1].meaning


def test_free_text_loses_its_identifiers():
    assert P.humanize("no data for this group (race_ethnicity=native_hawaiian_pacific_islander)") == (
        "no data for this group (Native Hawaiian or Other Pacific Islander students)"
    )
    assert (
        P.humanize("singular fit: the variance of school_id is zero")
        == "singular fit: the variance of school is zero"
    )
    goals = pd.DataFrame(
        {
            "goal_id": ["G1"],
            "measure": ["engaged_share"],
            "group": ["low_income=1"],
            "target": [0.6],
            "target_year": [2018],
            "current": [np.nan],
            "current_year": [2016],
            "status": ["no data"],
            "reason": ["no data for this group (low_income=1)"],
        }
    )
    row = P.goals_table(goals).frame.iloc[0].to_dict()
    assert (
        row["Students"] == "Low-income students"
        and row["Why"] == "no data for this group (Low-income students)"
    )
    assert row["Measure"] == "Deep engagement (average student's share)" and row["Status"] == "○ No data"
