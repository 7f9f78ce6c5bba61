"""The growth engine's fast paths give what the general paths give.

* ``_column_design`` (design built from columns, no per-row formula evaluation) against patsy's own
  ``dmatrices`` on the same rows: same column names, values, rows kept and rows dropped.
* ``_Profile`` with per-size sufficient statistics of the innermost level against the per-group recursion and
  against the dense likelihood (tests/test_models.py checks the dense formula and lme4).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from opportunity_research.stats import design, likelihood
from opportunity_research.stats import models as M

ENV = patsy.EvalEnvironment.capture(0)


def _data(n: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = rng.integers(0, 30, n)
    room = rng.integers(0, 6, n)  # restarts within each school
    df = pd.DataFrame(
        {
            "school": "S" + pd.Series(school).astype(str),
            "room": room,
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "grade": rng.integers(3, 7, n),
            "race": rng.choice(["a", "b", "c"], n),
            "flag": rng.random(n) < 0.4,
            "level": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"]),
        }
    )
    df["y"] = (
        1
        + 0.5 * df["x"]
        - 0.2 * df["z"]
        + 0.1 * df["grade"]
        + rng.normal(0, 0.5, 30)[school]
        + rng.normal(0, 0.3, (30, 6))[school, room]
        + rng.normal(size=n)
    )
    df.loc[::37, "x"] = np.nan
    df.loc[5::53, "race"] = None
    df.loc[7::101, "school"] = None
    return df


FORMULAS = [
    "y ~ x",
    "y ~ x + z + C(grade)",
    "y ~ x * race",
    "y ~ x + C(grade):x + race:z",
    "y ~ 0 + race + x",
    "y ~ flag + level + x",
    "y ~ C(grade) * race",
    "y ~ x + x:z + C(race)",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_column_design_equals_patsy(formula):
    df = _data()
    keep = df[["school", "room"]].notna().all(axis=1).to_numpy()
    fast = design._column_design(df, keep, formula, ENV)
    assert fast is not None, "expected the column path for a formula of plain columns"
    y, X, names, rows = fast
    sub = df.loc[keep].reset_index(drop=True)
    py, pX = patsy.dmatrices(formula, sub, NA_action="drop", return_type="dataframe", eval_env=ENV)
    assert names == list(pX.columns)
    np.testing.assert_array_equal(X, pX.to_numpy(dtype=float))
    np.testing.assert_array_equal(y, py.iloc[:, 0].to_numpy(dtype=float))
    np.testing.assert_array_equal(rows, np.flatnonzero(keep)[pX.index.to_numpy()])


@pytest.mark.parametrize(
    "formula", ["y ~ np.log(z ** 2) + x", "y ~ I(x * 2)", "y ~ C(race, Sum)", "y ~ x + missing"]
)
def test_general_formulas_fall_back_to_patsy(formula):
    df = _data()
    keep = np.ones(len(df), dtype=bool)
    assert design._column_design(df, keep, formula, patsy.EvalEnvironment([{"np": np}])) is None


def test_design_results_match_the_patsy_path():
    """Whole fits through the column path equal fits through patsy (the formula forced onto patsy with I())."""
    df = _data()
    a = M.fit_growth_model(df, formula="y ~ x + z + C(grade)", groups=("school", "room"))
    b = M.fit_growth_model(df, formula="y ~ I(x) + I(z) + C(grade, Treatment)", groups=("school", "room"))
    np.testing.assert_allclose(a.coefficients["estimate"], b.coefficients["estimate"], rtol=1e-9)
    assert a.n_obs == b.n_obs and a.n_dropped == b.n_dropped
    assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=1e-8)


@pytest.mark.parametrize(
    "groups,slope,level",
    [
        (("school", "room"), None, None),
        (("school", "room"), "z", "school"),
        (("district", "school", "room"), None, None),
        (("district", "school", "room"), "z", "school"),
        (("room",), None, None),
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_size_buckets_equal_the_per_group_recursion(groups, slope, level, reml):
    df = _data().dropna()
    df["district"] = df["school"].str[-1:].isin(list("01234")).map({True: "D1", False: "D2"})
    d = design.build_design(df, "y ~ x + z", groups, slope, level, ENV)
    fast = likelihood.Profile(d, reml=reml)
    assert fast._bucket is not None
    slow = likelihood.Profile(d, reml=reml)
    slow._bucket = None
    rng = np.random.default_rng(2)
    for _ in range(5):
        theta = np.abs(rng.normal(size=len(fast.start))) + 0.01
        if slope:
            theta[fast.slices[groups.index(level)]][1:2] *= -1
        qa, la = fast.quad(theta)
        qb, lb = slow.quad(theta)
        np.testing.assert_allclose(qa, qb, rtol=1e-10, atol=1e-8 * np.abs(qb).max())
        assert la == pytest.approx(lb, rel=1e-12)
        assert fast.deviance(theta) == pytest.approx(slow.deviance(theta), abs=1e-8)
    # theta = 0 (a variance at the boundary) is exact too
    zero = np.zeros(len(fast.start))
    assert fast.deviance(zero) == pytest.approx(slow.deviance(zero), abs=1e-9)


def test_innermost_slope_uses_the_per_group_recursion():
    df = _data().dropna()
    d = design.build_design(df, "y ~ x + z", ("school", "room"), "z", "room", ENV)
    assert likelihood.Profile(d, reml=True)._bucket is None
