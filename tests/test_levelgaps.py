"""Gaps and means from performance levels: V beside scale-score gaps, HETOP sections, a counts-only district."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.disclosure.district import analyze_level_counts
from opportunity_research.intake.dataset import process_district
from opportunity_research.intake.validation import validate_district
from opportunity_research.report import presentation as P
from opportunity_research.study import levelgaps as L

CUTS = np.array([-0.9, 0.0, 0.8])


def _counts(mean, sd, n):
    return np.round(n * np.diff(np.r_[0, stats.norm.cdf(CUTS, mean, sd), 1])).astype(int)


def counts_district(folder, *, seed=0):
    """A district folder with only schools.csv and level_counts.csv (planted group distributions)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    schools = pd.DataFrame(
        {
            "school_id": [f"S{i}" for i in range(6)],
            "school_name": [f"School {i}" for i in range(6)],
            "school_level": "elementary",
        }
    )
    schools.to_csv(folder / "schools.csv", index=False)
    rows = []
    for sid, shift in zip(schools["school_id"], np.linspace(-0.4, 0.4, 6)):
        for subject in ("ela", "math"):
            for year in (2015, 2016):
                n_li, n_other = 120 + rng.integers(0, 40), 90 + rng.integers(0, 40)
                li = rng.multinomial(n_li, np.diff(np.r_[0, stats.norm.cdf(CUTS, shift - 0.3, 1.0), 1]))
                other = rng.multinomial(n_other, np.diff(np.r_[0, stats.norm.cdf(CUTS, shift + 0.2, 1.0), 1]))
                for lv in range(4):
                    rows += [
                        (sid, subject, year, "all", lv + 1, li[lv] + other[lv]),
                        (sid, subject, year, "low_income=1", lv + 1, li[lv]),
                        (sid, subject, year, "low_income=0", lv + 1, other[lv]),
                    ]
    pd.DataFrame(rows, columns=list(L.LEVEL_COUNT_COLUMNS)).to_csv(folder / "level_counts.csv", index=False)
    return folder


def test_level_gaps_use_all_minus_group_and_match_v_statistic():
    c = pd.DataFrame(
        {
            "school_id": ["S1"] * 8 + ["S2"] * 8,
            "subject": "math",
            "school_year": 2016,
            "group": (["all"] * 4 + ["low_income=1"] * 4) * 2,
            "performance_level": [1, 2, 3, 4] * 4,
            "n_students": [30, 40, 20, 10, 20, 20, 5, 2, 10, 30, 40, 20, 5, 10, 10, 3],
        }
    )
    t = L.level_gaps(c)
    assert list(t.columns) == list(L.LEVEL_GAP_COLUMNS) and len(t) == 1
    from opportunity_research.stats.ordinal import v_statistic

    a = np.array([25, 30, 15, 5.0])
    b = np.array([40, 70, 60, 30.0]) - a
    r = v_statistic(a, b)
    assert t["v"].iloc[0] == pytest.approx(r["v"]) and t["v_ci_lower"].iloc[0] == pytest.approx(r["ci_lower"])
    assert (t["n"].iloc[0], t["reference_n"].iloc[0]) == (75, 125)


def test_v_gaps_agree_with_scale_score_gaps_on_student_data():
    rng = np.random.default_rng(2)
    n = 4000
    li = rng.integers(0, 2, n)
    score = rng.normal(-0.4 * li, 1.0)
    a = pd.DataFrame(
        {
            "student_id": np.arange(n),
            "subject": "math",
            "school_year": 2016,
            "window": "spring",
            "grade": 5,
            "scale_score": 300 + 40 * score,
            "performance_level": np.searchsorted(CUTS, score) + 1,
        }
    )
    s = pd.DataFrame({"student_id": np.arange(n), "school_id": "S1", "low_income": li})
    c = L.level_counts_from_assessments(a, students=s, variables=["low_income"])
    t = L.level_gaps(c, scores=L.score_gaps(a, students=s, variables=["low_income"])).set_index("level")
    assert t.loc["1", "v_ci_lower"] < -0.4 < t.loc["1", "v_ci_upper"]
    assert t.loc["1", "score_gap_ci_lower"] < -0.4 < t.loc["1", "score_gap_ci_upper"]
    assert t.loc["1", "v"] == pytest.approx(t.loc["1", "score_gap"], abs=0.08)
    assert t.loc["0", "v"] == pytest.approx(-t.loc["1", "v"], abs=1e-6)  # swapping the groups flips the sign


def test_counts_only_district_validates_processes_and_reports(tmp_path):
    raw = counts_district(tmp_path / "raw" / "counts_only")
    report = validate_district(raw)
    assert report.ok, report.format()
    process_district(raw, processed_root=tmp_path / "processed", key="0123456789abcdef")
    a = analyze_level_counts("counts_only", processed_dir=str(tmp_path / "processed"))
    g = a.gaps[(a.gaps["school_year"] == 2016) & (a.gaps["level"] == "1")]
    assert len(g) == 2 and (g["v"] < 0).all() and not g["suppressed"].any()
    # planted: low-income students 0.5 SD below the others within schools
    assert ((g["v_ci_lower"] < -0.3) & (g["v_ci_upper"] > -0.8)).all()
    m = a.means
    schools = m[m["group"] == "all"].sort_values(["subject", "school_id"])
    assert (schools.groupby("subject")["mean"].apply(lambda x: np.all(np.diff(x.to_numpy()) > 0))).all()
    html = P.v_gap_table(a.gaps).html + P.hetop_table(a.means, school_names=a.schools).html
    assert "V gap" in html and "School 5" in html and "Low-income students" in html
    assert a.disclosure is not None and a.disclosure.passed


def test_counts_only_district_with_a_bad_group_fails_validation(tmp_path):
    raw = counts_district(tmp_path / "raw" / "bad_counts")
    lc = pd.read_csv(raw / "level_counts.csv")
    lc.loc[3, "group"] = "low_incme=1"
    lc.to_csv(raw / "level_counts.csv", index=False)
    report = validate_district(raw)
    assert not report.ok
    p = report.to_frame()
    row = p[p["file"] == "level_counts.csv"].iloc[0]
    assert row["column"] == "group" and "low_incme" in row["rule"] and row["line"] == 5


def test_counts_only_district_report_notebook_runs(tmp_path, monkeypatch):
    import json
    from pathlib import Path

    import papermill as pm

    raw = counts_district(tmp_path / "data" / "raw" / "counts_nb", seed=3)
    process_district(raw, processed_root=tmp_path / "data" / "processed", key="0123456789abcdef")
    monkeypatch.setenv("OPPORTUNITY_RESEARCH_HOME", str(tmp_path))
    notebook = Path(__file__).parents[1] / "notebooks" / "level_counts_report.ipynb"
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(notebook),
        str(out),
        cwd=str(tmp_path),
        progress_bar=False,
        parameters={
            "district_id": "counts_nb",
            "processed_dir": "data/processed",
            "output_dir": "reports/counts_nb",
        },
    )
    nb = json.loads(out.read_text())
    html = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"] for o in c.get("outputs", [])
    )
    assert (
        "Achievement gaps from performance levels" in html
        and "Average achievement from performance levels" in html
    )
    assert "Low-income students" in html and "School 3" in html
    assert (tmp_path / "reports" / "counts_nb" / "tables" / "level_gaps.csv").exists()
    published = json.loads((tmp_path / "reports" / "counts_nb" / "findings.json").read_text())
    assert published["kind"] == "level_counts" and published["disclosure"]
