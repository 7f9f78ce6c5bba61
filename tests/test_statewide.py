"""The synthetic state: skewed district sizes, valid districts with planted truths, deterministic output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opportunity_research import cli
from opportunity_research.intake.validation import validate_district
from opportunity_research.synth.statewide import _groups, district_sizes, state_specs, synthesize_state


def test_district_sizes_are_lognormal_and_skewed():
    sizes = district_sizes(4000, seed=11, min_students=60)
    logs = np.log(sizes[(sizes > 60) & (sizes < 60_000)])
    assert np.median(sizes) == pytest.approx(900, rel=0.06)
    # the log-normal's spread: the 84th percentile sits one sigma above the median
    assert np.log(np.percentile(sizes, 84.13) / np.median(sizes)) == pytest.approx(1.1, rel=0.06)
    assert logs.std() == pytest.approx(1.1, rel=0.08)
    # many small districts, a few large ones: the mean is well above the median, the top 5% hold ~30%
    assert sizes.mean() / np.median(sizes) == pytest.approx(np.exp(1.1**2 / 2), rel=0.1)
    top = np.sort(sizes)[-200:].sum() / sizes.sum()
    assert 0.22 < top < 0.40
    clipped = district_sizes(500, seed=1)
    assert clipped.min() >= 400 and clipped.max() <= 60_000
    with pytest.raises(ValueError, match="min_students"):
        district_sizes(3, min_students=50)


def test_generation_groups_keep_the_demo_generator_at_one_school_per_spec():
    specs = state_specs(district_sizes(60, seed=2), seed=2)
    groups = _groups(specs)
    assert sorted(s.district_id for g in groups for s in g) == [s.district_id for s in specs]  # all, once
    for g in groups:
        total = sum(s.share for s in g)
        assert total <= 5_999 or len(g) == 1


def test_synthesize_state_writes_valid_districts_with_truths(tmp_path):
    paths = synthesize_state(
        tmp_path / "a",
        districts=4,
        seed=5,
        median_students=500,
        min_students=400,
        max_students=7000,
        sigma=1.5,
    )
    assert [p.name for p in paths] == ["state_0001", "state_0002", "state_0003", "state_0004"]
    state = json.loads((tmp_path / "a" / "state.json").read_text())
    sizes = district_sizes(4, seed=5, median_students=500, min_students=400, max_students=7000, sigma=1.5)
    assert [d["n_students"] for d in state["districts"]] == sizes.tolist()
    for p, n in zip(paths, sizes):
        truth = json.loads((p / "truth.json").read_text())
        assert truth["n_students"] == n == len(pd.read_csv(p / "students.csv", usecols=["student_id"]))
        assert set(truth["access"]) == {
            "grade_appropriate",
            "strong_instruction",
            "engaged",
            "high_expectations",
        }
        report = validate_district(p)
        assert report.ok, report.summary()
    assert not list((tmp_path / "a").glob(".tmp-*"))
    # deterministic: the same seed writes the same bytes
    again = synthesize_state(
        tmp_path / "b",
        districts=4,
        seed=5,
        median_students=500,
        min_students=400,
        max_students=7000,
        sigma=1.5,
    )
    for p, q in zip(paths, again):
        assert (p / "students.csv").read_bytes() == (q / "students.csv").read_bytes()
        assert (p / "truth.json").read_bytes() == (q / "truth.json").read_bytes()


def test_synthesize_command_with_districts(tmp_path, capsys):
    assert cli.main(["synthesize", "--districts", "2", "--out", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("students,") == 2 and "state_0002" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state_0001", "state_0002"]
