"""Every published number right, and said right (issue #10), on the five demo districts.

From the planted truths (``truth.json``): gap intervals and growth-effect intervals hold the planted values,
school growth follows truth.json's definition. From the published outputs: no interval of zero width, no
share interval outside 0-100%, no months of learning beyond one school year, each key-finding sentence's
interval contains the number it follows, and each indicator has one value, interval and n everywhere.
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from opportunity_research import config
from opportunity_research.disclosure.district import analyze_district
from opportunity_research.study import analysis

try:  # tests/ as a package or as a plain folder on sys.path
    from . import demo
except ImportError:  # pragma: no cover
    import demo

pytestmark = pytest.mark.long(35)  # run first (tests/conftest.py)


@pytest.fixture(scope="module")
def analyses():
    root = demo.demo_root() / "processed"
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for did in config.DEMO_DISTRICTS:
            out[did] = analyze_district(did, processed_dir=str(root))
    return out


def _level_key(level) -> str:
    text = str(level)
    return text.removesuffix(".0")


def test_gap_intervals_hold_the_planted_differences(analyses):
    hits = []
    for did, a in analyses.items():
        truth = demo.truth(did)["access"]
        g = a.gaps[~a.gaps["suppressed"].astype(bool) & a.gaps["ci_lower"].notna()]
        for r in g.itertuples():
            planted = (
                truth.get(r.measure, {})
                .get(r.subject, {})
                .get("groups", {})
                .get(r.group, {})
                .get(_level_key(r.level))
            )
            if planted is None:
                continue
            hits.append(r.ci_lower <= planted["difference"] <= r.ci_upper)
    assert len(hits) > 300
    coverage = float(np.mean(hits))
    print(f"gap intervals holding the planted difference: {coverage:.3f} of {len(hits)}")
    assert coverage >= 0.95


def test_growth_effect_intervals_hold_the_planted_effects(analyses):
    hits = []
    for did, a in analyses.items():
        truth = demo.truth(did)["growth"]
        g = a.growth[(a.growth["model"] == "all_four") & a.growth["converged"]]
        for r in g.itertuples():
            key = {"access": "access_effects", "extra_if_behind": "behind_extra"}.get(r.effect)
            if key is None:
                continue
            planted = truth[r.subject][key][r.resource]
            hits.append(r.ci_lower <= planted <= r.ci_upper)
            # the contrast interval holds the planted contrast (the same statement on the reader's scale)
            width = r.access_p75 - r.access_p25
            if width > 0:
                hits.append(r.contrast_ci_lower <= planted * width <= r.contrast_ci_upper)
    assert len(hits) >= 100
    coverage = float(np.mean(hits))
    print(f"growth-effect intervals holding the planted effect: {coverage:.3f} of {len(hits)}")
    assert coverage >= 0.90


def test_school_growth_follows_the_truth_definition(analyses):
    """truth.json plants each school's expected growth (Monte Carlo over fresh noise for the same students) as
    endpoints over the years before the analysis year; the published growth uses that definition and its
    interval holds the planted value."""
    compared, inside = 0, []
    for did, a in analyses.items():
        traj = demo.truth(did)["trajectories"]
        g = a.growth_grade_levels
        for (
            subject
        ) in traj:  # a district with one assessment year has no trajectories (and no truth for them)
            t = traj[subject]
            rows = g[
                (g["subject"] == subject)
                & (g["group"] == "all")
                & (g["school_id"] != "all")
                & ~g["suppressed"].astype(bool)
            ].set_index("school_id")
            if rows.empty:  # every school's row withheld by the disclosure pass: nothing published to check
                continue
            assert set(rows["start_year"]) == {t["start_year"]} and set(rows["end_year"]) == {max(t["years"])}
            for school, planted in t["growth_by_school"].items():
                if school not in rows.index:
                    continue
                value = planted["mean_growth_grade_levels"]
                assert rows.at[school, "growth"] == pytest.approx(value, abs=0.1), (did, subject, school)
                inside.append(
                    rows.at[school, "growth_ci_lower"] <= value <= rows.at[school, "growth_ci_upper"]
                )
                compared += 1
    assert compared >= 10
    print(f"school growth intervals holding the planted growth: {np.mean(inside):.3f} of {len(inside)}")
    assert np.mean(inside) >= 0.9


def _tables(a) -> dict[str, pd.DataFrame]:
    return {
        "rates": a.rates,
        "demands": a.demands,
        "gaps": a.gaps,
        "composition": a.composition,
        "furthest": a.furthest,
        "multiple": a.multiple,
        "growth": a.growth,
        "climate": a.climate,
        "catch_up": a.catch_up,
        "growth_grade_levels": a.growth_grade_levels,
        "movement": a.movement,
        "scorecard": a.scorecard.table,
        "goals": a.scorecard.goals,
    }


_SHARE_TABLES = {"rates", "demands", "catch_up", "movement"}


def _interval_pairs(t: pd.DataFrame):
    for lo in [c for c in t.columns if c.endswith("ci_lower")]:
        hi = lo[: -len("ci_lower")] + "ci_upper"
        if hi in t.columns:
            yield lo, hi


def test_no_zero_width_interval_and_shares_inside_0_100(analyses):
    for did, a in analyses.items():
        for name, t in _tables(a).items():
            if t is None or t.empty:
                continue
            for lo, hi in _interval_pairs(t):
                x, y = t[lo].astype(float), t[hi].astype(float)
                both = x.notna() & y.notna()
                assert (y[both] > x[both]).all(), (
                    did,
                    name,
                    lo,
                    t.loc[both & (y <= x)].head(3).to_dict("records"),
                )
                share = (
                    (name in _SHARE_TABLES and not lo.startswith("months"))
                    or (lo in ("estimate_ci_lower",) and "kind" in t.columns)
                    or (name == "climate" and lo.startswith("favorable"))
                    or (name in ("scorecard", "goals") and lo == "ci_lower")
                )
                if name in ("gaps", "furthest", "composition", "multiple") and lo == "estimate_ci_lower":
                    share = True
                if name in ("scorecard", "goals"):
                    share = ~t["measure"].eq("growth_grade_levels")
                    share = share[both]
                    assert ((x[both][share] >= 0) & (y[both][share] <= 1)).all(), (did, name, lo)
                elif share is True:
                    assert ((x[both] >= 0) & (y[both] <= 1)).all(), (did, name, lo)


def test_no_months_beyond_one_school_year(analyses):
    for did, a in analyses.items():
        m = a.growth[["months", "months_ci_lower", "months_ci_upper"]].abs()
        assert (m.fillna(0) <= 9).all().all(), did
        assert a.growth.loc[a.growth["months"].isna(), "months_note"].str.startswith("n/a").all()
        assert (a.growth.loc[a.growth["months"].notna(), "annual_gain"] >= 0.10).all()
        # months come only from the 25th-75th percentile contrast
        ok = a.growth["months"].notna()
        ratio = a.growth.loc[ok, "months"] / a.growth.loc[ok, "contrast_estimate"]
        np.testing.assert_allclose(ratio, 9 / a.growth.loc[ok, "annual_gain"])


_NUM = r"-?\d[\d,]*(?:\.\d+)?%?"


def _value(token: str) -> float:
    t = token.replace(",", "")
    return float(t[:-1]) / 100 if t.endswith("%") else float(t)


def _decimals(token: str) -> int:
    t = token.rstrip("%")
    return len(t.split(".")[1]) if "." in t else 0


def sentence_intervals(sentence: str) -> list[tuple[float, float, float, float]]:
    """``(number, lower, upper, rounding tolerance)`` for every "95% CI a to b" in a sentence: the number is
    the last one stated before the interval."""
    out = []
    for m in re.finditer(rf"95% CI ({_NUM}) to ({_NUM})", sentence):
        before = re.findall(_NUM, sentence[: m.start()].rstrip(" (,").removesuffix("95%"))
        assert before, sentence
        num = before[-1]
        half = 0.5 * 10 ** -_decimals(num) / (100 if num.endswith("%") else 1)
        out.append((_value(num), _value(m.group(1)), _value(m.group(2)), half))
    return out


def test_sentence_parser_reads_the_number_before_the_interval():
    s = "a gap of -12.1 percentage points (95% CI -17.8 to -6.4; n = 806 vs 694)."
    assert sentence_intervals(s) == [(-12.1, -17.8, -6.4, 0.05)]
    s = "27% of classrooms ... (95% CI 18% to 38%; n = 104 classrooms)."
    assert sentence_intervals(s)[0][:3] == pytest.approx((0.27, 0.18, 0.38))


def test_every_key_finding_interval_contains_its_number(analyses):
    checked = 0
    for did, a in analyses.items():
        for sentence in analysis.key_findings(a):
            assert "not estimable to" not in sentence
            for num, lo, hi, tol in sentence_intervals(sentence):
                assert lo - tol <= num <= hi + tol, (did, sentence)
                assert hi > lo or (hi == lo and tol > 0), (did, sentence)  # zero width only by rounding
                checked += 1
            assert "months" not in sentence or all(
                abs(float(x)) <= 9 for x in re.findall(r"(-?\d+(?:\.\d+)?) months", sentence)
            ), sentence
    assert checked >= 50


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))


def test_one_value_per_indicator_across_outputs(analyses):
    """findings.json, the report's tables, the scorecard and the sentences state the same value, interval, n."""
    for did, a in analyses.items():
        fj = json.loads(json.dumps(analysis.findings_json(a, parameters={}), default=str))
        rates = a.rates[a.rates["subject"] == "all"].set_index("resource")
        for r, v in fj["resources"].items():
            for k in ("estimate", "ci_lower", "ci_upper", "n"):
                assert _same(v[k], rates.at[r, k]), (did, r, k)
        shown = a.gaps[~a.gaps["suppressed"].astype(bool)]
        assert len(fj["gaps"]) == len(shown)
        for v, (_, row) in zip(fj["gaps"], shown.iterrows()):
            for k in ("difference", "ci_lower", "ci_upper", "n"):
                assert _same(v[k], row[k]), (did, k)
        g = a.growth[
            (a.growth["model"] == "all_four") & a.growth["effect"].isin(["access", "extra_if_behind"])
        ]
        for v, (_, row) in zip(fj["growth"], g.iterrows()):
            for k in ("estimate", "contrast_estimate", "contrast_ci_lower", "months", "n"):
                assert _same(v[k], row[k]), (did, k)
        # the catch-up finding is the scorecard's indicator (one definition, one value)
        card = a.scorecard.table
        cu = card[
            (card["measure"] == "catch_up_rate") & (card["school_id"] == "all") & (card["group"] == "all")
        ]
        sentences = [s for s in fj["key_findings"] if s.startswith("Catch-up rate")]
        if len(cu) and not cu["suppressed"].iloc[0]:
            r = cu.iloc[0]
            assert len(sentences) == 1
            assert f"{100 * r['estimate']:.0f}% were at grade level" in sentences[0]
            assert f"n = {int(r['n']):,}" in sentences[0]
        # goals quote the scorecard's own value and interval for their measure and group
        for goal in a.scorecard.goals.itertuples():
            if pd.isna(goal.current):
                continue
            row = card[
                (card["measure"] == goal.measure)
                & (card["school_id"] == "all")
                & (card["group"] == goal.group)
            ]
            assert _same(goal.current, row["estimate"].iloc[0]) and _same(
                goal.ci_lower, row["ci_lower"].iloc[0]
            )
        # two definitions, two names: the report's share of rated evidence vs the scorecard's average student
        labels = set(card["label"]) if len(card) else set()
        assert not labels & set(a.rates["label"]), labels & set(a.rates["label"])


def test_published_csv_tables_match_findings_json():
    """Where `make reports` has run: the CSV tables and findings.json of each district agree."""
    reports = config.project_root() / "reports"
    done = [did for did in config.DEMO_DISTRICTS if (reports / did / "findings.json").exists()]
    if not done:
        pytest.skip("no built reports (run `make reports`; `make test` builds them first)")
    for did in done:
        fj = json.loads((reports / did / "findings.json").read_text())
        gaps = pd.read_csv(reports / did / "tables" / "gaps.csv")
        shown = gaps[~gaps["suppressed"].astype(bool)]
        assert len(shown) == len(fj["gaps"]), did
        for v, (_, row) in zip(fj["gaps"], shown.iterrows()):
            for k in ("difference", "ci_lower", "ci_upper"):
                assert _same(v[k], row[k]) or abs(v[k] - row[k]) < 1e-9, (did, k)
        res = pd.read_csv(reports / did / "tables" / "resources.csv")
        res = (
            res[res["subject"] == "all"].set_index("resource")
            if "subject" in res
            else res.set_index("resource")
        )
        for r, v in fj["resources"].items():
            assert abs(v["estimate"] - res.at[r, "estimate"]) < 1e-9 and int(v["n"]) == int(res.at[r, "n"]), (
                did,
                r,
            )
