"""Disclosure control: an attacker who reads every published table tries to recover suppressed values.

The attacker here is written independently of :mod:`opportunity_research.disclosure.joint`: it knows the
published tables only (plus, to score itself, the true values) and tries

* subtraction within a table (a partition's total minus its shown levels) and across tables (the same
  group shown in another table, or the same students' total shown elsewhere);
* LP bounds (every published count at once, :func:`scipy.optimize.linprog`) -- checked for soundness
  against the truth as well as for width;
* the complement rule (does the choice of complements depend on a hidden value?);
* homogeneous populations and a pooled hidden value at 0% or 100%;
* a rounded value on another page (the scorecard shows shares rounded to 1%).

The tables are built from student-level data with the package's own producers (``gap_table`` and the
scorecard's ``two_level_estimates``), so their schemas are the real ones.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from opportunity_research.disclosure import joint as disclosure
from opportunity_research.disclosure import protection
from opportunity_research.disclosure.joint import (
    DISTRICT_SPECS,
    REASON,
    TableSpec,
    audit_published,
    protect_tables,
)
from opportunity_research.stats.estimates import two_level_estimates
from opportunity_research.stats.gaps import gap_table
from opportunity_research.study.indicators import indicator_rows

MIN_N = 10
MEASURES = ("grade_appropriate", "strong_instruction")
VARIABLES = ("race_ethnicity", "low_income")


# ---------------------------------------------------------------------------------------------
# Building published sets from students


def students(spec: dict[tuple[str, str, int], int], *, seed: int = 0, outcome=None) -> pd.DataFrame:
    """Students from ``{(school, race, low_income): count}``; outcomes random 0/1 unless ``outcome`` given."""
    rows = [(s, r, li) for (s, r, li), k in sorted(spec.items()) for _ in range(k)]
    df = pd.DataFrame(rows, columns=["school_id", "race_ethnicity", "low_income"])
    rng = np.random.default_rng(seed)
    for j, m in enumerate(MEASURES):
        df[m] = rng.integers(0, 2, len(df)).astype(float) if outcome is None else outcome(df, j)
    df["student_id"] = [f"s{i}" for i in range(len(df))]
    df["school_year"] = 2016
    return df


def published(
    df: pd.DataFrame, *, subjects=("ela", "math"), reference=None
) -> dict[str, tuple[pd.DataFrame, TableSpec]]:
    """The gap tables (per measure and subject) and the scorecard indicator cells (per school) of ``df``."""
    gaps = []
    for subject in subjects:
        for m in MEASURES:
            t = gap_table(df, outcome=m, group=list(VARIABLES), reference=reference, n_boot=0)
            gaps.append(t.assign(measure=m, subject=subject))
    ind = []
    f = df.assign(_sid=pd.factorize(df["student_id"])[0])
    for m in MEASURES:
        t = two_level_estimates(
            f,
            keys=["school_year"],
            variables=list(VARIABLES),
            value=m,
            kind="share",
            cluster=None,
            confidence=0.95,
        )
        ind.append(indicator_rows(t.assign(suppressed=False, suppression_reason=""), measure=f"{m}_share"))
    return {
        "gaps": (pd.concat(gaps, ignore_index=True), DISTRICT_SPECS["gaps"]),
        "indicators_shares": (pd.concat(ind, ignore_index=True), DISTRICT_SPECS["indicators_shares"]),
    }


def protect(df, **kw):
    tables = published(df, reference=kw.pop("reference", None))
    out, report = protect_tables(tables, min_n=kw.pop("min_n", MIN_N), year=2016, **kw)
    return tables, {k: (out[k], tables[k][1]) for k in out}, report


# ---------------------------------------------------------------------------------------------
# The attacker


def _cells(tables):
    """Every row as a published cell: (table, universe, school, variable, level, n, estimate, shown)."""
    rows = []
    for name, (t, spec) in tables.items():
        for i, r in t.reset_index(drop=True).iterrows():
            uni = "|".join(str(r[c]) for c in spec.universe)
            if spec.style == "gap":
                var, lev, school = r["group"], str(r["level"]), "all"
            else:
                g = str(r["group"])
                var, lev = g.split("=", 1) if "=" in g else ("all", "all")
                school = r["school_id"]
            rows.append(
                {
                    "table": name,
                    "row": i,
                    "uni": uni,
                    "school": school,
                    "variable": var,
                    "level": lev,
                    "n": float(r["n"]) if pd.notna(r["n"]) else np.nan,
                    "estimate": float(r["estimate"]) if pd.notna(r["estimate"]) else np.nan,
                    "ref_n": float(r["reference_n"])
                    if "reference_n" in t.columns and pd.notna(r["reference_n"])
                    else np.nan,
                    "ref_est": float(r["reference_estimate"])
                    if "reference_estimate" in t.columns and pd.notna(r["reference_estimate"])
                    else np.nan,
                    "named": "reference" in t.columns and str(r["reference"]) != disclosure.ALL_OTHERS,
                    "shown": not bool(r["suppressed"]),
                }
            )
    return pd.DataFrame(rows)


def attack(published_tables, true_tables, *, min_n=MIN_N, rounding=0.01) -> list[str]:
    """Everything the attacker recovers (empty = nothing); each item says how and what."""
    pub, true = _cells(published_tables), _cells(true_tables)
    true = true.set_index(["table", "row"])
    pub = pub.join(
        true[["n", "estimate"]].rename(columns={"n": "true_n", "estimate": "true_est"}), on=["table", "row"]
    )
    found = []
    hidden = pub[~pub["shown"]]

    # 1. a shown count below min_n anywhere
    small = pub[pub["shown"] & (pub["n"] < min_n) & (pub["n"] > 0)]
    found += [f"shown small count {r.table}:{r.row}" for r in small.itertuples()]

    # 2. across tables: a small group (school, variable, level) shown elsewhere with a close count (hidden
    # counts of large groups may be shown elsewhere: a population whose estimates are withheld keeps its size)
    shown = pub[pub["shown"]]
    key = ["school", "variable", "level"]
    m = hidden.merge(shown[key + ["n", "table", "uni"]], on=key, suffixes=("", "_other"))
    close = m[((m["n_other"] - m["true_n"]).abs() < min_n) & (m["true_n"] < min_n)]
    found += [
        f"cross-table {r.table}[{r.uni}] {r.variable}={r.level}: shown as {r.n_other:g} in "
        f"{r.table_other}[{r.uni_other}]"
        for r in close.itertuples()
    ]

    # 3. subtraction within a partition, counts and values (gap tables: total from n + reference_n)
    for (table, uni, school, var), part in pub[pub["variable"] != "all"].groupby(
        ["table", "uni", "school", "variable"]
    ):
        h, s = part[~part["shown"]], part[part["shown"]]
        if h.empty:
            continue
        if table == "gaps":
            if part["named"].any():
                continue  # against a named level the rows do not give the total (the LP attack covers it)
            # the universe's total and overall value, from any shown row of the universe (any variable)
            src = pub[(pub["table"] == table) & (pub["uni"] == uni) & pub["shown"] & ~pub["named"]]
            if src.empty:
                continue
            N = float((src["n"] + src["ref_n"]).iloc[0])
            total = (src["n"] * src["estimate"] + src["ref_n"] * src["ref_est"]).iloc[0]
        else:
            tot = pub[
                (pub["table"] == table)
                & (pub["uni"] == uni)
                & (pub["school"] == school)
                & (pub["variable"] == "all")
            ]
            if tot.empty or not tot["shown"].iloc[0]:
                continue
            N, total = float(tot["n"].iloc[0]), float(tot["n"].iloc[0] * tot["estimate"].iloc[0])
        T = N - s["n"].sum()
        S = total - (s["n"] * s["estimate"]).sum()
        if len(h) == 1:
            found.append(f"subtraction {table}[{uni}] {school} {var}: n = {T:g}")
        # the pooled hidden value at 0% or 100% gives every hidden cell's value
        if T > 0 and (abs(S / T) < 1e-9 or abs(S / T - 1) < 1e-9):
            found.append(f"homogeneous hidden cells {table}[{uni}] {school} {var}: {S / T:.0%}")
        # a rounded total (scorecard, 1%) still pins a single hidden share within a point
        if len(h) == 1 and T > 0 and N * rounding / T < 0.01:
            found.append(f"rounded value on another page {table}[{uni}] {school} {var}")

    # 4. schools add up to the district (cell tables)
    cell = pub[pub["table"] != "gaps"]
    for (table, uni, var, lev), part in cell[cell["school"] != "all"].groupby(
        ["table", "uni", "variable", "level"]
    ):
        h = part[~part["shown"]]
        d = cell[
            (cell["table"] == table)
            & (cell["uni"] == uni)
            & (cell["variable"] == var)
            & (cell["level"] == lev)
            & (cell["school"] == "all")
        ]
        if len(h) == 1 and len(d) and d["shown"].iloc[0]:
            found.append(f"subtraction across schools {table}[{uni}] {var}={lev}")

    # 5. LP bounds over everything published, checked for soundness (the truth lies inside)
    rep = audit_published(published_tables, min_n=min_n, year=2016)
    found += [f"LP bound {c} [{lo:g}, {hi:g}]" for c, lo, hi in rep.failures]
    return found


# ---------------------------------------------------------------------------------------------
# Adversarial districts


def _base(extra: dict) -> dict:
    spec = {
        ("A", "black", 1): 40,
        ("A", "black", 0): 20,
        ("A", "white", 1): 25,
        ("A", "white", 0): 30,
        ("A", "hispanic_latino", 1): 35,
        ("B", "black", 1): 30,
        ("B", "black", 0): 15,
        ("B", "white", 0): 40,
        ("B", "white", 1): 12,
        ("B", "hispanic_latino", 1): 30,
        ("B", "hispanic_latino", 0): 14,
    }
    spec.update(extra)
    return spec


ADVERSARIAL = {
    "group of 2 in every table": _base({("A", "asian", 1): 1, ("B", "asian", 0): 1}),
    "group in one school only": _base({("B", "american_indian_alaska_native", 1): 7}),
    "two small groups whose sum is shown": _base(
        {("A", "asian", 1): 3, ("A", "native_hawaiian_pacific_islander", 0): 4}
    ),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_attacker_recovers_nothing_on_adversarial_districts(name):
    df = students(ADVERSARIAL[name], seed=3)
    true, pub, report = protect(df)
    assert report.passed, report.failures
    assert report.primary > 0  # the district does have small cells
    assert attack(pub, true) == []


def test_named_reference_group():
    """Gaps against a named reference level (White students): the reference's count is a cell too."""
    df = students(ADVERSARIAL["two small groups whose sum is shown"], seed=7)
    true, pub, report = protect(df, reference={"race_ethnicity": "white"})
    assert report.passed
    race = pub["gaps"][0][pub["gaps"][0]["group"] == "race_ethnicity"]
    assert set(race["reference"]) == {"white"} and race["suppressed"].any()
    assert attack(pub, true) == []


def test_all_zero_outcome_is_handled_at_population_level():
    """Nobody has the resource: the hidden cells' values must not be read off the published zeros."""
    df = students(ADVERSARIAL["group of 2 in every table"], outcome=lambda d, j: np.zeros(len(d)))
    true, pub, report = protect(df)
    assert report.passed
    assert attack(pub, true) == []
    assert report.withheld > 0  # estimates of the whole (homogeneous) population are withheld
    assert pub["gaps"][0]["estimate"].isna().all()  # the whole row set of a homogeneous population


def test_unprotected_set_is_attacked_successfully():
    """The attacker is not toothless: on primary-only suppression it recovers the hidden cells."""
    df = students(ADVERSARIAL["group of 2 in every table"], seed=3)
    tables = published(df)
    naive = {}
    for k, (t, spec) in tables.items():
        t = t.copy()
        t["suppressed"] = t["n"].astype(float) < MIN_N
        t.loc[t["suppressed"], ["n", "estimate"]] = np.nan
        if "reference_n" in t.columns:
            t.loc[t["suppressed"], ["reference_n", "reference_estimate"]] = np.nan
        naive[k] = (t, spec)
    found = attack(naive, tables)
    assert any(f.startswith("subtraction") for f in found)
    assert any(f.startswith("LP bound") for f in found)


def test_lp_intervals_contain_the_truth_and_are_wide():
    df = students(ADVERSARIAL["two small groups whose sum is shown"], seed=1)
    _true, _pub, report = protect(df)
    iv = report.intervals
    assert len(iv) > 0
    assert ((iv["true"] >= iv["low"] - 1e-6) & (iv["true"] <= iv["high"] + 1e-6)).all()
    assert ((np.floor(iv["high"] + 1e-7) - np.ceil(iv["low"] - 1e-7)) >= MIN_N).all()


def test_lp_bound_by_hand():
    """Two hidden levels of a 2-level partition whose total is shown: each lies in [1, N - 1]."""
    t = pd.DataFrame(
        {
            "group": "g",
            "level": ["a", "b", "c"],
            "n": [np.nan, np.nan, 30],
            "reference": disclosure.ALL_OTHERS,
            "reference_n": [np.nan, np.nan, 20],
            "estimate": [np.nan, np.nan, 0.5],
            "reference_estimate": [np.nan, np.nan, 0.5],
            "suppressed": [True, True, False],
        }
    )
    rep = audit_published({"t": (t, TableSpec("gap"))}, min_n=10)
    lo, hi = rep.intervals["low"].to_numpy(), rep.intervals["high"].to_numpy()
    np.testing.assert_allclose(lo, [1, 1])
    np.testing.assert_allclose(hi, [19, 19])
    assert rep.passed
    rep = audit_published({"t": (t, TableSpec("gap"))}, min_n=19)
    assert not rep.passed and len(rep.failures) == 2


def test_complement_choice_does_not_depend_on_the_hidden_value():
    """Same counts, the small group's outcome 0% in one district and 100% in the other: same cells hidden."""
    spec = ADVERSARIAL["group of 2 in every table"]

    def outcome(value):
        def f(d, j):
            y = (np.arange(len(d)) % 2).astype(float)
            y[(d["race_ethnicity"] == "asian").to_numpy()] = value
            return y

        return f

    pats = []
    for value in (0.0, 1.0):
        _, pub, _report = protect(students(spec, outcome=outcome(value)))
        pats.append({k: t["suppressed"].tolist() for k, (t, _) in pub.items()})
    assert pats[0] == pats[1]


def test_deterministic():
    df = students(ADVERSARIAL["group in one school only"], seed=5)
    _, a, ra = protect(df)
    _, b, rb = protect(df.sample(frac=1.0, random_state=1).reset_index(drop=True))
    for k in a:
        pd.testing.assert_series_equal(a[k][0]["suppressed"], b[k][0]["suppressed"])
    assert ra.to_dict() == rb.to_dict()


def test_one_reason_text_and_blanked_numbers():
    df = students(ADVERSARIAL["group of 2 in every table"], seed=3)
    _, pub, _ = protect(df)
    g = pub["gaps"][0]
    hid = g[g["suppressed"]]
    assert set(hid["suppression_reason"]) == {REASON.format(min_n=MIN_N)}
    assert (
        hid[["n", "reference_n", "estimate", "reference_estimate", "difference", "ci_lower"]]
        .isna()
        .all()
        .all()
    )
    assert g.attrs["disclosure"] == "protected"


def test_information_loss_is_reported():
    df = students(ADVERSARIAL["group of 2 in every table"], seed=3)
    _, pub, report = protect(df)
    d = report.to_dict()
    n_sup = sum(int(t["suppressed"].sum()) for t, _ in pub.values())
    assert d["suppressed_primary"] + d["suppressed_beyond_primary"] == n_sup
    assert d["suppressed_beyond_primary"] > 0
    assert "more to protect them" in report.methods_text()


def test_no_suppression_needed():
    df = students(_base({}), seed=2)
    _, pub, report = protect(df)
    assert report.passed and report.primary == 0
    assert report.beyond_primary == sum(int(t["suppressed"].sum()) for t, _ in pub.values())


# ---------------------------------------------------------------------------------------------
# Property: after suppression every hidden count's LP interval is at least min_n wide


@st.composite
def populations(draw):
    schools = draw(st.integers(1, 3))
    races = ["black", "white", "hispanic_latino", "asian"]
    spec = {}
    for s in "ABC"[:schools]:
        for r in races:
            for li in (0, 1):
                k = draw(st.sampled_from([0, 0, 1, 2, 3, 5, 8, 12, 20, 35]))
                if k:
                    spec[(s, r, li)] = k
    if sum(spec.values()) < 20:
        spec[("A", "black", 1)] = spec.get(("A", "black", 1), 0) + 20
    return spec, draw(st.integers(0, 2**16)), draw(st.sampled_from([3, 5, 10]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_property_hidden_counts_have_wide_intervals(pop):
    spec, seed, min_n = pop
    df = students(spec, seed=seed)
    _true, pub, report = protect(df, min_n=min_n)
    assert report.passed, report.failures
    rep = audit_published(pub, min_n=min_n, year=2016)
    assert rep.passed, rep.failures
    iv = rep.intervals
    widths = np.floor(iv["high"] + 1e-7) - np.ceil(iv["low"] - 1e-7)
    # every hidden count an attacker cannot rule out as small keeps an interval at least min_n wide; a count
    # hidden only with its row's withheld estimates (rule 4) is published elsewhere, so the files pin it at
    # its shown value of at least min_n - public, not a small cell
    could_be_small = iv["low"] < min_n - 1e-7
    assert (widths[could_be_small] >= min_n).all(), iv[could_be_small & (widths < min_n)]


def test_linprog_is_the_engine():
    """Sanity: scipy's HiGHS solves the textbook bound the auditor relies on."""
    res = linprog([1, 0], A_eq=[[1, 1]], b_eq=[12], bounds=[(1, None), (1, None)], method="highs")
    assert math.isclose(res.fun, 1.0)


# ---------------------------------------------------------------------------------------------
# Figures and the publishing gate


def _plotted_numbers(fig) -> np.ndarray:
    vals = []
    for ax in fig.axes:
        for line in ax.lines:
            vals += list(np.asarray(line.get_xdata(), dtype=float).ravel())
        for coll in ax.collections:
            vals += list(np.asarray(coll.get_offsets(), dtype=float)[:, 0].ravel())
            for seg in getattr(coll, "get_segments", list)():
                vals += list(np.asarray(seg, dtype=float)[:, 0])
    return np.array(vals)


def test_figures_are_drawn_only_from_audited_tables():
    """A gap figure of the protected table shows no hidden difference or interval, in pixels or alt text."""
    import matplotlib

    matplotlib.use("Agg")
    from opportunity_research.report import plots

    df = students(ADVERSARIAL["group of 2 in every table"], seed=3)
    true, pub, _ = protect(df)
    t_pub = pub["gaps"][0]
    t_true = true["gaps"][0]
    sel = ((t_pub["measure"] == "grade_appropriate") & (t_pub["subject"] == "ela")).to_numpy()
    fig = plots.gap_plot(t_pub[sel], title="test")
    drawn = _plotted_numbers(fig)
    hidden = t_true[sel & t_pub["suppressed"].to_numpy()]
    shown = t_true[sel & ~t_pub["suppressed"].to_numpy()]
    assert len(hidden) and len(shown)
    for scale in (1.0, 100.0):
        for col in ("difference", "ci_lower", "ci_upper"):
            for v in hidden[col].to_numpy(dtype=float) * scale:
                assert not np.isclose(drawn, v, atol=1e-9).any(), (col, v)
    assert any(
        np.isclose(drawn, v * 100, atol=1e-9).any() or np.isclose(drawn, v, atol=1e-9).any()
        for v in shown["difference"].to_numpy(dtype=float)
    )
    for v in hidden["difference"].to_numpy(dtype=float):
        assert f"{100 * v:.1f}" not in fig.alt_text
    import matplotlib.pyplot as plt

    plt.close(fig)


def _write_folder(folder, tables, findings):
    import json

    (folder / "tables").mkdir(parents=True)
    for name, t in tables.items():
        t.to_csv(folder / "tables" / f"{name}.csv", index=False)
    (folder / "findings.json").write_text(json.dumps(findings))


def test_gate_passes_protected_folder_and_names_leaky_cells(tmp_path):
    df = students(ADVERSARIAL["two small groups whose sum is shown"], seed=4)
    true, pub, report = protect(df)
    _write_folder(
        tmp_path / "ok", {"gaps": pub["gaps"][0]}, {"analysis_year": 2016, "disclosure": report.to_dict()}
    )
    assert disclosure.audit_report_folder(tmp_path / "ok", min_n=MIN_N) == []

    # primary suppression only: one hidden level per partition is recovered by subtraction
    g = true["gaps"][0].copy()
    g["suppressed"] = g["n"].astype(float) < MIN_N
    g.loc[g["suppressed"], ["n", "reference_n", "estimate", "reference_estimate"]] = np.nan
    _write_folder(tmp_path / "leaky", {"gaps": g}, {"analysis_year": 2016})
    problems = disclosure.audit_report_folder(tmp_path / "leaky", min_n=MIN_N)
    assert problems and all("race_ethnicity=" in p for p in problems)
    assert any("asian" in p for p in problems)

    # a findings.json whose own audit failed is refused too, naming the cell
    _write_folder(
        tmp_path / "failed", {}, {"disclosure": {"audit_passed": False, "unprotected_cells": ["x=y"]}}
    )
    assert disclosure.audit_report_folder(tmp_path / "failed") == ["findings.json: unprotected cell x=y"]


def test_protect_district_refuses_an_unprotectable_set(monkeypatch):
    """When no further cell can be hidden the district is refused, with the cells named."""
    # rule 3 finding nothing is no longer "nothing left": the pass then hides through the whole connected part
    # of the model; "no further cell" is when that search finds nothing too
    monkeypatch.setattr(protection, "next_complement", lambda st, v: None)
    df = students(ADVERSARIAL["group of 2 in every table"], seed=3)
    _, _, report = protect(df)
    assert not report.passed and report.failures
    assert all(isinstance(f[0], str) and "=" in f[0] for f in report.failures)


# ---------------------------------------------------------------------------------------------
# The demo districts' published reports (built by `make reports`, which `make test` runs first)


def _demo_reports() -> list:
    from opportunity_research import config

    root = config.reports_dir()
    return sorted(p for p in root.glob("demo_*") if (p / "report.html").exists()) if root.exists() else []


DEMO_REPORTS = _demo_reports()


@pytest.mark.skipif(not DEMO_REPORTS, reason="no demo reports (make reports)")
@pytest.mark.parametrize("folder", DEMO_REPORTS, ids=lambda p: p.name)
def test_demo_reports_pass_the_gate(folder):
    """Every demo district's published CSV tables withstand the LP attacker and were protected jointly."""
    import json

    found = json.loads((folder / "findings.json").read_text())
    assert found["disclosure"]["audit_passed"]
    assert found["disclosure"]["suppressed_beyond_primary"] >= 0
    assert disclosure.audit_report_folder(folder, min_n=found["min_n"]) == []
    # subtraction within and across the published tables recovers no small cell
    tables = {}
    for name in ("gaps", "furthest_from_opportunity", "multiple_measures"):
        p = folder / "tables" / f"{name}.csv"
        if p.exists():
            t = pd.read_csv(p, dtype={"level": str})
            tables[name] = t
    for name, t in tables.items():
        for keys, part in t.groupby([c for c in ("measure", "subject", "group") if c in t.columns]):
            hid = part["suppressed"].astype(str).str.lower().eq("true")
            assert hid.sum() != 1, (name, keys)
            assert not (
                (part.loc[~hid, "n"] < found["min_n"]) | (part.loc[~hid, "reference_n"] < found["min_n"])
            ).any()
