"""The synthetic demo districts: deterministic, contract-valid, calibrated to the study's figures."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from opportunity_research import config
from opportunity_research.intake.validation import validate_district
from opportunity_research.study import measures
from opportunity_research.synth.districts import TARGETS, synthesize

from .demo import demo_root, district, truth


def _hashes(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    a = synthesize(tmp_path / "a", seed=7, students=800)
    b = synthesize(tmp_path / "b", seed=7, students=800)
    synthesize(tmp_path / "c", seed=8, students=800)
    assert [p.name for p in a] == [p.name for p in b]
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert _hashes(tmp_path / "a") != _hashes(tmp_path / "c")


def test_demo_districts_pass_the_contract():
    for raw in sorted((demo_root() / "raw").iterdir()):
        report = validate_district(raw)
        assert report.ok, report.format(max_rows=20)


def test_demo_looks_like_the_study():
    """~4,000 students and ~260 teachers in five districts of different size, grades 3-12."""
    t = [truth(d) for d in config.DEMO_DISTRICTS]
    sizes = [x["n_students"] for x in t]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5
    assert 3900 <= sum(sizes) <= 4100
    assert 220 <= sum(x["n_teachers"] for x in t) <= 300
    grades = pd.concat([district(d).students["grade"] for d in config.DEMO_DISTRICTS])
    assert grades.min() == 3 and grades.max() == 12


def test_pooled_headline_figures_within_3_points_of_the_study():
    rates, work = [], []
    for d in config.DEMO_DISTRICTS:
        dist = district(d)
        scored = measures.score_evidence(dist)
        rates.append({r: (scored[r][r].sum(), scored[r][r].notna().sum()) for r in measures.RESOURCES})
        work.append(dist.work_samples[["met_demands", "met_grade_level"]])
    pooled = {r: sum(x[r][0] for x in rates) / sum(x[r][1] for x in rates) for r in measures.RESOURCES}
    w = pd.concat(work)
    pooled["met_demands"] = w["met_demands"].mean()
    pooled["met_grade_level"] = w["met_grade_level"].mean()
    for name, target in TARGETS.items():
        assert pooled[name] == pytest.approx(target, abs=0.03), name
    assert pooled["high_expectations"] < 0.5  # "fewer than half of teachers"


def test_truth_file_documents_the_planted_values():
    t = truth("demo_lakeside")
    assert set(t["access"]) == set(measures.RESOURCES)
    assert set(t["growth"]) == {"ela", "math"}
    assert t["growth"]["math"]["access_effects"]["grade_appropriate"] > 0
    assert t["trajectories"]["math"]["catch_up_rate"]
    assert any(s["trajectory_changing"] for s in t["trajectories"]["math"]["growth_by_school"].values())
    small = truth("demo_pinebrook")  # the district without climate surveys or earlier years
    assert small["climate"] is None and small["assessment_years"] == [2016]
