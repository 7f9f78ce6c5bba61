"""The analysis' joins and groupings on integer codes give what the text-keyed methods gave, to the bit.

Each fast path is pinned to the method it replaced (a merge on the id text, a groupby on a column of Python
strings), on planted data: missing ids and values, students not on the roster, repeated and shuffled rows,
and a roster the fast path must not trust (a missing or a repeated id: it falls back to the merge).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opportunity_research.stats import estimates
from opportunity_research.study import levelgaps, measures, panels


def _planted(seed: int, *, roster_na: bool = False, roster_dup: bool = False):
    """Assessments and a roster: off-roster students, missing ids and values, repeated rows, shuffled."""
    rng = np.random.default_rng(seed)
    n_st = 300
    ids = np.array([f"s{i:04d}é" if i % 7 == 0 else f"s{i:04d}" for i in range(n_st)], dtype=object)
    students = pd.DataFrame(
        {
            "student_id": pd.array(ids, dtype="str"),
            "school_id": pd.array(rng.choice(["A", "B", "C"], n_st), dtype="str"),
            "race_ethnicity": pd.array(rng.choice(["white", "black", "asian", None], n_st), dtype="str"),
            "low_income": rng.integers(0, 2, n_st),
            "english_learner": rng.choice([0.0, 1.0, np.nan], n_st),
        }
    ).sample(frac=1.0, random_state=seed)  # roster in no particular order
    if roster_na:
        students.iloc[3, 0] = None
    if roster_dup:
        students = pd.concat([students, students.iloc[[5]]], ignore_index=True)
    n = 2500
    who = np.where(
        rng.random(n) < 0.1, np.char.add("x", rng.integers(0, 50, n).astype(str)), rng.choice(ids, n)
    )
    who = who.astype(object)
    who[rng.random(n) < 0.03] = None  # a result without a student id
    a = pd.DataFrame(
        {
            "student_id": pd.array(who, dtype="str"),
            "subject": rng.choice(["ela", "math"], n),
            "school_year": rng.choice([2014, 2015, 2016], n),
            "window": rng.choice(["spring", "fall"], n, p=[0.8, 0.2]),
            "grade": rng.integers(3, 9, n),
            "scale_score": np.where(rng.random(n) < 0.05, np.nan, rng.normal(250, 30, n)),
            "performance_level": np.where(rng.random(n) < 0.05, np.nan, rng.integers(1, 5, n)),
        }
    )
    a = pd.concat([a, a.iloc[:200]], ignore_index=True)  # repeated rows
    a = a.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)  # shuffled
    return a, students


def _merge_join(frame, students, columns):
    return frame.merge(students[["student_id", *columns]], on="student_id", how="inner")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("roster", ["clean", "missing_id", "repeated_id"])
def test_roster_join_is_the_inner_merge(seed, roster):
    a, s = _planted(seed, roster_na=roster == "missing_id", roster_dup=roster == "repeated_id")
    cols = ["school_id", "race_ethnicity", "low_income", "english_learner"]
    got = panels.roster_join(a, s, cols)
    pd.testing.assert_frame_equal(got, _merge_join(a, s, cols), check_exact=True)
    assert len(got) < len(a)  # off-roster and id-less results were planted: the join drops them


def test_roster_join_of_integer_ids_and_of_no_rows():
    s = pd.DataFrame({"student_id": [5, 3, 9], "g": ["a", "b", "c"]})
    f = pd.DataFrame({"student_id": [9, 1, 3, 9], "v": [1.0, 2.0, 3.0, 4.0]})
    pd.testing.assert_frame_equal(panels.roster_join(f, s, ["g"]), _merge_join(f, s, ["g"]))
    pd.testing.assert_frame_equal(panels.roster_join(f.iloc[:0], s, ["g"]), _merge_join(f.iloc[:0], s, ["g"]))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("roster", ["clean", "missing_id"])
def test_level_counts_and_score_gaps_equal_the_merge(seed, roster, monkeypatch):
    a, s = _planted(seed, roster_na=roster == "missing_id")
    variables = ["race_ethnicity", "low_income", "english_learner"]
    counts = levelgaps.level_counts_from_assessments(a, students=s, variables=variables)
    gaps = levelgaps.score_gaps(a, students=s, variables=variables)
    monkeypatch.setattr(levelgaps, "roster_join", _merge_join)  # the method before the roster positions
    pd.testing.assert_frame_equal(
        counts, levelgaps.level_counts_from_assessments(a, students=s, variables=variables), check_exact=True
    )
    pd.testing.assert_frame_equal(
        gaps, levelgaps.score_gaps(a, students=s, variables=variables), check_exact=True
    )
    assert len(counts) and len(gaps)


def _cluster_mean_ci_on_objects(values, clusters, confidence=0.95):
    """The method before integer codes: the clusters as an array of Python objects, grouped by value."""
    v = pd.Series(np.asarray(values, dtype=float))
    c = pd.Series(np.asarray(clusters))
    ok = v.notna() & c.notna()
    v, c = v[ok], c[ok]
    n = len(v)
    if n == 0:
        return (np.nan, np.nan, np.nan, 0, 0)
    est = float(v.mean())
    grp = v.groupby(c.to_numpy())
    s, m = grp.sum().to_numpy(), grp.size().to_numpy()
    g = len(s)
    if g < 2:
        return (est, np.nan, np.nan, n, g)
    var = g / (g - 1) * np.sum((s - est * m) ** 2) / n**2
    tq = stats.t.ppf(0.5 + confidence / 2, g - 1)
    if v.isin([0.0, 1.0]).all():
        vbin = est * (1 - est) / n
        deff = max(1.0, var / vbin) if vbin > 0 else 1.0
        lo, hi = estimates.wilson_interval(est * n / deff, n / deff, critical=tq)
        return (est, float(lo), float(hi), n, g)
    half = tq * np.sqrt(var)
    return (est, est - half, est + half, n, g)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("kind", ["share", "mean"])
@pytest.mark.parametrize("clusters", ["text", "text_list", "numbers"])
def test_cluster_mean_ci_equals_the_object_grouping(seed, kind, clusters):
    rng = np.random.default_rng(seed)
    n = 4000
    names = np.array(
        ["Zeta", "alpha", "Éclair", "beta", "b", "ä", "classroom 10", "classroom 9"], dtype=object
    )
    names = np.concatenate([names, np.array([f"c{i}" for i in range(300)], dtype=object)])
    c = rng.choice(names, n).astype(object)
    c[rng.random(n) < 0.05] = None  # a row without a classroom
    v = (
        rng.integers(0, 2, n).astype(float)
        if kind == "share"
        else rng.normal(size=n) * 10.0 ** rng.integers(-6, 7, n)
    )
    v[rng.random(n) < 0.05] = np.nan  # a row without a score
    if clusters == "text":
        cl = pd.Series(pd.array(c, dtype="str"))
    elif clusters == "text_list":
        cl = list(c)
    else:
        cl = pd.Series(np.where(pd.isna(c), np.nan, rng.integers(0, 400, n).astype(float)))
    got = measures.cluster_mean_ci(pd.Series(v), cl)
    ref = _cluster_mean_ci_on_objects(pd.Series(v), cl)
    assert got[3:] == ref[3:] and got[3] < n
    np.testing.assert_array_equal(np.array(got[:3]), np.array(ref[:3]))  # to the bit


def test_cell_share_intervals_need_no_iid_variance():
    """A share's interval: the clustered Wilson (as cluster_mean_ci) with clusters, plain Wilson without."""
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame(
        {
            "cell": rng.choice(["a", "b", "c", "d"], n),
            "cluster": rng.integers(0, 60, n),
            "x": rng.integers(0, 2, n).astype(float),
        }
    )
    df.loc[df["cell"] == "d", "cluster"] = 7  # one cluster: independent rows
    df.loc[df["cell"] == "c", "cluster"] = (
        df.loc[df["cell"] == "c", "cluster"] % 3
    )  # too few: independent rows
    t = estimates.cell_estimates(df, by=["cell"], value="x", kind="share", cluster="cluster")
    for r in t.itertuples():
        part = df[df["cell"] == r.cell]
        if r.cell in ("a", "b"):
            est, lo, hi, _, g = measures.cluster_mean_ci(part["x"], part["cluster"])
            assert g == r.n_clusters
        else:
            est = part["x"].mean()
            lo, hi = estimates.wilson_interval(part["x"].sum(), len(part))
        np.testing.assert_allclose([r.estimate, r.ci_lower, r.ci_upper], [est, lo, hi], rtol=1e-12)


def _climate_planted(seed: int, n_schools: int):
    """Climate responses over three years: repeated students, ids off the roster or missing, shuffled rows."""
    from opportunity_research.intake.contract import CLIMATE_ITEMS

    rng = np.random.default_rng(seed)
    n_st = 400
    ids = np.array([f"S{i:05d}" for i in range(n_st)], dtype=object)
    students = pd.DataFrame(
        {
            "student_id": pd.array(ids, dtype="str"),
            "school_id": pd.array(rng.choice([f"H{i}" for i in range(n_schools)], n_st), dtype="str"),
            "race_ethnicity": pd.array(rng.choice(["white", "black", "latino"], n_st), dtype="str"),
            "low_income": rng.integers(0, 2, n_st),
            "english_learner": rng.integers(0, 2, n_st),
            "disability": rng.integers(0, 2, n_st),
        }
    )
    n = 1500
    who = rng.choice(np.concatenate([ids, ["ghost1", "ghost2"]]), n).astype(object)
    who[rng.random(n) < 0.03] = None
    data = {"student_id": pd.array(who, dtype="str"), "school_year": rng.choice([2014, 2015, 2016], n)}
    for items in CLIMATE_ITEMS.values():
        for item in items:
            x = rng.integers(1, 6, n).astype(float)
            x[rng.random(n) < 0.1] = np.nan
            data[item] = x
    survey = pd.DataFrame(data)
    survey = pd.concat([survey, survey.iloc[:100]], ignore_index=True).sample(frac=1.0, random_state=seed)
    return survey.reset_index(drop=True), students


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_schools", [3, 12])  # 3: too few clusters, the district rows cluster on students
def test_climate_summary_on_student_year_codes_equals_student_codes(seed, n_schools, monkeypatch):
    from opportunity_research.study import climate

    survey, students = _climate_planted(seed, n_schools)
    got = climate.climate_summary(survey, students=students)
    # the coding before: one id per student, in every year
    monkeypatch.setattr(
        climate, "_student_year_codes", lambda f, students=None: pd.factorize(f["student_id"])[0]
    )
    ref = climate.climate_summary(survey, students=students)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert len(got) and got["mean_ci_lower"].notna().any()


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cluster", [None, "sid"])
def test_subgroup_estimates_of_several_values_equal_each_value_alone(seed, cluster):
    """The cells made once for every value (and a column's missing rows found once) give each value's table."""
    rng = np.random.default_rng(seed)
    n = 5000
    df = pd.DataFrame(
        {
            "year": rng.choice([2015, 2016], n),
            "school_id": pd.Categorical(rng.choice(["A", "B", "C", None], n, p=[0.3, 0.3, 0.3, 0.1])),
            "low_income": rng.choice([0.0, 1.0, np.nan], n),
            "race": pd.array(rng.choice(["w", "b", None], n), dtype="str"),
            "sid": rng.integers(0, 800, n),
            "up": rng.integers(0, 2, n).astype(float),
            "down": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 2, n).astype(float)),
        }
    ).sample(frac=1.0, random_state=seed)
    kw = {
        "keys": ["year", "school_id"],
        "variables": ["low_income", "race"],
        "kind": "share",
        "cluster": cluster,
        "unit": "sid",
    }
    both = estimates.subgroup_estimates(df, value=["up", "down", "up"], _memo={}, **kw)
    for got, v in zip(both, ["up", "down", "up"], strict=True):
        pd.testing.assert_frame_equal(got, estimates.subgroup_estimates(df, value=v, **kw), check_exact=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ids_in_and_map_ids_equal_isin_and_map(seed):
    rng = np.random.default_rng(seed)
    pool = np.array([f"s{i:03d}" for i in range(200)] + ["ü", "Ü"], dtype=object)
    ids = rng.choice(pool, 1000).astype(object)
    ids[rng.random(1000) < 0.05] = None
    ids = pd.Series(pd.array(ids, dtype="str"), index=rng.permutation(1000) + 7, name="student_id")
    some = rng.choice(pool, 80).astype(object)  # repeated values
    for values in (
        pd.Series(pd.array(some, dtype="str")),
        pd.Series(pd.array([*some, None], dtype="str")),
        [],
    ):
        pd.testing.assert_series_equal(panels.ids_in(ids, values), ids.isin(set(values)))
    keys = pd.Index(rng.permutation(pool)[:150], dtype="str")
    mapper = pd.Series(rng.normal(size=150), index=keys)
    mapper.iloc[:10] = np.nan
    pd.testing.assert_series_equal(panels.map_ids(ids, mapper), ids.map(mapper), check_exact=True)
    pd.testing.assert_series_equal(panels.map_ids(ids, mapper.iloc[:0]), ids.map(mapper.iloc[:0]))
    dup = pd.concat([mapper, mapper.iloc[:3]])  # repeated ids: pandas decides
    with pytest.raises(pd.errors.InvalidIndexError):
        ids.map(dup)
    with pytest.raises(pd.errors.InvalidIndexError):
        panels.map_ids(ids, dup)


@pytest.mark.parametrize("students", [300, 1500])
def test_opportunity_indicators_on_student_year_codes_equal_student_codes(students, monkeypatch):
    from opportunity_research.intake.dataset import District
    from opportunity_research.study import equity
    from opportunity_research.synth.districts import generate_districts
    from opportunity_research.synth.specs import METRO

    tables = generate_districts(1, students, specs=(METRO,))["demo_metro"]["tables"]
    tables = {k: v for k, v in tables.items() if v is not None}
    att = tables["attendance"]
    ghost = att.iloc[:20].assign(student_id="not-on-roster")  # off the roster
    att = pd.concat([att, ghost, att.iloc[:30]], ignore_index=True)  # and repeated rows
    tables["attendance"] = att.sample(frac=1.0, random_state=3).reset_index(drop=True)  # shuffled
    d = District("demo_metro", tables)
    got = equity.opportunity_indicators(d)
    monkeypatch.setattr(
        equity, "student_year_codes", lambda f, students=None: pd.factorize(f["student_id"])[0]
    )
    ref = equity.opportunity_indicators(d)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert got["school_year"].nunique() > 1 and len(got)
