"""One indicator table per district: one value, one interval, one n on every page that prints it.

Unit tests on a stub analysis (the ratio's own interval, months from the contrast beside them, the Spanish
catalogue), then a walk over the built demo reports (`make reports`): every indicator of
``tables/indicators.csv`` against ``findings.json``, the report's first screen, the board summary in both
languages, the scorecard's district measures and the cross-district page.
"""

from __future__ import annotations

import ast
import html as _html
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from opportunity_research import config
from opportunity_research.report.indicator_table import (
    INDICATOR_FIELDS,
    fmt_interval,
    fmt_value,
    indicator_table,
)
from opportunity_research.study import labels

REPORTS = config.project_root() / "reports"
TEMPLATES = config.project_root() / "opportunity_research" / "report" / "templates"


def stub():
    rates = pd.DataFrame(
        {
            "resource": ["strong_instruction"],
            "subject": "all",
            "n": [481],
            "estimate": [0.0956],
            "ci_lower": [0.0687],
            "ci_upper": [0.1316],
        }
    )
    comp = pd.DataFrame(
        {
            "measure": "strong_instruction",
            "group": "majority_low_income",
            "level": [0.0, 1.0],
            "n": [26, 96],
            "estimate": [0.23, 0.06],
            "reference_n": [96, 26],
            "reference_estimate": [0.06, 0.23],
            "difference": [0.169, -0.169],
            "ci_lower": [0.074, -0.263],
            "ci_upper": [0.263, -0.074],
            "ratio": [3.6, 0.28],
            "ratio_ci_lower": [2.0, 0.15],
            "ratio_ci_upper": [6.6, 0.5],
            "suppressed": False,
        }
    )
    growth = pd.DataFrame(
        {
            "subject": ["ela", "ela"],
            "model": "all_four",
            "effect": ["access", "extra_if_behind"],
            "resource": "engaged",
            "estimate": [1.25, 0.2],
            "ci_lower": [0.5, -0.1],
            "ci_upper": [2.0, 0.5],
            "contrast_estimate": [0.35, 0.05],
            "contrast_ci_lower": [0.14, -0.03],
            "contrast_ci_upper": [0.56, 0.14],
            "months": [4.6, 0.7],
            "months_ci_lower": [1.8, -0.4],
            "months_ci_upper": [7.4, 1.8],
            "n": 900,
            "converged": True,
        }
    )
    return SimpleNamespace(
        rates=rates,
        demands=pd.DataFrame(),
        gaps=pd.DataFrame(),
        composition=comp,
        growth=growth,
        catch_up=pd.DataFrame(),
    )


def test_a_ratio_carries_its_own_interval_and_months_come_from_the_effect_beside_them():
    ind = indicator_table(stub()).set_index("indicator")
    assert list(ind.reset_index().columns) == list(INDICATOR_FIELDS)
    r = ind.loc["income_ratio.strong_instruction"]
    assert (r["value_text"], r["interval_text"], r["n_text"]) == ("3.6×", "2.0 to 6.6", "26 vs 96 classrooms")
    g = ind.loc["growth.ela"]
    # the printed effect is the 25th -> 75th contrast (0.35 SD), whose conversion the months are; not 1.25 SD
    assert g["value_text"] == "0.35" and g["interval_text"] == "0.14 to 0.56" and g["months"] == 4.6
    s = ind.loc["share.strong_instruction"]
    assert (s["value_text"], s["interval_text"], s["n_text"]) == ("10%", "7% to 13%", "481 observed lessons")
    assert s["hours_lost"] == pytest.approx((1 - 0.0956) * 180)


def test_printed_formats():
    assert (
        fmt_value("points", -0.121) == "−12.1" and fmt_interval("points", -0.176, -0.063) == "−17.6 to −6.3"
    )
    assert fmt_value("ratio", 1.8) == "1.8×" and fmt_interval("share", 0.15, 0.225) == "15% to 22%"
    assert labels.localize("1,500 students, 0.06 to 0.12 SD", "es") == "1.500 students, 0,06 a 0,12 SD"


def test_the_spanish_catalogue_translates_every_summary_string():
    src = (TEMPLATES / "summary.html.j2").read_text(encoding="utf-8")
    msgids = re.findall(r'T\("([^"]+)"\)', src)
    from opportunity_research.intake.contract import POOLED_RACE_ETHNICITY, RACE_ETHNICITY

    # the pooled group of the smallest race/ethnicity groups too (a small district's summary names it)
    msgids += [labels.level("race_ethnicity", k) for k in [*RACE_ETHNICITY, POOLED_RACE_ETHNICITY]]
    msgids += [v for pair in labels._FLAG_LEVELS.values() for v in pair] + list(labels.SUBJECTS.values())
    msgids += list(labels.UNITS.values())
    # and the page's own code: a branch that only a district's real data takes (not a demo, no gap) included
    code = (TEMPLATES.parent / "summary.py").read_text(encoding="utf-8")
    msgids += [ast.literal_eval(m) for m in re.findall(r'\bT\(\s*("(?:[^"\\]|\\.)*")\s*\)', code)]
    assert "The district's own records" in msgids
    missing = [m for m in msgids if not _has(m)]
    assert not missing, missing
    with pytest.raises(KeyError, match="no es translation"):
        labels.translate("A sentence nobody wrote", "es")
    assert labels.translate("A sentence nobody wrote", "en") == "A sentence nobody wrote"


def test_the_spanish_catalogue_is_read_once_per_process(monkeypatch):
    """The board summary translates a few hundred strings: the .po file is parsed once, not once per string."""
    from babel.messages import pofile

    real, calls = pofile.read_po, []
    monkeypatch.setattr(pofile, "read_po", lambda *a, **k: calls.append(1) or real(*a, **k))
    labels._catalogue.cache_clear()
    try:
        assert [labels.translate(labels.SUBJECTS["math"], "es") for _ in range(3)] == [
            labels.translate(labels.SUBJECTS["math"], "es")
        ] * 3
        assert len(calls) == 1
    finally:
        labels._catalogue.cache_clear()  # the next test reads the real file again


def _has(text: str) -> bool:
    try:
        labels.translate(text, "es")
    except KeyError:
        return False
    return True


# ---------------------------------------------------------------------------------------------------------
# The built reports


def _districts() -> list[Path]:
    if not REPORTS.exists():
        return []
    return [
        p
        for p in sorted(REPORTS.iterdir())
        if not p.name.startswith(".") and p.name != "cross_district" and (p / "findings.json").exists()
    ]


DISTRICTS = _districts()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", _html.unescape(re.sub(r"<[^>]+>", " ", html)))


def _cards(html: str) -> list[str]:
    """The text of each headline card (number, interval and n, what, meaning)."""
    return [_text(li).strip() for li in re.findall(r"<li><div class=\"figure\">(.*?)</li>", html, re.DOTALL)]


def _rows(html: str) -> list[str]:
    return [_text(tr).strip() for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.DOTALL)]


def _value(token: str) -> float:
    return float(token.replace("−", "-").replace(",", "").rstrip("%×"))


def _source(tables: dict[str, pd.DataFrame], rec: dict):
    """(value, ci_lower, ci_upper, n) of an indicator in the published CSV it comes from."""
    kind, _, key = rec["indicator"].partition(".")
    lvl = str(rec.get("level") or "").removesuffix(".0")
    if kind == "share":
        t = tables["resources"]
        r = t[(t["resource"] == key) & (t["subject"] == "all")]
        cols = ("estimate", "ci_lower", "ci_upper", "n")
    elif kind == "work":
        t = tables["demands_vs_standards"]
        r, cols = t[t["measure"] == key], ("estimate", "ci_lower", "ci_upper", "n")
    elif kind == "gap":
        t = tables["gaps"]
        r = t[
            (t["measure"] == key)
            & (t["subject"] == rec["subject"])
            & (t["group"] == rec["group"])
            & (t["level"].astype(str).str.removesuffix(".0") == lvl)
        ]
        cols = ("difference", "ci_lower", "ci_upper", "n")
    elif kind == "income_ratio":
        t = tables["classroom_composition"]
        r = t[
            (t["measure"] == key)
            & (t["group"] == "majority_low_income")
            & (t["level"].astype(str).str.removesuffix(".0") == "0")
        ]
        cols = ("ratio", "ratio_ci_lower", "ratio_ci_upper", "n")
    elif kind == "growth":
        t = tables["growth_effects"]
        r = t[
            (t["subject"] == key)
            & (t["model"] == "all_four")
            & (t["effect"] == "access")
            & (t["resource"] == rec["measure"])
        ]
        cols = ("contrast_estimate", "contrast_ci_lower", "contrast_ci_upper", "n")
    elif kind == "catch_up":
        t = tables["catch_up"]
        r = t[
            (t["school_id"] == "all")
            & (t["group"] == "all")
            & (t["subject"] == "all")
            & (t["years_later"] == 1)
            & (t["estimate"].sub(rec["value"]).abs() < 1e-12)
        ]
        cols = ("estimate", "ci_lower", "ci_upper", "n")
    elif kind == "scorecard":
        t = tables["scorecard"]
        r = t[(t["school_id"] == "all") & (t["group"] == "all") & (t["measure"] == key)]
        cols = ("estimate", "ci_lower", "ci_upper", "n")
    else:
        return None
    if len(r) != 1:
        return None
    row = r.iloc[0]
    return tuple(row[c] for c in cols)


@pytest.mark.skipif(
    not DISTRICTS, reason="no built reports (run `make reports`; `make test` builds them first)"
)
@pytest.mark.parametrize("folder", DISTRICTS, ids=[p.name for p in DISTRICTS])
def test_every_indicator_reads_the_same_on_every_page(folder):
    fj = json.loads((folder / "findings.json").read_text())
    assert len(fj.get("indicators", [])) > 0, "findings.json has no indicator table (rebuild the reports)"
    tables = {p.stem: pd.read_csv(p, dtype={"level": "str"}) for p in (folder / "tables").glob("*.csv")}
    for rec in fj["indicators"]:
        # the same value, interval and n as the published CSV the number comes from
        src = _source(tables, rec)
        assert src is not None, rec["indicator"]
        for k, v in zip(("value", "ci_lower", "ci_upper", "n"), src):
            a = rec[k]
            assert (a is None and pd.isna(v)) or abs(float(a) - float(v)) <= 1e-9 * max(1, abs(float(v))), (
                k,
                rec,
            )
        # every interval contains its number
        if rec["ci_lower"] is not None and rec["value"] is not None:
            assert rec["ci_lower"] - 1e-9 <= rec["value"] <= rec["ci_upper"] + 1e-9, rec["indicator"]
    by_id = {r["indicator"]: r for r in fj["indicators"]}
    report = (folder / "report.html").read_text(encoding="utf-8")
    first = re.split(r"<section[^>]*class=\"headlines\"[^>]*>", report, maxsplit=1)[1].split("</section>", 1)[
        0
    ]
    pages = {
        "report": (_cards(first), "en"),
        "summary": (_cards((folder / "summary.html").read_text(encoding="utf-8")), "en"),
        "summary.es": (_cards((folder / "summary.es.html").read_text(encoding="utf-8")), "es"),
    }
    shown = 0
    for page, (cards, lang) in pages.items():
        assert 3 <= len(cards) <= 5, (page, len(cards))
        for card in cards:
            hits = [
                r
                for r in by_id.values()
                if labels.localize(r["interval_text"], lang) in card
                and labels.localize(r["n_text"].split(" ")[0], lang) in card
                and card.startswith(labels.localize(r["value_text"], lang))
            ]
            assert hits, (page, card)  # the card's number, interval and n are one indicator's, as printed
            shown += 1
    # the summaries show the report's headlines, in the same order
    assert [c.split(" ", 1)[0] for c in pages["report"][0]] == [
        c.split(" ", 1)[0] for c in pages["summary"][0]
    ]
    # the scorecard's district measures: the same value, interval and n as the indicator of that name
    rows = _rows((folder / "scorecard.html").read_text(encoding="utf-8"))
    for r in by_id.values():
        if r["kind"] != "scorecard":
            continue
        row = next((x for x in rows if x.startswith(r["name"] + " ") and r["year"] in x), None)
        assert row is not None, r["name"]
        assert f"{r['value_text']} {r['interval_text']} {labels.count(r['n'])}" in row, (row, r)
        shown += 1
    # the cross-district page: each resource share with its interval and n
    cross = REPORTS / "cross_district" / "report.html"
    if cross.exists():
        from opportunity_research.report.presentation import district_name

        rows = _rows(cross.read_text(encoding="utf-8"))
        name = district_name(folder.name)
        for r in by_id.values():
            if r["kind"] == "resource":
                assert any(
                    x.startswith(name + " ")
                    and f"{labels.count(r['n'])} {r['value_text']} {r['interval_text']}" in x
                    for x in rows
                ), (name, r["name"])
    assert shown >= 9


@pytest.mark.skipif(not DISTRICTS, reason="no built reports")
@pytest.mark.parametrize("folder", DISTRICTS, ids=[p.name for p in DISTRICTS])
def test_summaries_fit_two_pages_and_pdf_links_are_relative(folder):
    from pypdf import PdfReader

    for name in ("summary.pdf", "summary.es.pdf"):
        assert len(PdfReader(str(folder / name)).pages) <= 2, name
    for pdf in folder.glob("*.pdf"):
        for page in PdfReader(str(pdf)).pages:
            for ref in page.get("/Annots") or []:
                action = ref.get_object().get("/A")
                uri = str(action.get_object().get("/URI", "")) if action is not None else ""
                assert not uri.startswith("file:") and ".tmp-" not in uri and "/work/" not in uri, (
                    pdf.name,
                    uri,
                )


def test_scorecard_trend_cells_add_up_from_printed_values():
    from opportunity_research.report.scorecard_page import _trend

    row = {
        "measure": "engaged_share",
        "first_year": 2015,
        "first_estimate": 0.194,
        "estimate": 0.176,
        "change": 0.176 - 0.194,
    }
    # 19% -> 18% prints as -1 point (the unrounded change, -1.8, would print -2: not what the reader can add up)
    assert _trend(row) == "−1 point since 2015-16 (19%)"
    row = {
        "measure": "growth_grade_levels",
        "first_year": 2014,
        "first_estimate": 1.104,
        "estimate": 1.296,
        "change": 0.192,
    }
    assert _trend(row) == "+0.20 since 2014-15 (1.10)"  # 1.30 - 1.10 as printed (unrounded: +0.19)


def test_every_finding_renders_in_spanish():
    from opportunity_research.report.headlines import finding_from

    a = stub()
    a.growth = pd.concat(
        [a.growth, a.growth.assign(subject="math", months_ci_lower=float("nan"))], ignore_index=True
    )
    a.gaps = pd.DataFrame(
        {
            "measure": "engaged",
            "subject": "math",
            "group": "english_learner",
            "level": [1.0],
            "n": [191],
            "estimate": [0.4],
            "reference": "all other students",
            "reference_n": [1309],
            "reference_estimate": [0.5],
            "difference": [-0.1],
            "ci_lower": [-0.15],
            "ci_upper": [-0.05],
            "suppressed": False,
        }
    )
    a.demands = pd.DataFrame(
        {
            "measure": ["met_grade_level"],
            "n": [800],
            "estimate": [0.12],
            "ci_lower": [0.1],
            "ci_upper": [0.14],
        }
    )
    ind = indicator_table(a)
    assert set(ind["kind"]) == {"resource", "work", "gap", "classrooms", "growth"}
    for row in ind.to_dict("records"):
        es = finding_from(row, "es")
        assert " to " not in es.interval and "95% interval" not in es.interval, es
        assert es.meaning and es.what
    gap = finding_from(
        ind.set_index("indicator").loc["gap.engaged"].to_dict() | {"indicator": "gap.engaged"}, "es"
    )
    assert (
        gap.number == "−10,0 puntos"
        and gap.interval == "intervalo del 95 %: −15,0 a −5,0; 191 frente a 1.309 estudiantes"
    )
    assert gap.what == "Participación profunda: Estudiantes que aprenden inglés (Matemáticas)"


# ---------------------------------------------------------------------------------------------
# custom cut points: no study comparison presented as like with like (issue 19)


def test_custom_cuts_mark_the_headline_study_comparison_in_both_languages():
    from opportunity_research.report.headlines import finding_from, headline_findings
    from opportunity_research.report.indicator_table import example_analysis

    a = example_analysis()
    row = indicator_table(a).iloc[0].to_dict()
    assert row["kind"] == "resource" and row["measure"] == "strong_instruction"
    default = finding_from(row, cuts={"strong_instruction": 2})  # TNTP's default rule: compared as before
    assert "National baseline from the study" in default.meaning
    changed = {"strong_instruction": 2.5}
    assert "not directly comparable" in finding_from(row, cuts=changed).meaning
    assert "no es directamente comparable" in finding_from(row, "es", cuts=changed).meaning
    a.cuts = changed
    found = {f.indicator: f for f in headline_findings(a)}
    assert "not directly comparable" in found["share.strong_instruction"].meaning


def test_cross_district_tables_mark_a_district_with_custom_cuts():
    from opportunity_research.report.crossdistrict import compare
    from opportunity_research.report.crosspage import cross_first_screen, cross_resources_table

    def findings(estimate, cuts):
        share = {"n": 200, "estimate": estimate, "ci_lower": estimate - 0.03, "ci_upper": estimate + 0.03}
        return {
            "resources": {"strong_instruction": share},
            "gaps": [],
            "growth": [],
            "goals": [],
            "parameters": {"cuts": cuts},
        }

    t = compare({"demo_a": findings(0.05, {"strong_instruction": 2.5}), "demo_b": findings(0.06, None)})
    table = cross_resources_table(t.resources)
    study = dict(zip(table.frame["District"], table.frame["Study (2018)"]))
    assert study == {"A": "–", "B": "16%"}
    assert (
        "A, strong instruction: no study figure shown" in table.html
        and "not directly comparable" in table.html
    )
    screen = cross_first_screen(t.resources)
    assert screen.text.startswith("B:") and "A:" not in screen.text  # A is not ranked against the study
    assert "A, strong instruction: no study figure shown" in screen.html


def test_the_indicator_table_is_made_once_for_the_first_screen_and_both_summaries(tmp_path, monkeypatch):
    """The board summaries (English and Spanish) read one indicator table; the notebook makes it once and passes it
    to the first screen, the findings and the summaries (issue 21: nothing computed twice per district)."""
    from opportunity_research.disclosure.district import demo_analysis
    from opportunity_research.report import headlines, summary

    a = demo_analysis("demo_pinebrook")
    made = []
    monkeypatch.setattr(summary, "indicator_table", lambda x: made.append(x) or indicator_table(x))
    monkeypatch.setattr(headlines, "indicator_table", lambda x: made.append(x) or indicator_table(x))
    pages = summary.write_summary(tmp_path / "own", a)
    assert len(made) == 1  # one table for both pages
    ind = indicator_table(a)
    again = summary.write_summary(tmp_path / "given", a, indicators=ind)
    screen = headlines.first_screen(a, indicators=ind)
    assert len(made) == 1  # a table passed in is used as it is
    assert [p.read_bytes() for p in pages] == [p.read_bytes() for p in again]
    assert screen.html == headlines.first_screen(a, generated=None).html
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "district_report.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert code.count("indicator_table(a)") == 1 and code.count("indicators=ind") == 3
