"""Joins on row positions (study/joins.py) and the analysis steps that use them: the same tables as the pandas
merges they replace, and no merge made where the keys allow positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.intake.dataset import District
from opportunity_research.stats.gaps import gap_table
from opportunity_research.study import equity, growth, measures, panels
from opportunity_research.study.joins import merge_unique
from opportunity_research.synth.districts import generate_districts
from opportunity_research.synth.specs import METRO


@pytest.fixture(scope="module")
def district():
    tables = generate_districts(5, 400, specs=(METRO,))["demo_metro"]["tables"]
    return District("demo_metro", {k: v for k, v in tables.items() if v is not None})


@pytest.fixture
def no_merge(monkeypatch):
    """Any pandas merge fails the test: the step must join on positions."""

    def refuse(*args, **kwargs):
        raise AssertionError("a pandas merge was made")

    monkeypatch.setattr(pd.DataFrame, "merge", refuse)


def _frames(rng, n=60):
    ids = pd.array([f"s{i}" for i in rng.integers(0, 30, n)], dtype="str")
    left = pd.DataFrame({"student_id": ids, "x": rng.normal(size=n)}, index=rng.permutation(n) + 100)
    right = pd.DataFrame(
        {
            "student_id": pd.Series([f"s{i}" for i in rng.permutation(30)], dtype="str"),
            "grade": rng.integers(3, 9, 30),
            "flag": rng.integers(0, 2, 30).astype(np.int8),
            "school_id": pd.Series(rng.choice(["A", "B"], 30), dtype="str"),
            "race": pd.Categorical(rng.choice(["w", "b", "h"], 30)),
        }
    )
    return left, right


@pytest.mark.parametrize("how", ["left", "inner"])
def test_merge_unique_is_the_merge(how):
    rng = np.random.default_rng(1)
    for trial in range(20):
        left, right = _frames(rng)
        if trial % 2:
            right = right.iloc[: int(rng.integers(0, 30))]  # some keys not found: inner drops, left merges
        if trial % 5 == 0:
            right = pd.concat([right, right.iloc[:2]])  # repeated keys: the merge repeats rows
        want = left.merge(right, on="student_id", how=how)
        pd.testing.assert_frame_equal(
            merge_unique(left, right, on="student_id", how=how), want, check_exact=True
        )


def test_merge_unique_uses_positions(no_merge):
    left, right = _frames(np.random.default_rng(2))
    out = merge_unique(left, right, on="student_id")
    assert out["grade"].tolist() == right.set_index("student_id")["grade"].loc[left["student_id"]].tolist()
    assert out.index.equals(pd.RangeIndex(len(left)))
    with pytest.raises(ValueError, match="how must be"):
        merge_unique(left, right, on="student_id", how="outer")


def test_student_access_and_growth_frames_without_merges(district, monkeypatch):
    """The student access table and the growth frames on positions are the merges' tables, value for value."""
    cls = measures.classroom_access(district)
    acc = measures.student_access(district, classrooms=cls)
    frames = [measures.growth_frame(district, subject=s, access=acc) for s in ("ela", "math")]
    year = measures.analysis_year(district)
    # the merges' own tables: the same steps with the roster's ids made non-unique on a copy (positions refused)
    want_sb = acc.drop(columns="started_behind").merge(
        measures._started_behind(district, year), on=["student_id", "subject"], how="left"
    )
    pd.testing.assert_series_equal(acc["started_behind"], want_sb["started_behind"], check_exact=True)
    for s, got in zip(("ela", "math"), frames, strict=True):
        a = district.assessments
        rows = (a["subject"] == s) & (a["school_year"] == year)
        a = a.loc[rows, ["student_id", "subject", "grade", "window", "school_year", "scale_score"]]
        a = a.assign(z=measures._standardized(a))
        z = a.pivot_table(index="student_id", columns="window", values="z", aggfunc="mean")
        z = z.rename(columns={"fall": "fall_z", "spring": "spring_z"})
        want = acc[acc["subject"] == s].merge(z, left_on="student_id", right_index=True, how="inner")
        want = want[got.columns].dropna(subset=["fall_z", "spring_z"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert len(got) > 50
    # and no merge is made for them
    calls = []
    real = pd.DataFrame.merge

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("on"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "merge", counting)
    measures.student_access(district, classrooms=cls)
    measures.growth_frame(district, subject="math", access=acc)
    assert calls == []


def test_started_behind_with_repeated_results_is_merged(district):
    """A student with two fall results in a subject: the merges (their repeated rows), as before."""
    a = district.assessments
    year = measures.analysis_year(district)
    fall = a[(a["school_year"] == year) & (a["window"] == "fall")].iloc[:1]
    twice = District("x", {**district.tables, "assessments": pd.concat([a, fall], ignore_index=True)})
    per = measures.student_access(district)[["student_id", "subject"]]
    got = measures._with_started_behind(per, twice, year)
    want = per.merge(measures._started_behind(twice, year), on=["student_id", "subject"], how="left")
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(got) == len(per) + 1


def test_sum_items_is_the_row_sum():
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.integers(0, 4, (200, 4)).astype(float), columns=list("abcd"))
    df = df.mask(rng.random((200, 4)) < 0.1)
    df["b"] = df["b"].astype("Float64")  # a nullable column: pd.NA counts as missing
    cols = list("abcd")
    want = df[cols].astype(float).sum(axis=1, min_count=len(cols)).where(df[cols].notna().all(axis=1))
    pd.testing.assert_series_equal(measures._sum_items(df, cols), want, check_exact=True)


def test_classroom_checks_on_codes_match_groupby():
    rng = np.random.default_rng(4)
    for _ in range(100):
        n = int(rng.integers(0, 40))
        df = pd.DataFrame(
            {
                "school_id": rng.choice(["a", "b", None], n),
                "classroom_id": rng.choice(["x", "y", "z", None], n),
                "f": rng.choice([1.0, 2.0, np.nan], n),
                "i": rng.integers(0, 2, n),
                "grade": np.full(n, 5),
            }
        )
        keys = ["school_id", "classroom_id"]
        per = df.groupby(keys, sort=False)[["f", "i", "grade"]].nunique(dropna=False).max()
        assert growth._constant_within(df, keys, ["f", "i", "grade"]) == {
            c: bool(per[c] <= 1) for c in per.index
        }
        assert growth._n_groups(df, keys) == df.groupby(keys).ngroups


def test_gaps_on_classroom_codes_are_the_gaps_on_ids(district):
    """The resource gaps' parts (a few columns, classrooms as codes) give gap_table's table on the full frame."""
    acc = measures.student_access(district)
    got = equity.resource_gaps(district, access=acc, resources=["engaged"], n_boot=30, seed=2)
    frames = []
    for subject, part in acc.groupby("subject", sort=True):
        t = gap_table(
            part,
            outcome="engaged",
            group=list(equity.VARIABLES),
            cluster="classroom_id",
            n_boot=30,
            seed=2,
        )
        frames.append(t.assign(measure="engaged", label=equity.RESOURCE_LABELS["engaged"], subject=subject))
    want = pd.concat(frames, ignore_index=True)
    want = want[
        ["measure", "label", "subject"]
        + [c for c in want.columns if c not in ("measure", "label", "subject")]
    ]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["ci_lower"].notna().any()


def test_unique_ids_is_checked_once_per_arrow_array(monkeypatch):
    """Every join to the roster asks whether its ids are unique: an Arrow column is hashed for it once (every
    selection of it shares its Arrow array), a changed column again, and the answers are those of ``notna`` and
    ``duplicated``."""
    from opportunity_research.study import joins

    roster = pd.DataFrame({"student_id": pd.Series(["a", "b", "c"], dtype="str"), "x": [1, 2, 3]})
    calls = []
    real = pd.Series.duplicated

    def spy(self, *args, **kwargs):
        calls.append(len(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.Series, "duplicated", spy)
    assert joins.unique_ids(roster["student_id"])
    assert joins.unique_ids(
        roster[["student_id", "x"]]["student_id"]
    )  # the same Arrow array: not hashed again
    assert calls == [3]
    roster.loc[2, "student_id"] = "a"  # a new Arrow array: checked again
    assert not joins.unique_ids(roster["student_id"]) and calls == [3, 3]
    assert not joins.unique_ids(pd.Series(["a", None], dtype="str"))  # a missing id
    for ids, want in ((pd.Series(["a", "a"], dtype=object), False), (pd.Series([1, 2]), True)):
        assert joins.unique_ids(ids) is want and joins.unique_ids(ids) is want  # not kept: checked each time
    assert calls[-4:] == [2, 2, 2, 2]


def test_growth_models_group_on_integer_codes(district, monkeypatch):
    """fit_study_models numbers the schools' and classrooms' id text once per subject (every model's groupings
    hash integers): the same effects and warnings as on ids given as integers numbered in their sorted order."""
    import warnings

    acc = measures.student_access(district, classrooms=measures.classroom_access(district))
    frame = measures.growth_frame(district, subject="math", access=acc)
    assert pd.api.types.is_string_dtype(frame["classroom_id"]) and frame["classroom_id"].notna().all()
    coded = frame.assign(**{g: pd.factorize(frame[g], sort=True)[0] for g in ("school_id", "classroom_id")})
    text_calls = []
    real = pd.factorize

    def spy(values, *args, **kwargs):
        named = isinstance(values, pd.Series) and values.name in ("school_id", "classroom_id")
        if named and pd.api.types.is_string_dtype(values):
            text_calls.append(values.name)
        return real(values, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = growth.fit_study_models(coded, subject="math")
        monkeypatch.setattr(pd, "factorize", spy)
        got = growth.fit_study_models(frame, subject="math")
    monkeypatch.undo()
    assert sorted(text_calls) == ["classroom_id", "school_id"]
    pd.testing.assert_frame_equal(got.effects, want.effects, check_exact=True)
    assert got._grouped_warnings() == want._grouped_warnings()


def test_roster_looked_up_once_per_step(district, monkeypatch):
    """The started-behind status (fall and prior spring results, the access rows) and a growth frame's scores (the
    results and the access rows) each look every id up in one hash table of the roster, not one per id column."""
    import pyarrow.compute as pc

    from opportunity_research.study import joins

    cls = measures.classroom_access(district)
    acc = measures.student_access(district, classrooms=cls)
    want = [measures.growth_frame(district, subject=s, access=acc) for s in ("ela", "math")]
    per = acc.drop(columns="started_behind")
    calls = []
    real = pc.index_in

    def spy(values, *args, **kwargs):
        calls.append(len(values))
        return real(values, *args, **kwargs)

    monkeypatch.setattr(pc, "index_in", spy)
    got = measures._with_started_behind(per, district, measures.analysis_year(district))
    assert len(calls) == 1 and calls[0] > len(per)
    pd.testing.assert_series_equal(got["started_behind"], acc["started_behind"], check_exact=True)
    for s, w in zip(("ela", "math"), want, strict=True):
        calls.clear()
        pd.testing.assert_frame_equal(
            measures.growth_frame(district, subject=s, access=acc), w, check_exact=True
        )
        assert len(calls) == 1
    assert joins.id_positions_of(pd.Series(["a"], dtype="str"), [pd.Series([1, 2])]) is None  # not comparable


def test_yearly_tables_code_students_by_their_roster_row(district, monkeypatch):
    """The climate summary and the yearly indicators code each response's student by the row of the roster (or
    of the groups) the join found, not by hashing the id text again."""
    from opportunity_research.study import climate

    calls = []
    real = pd.factorize

    def spy(values, *args, **kwargs):
        if isinstance(values, pd.Series) and values.name == "student_id":
            calls.append(len(values))
        return real(values, *args, **kwargs)

    want = climate.climate_summary(district.climate_surveys, students=district.students)
    acc = measures.student_access(district, classrooms=measures.classroom_access(district))
    groups = equity.student_groups(district, access=acc)
    want_ind = equity.opportunity_indicators(district, access=acc, groups=groups)
    monkeypatch.setattr(pd, "factorize", spy)
    got = climate.climate_summary(district.climate_surveys, students=district.students)
    got_ind = equity.opportunity_indicators(district, access=acc, groups=groups)
    monkeypatch.undo()
    assert calls == []
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_frame_equal(got_ind, want_ind, check_exact=True)
    # the codes are those of the id text: one per student and year, numbered by first row
    f = pd.DataFrame({"student_id": ["b", "a", "b", "b"], "school_year": [1, 1, 1, 2]})
    assert (
        panels.student_year_codes(f).tolist() == panels.student_year_codes(f, np.array([4, 0, 4, 4])).tolist()
    )
