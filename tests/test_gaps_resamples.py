"""gap_table(resamples=...): cluster resamples drawn once and shared by several gap tables give each table exactly
what it gives alone (outcomes missing in whole clusters, several chunks of replicates, one cluster, no rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats import gaps
from opportunity_research.stats.gaps import gap_table
from opportunity_research.study.equity import resource_gaps


def students(n_clusters=40, size=12, seed=3):
    rng = np.random.default_rng(seed)
    c = np.repeat(np.arange(n_clusters), size)
    u = rng.normal(0, 0.5, n_clusters)
    race = rng.choice(["asian", "black", "white"], len(c))
    low = rng.integers(0, 2, len(c)).astype(float)
    low[rng.random(len(c)) < 0.05] = np.nan  # a few students without the group value
    y = u[c] + 0.2 * (race == "black") + rng.normal(0, 1, len(c))
    b = (rng.random(len(c)) < 0.4).astype(float)
    part = y.copy()
    part[c < 5] = np.nan  # an outcome missing in whole clusters: fewer clusters resampled
    return pd.DataFrame({"cl": c.astype(float), "race": race, "low": low, "y": y, "b": b, "part": part})


def alone_and_shared(df, outcomes, **kw):
    alone = [gap_table(df, outcome=o, **kw) for o in outcomes]
    shared: dict = {}
    together = [gap_table(df, outcome=o, resamples=shared, **kw) for o in outcomes]
    return alone, together, shared


@pytest.mark.parametrize(
    "chunk_cells", [1 << 22, 100]
)  # one chunk of replicates, or a few clusters' worth each
def test_shared_resamples_give_each_table_its_own_intervals(monkeypatch, chunk_cells):
    monkeypatch.setattr(gaps, "_CHUNK_CELLS", chunk_cells)
    df = students()
    kw = {"group": ["race", "low"], "cluster": "cl", "n_boot": 57, "seed": 11}
    alone, together, shared = alone_and_shared(df, ["y", "b", "part", "y"], **kw)
    for a, t in zip(alone, together, strict=True):
        pd.testing.assert_frame_equal(a, t, check_exact=True)
        assert a.attrs == t.attrs
    # the draws of the 40 clusters kept once (y, b and y again), those of the 35 holding "part" once
    assert sorted(shared) == [(11, 57, 35), (11, 57, 40)]
    chunks = shared[(11, 57, 40)]
    assert sum(len(c) for c in chunks) == 57 and (len(chunks) > 1) == (chunk_cells == 100)
    assert all(c.dtype == np.uint8 for c in chunks)  # counts of 40 draws: small integers, kept compactly


def test_shared_resamples_other_seed_or_replicates_drawn_anew():
    df = students()
    shared: dict = {}
    for seed, n_boot in [(1, 30), (2, 30), (1, 31), (1, 30)]:
        t = gap_table(df, outcome="y", group="race", cluster="cl", n_boot=n_boot, seed=seed, resamples=shared)
        alone = gap_table(df, outcome="y", group="race", cluster="cl", n_boot=n_boot, seed=seed)
        pd.testing.assert_frame_equal(t, alone, check_exact=True)
    assert sorted(shared) == [(1, 30, 40), (1, 31, 40), (2, 30, 40)]


def test_shared_resamples_one_cluster_and_no_rows():
    df = students()
    one = df[df["cl"] == 7]
    alone, together, _ = alone_and_shared(one, ["y", "b"], group="race", cluster="cl", n_boot=20)
    for a, t in zip(alone, together, strict=True):
        pd.testing.assert_frame_equal(a, t, check_exact=True)
        assert a["ci_lower"].isna().all()  # one cluster: no interval
    empty = df.assign(y=np.nan)
    alone, together, shared = alone_and_shared(empty, ["y"], group="race", cluster="cl", n_boot=20)
    pd.testing.assert_frame_equal(alone[0], together[0], check_exact=True)
    assert len(together[0]) == 0 and shared == {}


def test_resource_gaps_shares_a_subjects_resamples(monkeypatch):
    """resource_gaps draws each subject's resamples once per number of clusters, for all its resources; its tables
    are those of each resource alone."""
    rng = np.random.default_rng(5)
    n = 600
    cls = rng.integers(0, 30, n)
    acc = pd.DataFrame(
        {
            "subject": np.where(np.arange(n) % 2, "ela", "math"),
            "classroom_id": [f"c{i}" for i in cls],
            "grade_appropriate": rng.random(n),
            "strong_instruction": np.where(cls < 3, np.nan, rng.random(n)),  # not measured in 3 classrooms
            "engaged": rng.random(n),
            "race_ethnicity": rng.choice(["black", "white"], n),
            "low_income": rng.integers(0, 2, n),
        }
    )
    resources = ["grade_appropriate", "strong_instruction", "engaged"]
    kw = {"access": acc, "variables": ["race_ethnicity", "low_income"], "n_boot": 40, "seed": 9}
    draws = []
    real = np.random.default_rng
    monkeypatch.setattr(np.random, "default_rng", lambda seed: draws.append(seed) or real(seed))
    together = resource_gaps(None, resources=resources, **kw)
    # per subject: the 30 classrooms (grade-appropriate assignments, then engagement: drawn once), the 27 with
    # strong instruction measured
    assert len(draws) == 4
    for r in resources:
        alone = resource_gaps(None, resources=[r], **kw)
        pd.testing.assert_frame_equal(
            together[together["measure"] == r].reset_index(drop=True), alone, check_exact=True
        )
