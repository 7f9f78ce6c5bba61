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

from ..intake.contract import RESOURCES
from ..stats import sensitivity as _sens
from ..stats.design import check_columns, nested_codes
from ..stats.likelihood import one_blas_thread
from ..stats.models import fit_growth_model
from ..stats.results import rounded_table
from .months import MONTHS_CAVEAT, add_months_of_learning

__all__ = ["SENSITIVITY_COLUMNS", "STUDY_COVARIATES", "STUDY_RESOURCES", "StudyModels", "fit_study_models"]


#: The resources the study models, in the order of its tables (the contract's four).
STUDY_RESOURCES = RESOURCES
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
        ``months_note`` (see :func:`add_months_of_learning`). Sensitivity to unmeasured confounding
        (:data:`SENSITIVITY_COLUMNS`, :mod:`opportunity_research.stats.sensitivity`): ``t_value`` (estimate /
        std_error), ``sensitivity_dof`` (classrooms minus the fixed effects constant within classrooms: access
        varies by classroom, so the effective sample is the classrooms), ``partial_r2``, ``robustness_value``
        (the partial R2 an unmeasured confounder needs with both access and growth to bring the estimate to
        zero), ``robustness_value_05`` (to make it not significant at 5%); for ``access`` rows the strongest
        observed classroom covariate (``benchmark``: the covariate whose classroom share, as strong again as a
        confounder, would move the estimate most), its partial R2 with access (``benchmark_r2_access``) and with
        growth (``benchmark_r2_growth``) in classroom-level regressions, and the contrast left after a
        confounder as strong as it (``benchmark_adjusted_contrast``; missing when the covariate explains half or
        more of access, since no confounder can be as strong); ``e_value`` and ``e_value_ci`` of the
        contrast (VanderWeele & Ding 2017, RR = exp(0.91 d); 1 when the interval includes zero).
    warnings
        ``(subject, model, message)`` for every warning of every model, plus dropped covariates.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> n = 800
    >>> room = np.repeat(np.arange(40), 20)
    >>> frame = pd.DataFrame({"school_id": room // 8, "classroom_id": room, "subject": "math", "grade": 5,
    ...                       "fall_z": rng.normal(size=n), "low_income": rng.integers(0, 2, n),
    ...                       "english_learner": rng.integers(0, 2, n), "disability": rng.integers(0, 2, n)})
    >>> frame["started_behind"] = (frame["fall_z"] < -0.5).astype(int)
    >>> for r in STUDY_RESOURCES:
    ...     frame[r] = rng.uniform(0, 1, 40)[room]
    >>> frame["spring_z"] = 0.7 * frame["fall_z"] + 0.3 * frame["grade_appropriate"] + rng.normal(0, 0.3, 40)[room] + rng.normal(0, 0.6, n)
    >>> sm = fit_study_models(frame, subject="math")
    >>> isinstance(sm, StudyModels), list(sm.effects.columns[:4])
    (True, ['subject', 'model', 'resource', 'effect'])
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


#: Columns :func:`fit_study_models` adds for the sensitivity of each effect to unmeasured confounding.
SENSITIVITY_COLUMNS = (
    "t_value",
    "sensitivity_dof",
    "partial_r2",
    "robustness_value",
    "robustness_value_05",
    "benchmark",
    "benchmark_r2_access",
    "benchmark_r2_growth",
    "benchmark_adjusted_contrast",
    "e_value",
    "e_value_ci",
)


def _between_parameters(
    constant: Mapping[str, bool], rhs_cols: Sequence[str], n_grades: int, grade_effects: bool
) -> int:
    """Fixed effects constant within every classroom: the intercept, the resources, grade (if constant there).

    ``constant``: :func:`_constant_within` of the sample's columns (``rhs_cols`` and ``grade``); ``n_grades``: the
    sample's grades."""
    p = 1 + sum(constant[c] for c in rhs_cols)
    if grade_effects and n_grades > 1 and constant["grade"]:
        p += n_grades - 1
    return p


def _group_codes(sample: pd.DataFrame, groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The rows with every key of ``groups`` (positions) and their group numbers ``0..G-1`` (one per combination of
    the keys, as ``groupby(groups)`` finds the groups; numbered as :func:`~..stats.design.nested_codes` numbers the
    innermost level).

    Examples
    --------
    >>> rows, cell = _group_codes(pd.DataFrame({"s": ["a", "b", None, "a"], "c": [1, 1, 1, 1]}), ["s", "c"])
    >>> rows.tolist(), cell.tolist()
    ([0, 1, 3], [0, 1, 0])
    """
    keys = sample[list(groups)]
    complete = keys.notna().all(axis=1).to_numpy()
    rows = np.flatnonzero(complete)
    if not len(rows):
        return rows, rows.astype(np.int64)
    codes, _, _ = nested_codes(keys if complete.all() else keys.iloc[rows], groups)
    return rows, codes[-1]


def _n_groups(sample: pd.DataFrame, groups: Sequence[str]) -> int:
    """``sample.groupby(groups).ngroups``: the combinations of the keys present (a row with a missing key in none).

    Examples
    --------
    >>> _n_groups(pd.DataFrame({"s": ["a", "b", None, "a"], "c": [1, 2, 1, 1]}), ["s", "c"])
    2
    """
    return int(_group_codes(sample, groups)[1].max(initial=-1)) + 1


def _constant_within(sample: pd.DataFrame, groups: Sequence[str], columns: Sequence[str]) -> dict:
    """Per column: whether it takes one value (a missing value counts as one) in every group of ``groups`` (rows
    with a missing key in none), i.e. ``groupby(groups)[columns].nunique(dropna=False).max() <= 1``; False when
    there is no group. Each row is compared with one row of its group, instead of counting values per group.

    Examples
    --------
    >>> df = pd.DataFrame({"c": ["a", "a", "b", None], "x": [1.0, 1.0, np.nan, 5.0], "y": [1, 2, 3, 3]})
    >>> _constant_within(df, ["c"], ["x", "y"])
    {'x': True, 'y': False}
    """
    rows, cell = _group_codes(sample, groups)
    if not len(rows):
        return dict.fromkeys(columns, False)
    one = np.empty(int(cell.max()) + 1, dtype=np.int64)
    one[cell] = rows  # a row of each group (any one)
    ref = one[cell]
    out = {}
    for c in columns:
        x = sample[c]
        if not (isinstance(x.dtype, np.dtype) and x.dtype.kind in "biuf"):
            per = sample.groupby(list(groups), sort=False)[c].nunique(dropna=False).max()
            out[c] = bool(per <= 1)
            continue
        v = x.to_numpy()
        a, b = v[rows], v[ref]
        same = a == b
        if v.dtype.kind == "f":
            same |= np.isnan(a) & np.isnan(b)
        out[c] = bool(same.all())
    return out


def _group_mode(df: pd.DataFrame, keys: Sequence[str], column: str) -> pd.Series:
    """The most frequent value of ``column`` in each group of ``keys`` (of ties, the smallest), on columns.

    What ``df.groupby(keys)[column].agg(lambda g: g.mode().iloc[0])`` gives, without a Python call per group
    (a 1,000,000-student district has 50,000 classrooms); missing values are not counted, and a group with
    none but missing values is left out.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": [1, 1, 1, 2, 2, 2, 2], "grade": [4, 5, 5, 3, 4, 4, 3]})
    >>> _group_mode(df, ["c"], "grade").to_dict()
    {1: 5, 2: 3}
    """
    keys = list(keys)
    cnt = df.groupby([*keys, column], sort=False).size().rename("_count").reset_index()
    cnt = cnt.sort_values(["_count", column], ascending=[False, True], kind="stable")
    return cnt.drop_duplicates(keys).set_index(keys)[column].sort_index()


def _classroom_means(
    sample: pd.DataFrame, *, columns: Sequence[str], covariates: Sequence[str], groups: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """One row per classroom: the means of ``columns`` (a covariate's named ``share_<covariate>``) and the dummies of
    its most frequent grade (the lowest grade left out); and the dummies' names.

    Each column's means are those of a table of that column alone (pandas averages column by column).
    """
    keys = list(groups)
    cls = sample.groupby(keys, sort=False)[list(columns)].mean()
    grade = _group_mode(sample, keys, "grade").reindex(cls.index)
    cls = cls.rename(columns={c: f"share_{c}" for c in covariates if c in cls.columns})
    dummies = pd.get_dummies(grade.astype(int), prefix="grade", drop_first=True, dtype=float)
    return pd.concat([cls, dummies], axis=1), list(dummies.columns)


def _classroom_benchmarks(
    cls: pd.DataFrame,
    dummies: Sequence[str],
    *,
    resources: Sequence[str],
    covariates: Sequence[str],
    outcome: str,
    prior: str,
    behind: str,
) -> dict:
    """Per resource: the partial R2 of each classroom share of a student covariate with access and with growth.

    Classroom-level OLS (one row per classroom of ``cls``, :func:`_classroom_means` of the model's students; the
    grade dummies ``dummies``): access on the shares, the classroom means of the fall score and of started-behind,
    the other resources and grade; growth (the classroom mean spring score) on the same plus access. Returns
    ``{resource: DataFrame from sensitivity.covariate_partial_r2}`` (empty when there are too few classrooms).
    """
    shares = [f"share_{c}" for c in covariates]
    out = {}
    for r in resources:
        others = [x for x in resources if x != r]
        controls = [prior, behind, *others, *dummies]
        if not shares or len(cls) <= len(shares) + len(controls) + 3:
            out[r] = pd.DataFrame()
            continue
        bench = [s for s in shares if cls[s].nunique() > 1]
        out[r] = (
            _sens.covariate_partial_r2(
                cls.reset_index(drop=True), outcome=outcome, treatment=r, covariates=bench, controls=controls
            )
            if bench
            else pd.DataFrame()
        )
    return out


def _sensitivity(row: dict, *, dof: int, bench: pd.DataFrame | None) -> dict:
    """Robustness values of one effect row, its strongest observed benchmark, and the E-value of its contrast."""
    est, se = row["estimate"], row["std_error"]
    t = est / se if se > 0 else np.nan
    out = dict.fromkeys(SENSITIVITY_COLUMNS, np.nan)
    out.update(t_value=t, sensitivity_dof=dof, benchmark="")
    if dof > 1 and np.isfinite(t):
        out.update(
            partial_r2=_sens.partial_r2(t, dof),
            robustness_value=_sens.robustness_value(t, dof),
            robustness_value_05=_sens.robustness_value(t, dof, alpha=0.05),
        )
    if bench is not None and len(bench) and dof > 1 and np.isfinite(t):
        # a covariate explaining half or more of access has no "as strong" bound (it would need a partial R2
        # of at least 1): it is the strongest benchmark, and no adjusted contrast is given for it
        r2d, r2y = bench["r2_treatment"].to_numpy(), bench["r2_outcome"].to_numpy()
        feasible = r2d < 0.5
        strength = np.full(len(bench), np.inf)
        if feasible.any():
            bounds = _sens.ovb_bounds(r2d[feasible], r2y[feasible], kd=1.0)
            strength[feasible] = np.sqrt(bounds["r2yz_dx"] * bounds["r2dz_x"] / (1 - bounds["r2dz_x"]))
        order = np.lexsort((-(r2d * r2y), -strength))
        i = int(order[0])
        adjusted = np.nan
        width = row["access_p75"] - row["access_p25"]
        if feasible[i] and width > 0:
            b = _sens.ovb_bounds(r2d[i], r2y[i], kd=1.0)
            adjusted = _sens.adjusted_estimate(est, se, dof, **b)["estimate"] * width
        out.update(
            benchmark=str(bench["covariate"].iloc[i]).removeprefix("share_"),
            benchmark_r2_access=float(r2d[i]),
            benchmark_r2_growth=float(r2y[i]),
            benchmark_adjusted_contrast=adjusted,
        )
    c, lo, hi = row["contrast_estimate"], row["contrast_ci_lower"], row["contrast_ci_upper"]
    if np.isfinite(c):
        out["e_value"] = _sens.e_value(c)
        out["e_value_ci"] = 1.0 if lo <= 0 <= hi else _sens.e_value(lo if c > 0 else hi)
    return out


def _access_quartiles(per_classroom: pd.Series) -> tuple[float, float, int]:
    """25th and 75th percentiles of classroom-level access (a classroom's mean over its students with a value; one
    per classroom, missing where none has one), and the count of classrooms with a value."""
    per = per_classroom.dropna()
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

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> n = 800
    >>> room = np.repeat(np.arange(40), 20)
    >>> frame = pd.DataFrame({"school_id": room // 8, "classroom_id": room, "subject": "math", "grade": 5,
    ...                       "fall_z": rng.normal(size=n), "low_income": rng.integers(0, 2, n),
    ...                       "english_learner": rng.integers(0, 2, n), "disability": rng.integers(0, 2, n)})
    >>> frame["started_behind"] = (frame["fall_z"] < -0.5).astype(int)
    >>> for r in STUDY_RESOURCES:
    ...     frame[r] = rng.uniform(0, 1, 40)[room]
    >>> frame["spring_z"] = 0.7 * frame["fall_z"] + 0.3 * frame["grade_appropriate"] + rng.normal(0, 0.3, 40)[room] + rng.normal(0, 0.6, n)
    >>> sm = fit_study_models(frame, subject="math")
    >>> sm.converged, sorted(sm.effects["model"].unique())[:2]
    (True, ['all_four', 'engaged'])
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
    scratch: dict = {}  # the engine's working array, kept from model to model (see Profile)
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
        # the grouping keys (none missing here) as integers numbered in their sorted order, once: every model's
        # groupings below (nested codes, classroom counts, means and modes) find the same groups in the same order
        # by hashing integers, not a million students' id text once per use
        eligible = eligible.assign(
            **{g: pd.factorize(eligible[g], sort=True)[0] for g in dict.fromkeys(groups)}
        )
        g_used = (
            int(statistics.median_low(eligible["grade"].astype(int).tolist()))
            if grade == "median"
            else int(grade)
        )
        specs = [(r, [r]) for r in res] + ([("all_four", res)] if len(resources) > 1 and res else [])
        every: dict = {}  # what is made of every eligible student's rows, once for the models of them all
        every["classrooms"] = _classroom_means(
            eligible,
            columns=[outcome, prior, behind, *res, *covariates],
            covariates=covariates,
            groups=groups,
        )
        quart = {r: _access_quartiles(every["classrooms"][0][r]) for r in res}
        for name, rs in specs:
            sample = eligible.dropna(subset=list(rs))
            n_excl = n_eligible - len(sample)
            # what is made of the sample's rows below: for a model of every eligible student (the same rows) once
            # and kept, for all the resources and covariates at once (pandas' means and _constant_within treat each
            # column alone: the same numbers as for the model's columns only); else for this model's
            memo, m_res = (every, res) if not n_excl else ({}, rs)
            if not n_excl:
                sample = eligible
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
            for c in covariates:
                if ("varies", c) not in memo:
                    memo["varies", c] = sample[c].nunique(dropna=True) > 1
            covs = [c for c in covariates if memo["varies", c]]
            if "n_grades" not in memo:
                memo["n_grades"] = sample["grade"].nunique()
            for c in [c for c in covariates if c not in covs]:
                warns.append(
                    (
                        subj,
                        name,
                        (f"covariate {c!r} has no variation among this model's students and was dropped"),
                    )
                )
            rhs = [prior, behind] + [t for r in rs for t in (r, f"{r}:{behind}")] + covs
            if grade_effects and memo["n_grades"] > 1:
                rhs.append("C(grade)")
            formula = f"{outcome} ~ " + " + ".join(rhs)
            # the model's design checks and per-group sums on one BLAS thread (see one_blas_thread); the classroom
            # benchmarks' least squares below keep BLAS's threads (at 40,000 classrooms one thread changes their
            # last bits)
            with one_blas_thread():
                fit = fit_growth_model(
                    sample,
                    formula=formula,
                    groups=groups,
                    method=method,
                    strict=strict,
                    _eval_env=env,
                    _scratch=scratch,
                    **dict(fit_options or {}),
                )
            models[(subj, name)] = fit
            warns += [(subj, name, w) for w in fit.warnings]
            if "counts" not in memo:
                memo["counts"] = (
                    int((sample[behind] == 1).sum()),
                    _n_groups(sample, groups),
                    int(sample[groups[0]].nunique()),
                )
                memo["constant"] = _constant_within(
                    sample, groups, [*m_res, prior, behind, *covariates, "grade"]
                )
            if "classrooms" not in memo:  # (every eligible student's are made above, for the quartiles)
                memo["classrooms"] = _classroom_means(
                    sample,
                    columns=[outcome, prior, behind, *m_res, *covariates],
                    covariates=covariates,
                    groups=groups,
                )
            common = {
                "subject": subj,
                "model": name,
                "n": fit.n_obs,
                **dict(zip(("n_started_behind", "n_classrooms", "n_schools"), memo["counts"])),
                "converged": fit.converged,
                "n_eligible": n_eligible,
                "n_excluded": n_excl,
                "sample": note,
                "levels_fitted": ", ".join(fit.groups),
            }
            coefs = fit._coefficients.set_index("term")
            # sensitivity on the between-classroom contrast: access varies by classroom, so the degrees of
            # freedom are the classrooms minus the fixed effects that are constant within classrooms
            sens_dof = common["n_classrooms"] - _between_parameters(
                memo["constant"], [*rs, prior, behind, *covs], memo["n_grades"], grade_effects
            )
            bench = _classroom_benchmarks(
                *memo["classrooms"],
                resources=rs,
                covariates=covs,
                outcome=outcome,
                prior=prior,
                behind=behind,
            )
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
                    rows[-1].update(
                        _sensitivity(
                            rows[-1], dof=sens_dof, bench=bench.get(r) if effect == "access" else None
                        )
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
