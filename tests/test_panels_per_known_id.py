"""per_known_id: a reduction of each known id's rows, grouped on the ids' positions, equals the one grouped on the
ids' text and mapped onto the known ids (repeated, missing and unknown ids, no rows, empty groups, other dtypes);
student_groups and multiple_measures_gaps use it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.study import equity, panels
from opportunity_research.study.panels import map_ids, per_known_id
from opportunity_research.synth.districts import generate_districts
from opportunity_research.synth.specs import METRO


def as_written(known, ids, values, how, then=None):
    then = then or (lambda per: per)
    return map_ids(known, then(values.groupby(ids).agg(how)))


def rows(n=5000, k=800, seed=0, dtype="str", at_most_two=False):
    rng = np.random.default_rng(seed)
    known = pd.Series([f"S{i:05d}" for i in rng.permutation(k)], dtype=dtype, index=np.arange(k) * 3)
    pick = rng.integers(0, k + 50, n)  # some ids not among the known ones
    if at_most_two:  # each id on at most two rows, in no order
        pick = rng.permutation(np.concatenate([rng.permutation(k + 50)[:600], rng.permutation(k + 50)[:500]]))
        n = len(pick)
    ids = pd.Series([f"S{i:05d}" for i in pick], dtype=dtype)
    ids[rng.random(n) < 0.02] = None  # rows without an id
    values = pd.Series(rng.random(n) * 3, index=ids.index)
    values[rng.random(n) < 0.1] = np.nan  # missing values; some ids with only missing ones
    return known, ids, values


@pytest.mark.parametrize("at_most_two", [False, True])
@pytest.mark.parametrize("dtype", ["str", object])
@pytest.mark.parametrize("how", ["mean", "max", "min", "sum"])
def test_per_known_id_is_the_text_grouping(monkeypatch, how, dtype, at_most_two):
    known, ids, values = rows(dtype=dtype, at_most_two=at_most_two)
    want = as_written(known, ids, values, how)
    positions = []
    real = panels.id_positions
    monkeypatch.setattr(panels, "id_positions", lambda k, i: positions.append(k is known) or real(k, i))
    got = per_known_id(known, ids, values, how)
    pd.testing.assert_series_equal(got, want, check_exact=True)
    assert got.index.equals(known.index) and got.isna().any()  # ids without rows: missing
    # grouped on positions for max and min, and for sums and means of at most two rows; else on the text (then
    # mapped: map_ids looks the groups up)
    assert positions[0] and (len(positions) == 1) == (how in ("max", "min") or at_most_two)


def test_per_known_id_then_and_all_missing_groups():
    known, ids, values = rows(seed=1)
    then = lambda rate: (rate < 1.5).astype(float)
    got = per_known_id(known, ids, values, "mean", then=then)
    pd.testing.assert_series_equal(got, as_written(known, ids, values, "mean", then), check_exact=True)
    # an id whose rows are all missing is 0 after ``then`` (NaN < 1.5 is False), an id without rows missing
    only_missing = set(ids[values.isna()]) - set(ids[values.notna()]) - {None}
    assert only_missing and (got[known.isin(only_missing)] == 0).all()


def test_per_known_id_falls_back(monkeypatch):
    known, ids, values = rows(seed=2)
    repeated = pd.concat([known, known.iloc[:3]])
    missing = known.copy()
    missing.iloc[4] = None
    calls = []
    real = panels.id_positions
    monkeypatch.setattr(panels, "id_positions", lambda known, ids: calls.append(known) or real(known, ids))
    for k in (repeated, missing):  # repeated or missing known ids: grouped on the text, as written
        pd.testing.assert_series_equal(
            per_known_id(k, ids, values, "max"), as_written(k, ids, values, "max"), check_exact=True
        )
    # never looked up among them (their positions would not be the ids): only map_ids looks the groups up
    assert calls and not any(c is k for c in calls for k in (repeated, missing))
    no_rows = per_known_id(known, ids.iloc[:0], values.iloc[:0], "mean")
    assert no_rows.isna().all() and len(no_rows) == len(known)
    # ``then`` giving no floats: as written (map_ids keeps what pandas maps)
    then = lambda m: m > 1
    pd.testing.assert_series_equal(
        per_known_id(known, ids, values, "mean", then=then), as_written(known, ids, values, "mean", then)
    )


def test_groups_and_chronic_absence_as_grouped_on_text(monkeypatch):
    tables = generate_districts(4, 500, specs=(METRO,))["demo_metro"]["tables"]
    d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    acc = equity.student_access(d)
    groups = equity.student_groups(d, access=acc)
    gaps = equity.multiple_measures_gaps(d, access=acc, groups=groups)
    monkeypatch.setattr(panels, "unique_ids", lambda ids: False)  # every reduction grouped on the ids' text
    pd.testing.assert_frame_equal(groups, equity.student_groups(d, access=acc), check_exact=True)
    pd.testing.assert_frame_equal(
        gaps, equity.multiple_measures_gaps(d, access=acc, groups=groups), check_exact=True
    )
    assert "chronic_absence" in set(gaps["measure"]) and groups["started_behind"].notna().any()
