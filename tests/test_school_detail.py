"""Per-school detail on the pages stays bounded as a district's schools grow (issue 21).

A table with one row per school shows every school up to ``config.PAGE_SCHOOLS``; above that, per comparison,
the lowest, middle and highest schools with their rank and a note naming the CSV with every school
(:mod:`opportunity_research.report.school_detail`). Here: the pages' size does not grow with the number of
schools, every value shown is the published row's, hidden values are never ranked, small districts' tables are
unchanged, and a large district's scorecard page passes axe-core and prints.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from opportunity_research import config
from opportunity_research.report import presentation as P
from opportunity_research.report.pages import _downloads
from opportunity_research.report.school_detail import EACH_END, csv_label, select_schools
from opportunity_research.study import labels
from opportunity_research.study.scorecard import opportunity_scorecard

pytestmark = pytest.mark.usefixtures("worker_browser")  # the worker's one Chromium (tests/conftest.py)

MEASURES = ("grade_appropriate_share", "engaged_share", "catch_up_rate", "growth_grade_levels")


def _card(n_schools: int, *, hidden_every: int = 0, seed: int = 1):
    """A scorecard of ``n_schools`` schools (latest year 2018), every measure per school; every
    ``hidden_every``-th school's rows suppressed."""
    rng = np.random.default_rng(seed)
    rows = []
    ids = [f"S{i:04d}" for i in range(n_schools)]
    for m in MEASURES:
        scale = 1.5 if m == "growth_grade_levels" else 1.0
        for y in (2017, 2018):
            rows.append((m, "all", y, 5000, 0.4 * scale))
            for i, s in enumerate(ids):
                hidden = hidden_every and i % hidden_every == 0
                rows.append(
                    (m, s, y, None if hidden else int(rng.integers(20, 900)), rng.uniform(0.05, 0.9) * scale)
                )
    ind = pd.DataFrame(
        {
            "measure": [r[0] for r in rows],
            "school_id": [r[1] for r in rows],
            "group": "all",
            "school_year": [r[2] for r in rows],
            "n": [pd.NA if r[3] is None else r[3] for r in rows],
            "estimate": [np.nan if r[3] is None else r[4] for r in rows],
            "suppressed": [r[3] is None for r in rows],
            "suppression_reason": ["n < 10" if r[3] is None else "" for r in rows],
        }
    )
    ind["ci_lower"], ind["ci_upper"] = ind["estimate"] - 0.04, ind["estimate"] + 0.04
    names = {s: f"Oak School {i}" for i, s in enumerate(ids)}
    return opportunity_scorecard(ind, school_names=names), names


def _growth(n_schools: int, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = ["all"] + [f"S{i:04d}" for i in range(n_schools)]
    t = pd.DataFrame(
        [
            (subj, 2015, 2018, s, "all", "all", int(rng.integers(30, 900)), rng.normal(-0.5, 0.3), g)
            for subj in ("ela", "math", "all")
            for s in ids
            for g in [rng.normal(1.05, 0.1)]
        ],
        columns=[
            "subject",
            "start_year",
            "end_year",
            "school_id",
            "group",
            "variable",
            "n",
            "start_offset",
            "growth",
        ],
    )
    t["growth_ci_lower"], t["growth_ci_upper"] = t["growth"] - 0.05, t["growth"] + 0.05
    t["suppressed"] = False
    return t


def _pages(n: int) -> dict[str, str]:
    card, names = _card(n)
    return {
        "appendix schools": P.schools_table(card).html,
        "scorecard": P.scorecard_page(card, district_id="metro_test"),
        "growth": P.grade_level_growth_table(_growth(n), school_names=names).html,
    }


def test_pages_stay_bounded_as_schools_grow():
    """40 times the schools, the same page size (within the digits of the counts): without the rule the
    schools table and the scorecard grow with every school (about 40 times here)."""
    small, large = _pages(50), _pages(2000)
    for name in small:
        assert len(large[name]) < 1.05 * len(small[name]), (name, len(small[name]), len(large[name]))
    rows_per_measure = 2 * EACH_END + 1
    assert large["appendix schools"].count('<th scope="row"') <= len(MEASURES) * rows_per_measure
    assert large["growth"].count('<th scope="row"') <= 3 * (rows_per_measure + 1)  # + the district's row


def test_shown_schools_are_the_lowest_middle_and_highest_with_the_published_values():
    card, names = _card(300, hidden_every=7)
    t = P.schools_table(card)
    assert t.headers == ["School", "Rank", "Value", "95% interval", "Students"]
    sch = card.table[(card.table["school_id"] != "all") & (card.table["group"] == "all")]
    by_name = {names[s]: s for s in names}
    shown = t.frame
    assert len(shown) == len(MEASURES) * (2 * EACH_END + 1)
    per_measure = len(shown) // len(MEASURES)
    for k, m in enumerate(MEASURES):
        part = shown.iloc[k * per_measure : (k + 1) * per_measure]
        rows = sch[sch["measure"] == m]
        valued = rows[~rows["suppressed"].astype(bool)].sort_values(["estimate", "school_id"])
        total = len(valued)
        want = (
            list(range(1, EACH_END + 1)) + [(total + 1) // 2] + list(range(total - EACH_END + 1, total + 1))
        )
        assert part["Rank"].tolist() == [f"{r} of {total}" for r in want]
        for (_, r), rank in zip(part.iterrows(), want):
            row = rows[rows["school_id"] == by_name[r["School"]]].iloc[0]
            assert row["school_id"] == valued.iloc[rank - 1]["school_id"]
            value = (
                labels.percent(row["estimate"]) if m != "growth_grade_levels" else f"{row['estimate']:.2f}"
            )
            assert r["Value"] == value  # one value per number: the published row, formatted as everywhere
            assert r["Students"] == labels.count(row["n"])
    # a hidden school is never shown, never ranked, and is not counted in "of N"
    hidden = {names[s] for s in sch.loc[sch["suppressed"].astype(bool), "school_id"]}
    assert hidden and not hidden & set(shown["School"])
    assert labels.SUPPRESSED_MARK not in t.html


def test_the_note_names_and_links_the_csv_with_every_school(tmp_path):
    card, names = _card(40)
    html = P.schools_table(card).html
    assert '<a href="tables/scorecard.csv">Scorecard (CSV)</a>' in html
    assert "40 schools, more than a page lists" in html
    g = P.grade_level_growth_table(_growth(40), school_names=names).html
    assert '<a href="tables/growth_grade_levels.csv">Growth grade levels (CSV)</a>' in g
    # the same name as the report's Downloads list gives the file
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "growth_grade_levels.csv").write_text("x\n")
    assert (csv_label("growth_grade_levels"), "tables/growth_grade_levels.csv") in _downloads(tmp_path, False)


@pytest.mark.parametrize("n", [7, config.PAGE_SCHOOLS])
def test_a_district_of_few_schools_shows_every_school_unchanged(n):
    """Up to PAGE_SCHOOLS schools the tables are what they were: every school, no rank, no note (the demo
    districts have 2-7 schools, so their pages are byte for byte the same)."""
    card, names = _card(n, hidden_every=3)
    unlimited = {"max_schools": 10**9}
    assert P.schools_table(card).html == P.schools_table(card, **unlimited).html
    assert P.scorecard_page(card, district_id="demo_x", generated=pd.Timestamp("2026-01-01").date()) == (
        P.scorecard_page(card, district_id="demo_x", generated=pd.Timestamp("2026-01-01").date(), **unlimited)
    )
    g = _growth(n)
    assert (
        P.grade_level_growth_table(g, school_names=names).html
        == P.grade_level_growth_table(g, school_names=names, **unlimited).html
    )
    html = P.schools_table(card).html
    assert "Rank" not in html and "tables/scorecard.csv" not in html
    assert all(name in html for name in names.values())


def test_one_school_more_than_the_limit_is_cut_down():
    card, _ = _card(config.PAGE_SCHOOLS + 1)
    _shown, info = select_schools(card.table[card.table["group"] == "all"], within=["measure", "school_year"])
    assert info == {"schools": config.PAGE_SCHOOLS + 1, "each_end": EACH_END}
    assert "Rank" in P.schools_table(card).headers


def test_a_large_districts_scorecard_meets_wcag_and_prints(tmp_path):
    """A 400-school scorecard page: no serious or critical axe-core violation, every body row named by a row
    header, and it prints within every scorecard's budget of 6 pages (every school would take dozens): the
    selected schools print in two columns, the first table's subtitle saying what is shown."""
    from pypdf import PdfReader

    from opportunity_research.report.browser import AXE_SCRIPT, axe_violations, print_pdf, shared_chromium

    card, _ = _card(400, hidden_every=11)
    page = tmp_path / "scorecard.html"
    page.write_text(P.scorecard_page(card, district_id="metro_test"), encoding="utf-8")
    assert AXE_SCRIPT.exists(), "run 'make browser' (axe-core)"
    browser = shared_chromium()
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.goto(page.as_uri(), wait_until="load")
    found = axe_violations(tab)
    unnamed = tab.evaluate("""() => [...document.querySelectorAll('table')].filter(t =>
        [...t.tBodies].some(b => [...b.rows].some(r => r.cells.length > 1 && !r.querySelector('th')))).length""")
    tab.close()
    pdf = print_pdf(page, tmp_path / "scorecard.pdf", browser=browser)
    assert not found, [(v["id"], v["help"], v["nodes"]) for v in found]
    assert unnamed == 0
    pages = len(PdfReader(pdf).pages)
    assert pages <= 6, pages
    text = " ".join(p.extract_text() or "" for p in PdfReader(pdf).pages)
    assert "Scorecard (CSV)" in text and re.search(r"\b1 of \d{3}\b", text)
    assert "400 schools, more than a page lists" in text.replace("\n", " ")


#: A large district's whole scorecard: every measure the analysis publishes, by student group and by school.
_ALL_MEASURES = (
    "grade_appropriate_share", "strong_instruction_share", "engaged_share", "high_expectations_share",
    "belonging_favorable", "consistency_favorable", "coherence_favorable", "catch_up_rate",
    "growth_grade_levels", "chronic_absence_rate", "advanced_course_rate",
)  # fmt: skip
_GROUPS = [
    f"{v}={x}" for v in ("disability", "english_learner", "low_income", "started_behind") for x in (0, 1)
] + [
    f"race_ethnicity={r}"
    for r in (
        "american_indian_alaska_native",
        "asian",
        "black",
        "hispanic_latino",
        "native_hawaiian_pacific_islander",
    )
    + ("two_or_more", "white")
]


def test_a_large_districts_whole_scorecard_prints_within_six_pages(tmp_path):
    """Eleven measures, fifteen student groups, goals and 175 schools (100,000 students of the synthetic district):
    the scorecard prints within every scorecard's budget of 6 pages (it printed 8 when the selected schools took
    the page's whole width), with no table cut at the page's edge."""
    from pypdf import PdfReader

    from opportunity_research.report.browser import print_pdf, shared_chromium

    rng = np.random.default_rng(5)
    schools = [f"S{i:03d}" for i in range(175)]
    keys = [(m, "all", g) for m in _ALL_MEASURES for g in ["all", *_GROUPS]]
    keys += [(m, s, "all") for m in _ALL_MEASURES for s in schools]
    ind = pd.DataFrame(keys, columns=["measure", "school_id", "group"]).assign(
        school_year=2016, n=rng.integers(300, 90_000, len(keys)), suppressed=False, suppression_reason=""
    )
    ind["estimate"] = rng.uniform(0.05, 0.9, len(ind)) * np.where(
        ind["measure"] == "growth_grade_levels", 2, 1
    )
    ind["ci_lower"], ind["ci_upper"] = ind["estimate"] - 0.03, ind["estimate"] + 0.03
    goals = pd.DataFrame(
        {
            "goal_id": [f"G{i}" for i in range(1, 7)],
            "measure": list(_ALL_MEASURES[:6]),
            "group": ["all", "low_income=1", "all", "english_learner=1", "all", "all"],
            "baseline_year": 2016,
            "target": 0.6,
            "target_year": 2018,
            "description": [f"Goal {i}: a share of 60% by 2018-19." for i in range(1, 7)],
        }
    )
    names = {s: f"Metro Elementary School {i}" for i, s in enumerate(schools)}
    card = opportunity_scorecard(ind, goals=goals, school_names=names)
    page = tmp_path / "scorecard.html"
    page.write_text(P.scorecard_page(card, district_id="metro_test"), encoding="utf-8")
    reader = PdfReader(print_pdf(page, tmp_path / "scorecard.pdf", browser=shared_chromium()))
    assert len(reader.pages) <= 6, len(reader.pages)
    text = " ".join(p.extract_text() or "" for p in reader.pages)
    assert "175 schools, more than a page lists" in re.sub(r"\s+", " ", text)
    # every school row shown prints whole: its n (the last column) is on the page
    shown = select_schools(card.table[card.table["school_id"] != "all"], within=["measure"])[0]
    assert all(f"{n:,}" in text for n in shown["n"])


def test_the_report_says_the_rule_it_applies():
    """The notebook's appendix text names the limit the code uses."""
    import json

    nb = json.loads((config.project_root() / "notebooks" / "district_report.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert f"more than {config.PAGE_SCHOOLS} schools" in text
    assert "five lowest, middle and five highest" in text and EACH_END == 5
