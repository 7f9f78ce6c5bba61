"""The trajectory tables on the integer panel (:func:`panels.yearly_panel`) equal a straightforward reference.

The reference builds each table as the package did before the panel: the yearly results with the id text
(:func:`panels.yearly_results`), pairs of years by ``pandas.merge`` on student, subject and year, per-student
growth by ``groupby`` on the text, and cells by :func:`panels.subgroup_cells` on ``student_id``. On planted data
with what a real export has (fall rows, a third subject, missing scores and grade equivalents, students off the
roster, groups with missing values, shuffled rows) every table must be equal, floats exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats.estimates import complete_table
from opportunity_research.study import panels
from opportunity_research.study import trajectories as tr

SUBJECTS = ("ela", "math")


def _planted(seed: int, *, n: int = 90, off_roster: bool = False):
    """Assessments and students of ``n`` students in three schools, 2012-2016 (rows missing at random)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    students = pd.DataFrame(
        {
            "student_id": ids,
            "school_id": rng.choice(["S1", "S2", "S3"], n),
            "race_ethnicity": rng.choice(["white", "black", "asian", "hispanic"], n, p=[0.4, 0.3, 0.1, 0.2]),
            "low_income": rng.integers(0, 2, n),
            "english_learner": rng.integers(0, 2, n),
            "disability": rng.choice([0.0, 1.0, np.nan], n, p=[0.7, 0.2, 0.1]),
        }
    )
    grid = pd.MultiIndex.from_product(
        [ids, ["ela", "math", "science"], range(2012, 2017), ["spring", "fall"]],
        names=["student_id", "subject", "school_year", "window"],
    ).to_frame(index=False)
    grid = grid[rng.random(len(grid)) < 0.8].reset_index(drop=True)
    k = len(grid)
    grade = 3 + (grid["school_year"] - 2012) + rng.integers(0, 3, k)
    offset = rng.normal(-0.2, 1.0, k).round(2)
    grid["grade"] = grade
    grid["grade_level_cut"] = 200.0 + 20 * grade
    grid["scale_score"] = np.where(rng.random(k) < 0.05, np.nan, 200 + 20 * (grade + offset))
    grid["performance_level"] = np.where(rng.random(k) < 0.05, np.nan, np.clip(np.floor(offset + 3), 1, 4))
    grid["grade_equivalent"] = np.where(rng.random(k) < 0.1, np.nan, grade + offset)
    if off_roster:  # results of students the roster does not list
        grid.loc[rng.random(k) < 0.05, "student_id"] = "gone"
    grid = grid.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return grid, students


# ------------------------------------------------------------------------------------------------------------
# the reference: the tables on the id text, with merges (the package before the integer panel)
# ------------------------------------------------------------------------------------------------------------
def _merged_pairs(panel: pd.DataFrame) -> pd.DataFrame:
    nxt = panel[
        ["student_id", "subject", "school_year", "performance_level", "grade_equivalent", "at_grade_level"]
    ]
    nxt = nxt.rename(
        columns={
            "performance_level": "to_level",
            "grade_equivalent": "ge_to",
            "at_grade_level": "at_grade_level_to",
        }
    )
    cur = panel.rename(
        columns={"school_year": "from_year", "performance_level": "from_level", "grade_equivalent": "ge_from"}
    )
    out = cur.assign(school_year=cur["from_year"] + 1).merge(
        nxt, on=["student_id", "subject", "school_year"], how="inner"
    )
    return out.rename(columns={"school_year": "to_year"})


def _ref_catch_up(a, st, start_year, years_later=(1, 2, 3), variables=panels.VARIABLES):
    panel = panels.yearly_results(a, students=st)
    panel = panel[panel["at_grade_level"].notna()]
    years = sorted(int(y) for y in panel["school_year"].unique())
    with_follow = [y for y in years if any(y + k in years for k in years_later)]
    starts = with_follow if start_year == "all" else with_follow[:1]
    base = panel[panel["school_year"].isin(starts) & (panel["at_grade_level"] == 0)]
    base = base.rename(columns={"school_year": "start_year"})
    follow = panel[["student_id", "subject", "school_year", "at_grade_level"]]
    follow = follow.rename(columns={"at_grade_level": "caught_up"})
    pairs = pd.concat(
        [
            base.assign(school_year=base["start_year"] + k)
            .merge(follow, on=["student_id", "subject", "school_year"], how="inner")
            .assign(years_later=int(k))
            for k in years_later
        ],
        ignore_index=True,
    )
    keys = ["subject", "start_year", "years_later", "school_year"]
    common = {"variables": variables, "confidence": 0.95, "pooled": True}
    out = panels.subgroup_cells(pairs, keys=keys, value="caught_up", kind="share", **common)
    start = panels.subgroup_cells(
        base.assign(one=1.0), keys=["subject", "start_year"], value="one", kind="mean", **common
    )
    start = start[["subject", "start_year", "school_id", "group", "n"]].rename(columns={"n": "n_start"})
    out = out.merge(
        start, on=["subject", "start_year", "school_id", "group"], how="left", validate="many_to_one"
    )
    out = complete_table(out, counts=["n_start", "n", "n_students"])
    return out


def _ref_per_student_growth(a, st, start, end, method):
    panel = panels.yearly_results(a, students=st)
    p = panel[panel["grade_equivalent"].notna() & panel["school_year"].between(start, end)]
    first = p[p["school_year"] == start]
    key = ["student_id", "subject"]
    p = p.merge(first[key], on=key, how="inner")
    t = (p["school_year"] - start).astype(float)
    y = p["grade_equivalent"].astype(float)
    g = pd.DataFrame(
        {"student_id": p["student_id"], "subject": p["subject"], "t": t, "y": y, "tt": t * t, "ty": t * y}
    )
    s = g.groupby(key, sort=False).agg(
        k=("t", "size"),
        st=("t", "sum"),
        sy=("y", "sum"),
        stt=("tt", "sum"),
        sty=("ty", "sum"),
        tmax=("t", "max"),
    )
    if method == "slope":
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (s["sty"] - s["st"] * s["sy"] / s["k"]) / (s["stt"] - s["st"] ** 2 / s["k"])
    else:
        last = p.loc[p.groupby(key, sort=False)["school_year"].idxmax()].set_index(key)["grade_equivalent"]
        growth = (last.reindex(s.index) - first.set_index(key)["grade_equivalent"].reindex(s.index)) / s[
            "tmax"
        ]
    s["growth"] = growth.where(s["k"] >= 2)
    out = first.set_index(key)[["school_id", *panels.VARIABLES, "start_offset", "at_grade_level"]]
    out = out.join(s[["k", "growth"]], how="inner")
    out["started_behind"] = (1 - out["at_grade_level"]).astype(float)
    out = out.rename(columns={"k": "n_years"}).reset_index()
    return out[out["growth"].notna()]


def _ref_year_pairs(a, st, column):
    panel = panels.yearly_results(a, students=st)
    return _merged_pairs(panel[panel[column].notna()])


# ------------------------------------------------------------------------------------------------------------
def _same(got: pd.Series, want: pd.Series) -> None:
    """Equal values, floats exactly, missing where missing (text as text, whatever the dtype)."""
    pd.testing.assert_series_equal(
        got.astype(object).reset_index(drop=True),
        want.astype(object).reset_index(drop=True),
        check_exact=True,
        check_names=False,
    )


@pytest.mark.parametrize("seed, off_roster", [(1, False), (2, True), (3, False)])
def test_catch_up_rates_equal_the_merge_reference(seed, off_roster):
    a, st = _planted(seed, off_roster=off_roster)
    for start_year in (None, "all"):
        got = tr.catch_up_rates(a, students=st, start_year=start_year)
        ref = _ref_catch_up(a, st, start_year)
        ref = panels.order_rows(ref, ["subject", "start_year", "years_later", "school_year"])[got.columns]
        pd.testing.assert_frame_equal(got, ref, check_exact=True)


@pytest.mark.parametrize("seed, off_roster", [(4, False), (5, True)])
@pytest.mark.parametrize("method", ["slope", "endpoints"])
def test_growth_per_student_equals_the_groupby_reference(seed, off_roster, method):
    a, st = _planted(seed, off_roster=off_roster)
    panel = tr.yearly_panel(a, students=st)
    got = tr._student_growth(panel, 2012, 2015, method)
    ref = _ref_per_student_growth(a, st, 2012, 2015, method)
    assert len(got) == len(ref) > 50
    for c in [
        "school_id",
        *panels.VARIABLES,
        "start_offset",
        "at_grade_level",
        "n_years",
        "growth",
        "started_behind",
    ]:
        _same(got[c], ref[c])
    # the same student codes as the text ids (one code per student)
    assert pd.crosstab(got["_sid"].to_numpy(), ref["student_id"].to_numpy()).gt(0).sum(axis=1).eq(1).all()
    g = tr.grade_level_growth(a, students=st, method=method, end_year=2015)
    cells = panels.subgroup_cells(
        ref.assign(start_year=2012, end_year=2015),
        keys=["subject", "start_year", "end_year"],
        variables=[*panels.VARIABLES, "started_behind"],
        value=["start_offset", "growth"],
        kind="mean",
        confidence=0.95,
        pooled=True,
    )
    want = panels.side_by_side(cells, ["start_offset", "growth"], ["subject", "start_year", "end_year"])
    want = panels.order_rows(want, ["subject", "start_year", "end_year"])
    for c in ["n", "n_students", "start_offset", "start_offset_ci_lower", "growth", "growth_ci_upper"]:
        np.testing.assert_array_equal(
            g[c].astype(float).to_numpy(), want[c].astype(float).to_numpy(), err_msg=c
        )


@pytest.mark.parametrize("seed, off_roster", [(6, False), (7, True)])
def test_yearly_growth_and_movement_equal_the_merge_reference(seed, off_roster):
    a, st = _planted(seed, off_roster=off_roster)
    keys = ["subject", "school_year"]
    pairs = _ref_year_pairs(a, st, "grade_equivalent")
    pairs = pairs.assign(
        gain=pairs["ge_to"] - pairs["ge_from"],
        started_behind=1 - pairs["at_grade_level"],
        school_year=pairs["to_year"],
    )
    want = panels.subgroup_cells(
        pairs,
        keys=keys,
        variables=[*panels.VARIABLES, "started_behind"],
        value="gain",
        kind="mean",
        confidence=0.95,
        pooled=True,
    )
    got = tr.yearly_growth(a, students=st)
    want = panels.order_rows(complete_table(want, counts=["n", "n_students"]), keys)[got.columns]
    pd.testing.assert_frame_equal(got, want, check_exact=True)

    keys = ["subject", "from_year", "school_year"]
    pairs = _ref_year_pairs(a, st, "performance_level")
    pairs = pairs.assign(
        school_year=pairs["to_year"],
        moved_up=(pairs["to_level"] > pairs["from_level"]).astype(float),
        moved_down=(pairs["to_level"] < pairs["from_level"]).astype(float),
    )
    names = ["moved_up", "moved_down"]
    cells = panels.subgroup_cells(
        pairs, keys=keys, variables=panels.VARIABLES, value=names, kind="share", confidence=0.95, pooled=True
    )
    want = panels.side_by_side(cells, names, keys)
    want["stayed"] = 1 - want["moved_up"] - want["moved_down"]
    got = tr.level_movement(a, students=st)
    want = panels.order_rows(complete_table(want, counts=["n", "n_students"]), keys)[got.columns]
    pd.testing.assert_frame_equal(got, want, check_exact=True)

    t = tr.level_transitions(a)
    p = _ref_year_pairs(a, None, "performance_level")
    counts = p.groupby(["subject", "from_year", "to_year", "from_level", "to_level"]).size()
    got_counts = t[t["n"] > 0].set_index(["subject", "from_year", "to_year", "from_level", "to_level"])["n"]
    assert got_counts.astype(int).to_dict() == {
        (s, fy, ty, int(f), int(to)): v for (s, fy, ty, f, to), v in counts.items()
    }


def test_a_panel_gives_the_tables_of_its_data_and_is_built_once():
    a, st = _planted(8)
    panel = tr.yearly_panel(a, students=st)
    for f in (
        tr.catch_up_rates,
        tr.level_movement,
        tr.yearly_growth,
        tr.grade_level_growth,
        tr.trajectory_indicators,
    ):
        pd.testing.assert_frame_equal(f(panel, students=None), f(a, students=st), check_exact=True)
    assert tr.yearly_panel(panel) is panel
    with pytest.raises(ValueError, match="fall results"):
        tr.catch_up_rates(panel, students=st, window="fall")


def test_panel_codes_and_roster_columns():
    a, st = _planted(9, off_roster=True)
    p = tr.yearly_panel(a, students=st)
    t = panels.yearly_results(a, students=st)
    f = p.frame
    assert len(f) == len(t) and p.text == {
        "subject": a["subject"].dtype,
        **{c: st[c].dtype for c in ["school_id", "race_ethnicity"]},
    }
    for c in [
        "school_year",
        "grade",
        "performance_level",
        "grade_equivalent",
        "at_grade_level",
        "start_offset",
        *panels.VARIABLES,
        "school_id",
    ]:
        _same(f[c], t[c])
    # one _sid per student id, one _sk per (student id, subject), and no two ids share one
    for code, key in (("_sid", ["student_id"]), ("_sk", ["student_id", "subject"])):
        both = pd.DataFrame({"code": f[code].to_numpy()}).join(t[key].astype(str))
        assert both.drop_duplicates().groupby("code").size().max() == 1
        assert both.drop_duplicates().groupby(key).size().max() == 1
    # every result on the roster: the codes are roster positions
    on = a[a["student_id"] != "gone"]
    q = tr.yearly_panel(on, students=st)
    ids = panels.yearly_results(on, students=st)["student_id"]
    assert (st["student_id"].to_numpy()[q.frame["_sid"].to_numpy()] == ids.to_numpy()).all()


@pytest.mark.parametrize("seed", range(6))
def test_join_rows_is_an_inner_merge(seed):
    rng = np.random.default_rng(seed)
    hi = [5, 40, 10**9][seed % 3]  # dense unique, dense with repeats, sparse
    left = rng.integers(0, hi, 300)
    right = rng.permutation(hi)[:200] if seed < 2 else rng.integers(0, hi, 200)
    li, ri = panels.join_rows(left, right)
    m = pd.DataFrame({"k": left, "li": np.arange(300)}).merge(
        pd.DataFrame({"k": right, "ri": np.arange(len(right))}), on="k"
    )
    assert li.tolist() == m["li"].tolist() and ri.tolist() == m["ri"].tolist()
    assert [x.tolist() for x in panels.join_rows([], right)] == [[], []]


def test_empty_and_single_year_inputs_keep_their_needs():
    a, st = _planted(10)
    one = a[a["school_year"] == 2016]
    assert (
        "at least two school years"
        in tr.catch_up_rates(tr.yearly_panel(one, students=st), students=None).attrs["needs"][0]
    )
    empty = tr.yearly_panel(None)
    assert len(empty.frame) == 0 and list(empty.frame.columns) == list(panels.PANEL_COLUMNS)
    for f in (tr.catch_up_rates, tr.level_movement, tr.yearly_growth, tr.grade_level_growth):
        assert f(empty, students=None).empty
