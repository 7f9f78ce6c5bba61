"""The level counts and score gaps read the roster's text variables as categories (issue #21, 1,000,000
students), and the level counts its school ids: each (subject, year) part takes their codes, not their text, and
the tables are the same (pinned against the whole join in ``test_year_parts``)."""

from __future__ import annotations

import pandas as pd
import pytest

from opportunity_research.study import levelgaps

from .test_year_parts import _data


@pytest.mark.parametrize("fn", ["level_counts_from_assessments", "score_gaps"])
def test_parts_take_the_variables_codes(fn, monkeypatch):
    a, st = _data(1)
    want = getattr(levelgaps, fn)(a, students=st)
    dtypes = []
    real = levelgaps._level_codes

    def spy(x):
        dtypes.append((x.name, str(x.dtype)))
        return real(x)

    monkeypatch.setattr(levelgaps, "_level_codes", spy)
    got = getattr(levelgaps, fn)(a, students=st)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert ("race_ethnicity", "category") in dtypes
    assert all(t == "category" for name, t in dtypes if name == "race_ethnicity")


def test_level_counts_group_the_parts_on_school_codes(monkeypatch):
    a, st = _data(2)
    want = levelgaps.level_counts_from_assessments(a, students=st)
    dtypes = []
    real = levelgaps._level_count_parts

    def spy(r, variables):
        dtypes.append(str(r["school_id"].dtype))
        return real(r, variables)

    monkeypatch.setattr(levelgaps, "_level_count_parts", spy)
    got = levelgaps.level_counts_from_assessments(a, students=st)
    pd.testing.assert_frame_equal(got, want, check_exact=True)  # the school ids given back as text
    assert dtypes and set(dtypes) == {"category"}
