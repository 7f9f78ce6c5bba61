"""Growth effects' sensitivity columns: degrees of freedom, robustness values, benchmark, E-value, sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.sensitivity import e_value, robustness_value
from opportunity_research.study.findings import robustness_sentences
from opportunity_research.study.growth import SENSITIVITY_COLUMNS, fit_study_models


def growth_frame(seed=0, n_schools=12, per_school=6, size=20, tie=0.6):
    """Classrooms whose access goes with their share of low-income students; growth depends on both."""
    rng = np.random.default_rng(seed)
    n_cls = n_schools * per_school
    school = np.repeat(np.arange(n_schools), per_school)
    share_li = rng.uniform(0.1, 0.9, n_cls)
    access = np.clip(0.8 - tie * share_li + rng.normal(0, 0.1, n_cls), 0, 1)
    grade = rng.choice([4, 5], n_cls)
    cls = np.repeat(np.arange(n_cls), size)
    li = (rng.random(len(cls)) < share_li[cls]).astype(int)
    fall = rng.normal(-0.3 * li, 1)
    spring = (
        0.6 * fall
        + 0.4 * access[cls]
        - 0.5 * share_li[cls]
        + rng.normal(0, 0.15, n_cls)[cls]
        + rng.normal(0, 0.6, len(cls))
    )
    return pd.DataFrame(
        {
            "student_id": np.arange(len(cls)),
            "school_id": [f"S{s}" for s in school[cls]],
            "classroom_id": [f"C{c}" for c in cls],
            "subject": "math",
            "grade": grade[cls],
            "spring_z": spring,
            "fall_z": fall,
            "started_behind": (fall < -0.5).astype(int),
            "grade_appropriate": access[cls],
            "low_income": li,
            "english_learner": (rng.random(len(cls)) < 0.15).astype(int),
            "disability": (rng.random(len(cls)) < 0.12).astype(int),
        }
    )


@pytest.fixture(scope="module")
def effects():
    return fit_study_models(growth_frame(), subject="math", resources=("grade_appropriate",)).effects


def test_sensitivity_columns_and_degrees_of_freedom(effects):
    assert set(SENSITIVITY_COLUMNS) <= set(effects.columns)
    # 72 classrooms minus intercept, access and one grade effect (all constant within classrooms)
    assert (effects["sensitivity_dof"] == 72 - 3).all()
    for r in effects.itertuples():
        t = r.estimate / r.std_error
        assert r.t_value == pytest.approx(t)
        assert r.robustness_value == pytest.approx(robustness_value(t, 69))
        assert r.robustness_value_05 == pytest.approx(robustness_value(t, 69, alpha=0.05))
        assert r.e_value == pytest.approx(e_value(r.contrast_estimate))


def test_benchmark_is_the_planted_classroom_confounder(effects):
    acc = effects[effects["effect"] == "access"].iloc[0]
    assert acc["benchmark"] == "low_income"
    # access was planted as a function of the low-income share: it explains over half of access, so a
    # confounder "as strong" has no bound (it would need a partial R2 of 1) and no adjusted contrast is given
    assert acc["benchmark_r2_access"] > 0.5 and np.isnan(acc["benchmark_adjusted_contrast"])
    assert effects.loc[effects["effect"] != "access", "benchmark"].eq("").all()
    # with a weaker tie the bound exists and moves the contrast towards zero
    weak = fit_study_models(
        growth_frame(seed=1, tie=0.25), subject="math", resources=("grade_appropriate",)
    ).effects
    w = weak[weak["effect"] == "access"].iloc[0]
    assert w["benchmark"] == "low_income" and 0 < w["benchmark_r2_access"] < 0.5
    assert abs(w["benchmark_adjusted_contrast"]) < abs(w["contrast_estimate"])


def test_robustness_sentence_names_the_benchmark(effects):
    s = robustness_sentences(effects, model="grade_appropriate")
    assert len(s) == 1
    rv = effects.loc[effects["effect"] == "access", "robustness_value"].iloc[0]
    assert f"at least {100 * rv:.0f}% of the remaining variation in both access and growth" in s[0]
    assert "the share of low-income students" in s[0]
