"""level_identification's bound: a level whose largest group times the columns is at most half the rows is
identified without its group sums, as the exact residual trace(Z'(I - H)Z) says."""

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.identification import level_identification


def _residual(X, codes, g):
    Z = np.zeros((len(codes), g))
    Z[np.arange(len(codes)), codes] = 1.0
    H = X @ np.linalg.pinv(X)
    return float(np.trace(Z.T @ Z) - np.trace(Z.T @ H @ Z))


@pytest.mark.parametrize("seed", range(4))
def test_bound_agrees_with_the_exact_residual(seed):
    rng = np.random.default_rng(seed)
    n, schools = 600, 12
    school = np.sort(rng.integers(0, schools, n))
    room = school * 4 + rng.integers(0, 4, n)
    room = pd.factorize(room, sort=True)[0]
    # fixed effects: intercept, a covariate, and a room-level variable
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=room.max() + 1)[room]])
    codes, sizes = [school, room], [schools, int(room.max()) + 1]
    t = level_identification(X, codes, sizes, ["school", "room"])
    for level, (c, g) in enumerate(zip(codes, sizes)):
        exact = _residual(X, c, g)
        # the bound the fast path relies on
        assert exact >= n - X.shape[1] * np.bincount(c).max() - 1e-9 * n
        assert X.shape[1] * np.bincount(c).max() <= n / 2  # the bound applies here
        assert bool(t["identified"][level]) == (exact > 1e-8 * n)


def test_a_level_the_fixed_effects_determine_is_still_found():
    # every school's rows one grade, grade a fixed effect: the school variance is not identified
    grade = np.repeat([0, 1, 2], 40)
    X = np.column_stack([np.ones(120), grade == 1, grade == 2]).astype(float)
    room = np.arange(120) // 10
    t = level_identification(X, [grade, room], [3, 12], ["school", "room"])
    assert t["identified"].tolist() == [False, True]
