"""The level counts (issue #21, 1,000,000 students): each part's (school, subject, year, level) cells are
numbered from the keys' codes combined, not by a groupby of the four columns, and the counts are those of a plain
merge of the spring results with the roster counted by pandas, on planted data with missing levels, groups and
schools, students off the roster and rows without a subject (which no count holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from opportunity_research.study import levelgaps

from .test_year_parts import _data


def _counted(a: pd.DataFrame, st: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    j = a[(a["window"] == "spring") & a["performance_level"].notna()].merge(st, on="student_id")
    keys = ["school_id", "subject", "school_year"]
    parts = [
        j.groupby([*keys, "performance_level"]).size().rename("n_students").reset_index().assign(group="all")
    ]
    for v in variables:
        t = j.assign(level=j[v].map(levelgaps._level_text, na_action="ignore")).dropna(subset=["level"])
        t = t.groupby([*keys, "performance_level", "level"]).size().rename("n_students").reset_index()
        parts.append(t.assign(group=v + "=" + t.pop("level")))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values([*keys, "group", "performance_level"], ignore_index=True)


def test_level_counts_are_the_merges_counts():
    a, st = _data(6)
    st = st.copy()
    st.loc[st.index[:7], "school_id"] = None  # rows without a school: in no cell
    st.loc[st.index[5:15], "race_ethnicity"] = None  # without a level: in no cell of the variable
    a.loc[np.random.default_rng(6).random(len(a)) < 0.03, "subject"] = None
    variables = ["low_income", "race_ethnicity"]
    assert st["race_ethnicity"].isna().any() and (~a["student_id"].isin(st["student_id"])).any()
    got = levelgaps.level_counts_from_assessments(a, students=st, variables=variables)
    want = _counted(a, st, variables)
    assert len(got) == len(want) > 50
    for c in ("school_id", "subject", "group"):
        assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
    assert got["school_year"].tolist() == want["school_year"].tolist()
    assert got["performance_level"].tolist() == want["performance_level"].astype(int).tolist()
    assert got["n_students"].tolist() == want["n_students"].tolist()
