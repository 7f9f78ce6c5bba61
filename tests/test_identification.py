"""Identifiability before optimization and the round-off guard, against lme4 (tests/reference/).

``tests/reference/lme4_identified.R`` decides independently (rank checks in base R) which variance components
each design identifies, fits the identified model with ``lmer`` and, where a level was dropped, evaluates the
full model's REML criterion along the dropped variance (flat: the design carries no information on it).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opportunity_research.stats import identification, likelihood
from opportunity_research.stats import models as M
from opportunity_research.study import growth

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = {r["id"]: r for r in json.loads((REF_DIR / "lme4_identified.json").read_text())["results"]}
SPECS = {s["id"]: s for s in json.loads((REF_DIR / "specs.json").read_text())}


def _frame(name: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "frames" / name)


def _r_value(table: dict, term: str) -> float:
    """lme4's value of a patsy-named term (R names an interaction in the order its variables first appear)."""
    if term == "Intercept":
        return table["(Intercept)"]
    name = re.sub(r"C\(grade\)\[T\.(\w+)\]", r"factor(grade)\1", term)
    if name not in table and ":" in name:
        name = ":".join(reversed(name.split(":")))
    return table[name]


def _compare(fit: M.GrowthModelResult, ref: dict) -> None:
    assert fit.n_obs == ref["nobs"]
    fitted = {x["level"] for x in ref["identification"] if x["identified"]}
    assert set(fit.groups) == fitted, (fit.groups, ref["identification"])
    c = fit.coefficients.set_index("term")
    assert len(c) == len(ref["fixef"])
    for term, row in c.iterrows():
        assert row["estimate"] == pytest.approx(_r_value(ref["fixef"], term), abs=1e-4), term
        assert row["std_error"] == pytest.approx(_r_value(ref["se"], term), rel=1e-3, abs=1e-5), term
    assert fit.deviance == pytest.approx(ref["REMLcrit"], abs=1e-6 * abs(ref["REMLcrit"]))
    assert fit.converged, fit.warnings


UNID = ["unid_grade_school", "unid_one_school", "unid_same_partition"]


@pytest.mark.parametrize("case", UNID)
def test_unidentified_level_is_dropped_and_fit_equals_lme4(case):
    spec, ref = SPECS[case], REF[case]
    df = _frame(spec["frame"])
    ident = identification.identify_levels(df, formula=spec["formula"], groups=spec["groups"])
    r_ident = {x["level"]: x["identified"] for x in ref["identification"]}
    assert dict(zip(ident["level"], ident["identified"])) == r_ident
    assert (ident["reason"] != "").sum() == 1 and ident.loc[
        ~ident["identified"], "reason"
    ].str.len().min() > 20
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.ConvergenceWarning)
        fit = M.fit_growth_model(df, formula=spec["formula"], groups=spec["groups"])
    _compare(fit, ref)
    dropped = ident.loc[~ident["identified"], "level"].iloc[0]
    assert any(w.startswith(f"{dropped} variance not identified") for w in fit.warnings)
    assert fit.identification["identified"].tolist() == ident["identified"].tolist()


def test_full_model_is_flat_in_the_collinear_variance_per_lme4():
    """lme4's REML criterion of the full model does not move with the dropped level's variance."""
    for rid, ref in REF.items():
        prof = ref.get("full_model_profile")
        reasons = {x["reason"] for x in ref["identification"] if not x["identified"]}
        if prof and reasons == {"collinear with fixed effects"}:
            crit = np.array([p["REMLcrit"] for p in prof])
            assert np.ptp(crit) < 1e-5 * abs(crit[0]), rid
            assert crit[0] == pytest.approx(ref["REMLcrit"], abs=1e-6 * abs(crit[0])), rid


def test_roundoff_optimum_is_never_called_better():
    """Without the pre-check, the chain must not report a wandering optimum as a verified better fit."""
    spec, ref = SPECS["demo_hillcrest_ela_all_four"], REF["demo_hillcrest_ela_all_four"]
    df = _frame(spec["frame"]).dropna(subset=spec["complete"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.ConvergenceWarning)
        fit = M.fit_growth_model(df, formula=spec["formula"], groups=spec["groups"], drop_unidentified=False)
    assert max(fit.theta) <= likelihood.THETA_MAX
    assert fit.deviance >= ref["REMLcrit"] - 1e-6 * ref["REMLcrit"]  # not "better" than the true optimum
    runs = fit.diagnostics["runs"]
    assert (
        any(r["roundoff"] for r in runs)
        or not fit.converged
        or fit.deviance == pytest.approx(ref["REMLcrit"])
    )
    if any(r["roundoff"] for r in runs):
        assert any("rejected, not called better" in w for w in fit.warnings)
    c = fit.coefficients.set_index("term")
    for term, row in c.iterrows():  # the estimates are those of the flat ridge, i.e. lme4's identified fit
        assert row["estimate"] == pytest.approx(_r_value(ref["fixef"], term), abs=1e-3), term


def test_roundoff_guard_rejects_a_theta_beyond_the_cap():
    """Force both chains to start far out on a flat ridge: the fit is flagged, not verified."""
    spec = SPECS["unid_grade_school"]
    df = _frame(spec["frame"])
    with pytest.warns(M.ConvergenceWarning):
        fit = M.fit_growth_model(
            df,
            formula=spec["formula"],
            groups=spec["groups"],
            drop_unidentified=False,
            start=[1e6, 0.5],
            max_iter=5,
        )
    assert not fit.converged
    assert any("round-off" in w for w in fit.warnings)


@pytest.mark.parametrize("rid", sorted(r for r in SPECS if r.startswith("demo_")))
def test_demo_study_models_equal_lme4_identified_fits(rid):
    spec, ref = SPECS[rid], REF[rid]
    did_subject, model = rid.rsplit("_", 1)[0], None
    for m in (*growth.STUDY_RESOURCES, "all_four"):
        if rid.endswith("_" + m):
            model, did_subject = m, rid[: -len(m) - 1]
    subject = did_subject.rsplit("_", 1)[1]
    frame = _frame(spec["frame"])
    sm = _study(spec["frame"], subject)
    fit = sm.models[(subject, model)]
    assert fit.formula == spec["formula"]
    _compare(fit, ref)
    eff = sm.effects.query("model == @model")
    assert (eff["n"] == ref["nobs"]).all()
    # each model on its own students: n + excluded = students with scores and covariates
    assert (eff["n"] + eff["n_excluded"] == eff["n_eligible"]).all()
    assert eff["sample"].str.len().min() > 20
    assert len(frame) >= eff["n_eligible"].iloc[0]


_CACHE: dict = {}


def _study(frame_name: str, subject: str) -> growth.StudyModels:
    if frame_name not in _CACHE:
        _CACHE[frame_name] = growth.fit_study_models(_frame(frame_name), subject=subject)
    return _CACHE[frame_name]
