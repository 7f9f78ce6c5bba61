"""The model tables of the report: growth-model effects and diagnostics, their sensitivity to unmeasured
confounding, and gaps and means estimated from counts by performance level (V, HETOP).

Nothing here computes a statistic; the names are re-exported by :mod:`opportunity_research.report.presentation`,
where the notebooks find them.
"""

from __future__ import annotations

import html as _html
from collections.abc import Mapping, Sequence

import pandas as pd

from ..study import labels
from .tables import Col, HtmlBlock, Table, humanize, table

__all__ = [
    "diagnostics_table",
    "growth_table",
    "hetop_table",
    "model_trust_note",
    "robustness_note",
    "sensitivity_table",
    "v_gap_table",
]

# ---------------------------------------------------------------------------------------------
# Growth models


def growth_table(growth: pd.DataFrame, *, models: Sequence[str] = ("all_four",)) -> Table:
    """Growth-model effects of access (``growth.fit_study_models(...).effects``); unverified models marked.

    ``models`` selects the models shown (default: the model with all four resources together; the
    technical appendix shows every model).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"subject": "math", "model": "all_four", "resource": "all_four", "effect": "access",
    ...                   "estimate": [0.2], "ci_lower": [0.05], "ci_upper": [0.35], "months": [2.1],
    ...                   "months_ci_lower": [0.5], "months_ci_upper": [3.7], "n": [640], "n_classrooms": [32],
    ...                   "n_schools": [4], "converged": [True]})
    >>> growth_table(g).frame.iloc[0].tolist()
    ['All four resources together', 'Access (all students)', '2.1', '0.5 to 3.7', '0.20', '0.05 to 0.35', '640']
    """
    g = (
        growth[
            growth["effect"].isin(["access", "extra_if_behind"]) & growth["model"].isin(list(models))
        ].copy()
        if len(growth)
        else growth
    )
    if len(g):
        g["model_label"] = [
            labels.measure(r)
            if m != "all_four" or len(models) == 1
            else f"{labels.measure(r)} (all four together)"
            for m, r in zip(g["model"], g["resource"])
        ]
        g["model_label"] = [
            lab + ("" if bool(c) else " †") for lab, c in zip(g["model_label"], g["converged"])
        ]
    contrast = len(g) and "contrast_estimate" in g.columns
    notes = (
        [
            (
                "Effects in standard deviations (SD) of the spring score. 25th → 75th percentile: classrooms at the "
                "district's 75th vs its 25th percentile of access; months of learning are an approximation from that "
                "contrast (typical annual gains by grade), shown only where it can be computed. Full vs none: "
                "classrooms that always vs never have the resource."
            )
        ]
        if contrast
        else [
            (
                "Effects in standard deviations of the spring score, from no access (0) to full access (1); months "
                "of learning are an approximation (typical annual gains by grade)."
            )
        ]
    )
    if len(g) and not g["converged"].astype(bool).all():
        notes.append(
            "† The model could not be verified; do not rely on this row (see the technical appendix)."
        )
    cols = [Col("model_label", label="Resource"), Col("effect", "measure")]
    if contrast:
        cols += [
            Col("contrast_estimate", "number", label="25th → 75th percentile (SD)"),
            Col("contrast", "interval_number", prefix="contrast_", label="95% interval"),
        ]
    cols += [
        Col("months", "number1", label="Months"),
        Col("months", "interval_number1", label="Months, 95% interval", prefix="months_"),
        Col("estimate", "number", label="Full vs none (SD)"),
        Col("interval", "interval_number"),
        Col("n", "count"),
    ]
    return table(
        g,
        cols,
        caption=(
            "What access is worth: growth-model effects"
            + (", all four resources in one model" if list(models) == ["all_four"] else ", every model")
        ),
        groups="subject",
        notes=notes,
        empty="Too few students with fall and spring scores for growth models.",
    )


def diagnostics_table(growth: pd.DataFrame, warnings_: Sequence[str]) -> Table:
    """Technical appendix: convergence and samples of each growth model, with the engine's messages.

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"subject": "math", "model": "all_four", "resource": "all_four", "effect": "access",
    ...                   "estimate": [0.2], "ci_lower": [0.05], "ci_upper": [0.35], "months": [2.1],
    ...                   "months_ci_lower": [0.5], "months_ci_upper": [3.7], "n": [640], "n_classrooms": [32],
    ...                   "n_schools": [4], "converged": [True]})
    >>> diagnostics_table(g, ["math / all_four: boundary (singular) fit"]).frame.iloc[0].tolist()
    ['All four resources together', '640', '32', '4', 'yes', 'boundary (singular) fit']
    """
    if len(growth):
        m = growth.drop_duplicates(["subject", "model"])[
            ["subject", "model", "n", "n_classrooms", "n_schools", "converged"]
        ]
        msgs = {}
        for w in warnings_:
            subj, _, rest = str(w).partition(" / ")
            model, _, text = rest.partition(": ")
            msgs.setdefault((subj, model), []).append(text)
        m = m.assign(
            note=[humanize("; ".join(msgs.get((s, mo), []))) for s, mo in zip(m["subject"], m["model"])],
            model=[labels.measure(x) for x in m["model"]],
        )
    else:
        m = growth
    return table(
        m,
        [
            Col("model", label="Model"),
            Col("n", "count"),
            Col("n_classrooms", "count"),
            Col("n_schools", "count"),
            Col("converged", label="Verified"),
            Col("note", label="Engine notes"),
        ],
        caption="Growth-model diagnostics",
        groups="subject" if len(m) else None,
        empty="No growth model was fitted.",
    )


def model_trust_note(growth: pd.DataFrame) -> HtmlBlock:
    """One plain-language line on whether the growth models can be trusted (details in the appendix).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"subject": "math", "model": "all_four", "resource": "all_four", "effect": "access",
    ...                   "estimate": [0.2], "ci_lower": [0.05], "ci_upper": [0.35], "months": [2.1],
    ...                   "months_ci_lower": [0.5], "months_ci_upper": [3.7], "n": [640], "n_classrooms": [32],
    ...                   "n_schools": [4], "converged": [True]})
    >>> model_trust_note(g).text
    "All 1 growth models were verified (the estimation engine's checks passed); the technical appendix lists their samples."
    """
    if growth is None or not len(growth):
        text = (
            "The district has too few students/classrooms for the growth models (students with fall and "
            "spring scores in the analysis year, in classrooms that differ in access), so what access is worth "
            "is not estimated; the rest of the report does not depend on them."
        )
    else:
        m = growth.drop_duplicates(["subject", "model"])
        bad = m[~m["converged"].astype(bool)]
        if len(bad):
            which = "; ".join(
                f"{labels.subject(s)}: {labels.measure(x).lower()}"
                for s, x in zip(bad["subject"], bad["model"])
            )
            text = (
                f"{len(bad)} of {len(m)} growth models could not be verified ({which}); their rows are marked † "
                "and should not be relied on. The technical appendix says why."
            )
        else:
            text = (
                f"All {len(m)} growth models were verified (the estimation engine's checks passed); the "
                "technical appendix lists their samples."
            )
    return HtmlBlock(f'<p class="note" role="note">{_html.escape(text)}</p>', text)


# ---------------------------------------------------------------------------------------------
# Sensitivity of growth effects to unmeasured confounding (added beside the growth table)


def robustness_note(growth: pd.DataFrame) -> HtmlBlock:
    """The growth section's plain sentences on how strong a hidden confounder would have to be (one per effect).

    From :func:`opportunity_research.study.findings.robustness_sentences`; empty when there is no growth model.

    Examples
    --------
    >>> import pandas as pd
    >>> robustness_note(pd.DataFrame()).text  # no growth model: nothing to say
    ''
    """
    from ..study.findings import robustness_sentences

    items = robustness_sentences(growth)
    if not items:
        return HtmlBlock("", "")
    html = (
        '<div class="note" role="note"><p><strong>Could something unmeasured explain these effects '
        "away?</strong></p><ul>" + "".join(f"<li>{_html.escape(t)}</li>" for t in items) + "</ul></div>"
    )
    return HtmlBlock(html, "\n".join(items))


def sensitivity_table(growth: pd.DataFrame) -> Table:
    """Technical appendix: robustness values of every growth effect, its benchmark and E-value.

    Columns from :data:`opportunity_research.study.growth.SENSITIVITY_COLUMNS` (no student counts: the
    degrees of freedom count classrooms).

    Examples
    --------
    >>> import pandas as pd
    >>> print(sensitivity_table(pd.DataFrame()).text)
    How strong would a hidden confounder have to be? Sensitivity of every growth effect
    No growth model was fitted.
    """
    g = growth
    if len(g) and "robustness_value" in g.columns:
        g = g.copy()
        g["model_label"] = [
            labels.measure(r) if m != "all_four" else f"{labels.measure(r)} (all four together)"
            for m, r in zip(g["model"], g["resource"])
        ]
        g["benchmark_label"] = [
            labels.level(b, 1) if isinstance(b, str) and b else labels.MISSING for b in g["benchmark"]
        ]
    else:
        g = pd.DataFrame()
    cols = [
        Col("model_label", label="Resource"),
        Col("effect", "measure"),
        Col("t_value", "number", label="t"),
        Col("sensitivity_dof", label="Degrees of freedom (classrooms)"),
        Col("partial_r2", "percent1", label="Partial R² of access"),
        Col("robustness_value", "percent1", label="Robustness value"),
        Col("robustness_value_05", "percent1", label="Robustness value (5% level)"),
        Col("benchmark_label", "note", label="Strongest observed classroom share"),
        Col("benchmark_r2_access", "percent1", label="Its partial R² with access"),
        Col("benchmark_r2_growth", "percent1", label="Its partial R² with growth"),
        Col("benchmark_adjusted_contrast", "number", label="Contrast after a confounder as strong (SD)"),
        Col("e_value", "number", label="E-value"),
        Col("e_value_ci", "number", label="E-value, interval"),
    ]
    notes = [
        (
            "Robustness value (Cinelli & Hazlett 2020): the share of the remaining variation in both access and "
            "growth an unmeasured classroom factor would have to explain to bring the effect to zero (5% level: "
            "to make it statistically indistinguishable from zero). Computed from the model's t value with "
            "degrees of freedom = classrooms minus the fixed effects constant within classrooms, since access "
            "varies by classroom. Benchmarks: classroom shares of low-income students, English learners and "
            "students with disabilities, in classroom-level regressions. E-value (VanderWeele & Ding 2017) of the "
            "25th → 75th percentile contrast, with RR = exp(0.91 × SD)."
        )
    ]
    return table(
        g,
        cols,
        caption="How strong would a hidden confounder have to be? Sensitivity of every growth effect",
        groups="subject" if len(g) else None,
        notes=notes,
        empty="No growth model was fitted.",
    )


# ---------------------------------------------------------------------------------------------
# Gaps and means from performance levels (V statistic, HETOP)

# the 0/1 student flags whose level-0 mirror the V-gap table leaves out (presentation._FLAGS also covers
# started-behind and classroom composition, which have no V gaps)
_STUDENT_FLAGS = ("low_income", "english_learner", "disability")


def v_gap_table(gaps: pd.DataFrame, *, year: int | None = None) -> Table:
    """V gaps (from counts by performance level) beside scale-score gaps, each group vs all other students.

    ``gaps`` is :func:`opportunity_research.study.levelgaps.level_gaps` (the latest year unless ``year``); for
    0/1 groups only the flagged group is shown (the other row is its mirror image). Count columns: ``n``,
    ``reference_n``.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"school_year": 2018, "subject": "math", "group": "low_income", "level": ["1", "0"],
    ...                      "n": [90, 110], "reference_n": [110, 90], "v": [-0.42, 0.42], "v_ci_lower": [-0.6, 0.24],
    ...                      "v_ci_upper": [-0.24, 0.6], "score_gap": [float("nan")] * 2})
    >>> v_gap_table(gaps).frame.to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'Group': 'Low-income students', 'Students': '90', 'All other students': '110', 'V gap (SD)': '−0.42',
      'V, 95% interval': '−0.60 to −0.24'}]
    """
    g = gaps if gaps is not None else pd.DataFrame()
    if len(g):
        year = int(g["school_year"].max()) if year is None else int(year)
        g = g[
            (g["school_year"] == year) & ~(g["group"].isin(_STUDENT_FLAGS) & (g["level"].astype(str) == "0"))
        ].copy()
        g["group_label"] = [labels.level(v, lv) for v, lv in zip(g["group"], g["level"])]
    has_scores = len(g) and g["score_gap"].notna().any()
    cols = [
        Col("group_label", label="Group"),
        Col("n", "count"),
        Col("reference_n", "count", label="All other students"),
        Col("v", "number", label="V gap (SD)"),
        Col("v", "interval_number", prefix="v_", label="V, 95% interval"),
    ]
    if has_scores:
        cols += [
            Col("score_gap", "number", label="Scale-score gap (SD)"),
            Col("score_gap", "interval_number", prefix="score_gap_", label="Scale-score gap, 95% interval"),
        ]
    notes = [
        (
            "V (Ho & Reardon 2012): the gap between the group and all other students in pooled standard deviations, "
            "estimated from how many students of each are at each performance level (binormal maximum "
            "likelihood); it does not depend on where the cut scores fall. Negative: the group scores lower."
        )
    ]
    if has_scores:
        notes.append("Scale-score gap: the same comparison from scale scores standardized within grade.")
    return table(
        g,
        cols,
        caption=f"Achievement gaps from performance levels{'' if not len(g) else f', spring {year}'}",
        groups="subject" if len(g) else None,
        notes=notes,
        empty="No counts of students by performance level.",
    )


def hetop_table(means: pd.DataFrame, *, school_names: Mapping | None = None) -> Table:
    """Group means and SDs estimated from counts by performance level (HETOP), in district SD units.

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.DataFrame({"subject": "ela", "school_id": ["S1"], "group": "all", "n": [120], "mean": [0.12],
    ...                   "mean_ci_lower": [-0.05], "mean_ci_upper": [0.29], "sd": [0.95], "sd_ci_lower": [0.8],
    ...                   "sd_ci_upper": [1.1], "sd_shared": [False]})
    >>> hetop_table(m, school_names={"S1": "Oak Hill"}).frame.iloc[0].tolist()
    ['Oak Hill', '120', '0.12', '−0.05 to 0.29', '0.95', '0.80 to 1.10', 'own']
    """
    m = means if means is not None else pd.DataFrame()
    if len(m):
        m = m.copy()
        school = m["group"].astype(str) == "all"
        m["group_label"] = [
            labels.school(sc, school_names) if isc else labels.group(gr)
            for isc, sc, gr in zip(school, m["school_id"], m["group"])
        ]
        m["grouping_label"] = [
            f"{labels.subject(su)}: " + ("schools" if isc else labels.variable(gr.partition("=")[0]))
            for su, isc, gr in zip(m["subject"], school, m["group"].astype(str))
        ]
        m["sd_shared"] = m["sd_shared"].map(lambda x: "shared" if x is True or x == 1 else "own")
    cols = [
        Col("group_label", label="School or group"),
        Col("n", "count"),
        Col("mean", "number", label="Mean (SD units)"),
        Col("mean", "interval_number", prefix="mean_", label="Mean, 95% interval"),
        Col("sd", "number", label="SD"),
        Col("sd", "interval_number", prefix="sd_", label="SD, 95% interval"),
        Col("sd_shared", label="SD estimated"),
    ]
    notes = [
        (
            "HETOP (Reardon, Shear, Castellano & Ho 2017): each school's or group's mean and standard deviation "
            "estimated from its counts by performance level, on a scale where the district's students have mean "
            "0 and SD 1. Groups of fewer than 50 students share one SD."
        )
    ]
    return table(
        m,
        cols,
        caption="Average achievement from performance levels (HETOP)",
        groups="grouping_label" if len(m) else None,
        notes=notes,
        school_names=school_names,
        empty="No counts of students by performance level.",
    )
