"""gap_table with a list of outcomes: each table is exactly the one its outcome alone gives."""

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.gaps import gap_table


def _students(n=600, seed=4):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "room": rng.integers(0, 30, n).astype(str),
            "race": rng.choice(["a", "b", "c", None], n, p=[0.4, 0.3, 0.29, 0.01]),
            "flag": rng.integers(0, 2, n).astype("int8"),
            "w": rng.uniform(0.5, 2.0, n),
            "share": rng.uniform(0, 1, n),
            "binary": rng.integers(0, 2, n).astype(float),
            "score": rng.normal(size=n),
        }
    )
    df.loc[rng.random(n) < 0.2, "share"] = np.nan  # other rows than the others' outcome
    df.loc[rng.random(n) < 0.05, "room"] = None
    return df


@pytest.mark.parametrize(
    "options",
    [
        {"cluster": "room", "n_boot": 30, "seed": 2},
        {"cluster": "room", "n_boot": 0},
        {"n_boot": 0, "weights": "w", "reference": {"race": "a"}},
        {"n_boot": 0},
    ],
)
def test_list_of_outcomes_gives_each_outcomes_own_table(options):
    df = _students()
    # outcomes with the same rows after one with others: the codes made again, then reused
    outcomes = ["binary", "share", "score", "binary"]
    with pytest.warns(UserWarning, match="fewer than"):
        tables = gap_table(df, outcome=outcomes, group=["race", "flag"], **options)
    assert isinstance(tables, list) and len(tables) == len(outcomes)
    for name, t in zip(outcomes, tables):
        with pytest.warns(UserWarning, match="fewer than"):
            alone = gap_table(df, outcome=name, group=["race", "flag"], **options)
        pd.testing.assert_frame_equal(t, alone, check_exact=True)
        assert t.attrs == alone.attrs
    assert gap_table(df, outcome=[], group="flag") == []
