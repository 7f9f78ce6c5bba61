"""The report's charts: gaps per resource, growth effects, trends over years, the district beside the study.

Same style and rules as :mod:`opportunity_research.report.plots` (which re-exports these names, so
``plots.gap_chart`` and the others keep working): tidy summary tables in, a ``Figure`` with ``alt_text`` out.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..intake.contract import ALL_OTHERS
from .figstyle import GREY, MARKERS, PALETTE, style
from .plot_format import check_tidy as _check_tidy
from .plot_format import percent_axis as _percent_axis
from .plot_format import suppressed_rows as _suppressed
from .plot_format import suppression_mark as _mark

__all__ = ["gap_chart", "growth_chart", "study_chart", "trend_chart"]


def _dodged(ax, rows: pd.DataFrame, *, series_order: list[str], percent: bool, points: bool) -> None:
    """Rows (``slot``, ``label``, ``series``, ``est``, ``lo``, ``hi``, ``supp``, ``mark``): one slot per y
    position, the series of a slot side by side; suppressed rows as text."""
    k = max(len(series_order), 1)
    step = 0.8 / k
    for j, s in enumerate(series_order):
        part = rows[rows["series"] == s]
        y = part["slot"].to_numpy(dtype=float) - 0.4 + step * (j + 0.5)
        shown = ~part["supp"].to_numpy()
        est, lo, hi = (part[c].to_numpy(dtype=float) for c in ("est", "lo", "hi"))
        has = shown & ~(np.isnan(lo) | np.isnan(hi))
        color, marker = PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)]
        if has.any():
            ax.errorbar(
                est[has],
                y[has],
                xerr=[est[has] - lo[has], hi[has] - est[has]],
                fmt="none",
                ecolor=color,
                elinewidth=1.4,
                capsize=2.5,
                zorder=2,
            )
        ax.plot(
            est[shown],
            y[shown],
            linestyle="none",
            marker=marker,
            color=color,
            markeredgecolor="black",
            markeredgewidth=0.6,
            markersize=6.5,
            zorder=3,
            label=s,
        )
        trans = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for yy, mark in zip(y[~shown], part["mark"].to_numpy()[~shown]):
            ax.text(
                0.01,
                yy,
                f"{s}: {mark}" if k > 1 else mark,
                transform=trans,
                va="center",
                ha="left",
                fontsize=7.5,
                fontstyle="italic",
                color=GREY,
                zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
            )
    slots = rows.drop_duplicates("slot").sort_values("slot")
    if k > 1:  # a series with no row at a slot (e.g. a model that could not estimate the effect)
        trans = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
        have = set(zip(rows["slot"], rows["series"]))
        for slot in slots["slot"]:
            for j, s in enumerate(series_order):
                if (slot, s) not in have:
                    ax.text(
                        0.01,
                        slot - 0.4 + step * (j + 0.5),
                        f"{s}: not estimated",
                        transform=trans,
                        va="center",
                        ha="left",
                        fontsize=7.5,
                        fontstyle="italic",
                        color=GREY,
                        zorder=4,
                    )
    ax.set_yticks(slots["slot"].to_numpy(dtype=float), [textwrap.fill(x, 34) for x in slots["label"]])
    ax.set_ylim(slots["slot"].max() + 0.6, slots["slot"].min() - 0.6)
    ax.tick_params(axis="y", length=0)
    if percent:
        _percent_axis(ax, "x", points=points)
    if k > 1:
        ax.legend(loc="best", fontsize=8.5, frameon=True, framealpha=0.9)


def _alt_rows(rows: pd.DataFrame, *, fmt, counts=None) -> str:
    parts = []
    for i, r in enumerate(rows.itertuples()):
        name = f"{r.label}, {r.series}" if r.series else r.label
        if r.supp:
            parts.append(f"{name}: {r.mark}.")
            continue
        extra = [] if math.isnan(r.lo) or math.isnan(r.hi) else [f"95% interval {fmt(r.lo)} to {fmt(r.hi)}"]
        if counts is not None and counts[i] is not None and not pd.isna(counts[i]):
            extra.append(f"n = {int(counts[i]):,}")
        parts.append(f"{name}: {fmt(r.est)}" + (f" ({'; '.join(extra)})" if extra else "") + ".")
    return " ".join(parts)


def _rows_frame(
    t: pd.DataFrame, *, label, series, est="estimate", lo="ci_lower", hi="ci_upper"
) -> pd.DataFrame:
    supp = _suppressed(t) | t[est].isna().to_numpy()
    reasons = t["suppression_reason"] if "suppression_reason" in t.columns else pd.Series([""] * len(t))
    out = pd.DataFrame(
        {
            "label": list(label),
            "series": list(series),
            "est": t[est].to_numpy(dtype=float, na_value=np.nan),
            "lo": t[lo].to_numpy(dtype=float, na_value=np.nan) if lo in t.columns else np.nan,
            "hi": t[hi].to_numpy(dtype=float, na_value=np.nan) if hi in t.columns else np.nan,
            "supp": supp,
            "mark": [_mark(r) if s else "not available" for r, s in zip(reasons, _suppressed(t))],
        }
    )
    out["slot"] = pd.factorize(out["label"])[0]
    return out


def gap_chart(gaps: pd.DataFrame, *, resource: str, reference: str | None = None) -> Figure:
    """One resource's gaps: each group's difference from all other students (or its reference), per subject,
    with its 95% interval; suppressed groups shown as text. Labels from :mod:`opportunity_research.study.labels`.

    ``reference`` says whom the groups are compared with, in words (default: "all other students" when every
    row's ``reference`` is all others, else "the reference group"); e.g. ``DistrictAnalysis.reference_label()``.

    Examples
    --------
    >>> import pandas as pd
    >>> gaps = pd.DataFrame({"measure": "engaged", "subject": ["ela", "math"], "group": "low_income", "level": 1,
    ...                      "n": [300, 290], "estimate": [0.5, 0.52], "reference": "all other students",
    ...                      "reference_n": [500, 510], "reference_estimate": [0.6, 0.55], "difference": [-0.1, -0.03],
    ...                      "ci_lower": [-0.15, -0.08], "ci_upper": [-0.05, 0.02], "suppressed": False})
    >>> fig = gap_chart(gaps, resource="engaged")
    >>> print(fig.alt_text)
    Deep engagement: difference from all other students, by student group and subject, in percentage points with 95% intervals. Low-income students, ELA: −10.0 (95% interval −15.0 to −5.0; n = 300). Low-income students, Math: −3.0 (95% interval −8.0 to +2.0; n = 290).
    """
    from ..study import labels

    _check_tidy(gaps, "gap_chart", ["measure", "group", "level", "difference"])
    t = gaps[gaps["measure"] == resource].reset_index(drop=True)
    if not len(t):
        raise ValueError(f"gap_chart: no rows for resource {resource!r}")
    subj = [labels.subject(s) for s in t["subject"]] if "subject" in t.columns else [""] * len(t)
    rows = _rows_frame(
        t, label=[labels.level(g, lv) for g, lv in zip(t["group"], t["level"])], series=subj, est="difference"
    )
    order = list(dict.fromkeys(subj))
    if reference is None:
        refs = set(t["reference"].astype(str)) if "reference" in t.columns else {ALL_OTHERS}
        reference = labels.ALL_OTHERS_LABEL if refs <= {ALL_OTHERS, "nan"} else "the reference group"
    title = f"{labels.measure(resource)}: difference from {reference}"
    with style():
        fig = Figure(
            figsize=(7.5, 1.2 + 0.21 * rows["slot"].nunique() * max(1.5, len(order))), layout="constrained"
        )
        ax = fig.add_subplot()
        _dodged(ax, rows, series_order=order, percent=True, points=True)
        ax.axvline(0, color="black", linewidth=1.0, linestyle="--", zorder=1)
        ax.set_xlabel("Difference in percentage points (95% interval); left of the dashed line = less access")
        ax.set_title(textwrap.fill(title, 80))
    from ..study.labels import points as fmt_points

    fig.alt_text = (
        f"{title}, by student group and subject, in percentage points with 95% intervals. "
        + _alt_rows(rows, fmt=fmt_points, counts=t["n"].tolist() if "n" in t.columns else None)
    )
    return fig


def growth_chart(
    growth: pd.DataFrame, *, model: str = "all_four", effect: str = "access", months: bool = False
) -> Figure:
    """Growth-model effects of access per resource (one model), per subject, with 95% intervals.

    ``months=True`` plots months of learning (an approximation) instead of standard deviations. Effects of
    models that could not be verified are shown as text, not as points.

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"subject": "ela", "model": "all_four", "effect": "access",
    ...                   "resource": ["grade_appropriate", "engaged"], "estimate": [0.3, 0.1], "ci_lower": [0.1, -0.2],
    ...                   "ci_upper": [0.5, 0.4], "n": 900, "converged": True})
    >>> fig = growth_chart(g)
    >>> print(fig.alt_text)
    What access is worth: full vs no access, all four resources together model, in standard deviations of the spring score, by resource and subject. Grade-appropriate assignments, ELA: +0.30 SD (95% interval +0.10 SD to +0.50 SD; n = 900). Deep engagement, ELA: +0.10 SD (95% interval -0.20 SD to +0.40 SD; n = 900).
    """
    from ..study import labels

    _check_tidy(growth, "growth_chart", ["model", "effect", "resource", "estimate"])
    t = growth[(growth["model"] == model) & (growth["effect"] == effect)].reset_index(drop=True)
    if not len(t):
        raise ValueError(f"growth_chart: no {effect!r} effects of model {model!r}")
    est, lo, hi = (
        ("months", "months_ci_lower", "months_ci_upper") if months else ("estimate", "ci_lower", "ci_upper")
    )
    t = t.copy()
    bad = ~t["converged"].astype(bool) if "converged" in t.columns else pd.Series(False, index=t.index)
    t["suppressed"] = bad
    t["suppression_reason"] = np.where(bad, "model not verified", "")
    subj = [labels.subject(s) for s in t["subject"]]
    rows = _rows_frame(
        t, label=[labels.measure(r) for r in t["resource"]], series=subj, est=est, lo=lo, hi=hi
    )
    rows.loc[rows["supp"] & bad.to_numpy(), "mark"] = "model not verified"
    unit = "months of learning (approximation)" if months else "standard deviations of the spring score"
    title = (
        "What access is worth: full vs no access"
        if effect == "access"
        else f"What access is worth: {labels.measure(effect).lower()}, full vs no access"
    )
    with style():
        fig = Figure(
            figsize=(7.5, 1.5 + 0.42 * rows["slot"].nunique() * max(1, len(set(subj)) * 0.7)),
            layout="constrained",
        )
        ax = fig.add_subplot()
        _dodged(ax, rows, series_order=list(dict.fromkeys(subj)), percent=False, points=False)
        ax.axvline(0, color="black", linewidth=1.0, linestyle="--", zorder=1)
        ax.set_xlabel(f"Effect in {unit}, full vs no access (95% interval)")
        ax.set_title(title)

    def fmt(x):
        return f"{x:+.1f} months" if months else f"{x:+.2f} SD"

    fig.alt_text = (
        f"{title}, {labels.measure(model).lower()} model, in {unit}, by resource and subject. "
        + _alt_rows(rows, fmt=fmt, counts=t["n"].tolist() if "n" in t.columns else None)
    )
    return fig


def trend_chart(
    data: pd.DataFrame,
    *,
    x: str = "school_year",
    series: str = "measure",
    title: str,
    ylabel: str = "Share",
    percent: bool = True,
) -> Figure:
    """Values over school years, one line per series, with 95% intervals (needs two or more years).

    ``data``: tidy rows with ``x``, ``series``, ``estimate``, ``ci_lower``, ``ci_upper`` (and
    ``suppressed``); suppressed or missing values are gaps in the line.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_year": [2015, 2016], "measure": "belonging", "estimate": [0.2, 0.25],
    ...                   "ci_lower": [0.15, 0.2], "ci_upper": [0.25, 0.3], "suppressed": False})
    >>> fig = trend_chart(t, title="Favorable")
    >>> print(fig.alt_text)
    Favorable. Line chart over school years. Belonging, 2015-16: 20% (95% interval 15% to 25%). Belonging, 2016-17: 25% (95% interval 20% to 30%).
    """
    from ..study import labels

    _check_tidy(data, "trend_chart", [x, series, "estimate"])
    t = data.sort_values([series, x]).reset_index(drop=True)
    years = sorted(t[x].dropna().astype(int).unique())
    if len(years) < 2:
        raise ValueError("trend_chart: a trend needs two or more school years")
    supp = _suppressed(t) | t["estimate"].isna().to_numpy()
    names = list(dict.fromkeys(t[series]))
    with style():
        fig = Figure(figsize=(7.5, 3.8), layout="constrained")
        ax = fig.add_subplot()
        ax.grid(axis="y", visible=True)
        for j, s in enumerate(names):
            part = t[(t[series] == s).to_numpy() & ~supp]
            if not len(part):
                continue
            xs = part[x].astype(int).to_numpy() + (j - (len(names) - 1) / 2) * 0.04
            est = part["estimate"].to_numpy(dtype=float)
            lo = part["ci_lower"].to_numpy(dtype=float) if "ci_lower" in part else est
            hi = part["ci_upper"].to_numpy(dtype=float) if "ci_upper" in part else est
            ax.errorbar(
                xs,
                est,
                yerr=[est - lo, hi - est],
                color=PALETTE[j % len(PALETTE)],
                marker=MARKERS[j % len(MARKERS)],
                markeredgecolor="black",
                markeredgewidth=0.6,
                capsize=3,
                linewidth=1.4,
                label=labels.measure(s),
            )
        ax.set_xticks(years, [labels.school_year(y) for y in years])
        ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
        ax.set_ylabel(ylabel)
        if percent:
            _percent_axis(ax, "y")
        ax.set_title(title)
        if len(names) > 1:
            fig.legend(loc="outside lower center", ncol=min(len(names), 3))
    fmt = (lambda v: labels.percent(v)) if percent else (lambda v: f"{v:.2f}")
    parts = []
    for r in t.itertuples():
        name = f"{labels.measure(getattr(r, series))}, {labels.school_year(getattr(r, x))}"
        if bool(getattr(r, "suppressed", False)) or pd.isna(r.estimate):
            parts.append(f"{name}: not shown.")
        else:
            ci = (
                f" (95% interval {fmt(r.ci_lower)} to {fmt(r.ci_upper)})"
                if "ci_lower" in t.columns and not pd.isna(r.ci_lower)
                else ""
            )
            parts.append(f"{name}: {fmt(r.estimate)}{ci}.")
    fig.alt_text = f"{title}. Line chart over school years. " + " ".join(parts)
    return fig


def study_chart(rates: pd.DataFrame, demands: pd.DataFrame, study: Mapping[str, float]) -> Figure:
    """The district's shares (point and 95% interval) beside the study's published figures (open diamonds).

    A NaN study figure (a share this report scored with another cut rule, see
    :func:`opportunity_research.report.settings.comparable_study`) shows the district's point without a diamond.

    Examples
    --------
    >>> import pandas as pd
    >>> rates = pd.DataFrame({"resource": ["grade_appropriate"], "label": ["Grade-appropriate assignments"],
    ...                       "subject": "all", "estimate": [0.3], "ci_lower": [0.25], "ci_upper": [0.35], "n": [800]})
    >>> demands = pd.DataFrame({"measure": ["met_demands", "met_grade_level"], "estimate": [0.7, 0.2],
    ...                         "ci_lower": [0.65, 0.15], "ci_upper": [0.75, 0.25], "n": [500, 500]})
    >>> fig = study_chart(rates, demands, {"grade_appropriate": 0.26, "met_demands": 0.71, "met_grade_level": 0.17})
    >>> print(fig.alt_text)
    This district beside the Opportunity Myth study: the district's share with a 95% interval, and the study's published figure. Grade-appropriate assignments: district 30% (95% interval 25% to 35%), study 26%. Met the demands of the assignment: district 70% (95% interval 65% to 75%), study 71%. Showed mastery of grade-level standards: district 20% (95% interval 15% to 25%), study 17%.
    """
    from ..study import labels

    r = rates[rates["subject"] == "all"] if "subject" in rates.columns else rates
    t = pd.concat(
        [
            r.rename(columns={"resource": "code"})[["code", "estimate", "ci_lower", "ci_upper"]],
            demands.rename(columns={"measure": "code"})[["code", "estimate", "ci_lower", "ci_upper"]],
        ],
        ignore_index=True,
    )
    t = t[t["code"].isin(list(study))].reset_index(drop=True)
    rows = _rows_frame(t, label=[labels.measure(c) for c in t["code"]], series=["This district"] * len(t))
    title = "This district beside the Opportunity Myth study"
    with style():
        fig = Figure(figsize=(7.5, 1.4 + 0.42 * len(t)), layout="constrained")
        ax = fig.add_subplot()
        _dodged(ax, rows, series_order=["This district"], percent=True, points=False)
        ax.plot(
            [study[c] for c in t["code"]],
            rows["slot"].to_numpy(dtype=float),
            linestyle="none",
            marker="D",
            markerfacecolor="white",
            markeredgecolor="black",
            markersize=7,
            zorder=4,
            label="Study (2018)",
        )
        ax.plot(
            [],
            [],
            linestyle="none",
            marker=MARKERS[0],
            color=PALETTE[0],
            markeredgecolor="black",
            label="This district (95% interval)",
        )
        handles, labs = ax.get_legend_handles_labels()
        keep = [i for i, lab in enumerate(labs) if lab != "This district"]
        ax.legend(
            [handles[i] for i in keep], [labs[i] for i in keep], loc="lower right", fontsize=8.5, frameon=True
        )
        ax.set_xlim(0, 1)
        ax.set_xlabel("Share")
        ax.set_title(title)
    from ..study.labels import percent as fmt_pct

    fig.alt_text = (
        f"{title}: the district's share with a 95% interval, and the study's published figure. "
        + " ".join(
            f"{labels.measure(c)}: district {fmt_pct(e)} (95% interval {fmt_pct(lo)} to "
            f"{fmt_pct(hi)}), "
            + (
                f"study {fmt_pct(study[c])}."
                if pd.notna(study[c])
                else "no comparable study figure (this report changed the rule)."
            )
            for c, e, lo, hi in zip(t["code"], t["estimate"], t["ci_lower"], t["ci_upper"])
        )
    )
    return fig
