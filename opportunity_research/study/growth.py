"""The Opportunity Myth's growth models: what access to each resource is worth in growth.

:func:`fit_study_models` fits the study's models on a growth frame: spring score on fall score, access to a resource, access x started behind and student characteristics, with school and classroom
random intercepts; one model per resource and one with all four, per subject. The models are fitted by the
engine, :func:`opportunity_research.stats.models.fit_growth_model`.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy

from ..stats.design import check_columns
from ..stats.models import fit_growth_model
from ..stats.results import rounded_table
from .months import MONTHS_CAVEAT, add_months_of_learning

__all__ = ["STUDY_COVARIATES", "STUDY_RESOURCES", "StudyModels", "fit_study_models"]


STUDY_RESOURCES = ("grade_appropriate", "strong_instruction", "engaged", "high_expectations")
STUDY_COVARIATES = ("low_income", "english_learner", "disability")


@dataclass(frozen=True, eq=False)
class StudyModels:
    """Read-only result of :func:`fit_study_models`.

    Attributes
    ----------
    models
        ``{(subject, model): GrowthModelResult}``; ``model`` is a resource name or ``"all_four"``.
    effects
        Tidy table (a copy on access), one row per subject, model, resource and effect:
        ``subject``, ``model``, ``resource``, ``effect`` (``access``: per-unit effect of going from no access (0)
        to full access (1) for students who did not start behind; ``extra_if_behind``: the additional effect for
        students who started behind (the interaction); ``access_if_behind``: their sum, the effect for students
        who started behind), ``term``, ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value``
        (SD units of the spring score, Wald 95%), ``n`` (students), ``n_started_behind``, ``n_classrooms``,
        ``n_schools``, ``converged``; ``access_p25``, ``access_p75`` (the district's 25th and 75th percentiles
        of classroom access to the resource), ``contrast_estimate``, ``contrast_ci_lower``,
        ``contrast_ci_upper`` (the effect of going from the 25th to the 75th percentile: the per-unit effect
        times ``access_p75 - access_p25``; the study's "more vs less access"), ``contrast_note`` (why there is
        no contrast, if so); ``n_eligible`` (students with scores and covariates), ``n_excluded`` (of those,
        left out of this model because their classroom lacks a resource it needs), ``sample`` (the model's
        students and the exclusion reason), ``levels_fitted`` (grouping levels with a variance in the model);
        then ``grade_used``, ``annual_gain``, ``months``, ``months_ci_lower``, ``months_ci_upper`` (from the
        contrast; missing where the annual gain is below 0.10 SD or the months would exceed one school year),
        ``months_note`` (see :func:`add_months_of_learning`).
    warnings
        ``(subject, model, message)`` for every warning of every model, plus dropped covariates.
    """

    _models: dict = field(repr=False)
    _effects: pd.DataFrame = field(repr=False)
    warnings: tuple = ()

    @property
    def models(self) -> dict:
        return dict(self._models)

    @property
    def effects(self) -> pd.DataFrame:
        return self._effects.copy()

    @property
    def converged(self) -> bool:
        return all(m.converged for m in self._models.values())

    def summary(self) -> str:
        cols = [
            "subject",
            "model",
            "resource",
            "effect",
            "estimate",
            "ci_lower",
            "ci_upper",
            "contrast_estimate",
            "contrast_ci_lower",
            "contrast_ci_upper",
            "months",
            "months_ci_lower",
            "months_ci_upper",
            "n",
            "converged",
        ]
        lines = [
            (
                "Growth models: spring score (SD) on fall score, access (0-1 share), access x started behind, "
                "student characteristics; school and classroom random intercepts (levels the design cannot "
                "identify are dropped, see warnings). estimate: per unit of access (never -> always); contrast: "
                "classrooms at the district's 75th vs 25th percentile of access; months from the contrast."
            ),
            rounded_table(self._effects[cols], 3).to_string(index=False),
            "",
            MONTHS_CAVEAT,
        ]
        if not self.converged:
            bad = [f"{s}/{m}" for (s, m), r in self._models.items() if not r.converged]
            lines.append(f"NOT CONVERGED (estimates unusable): {', '.join(bad)}")
        if self.warnings:
            lines += ["", "Warnings:"] + [f"- {w} ({where})" for w, where in self._grouped_warnings()]
        return "\n".join(lines)

    def _grouped_warnings(self) -> list[tuple[str, str]]:
        """Each distinct message once, with the subject/model pairs it applies to."""
        seen: dict[str, list[str]] = {}
        for s, m, w in self.warnings:
            seen.setdefault(w, []).append(f"{s}/{m}")
        return [(w, ", ".join(where)) for w, where in seen.items()]

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        cols = [
            "subject",
            "model",
            "resource",
            "effect",
            "estimate",
            "ci_lower",
            "ci_upper",
            "contrast_estimate",
            "contrast_ci_lower",
            "contrast_ci_upper",
            "months",
            "months_ci_lower",
            "months_ci_upper",
            "n",
            "converged",
        ]
        parts = [
            "<div class='study-models'>",
            rounded_table(self._effects[cols], 3).to_html(index=False),
            f"<p><em>{html.escape(MONTHS_CAVEAT)}</em></p>",
        ]
        if self.warnings:
            parts += ["<ul>"] + [
                f"<li>{html.escape(f'{w} ({where})')}</li>" for w, where in self._grouped_warnings()
            ]
            parts.append("</ul>")
        parts.append("</div>")
        return "\n".join(parts)


def _access_quartiles(part: pd.DataFrame, resource: str, groups: Sequence[str]) -> tuple[float, float, int]:
    """25th and 75th percentiles of classroom-level access (one value per classroom), and the classroom count."""
    per = part.dropna(subset=[resource]).groupby(list(groups), sort=False)[resource].mean()
    if per.empty:
        return np.nan, np.nan, 0
    q25, q75 = np.quantile(per.to_numpy(dtype=float), [0.25, 0.75])
    return float(q25), float(q75), len(per)


def fit_study_models(
    frame: pd.DataFrame,
    *,
    subject: str | None = None,
    resources: Sequence[str] = STUDY_RESOURCES,
    covariates: Sequence[str] = STUDY_COVARIATES,
    groups: Sequence[str] = ("school_id", "classroom_id"),
    outcome: str = "spring_z",
    prior: str = "fall_z",
    behind: str = "started_behind",
    method: str = "REML",
    grade: int | str = "median",
    gains: pd.DataFrame | str | None = None,
    months_per_year: float = 9,
    strict: bool = False,
    grade_effects: bool = True,
    fit_options: Mapping[str, Any] | None = None,
) -> StudyModels:
    """Fit the study's growth models: one per resource and one with all four, per subject.

    For each resource ``r`` the model is ``spring_z ~ fall_z + started_behind + r + r:started_behind +
    covariates`` with random intercepts for schools and classrooms within schools; the ``all_four`` model has
    every resource and every interaction.

    Samples: each model uses its own students. A one-resource model uses every student with both scores,
    a started-behind status, the covariates and that resource measured in their classroom; the ``all_four``
    model is restricted to students whose classrooms have every resource measured (e.g. the engagement
    survey covers grades 6-12 only), and says so. Each row of ``effects`` carries the model's ``n``, the
    students left out (``n_excluded``) and why (``sample``).

    Identifiability: before fitting, a grouping level whose variance the design cannot identify (one group,
    groups determined by the fixed effects, e.g. every grade in one school with grade fixed effects, or the
    same partition as another level) is dropped with the reason in ``warnings`` (see :func:`identify_levels`).

    Effects: access terms are estimated per unit of access (0 = never, 1 = always; the technical ``estimate``
    columns), and reported as the contrast between classrooms at the district's 25th and 75th percentiles of
    access to that resource (the study's "more vs less access"; ``contrast_*`` columns). Months of learning
    are computed from that contrast only, where the benchmark annual gain is at least 0.10 SD and the result
    stays within one school year (otherwise "n/a" with the reason in ``months_note``).

    Parameters
    ----------
    frame
        One row per student and subject (:func:`opportunity_research.study.measures.growth_frame`): ``student_id``,
        ``school_id``, ``classroom_id``, ``subject``, ``grade``, ``spring_z``, ``fall_z``, ``started_behind``
        (0/1), the resource shares (missing where a classroom has no evidence) and the covariates.
    subject
        Fit only this subject; default: every subject in ``frame`` (each separately).
    resources, covariates, groups, outcome, prior, behind
        Column names. A covariate with no variation in a model's sample is dropped (noted in ``warnings``).
    method
        ``"REML"`` or ``"ML"``.
    grade
        Grade used to convert effects to months of learning: ``"median"`` (default: the lower median grade of
        the subject's students, a single benchmark per subject so that months stay comparable across models) or
        an integer grade.
    gains, months_per_year
        Benchmark table (:func:`annual_gains`) and school months per year.
    strict
        Raise :class:`ConvergenceError` if any model cannot be verified.
    grade_effects
        Add grade fixed effects (``C(grade)``) when a model's sample spans several grades (default). Scores are
        standardized within grade, so without them a between-grade difference in access would be confounded
        with the grade-level centring of the outcome.
    fit_options
        Further keyword arguments for :func:`fit_growth_model` (e.g. ``max_iter``, ``tol``).

    Returns
    -------
    StudyModels
    """
    need = [outcome, prior, behind, *resources, *covariates, *groups, "grade"]
    check_columns(frame, need, "fit_study_models")
    if subject is not None:
        check_columns(frame, ["subject"], "fit_study_models")
        parts = [(subject, frame[frame["subject"] == subject])]
        if parts[0][1].empty:
            raise ValueError(
                f"no rows with subject == {subject!r}; subjects: {sorted(frame['subject'].unique())}"
            )
    elif "subject" in frame.columns:
        parts = [(s, part) for s, part in frame.groupby("subject", sort=True)]
    else:
        raise KeyError(
            "fit_study_models: give subject= or a 'subject' column (needed for months of learning)"
        )
    models, rows, warns = {}, [], []
    env = patsy.EvalEnvironment.capture(0)
    stats_cols = ("estimate", "std_error", "ci_lower", "ci_upper", "p_value")
    for subj, part in parts:
        eligible = part.dropna(subset=[outcome, prior, behind, "grade", *groups, *covariates])
        n_eligible = len(eligible)
        if n_eligible < len(part):
            warns.append(
                (
                    subj,
                    "all",
                    (
                        f"{len(part) - n_eligible} students without both scores, a started-behind "
                        f"status, a classroom or a covariate are in no model"
                    ),
                )
            )
        res = [r for r in resources if eligible[r].nunique(dropna=True) > 1]
        for r in [r for r in resources if r not in res]:
            msg = (
                f"access to {r!r} has no variation among these students (every classroom at "
                f"{eligible[r].dropna().unique().tolist()}): its effect cannot be estimated; no model for it, and "
                f"it is left out of all_four"
            )
            warns.append((subj, "all", msg))
        if not len(eligible):
            continue
        g_used = (
            int(statistics.median_low(eligible["grade"].astype(int).tolist()))
            if grade == "median"
            else int(grade)
        )
        quart = {r: _access_quartiles(eligible, r, groups) for r in res}
        specs = [(r, [r]) for r in res] + ([("all_four", res)] if len(resources) > 1 and res else [])
        for name, rs in specs:
            sample = eligible.dropna(subset=list(rs))
            n_excl = n_eligible - len(sample)
            if name == "all_four":
                what = (
                    f"students whose classrooms have all {len(rs)} resources measured ("
                    + ", ".join(r.replace("_", " ") for r in rs)
                    + ")"
                )
            else:
                what = f"students whose classrooms have {rs[0].replace('_', ' ')} measured"
            note = what + (
                f"; {n_excl} of {n_eligible} students with scores left out: their classrooms lack "
                f"{'that measure' if name != 'all_four' else 'at least one of these measures'}"
                if n_excl
                else "; no student with scores left out"
            )
            covs = [c for c in covariates if sample[c].nunique(dropna=True) > 1]
            for c in [c for c in covariates if c not in covs]:
                warns.append(
                    (
                        subj,
                        name,
                        (f"covariate {c!r} has no variation among this model's students and was dropped"),
                    )
                )
            rhs = [prior, behind] + [t for r in rs for t in (r, f"{r}:{behind}")] + covs
            if grade_effects and sample["grade"].nunique() > 1:
                rhs.append("C(grade)")
            formula = f"{outcome} ~ " + " + ".join(rhs)
            fit = fit_growth_model(
                sample,
                formula=formula,
                groups=groups,
                method=method,
                strict=strict,
                _eval_env=env,
                **dict(fit_options or {}),
            )
            models[(subj, name)] = fit
            warns += [(subj, name, w) for w in fit.warnings]
            common = {
                "subject": subj,
                "model": name,
                "n": fit.n_obs,
                "n_started_behind": int((sample[behind] == 1).sum()),
                "n_classrooms": int(sample.groupby(list(groups)).ngroups),
                "n_schools": int(sample[groups[0]].nunique()),
                "converged": fit.converged,
                "n_eligible": n_eligible,
                "n_excluded": n_excl,
                "sample": note,
                "levels_fitted": ", ".join(fit.groups),
            }
            coefs = fit._coefficients.set_index("term")
            for r in rs:
                inter = f"{r}:{behind}"
                q25, q75, n_cls = quart[r]
                width = q75 - q25
                for effect, term, weights in (
                    ("access", r, {r: 1.0}),
                    ("extra_if_behind", inter, {inter: 1.0}),
                    ("access_if_behind", f"{r} + {inter}", {r: 1.0, inter: 1.0}),
                ):
                    if effect == "access_if_behind":
                        c = fit.contrast(weights)
                    else:
                        c = coefs.loc[term, list(stats_cols)].to_dict()
                    ok = width > 0
                    cnote = (
                        ""
                        if ok
                        else (
                            f"n/a: at least half of the {n_cls} classrooms have the same access "
                            f"({q25:.0%}), so the 25th and 75th percentiles coincide"
                        )
                    )
                    rows.append(
                        {
                            "subject": subj,
                            "model": name,
                            "resource": r,
                            "effect": effect,
                            "term": term,
                            **{k: float(c[k]) for k in stats_cols},
                            **{
                                k: common[k]
                                for k in ("n", "n_started_behind", "n_classrooms", "n_schools", "converged")
                            },
                            "access_p25": q25,
                            "access_p75": q75,
                            "contrast_estimate": c["estimate"] * width if ok else np.nan,
                            "contrast_ci_lower": c["ci_lower"] * width if ok else np.nan,
                            "contrast_ci_upper": c["ci_upper"] * width if ok else np.nan,
                            "contrast_note": cnote,
                            **{k: common[k] for k in ("n_eligible", "n_excluded", "sample", "levels_fitted")},
                            "grade_used": g_used,
                        }
                    )
    eff = pd.DataFrame(rows)
    if eff.empty:
        return StudyModels(_models=models, _effects=eff, warnings=tuple(warns))
    pieces = []
    for subj, part in eff.groupby("subject", sort=False):
        pieces.append(
            add_months_of_learning(
                part,
                grade="grade_used",
                subject=subj,
                gains=gains,
                months_per_year=months_per_year,
                columns=("contrast_estimate", "contrast_ci_lower", "contrast_ci_upper"),
                max_months=months_per_year,
            )
        )
    eff = pd.concat(pieces, ignore_index=True)
    eff["months_note"] = eff["months_note"].where(eff["contrast_note"] == "", eff["contrast_note"])
    return StudyModels(_models=models, _effects=eff, warnings=tuple(warns))
