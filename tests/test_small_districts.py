"""A district too small for the growth models still gets its report: the growth section says why, nothing raises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.disclosure.district import analyze_district
from opportunity_research.intake.dataset import process_district
from opportunity_research.report.model_tables import model_trust_note
from opportunity_research.report.outputs import write_outputs
from opportunity_research.stats.models import fit_growth_model
from opportunity_research.stats.results import NotIdentifiedError
from opportunity_research.synth.statewide import synthesize_state


def test_unidentifiable_growth_model_raises_its_own_error():
    # one classroom per grade: the grade effects determine every classroom, so no variance is identified
    rng = np.random.default_rng(0)
    n = 60
    grade = np.repeat([3, 4, 5], n // 3)
    d = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "grade": grade,
            "school_id": "S1",
            "classroom_id": [f"C{g}" for g in grade],
        }
    )
    with pytest.raises(NotIdentifiedError, match="no grouping level"):
        fit_growth_model(d, formula="y ~ x + C(grade)", groups=("school_id", "classroom_id"))
    d["z"] = d["x"] * 2  # a duplicated term: rank deficient
    with pytest.raises(NotIdentifiedError, match="rank deficient"):
        fit_growth_model(d, formula="y ~ x + z", groups=("school_id", "classroom_id"))
    assert issubclass(NotIdentifiedError, ValueError)  # callers catching ValueError still do


def test_small_district_publishes_without_growth_models(tmp_path):
    # a synthetic district of 150 students in 8 classrooms (seed 2): too few for the growth models to be identified
    raw = synthesize_state(tmp_path / "raw", districts=1, seed=2, median_students=150, min_students=150)[0]
    process_district(raw, processed_root=tmp_path / "processed", key="0123456789abcdef")
    a = analyze_district(raw.name, processed_dir=str(tmp_path / "processed"), n_boot=20)
    assert a.growth.empty
    assert a.disclosure.passed
    too_few = [w for w in a.growth_warnings if "too few students/classrooms for the growth models" in w]
    assert [w.split(":")[0] for w in too_few] == ["ELA", "Math"]
    assert "too few students/classrooms for the growth models" in model_trust_note(a.growth).text
    # the rest of the report is there
    assert len(a.gaps) and len(a.rates) and len(a.catch_up)
    # an empty (column-less) table is not written as an unreadable empty CSV
    paths = write_outputs(tmp_path / "out", findings={"x": 1}, tables={"growth": a.growth, "gaps": a.gaps})
    assert sorted(p.name for p in paths) == ["findings.json", "gaps.csv"]
