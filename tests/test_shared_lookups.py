"""Work the analysis shares instead of repeating: the spring results' roster positions looked up once for the level
counts, the score gaps and the yearly panel (``roster_at``); what a cell's clusters give independently of the value
made once for every value of one table (``cell_estimates``' memo); the growth models on one BLAS thread. Each gives
exactly what the function gives alone, on planted data with students off the roster, missing values and clusters
in any order, and is made once (counted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats import estimates
from opportunity_research.study import joins, levelgaps, panels

from .test_cells_memo import _frame
from .test_trajectory_panel import _planted


def _spring(seed: int, off_roster: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    a, s = _planted(seed, off_roster=off_roster)
    return a[a["window"] == "spring"].reset_index(drop=True), s


def _count_lookups(monkeypatch) -> list:
    calls = []
    real = joins.id_positions

    def spy(known, ids):
        calls.append(len(ids))
        return real(known, ids)

    for mod in (joins, levelgaps, panels):
        monkeypatch.setattr(mod, "id_positions", spy)
    return calls


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("off_roster", [False, True])
def test_roster_positions_once_give_each_tables_own_join(seed, off_roster, monkeypatch):
    a, s = _spring(seed, off_roster)
    counts = levelgaps.level_counts_from_assessments(a, students=s)
    scores = levelgaps.score_gaps(a, students=s)
    panel = panels.yearly_panel(a, students=s)
    calls = _count_lookups(monkeypatch)
    at = joins.roster_positions(s, a)
    assert calls == [len(a)]  # one lookup of every result
    assert at is not None and ((at >= 0) == a["student_id"].isin(s["student_id"])).all()
    at = at.astype(np.int32)  # as the analysis keeps them
    got_counts = levelgaps.level_counts_from_assessments(a, students=s, roster_at=at)
    got_scores = levelgaps.score_gaps(a, students=s, roster_at=at)
    got_panel = panels.yearly_panel(a, students=s, roster_at=at)
    assert calls == [len(a)]  # and none again
    pd.testing.assert_frame_equal(got_counts, counts, check_exact=True)
    pd.testing.assert_frame_equal(got_scores, scores, check_exact=True)
    pd.testing.assert_frame_equal(got_panel.frame, panel.frame, check_exact=True)
    assert got_panel.text == panel.text


def test_roster_positions_of_a_roster_with_a_repeated_or_missing_id_are_none():
    a, s = _spring(2, False)
    assert joins.roster_positions(pd.concat([s, s.iloc[:1]]), a) is None
    assert joins.roster_positions(s.assign(student_id=s["student_id"].where(s.index > 0)), a) is None


def test_roster_positions_of_other_rows_are_refused():
    a, s = _spring(3, False)
    at = joins.roster_positions(s, a)
    with pytest.raises(ValueError, match="roster_at"):
        levelgaps.score_gaps(a.iloc[1:], students=s, roster_at=at)
    with pytest.raises(ValueError, match="roster_at"):
        panels.yearly_panel(a.iloc[1:], students=s, roster_at=at)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cluster", ["_by_first", "_shuffled", "_text"])
@pytest.mark.parametrize("kind", ["share", "mean"])
def test_values_of_one_frame_share_their_pairs_and_get_each_ones_cells(seed, cluster, kind, monkeypatch):
    f = _frame(seed).assign(other=lambda d: d["share"].to_numpy()[::-1])
    values = ["share", "other"] if kind == "share" else ["score", "behind"]
    kw = {"keys": ["year"], "kind": kind, "cluster": cluster, "unit": "_by_first"}
    # a variable with missing values (no row set shared: nothing kept) and one that varies within a cluster
    for variables in (["low_income"], ["low_income", "disability", "behind"]):
        alone = [estimates.subgroup_estimates(f, value=v, variables=variables, **kw) for v in values]
        made = []
        real = estimates._pair_cells
        monkeypatch.setattr(
            estimates, "_pair_cells", lambda *a, real=real, made=made: made.append(1) or real(*a)
        )
        both = estimates.subgroup_estimates(f, value=values, variables=variables, **kw)
        monkeypatch.undo()
        for got, want in zip(both, alone, strict=True):
            pd.testing.assert_frame_equal(got, want, check_exact=True)
        if variables == ["low_income"]:
            # each set of cells (everyone, low_income) pairs with the cluster and the unit once, not once per value;
            # the text cluster spans both years (hashed pairs, kept for every value of the frame too)
            assert len(made) == 2 * {"_by_first": 1, "_shuffled": 2, "_text": 2}[cluster]


def test_one_blas_thread_inside_and_back_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from opportunity_research.stats.likelihood import one_blas_thread

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with one_blas_thread():
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before


def test_one_blas_thread_finds_the_libraries_once_until_an_import(monkeypatch):
    """The libraries are scanned once for every use (twice per growth model), again after an import."""
    import sys
    import types

    threadpoolctl = pytest.importorskip("threadpoolctl")
    from opportunity_research.stats import likelihood

    made = []
    real = threadpoolctl.ThreadpoolController

    def counting():
        made.append(1)
        return real()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", counting)
    monkeypatch.setattr(likelihood, "_BLAS", [-1, None])
    for _ in range(3):
        with likelihood.one_blas_thread(), likelihood.one_blas_thread():
            pass
    assert len(made) == 1
    monkeypatch.setitem(sys.modules, "_an_import_", types.ModuleType("_an_import_"))
    with likelihood.one_blas_thread():
        pass
    assert len(made) == 2


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("off_roster", [False, True])
def test_catch_up_pooled_only_and_the_indicator_without_each_subjects_cells(seed, off_roster):
    from opportunity_research.study import trajectories as tr
    from opportunity_research.study.indicators import indicator_rows

    a, s = _planted(seed, off_roster=off_roster)
    for kw in ({}, {"start_year": "all", "years_later": (3,)}):
        full = tr.catch_up_rates(a, students=s, **kw)
        alone = tr.catch_up_rates(a, students=s, pooled_only=True, **kw)
        assert len(alone) and set(alone["subject"]) == {"all"}
        pd.testing.assert_frame_equal(
            alone, full[full["subject"] == "all"].reset_index(drop=True), check_exact=True
        )
    # the scorecard's catch-up rows: as made from the whole table
    got = tr.trajectory_indicators(a, students=s)
    got = got[got["measure"] == "catch_up_rate"].reset_index(drop=True)
    want = indicator_rows(full[full["subject"] == "all"], measure="catch_up_rate")
    assert len(got)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_level_values_and_kinds_sharing_one_memo_get_each_ones_table(seed):
    f = _frame(seed).assign(_sid=lambda d: d["_by_first"], _cluster=lambda d: pd.factorize(d["school_id"])[0])
    f = f.assign(other=f["score"].to_numpy()[::-1], flag=f["share"].to_numpy()[::-1])
    kw = {"keys": ["year"], "variables": ["low_income", "behind"], "cluster": "_cluster", "confidence": 0.95}
    memo: dict = {}
    means = estimates.two_level_estimates(f, value=["score", "other"], kind="mean", _memo=memo, **kw)
    shares = estimates.two_level_estimates(f, value=["share", "flag"], kind="share", _memo=memo, **kw)
    assert memo  # what the two calls shared
    for got, (v, kind) in zip(
        [*means, *shares], [("score", "mean"), ("other", "mean"), ("share", "share"), ("flag", "share")]
    ):
        want = estimates.two_level_estimates(f, value=v, kind=kind, **kw)
        pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_climate_summary_all_scales_at_once_as_each_scale_alone():
    from opportunity_research.stats.estimates import text_as_categories
    from opportunity_research.study import climate
    from opportunity_research.synth.districts import generate_districts
    from opportunity_research.synth.specs import METRO

    tables = generate_districts(1, 400, specs=(METRO,))["demo_metro"]["tables"]
    got = climate.climate_summary(tables["climate_surveys"], students=tables["students"])
    # each scale's table made alone, with the scale as a key (as climate_summary made them before)
    frame = climate._with_students(climate.scale_scores(tables["climate_surveys"]), tables["students"])[0]
    frame["school_year"] = frame["school_year"].astype(np.int64)
    frame["_sid"] = climate._student_year_codes(frame)
    frame["_cluster"] = climate._codes(frame["school_id"])
    frame, text = text_as_categories(frame, ["school_id", *climate.VARIABLES])
    for scale in climate.SCALES:
        f = frame.assign(scale=scale)
        kw = {"keys": ["school_year", "scale"], "variables": climate.VARIABLES, "cluster": "_cluster"}
        m = estimates.two_level_estimates(
            f, value=f"{scale}_score", kind="mean", confidence=0.95, text=text, **kw
        )
        mine = got[got["scale"] == scale]
        for c in ("school_year", "scale", "school_id", "group", "variable"):
            assert sorted(mine[c].astype(str)) == sorted(m[c].astype(str))
        pd.testing.assert_series_equal(
            mine.sort_values(["school_id", "group"])["mean_score"].reset_index(drop=True),
            m.sort_values(["school_id", "group"])["estimate"].reset_index(drop=True),
            check_names=False,
            check_exact=True,
        )


def test_student_groups_made_once_give_the_indicators_and_multiple_measures(monkeypatch):
    from opportunity_research.intake.dataset import District
    from opportunity_research.study import equity
    from opportunity_research.synth.districts import generate_districts
    from opportunity_research.synth.specs import METRO

    tables = generate_districts(1, 400, specs=(METRO,))["demo_metro"]["tables"]
    d = District("demo_metro", {k: v for k, v in tables.items() if v is not None})
    acc = equity.student_access(d)
    want_ind = equity.opportunity_indicators(d, access=acc)
    want_mm = equity.multiple_measures_gaps(d, access=acc)
    groups = equity.student_groups(d, access=acc)
    made = []
    monkeypatch.setattr(equity, "student_groups", lambda *a, **k: made.append(1))
    got_ind = equity.opportunity_indicators(d, access=acc, groups=groups)
    got_mm = equity.multiple_measures_gaps(d, access=acc, groups=groups)
    assert not made  # not made again
    pd.testing.assert_frame_equal(got_ind, want_ind, check_exact=True)
    pd.testing.assert_frame_equal(got_mm, want_mm, check_exact=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_level_parts_numbered_among_every_row_as_among_the_selected(seed):
    """The level counts' and score gaps' parts (subject, year) numbered among the whole columns' values (no copy of
    the selected rows' text): rows of other windows, with a subject and a year no spring row has, change nothing."""
    a, s = _planted(seed, off_roster=True)
    spring = a[a["window"] == "spring"].reset_index(drop=True)
    other = a[a["window"] != "spring"].head(50).assign(subject="science", school_year=1999)
    both = pd.concat([other, a], ignore_index=True)
    at = joins.roster_positions(s, both).astype(np.int32)
    for f in (levelgaps.level_counts_from_assessments, levelgaps.score_gaps):
        pd.testing.assert_frame_equal(
            f(both, students=s, roster_at=at), f(spring, students=s), check_exact=True
        )
