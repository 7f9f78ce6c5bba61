"""Report figures in one consistent, grayscale-readable style, drawn from tidy tables.

Every function takes a tidy summary table (never student rows: a table with a student or teacher
identifier column is refused) and returns a matplotlib ``Figure`` whose ``alt_text`` attribute
describes it with its numbers, ready for :func:`opportunity_research.report.reporting.figure_output` or
:func:`save_figure`.

Style: the Okabe-Ito colour-blind-safe palette, and every series also told apart by a marker shape
(points) or a hatch pattern (bars), so figures read in grayscale and without colour vision. Suppressed
rows are never drawn as a value: they show the words "suppressed (...)" where the value would be.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import pandas as pd
>>> t = pd.DataFrame({"group": "low_income", "level": [0, 1], "n": [120, 80], "estimate": [0.31, 0.22],
...                   "reference": "all other students", "reference_n": [80, 120],
...                   "reference_estimate": [0.22, 0.31], "difference": [0.09, -0.09],
...                   "ci_lower": [0.02, -0.16], "ci_upper": [0.16, -0.02], "kind": "continuous",
...                   "outcome": "grade_appropriate", "suppressed": False, "suppression_reason": ""})
>>> fig = gap_plot(t)
>>> print(fig.alt_text)  # doctest: +NORMALIZE_WHITESPACE
Differences in grade-appropriate assignments between each group and all other students, with 95% confidence
intervals (difference in percentage points). Students not from low-income families: +9.0 (95% CI +2.0 to +16.0;
n = 120). Low-income students: -9.0 (95% CI -16.0 to -2.0; n = 80).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..study import labels as registry
from .charts import gap_chart, growth_chart, study_chart, trend_chart
from .figstyle import GREY, HATCHES, MARKERS, PALETTE, STYLE, apply_style, save_figure, style
from .plot_format import check_tidy as _check_tidy
from .plot_format import level_label, tick_text
from .plot_format import percent_axis as _percent_axis
from .plot_format import suppressed_rows as _suppressed
from .plot_format import suppression_mark as _mark

__all__ = [
    "HATCHES",
    "MARKERS",
    "PALETTE",
    "STYLE",
    "apply_style",
    "gap_chart",
    "gap_plot",
    "growth_chart",
    "interval_plot",
    "level_label",
    "resource_bars",
    "save_figure",
    "study_chart",
    "style",
    "tick_text",
    "trend_chart",
]

# ---------------------------------------------------------------------------------------------
# Formatting helpers


def _num(v: float, *, percent: bool, signed: bool = False) -> str:
    # Alt text is read aloud: a missing number is said in words (registry.MISSING_SPOKEN); ASCII hyphen as minus.
    spoken = {"missing": registry.MISSING_SPOKEN, "minus": "-"}
    if percent:
        return registry.points(v, 1, **spoken) if signed else registry.percent(v, 1, **spoken)
    return registry.number(v, 2, signed=signed, **spoken)


def _count(v) -> str:
    return (
        f"n {registry.MISSING_SPOKEN}"
        if registry.count(v) == registry.MISSING
        else f"n = {registry.count(v)}"
    )


# ---------------------------------------------------------------------------------------------
# Dot-and-interval plots


def _draw_intervals(ax, rows: pd.DataFrame, *, percent: bool, reference_line) -> None:
    """Draw rows (columns y, est, lo, hi, series, supp, mark) on ``ax``; suppressed rows as text only."""
    series = list(dict.fromkeys(rows["series"]))
    shown = rows[~rows["supp"]]
    for i, s in enumerate(series):
        part = shown[shown["series"] == s]
        if not len(part):
            continue
        est = part["est"].to_numpy(dtype=float)
        lo, hi = part["lo"].to_numpy(dtype=float), part["hi"].to_numpy(dtype=float)
        has = ~(np.isnan(lo) | np.isnan(hi))
        if has.any():
            ax.errorbar(
                est[has],
                part["y"].to_numpy()[has],
                xerr=[est[has] - lo[has], hi[has] - est[has]],
                fmt="none",
                ecolor=PALETTE[i % len(PALETTE)],
                elinewidth=1.4,
                capsize=3,
                zorder=2,
            )
        ax.plot(
            est,
            part["y"],
            linestyle="none",
            marker=MARKERS[i % len(MARKERS)],
            color=PALETTE[i % len(PALETTE)],
            markeredgecolor="black",
            markeredgewidth=0.6,
            markersize=7,
            zorder=3,
            label=str(s),
        )
    if reference_line is not None:
        ax.axvline(reference_line, color="black", linewidth=1.0, linestyle="--", zorder=1)
    trans = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for _, r in rows[rows["supp"]].iterrows():
        ax.text(
            0.01,
            r["y"],
            r["mark"],
            transform=trans,
            va="center",
            ha="left",
            fontsize=8.5,
            fontstyle="italic",
            color=GREY,
            zorder=4,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
    ax.set_yticks(rows["y"].to_numpy(), rows["label"].tolist())
    ax.set_ylim(rows["y"].max() + 0.7, rows["y"].min() - 0.7)
    ax.tick_params(axis="y", length=0)
    if percent:
        _percent_axis(ax, "x", points=reference_line == 0)
    if len(series) > 1:
        ax.figure.legend(
            *ax.get_legend_handles_labels(), loc="outside lower center", ncol=min(len(series), 4)
        )


def _figure(n_rows: int, width: float = 7.5) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, 1.4 + 0.32 * max(n_rows, 2)), layout="constrained")
    return fig, fig.add_subplot()


def interval_plot(
    data: pd.DataFrame,
    *,
    estimate: str = "estimate",
    lower: str | None = "ci_lower",
    upper: str | None = "ci_upper",
    label: str = "label",
    hue: str | None = None,
    n: str | None = "n",
    reference_line: float | None = None,
    percent: bool = False,
    xlabel: str | None = None,
    title: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Dot-and-interval plot: one row per table row, a point at ``estimate`` and a line from ``lower`` to
    ``upper``; ``hue`` rows get their own colour and marker. Suppressed rows show text, not a point.

    Parameters
    ----------
    data
        Tidy table, one row per plotted row (in the order shown, top to bottom).
    estimate, lower, upper, label, hue, n
        Columns of the point, the interval ends (``None``: no interval), the row label, an optional series
        and the count quoted in the alt text (``None``: not quoted).
    reference_line
        Draw a dashed vertical line here (e.g. 0 for differences).
    percent
        Values are shares: axis and alt text in percent (percentage points with ``reference_line=0``).
    xlabel, title, confidence
        Axis label, title and the interval level named in the alt text.

    Returns
    -------
    matplotlib.figure.Figure
        With ``alt_text`` set.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": ["ELA", "Math"], "estimate": [0.4, 0.5], "ci_lower": [0.35, 0.45],
    ...                    "ci_upper": [0.45, 0.55], "n": [120, 130]})
    >>> fig = interval_plot(df, percent=True, title="On grade level")
    >>> print(fig.alt_text)
    On grade level. ELA: 40.0% (95% CI 35.0% to 45.0%; n = 120). Math: 50.0% (95% CI 45.0% to 55.0%; n = 130).
    """
    _check_tidy(data, "interval_plot", [estimate, lower, upper, label, hue])
    rows = _interval_rows(data, estimate=estimate, lower=lower, upper=upper, label=label, hue=hue)
    with style():
        fig, ax = _figure(len(rows))
        _draw_intervals(ax, rows, percent=percent, reference_line=reference_line)
        if xlabel:
            ax.set_xlabel(textwrap.fill(xlabel, 70))
        if title:
            ax.set_title(title)
    counts = data[n].tolist() if n and n in data.columns else None
    parts = _interval_alt(
        rows, counts, percent=percent, signed=reference_line == 0, confidence=confidence, hue=bool(hue)
    )
    head = title or "Estimates by row"
    fig.alt_text = f"{head}{'' if head.endswith('.') else '.'} " + " ".join(parts)
    return fig


def _interval_alt(rows, counts, *, percent, signed, confidence, hue) -> list[str]:
    parts = []
    for i, (_, r) in enumerate(rows.iterrows()):
        name = f"{r['series']}, {r['label']}" if hue else r["label"]
        if r["supp"]:
            parts.append(f"{name}: {r['mark']}.")
            continue
        extra = []
        if not (np.isnan(r["lo"]) or np.isnan(r["hi"])):
            extra.append(
                f"{confidence:.0%} CI {_num(r['lo'], percent=percent, signed=signed)} to "
                f"{_num(r['hi'], percent=percent, signed=signed)}"
            )
        if counts is not None:
            extra.append(_count(counts[i]))
        parts.append(
            f"{name}: {_num(r['est'], percent=percent, signed=signed)}"
            + (f" ({'; '.join(extra)})" if extra else "")
            + "."
        )
    return parts


def _interval_rows(data, *, estimate, lower, upper, label, hue) -> pd.DataFrame:
    supp = _suppressed(data)
    rows = pd.DataFrame(
        {
            "y": np.arange(len(data), dtype=float),
            "est": data[estimate].to_numpy(dtype=float, na_value=np.nan),
            "lo": data[lower].to_numpy(dtype=float, na_value=np.nan) if lower else np.nan,
            "hi": data[upper].to_numpy(dtype=float, na_value=np.nan) if upper else np.nan,
            "series": data[hue].astype(str).to_numpy() if hue else "",
            "supp": supp | data[estimate].isna().to_numpy(),
            "mark": [
                _mark(r)
                for r in (
                    data["suppression_reason"] if "suppression_reason" in data.columns else [""] * len(data)
                )
            ],
            "label": data[label].astype(str).to_numpy(),
        }
    )
    rows.loc[~supp & rows["supp"], "mark"] = registry.MISSING_SPOKEN
    return rows


def gap_plot(
    table: pd.DataFrame,
    *,
    value: str = "difference",
    labels: Mapping | None = None,
    title: str | None = None,
    percent: bool | None = None,
    xlabel: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Forest plot of a gap table: each level's difference from its reference with its interval.

    One row per level (grouped by ``group`` variable, each variable with its own colour and marker), a
    dashed zero line, and for suppressed rows the text "suppressed (n < 10)" (or "(complementary)")
    instead of a point.

    Parameters
    ----------
    table
        A :func:`opportunity_research.stats.gaps.gap_table` (columns group, level, n, reference, ``value``,
        ci_lower, ci_upper, suppressed, suppression_reason; ``kind``/``outcome`` used if present).
    value
        Column to plot (``difference``; or e.g. ``hedges_g`` without an interval).
    labels
        Level labels, by ``(group, level)`` or by level (default: the contract's names).
    title, xlabel
        Title (default: none) and axis label (default from the outcome and the reference).
    percent
        Show differences in percentage points (default: when the outcome is binary or every estimate is
        a share in [0, 1]).
    confidence
        Interval level named in the alt text.

    Returns
    -------
    matplotlib.figure.Figure
        With ``alt_text`` listing every row's difference, interval and n, and the suppressed rows.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"group": "low_income", "level": [1], "n": [80], "reference": "all other students",
    ...                   "reference_n": [120], "estimate": [0.22], "reference_estimate": [0.31], "difference": [-0.09],
    ...                   "ci_lower": [-0.15], "ci_upper": [-0.03], "suppressed": False, "suppression_reason": ""})
    >>> fig = gap_plot(t)
    >>> print(fig.alt_text)
    Differences in the outcome between each group and all other students, with 95% confidence intervals (difference in percentage points). Low-income students: -9.0 (95% CI -15.0 to -3.0; n = 80).
    """
    _check_tidy(table, "gap_plot", ["group", "level", value])
    t = table.reset_index(drop=True)
    if t.duplicated(["group", "level"]).any():
        raise ValueError("gap_plot: a group level appears twice; plot one outcome (and subject) at a time")
    if percent is None:
        est = pd.concat(
            [t.get("estimate", pd.Series(dtype=float)), t.get("reference_estimate", pd.Series(dtype=float))]
        ).dropna()
        percent = (
            bool(
                ("kind" in t.columns and t["kind"].eq("binary").all())
                or (len(est) and est.between(0, 1).all())
            )
            and value == "difference"
        )
    has_ci = value == "difference" and {"ci_lower", "ci_upper"} <= set(t.columns)
    disp = pd.DataFrame(
        {
            "label": [level_label(g, lv, labels) for g, lv in zip(t["group"], t["level"])],
            "series": [registry.variable(str(g)) for g in t["group"]],
            "value": t[value].to_numpy(dtype=float, na_value=np.nan),
            "ci_lower": t["ci_lower"].to_numpy(dtype=float, na_value=np.nan) if has_ci else np.nan,
            "ci_upper": t["ci_upper"].to_numpy(dtype=float, na_value=np.nan) if has_ci else np.nan,
            "n": t["n"] if "n" in t.columns else None,
            "suppressed": _suppressed(t),
            "suppression_reason": t["suppression_reason"] if "suppression_reason" in t.columns else "",
        }
    )
    outcome = (
        registry.measure(str(t["outcome"].iloc[0])).lower()
        if "outcome" in t.columns and len(t)
        else "the outcome"
    )
    refs = list(dict.fromkeys(t["reference"].astype(str))) if "reference" in t.columns else []
    ref_text = refs[0] if len(refs) == 1 else "its reference"
    what = "Differences" if value == "difference" else value.replace("_", " ").capitalize()
    if xlabel is None:
        unit = " (percentage points)" if percent else ""
        xlabel = f"{what} in {outcome} vs {ref_text}{unit}"
    hue = "series" if disp["series"].nunique() > 1 else None
    rows = _interval_rows(disp, estimate="value", lower="ci_lower", upper="ci_upper", label="label", hue=hue)
    with style():
        fig, ax = _figure(len(rows))
        _draw_intervals(ax, rows, percent=percent, reference_line=0.0)
        ax.set_xlabel(textwrap.fill(xlabel, 70))
        if title:
            ax.set_title(title)
    parts = _interval_alt(
        rows,
        disp["n"].tolist() if "n" in t.columns else None,
        percent=percent,
        signed=True,
        confidence=confidence,
        hue=False,
    )  # level labels already name the variable
    head = (
        f"{what} in {outcome} between each group and {ref_text}"
        + (f", with {confidence:.0%} confidence intervals" if has_ci else "")
        + (" (difference in percentage points)" if percent else "")
        + "."
    )
    fig.alt_text = (f"{title}: " if title else "") + head + " " + " ".join(parts)
    return fig


# ---------------------------------------------------------------------------------------------
# Bars


def resource_bars(
    data: pd.DataFrame,
    *,
    x: str = "label",
    y: str = "estimate",
    hue: str | None = None,
    lower: str | None = "ci_lower",
    upper: str | None = "ci_upper",
    n: str | None = "n",
    labels: Mapping | None = None,
    percent: bool = True,
    title: str | None = None,
    ylabel: str = "Share of class time",
    confidence: float = 0.95,
) -> Figure:
    """Bars of the share of class time with each resource, optionally side by side by group, with intervals.

    Parameters
    ----------
    data
        Tidy table: one row per resource (``x``) and, with ``hue``, per group level; ``y`` the share;
        ``lower``/``upper`` its interval (optional); ``suppressed``/``suppression_reason`` honoured.
    x, y, hue, lower, upper, n
        Columns (``hue`` levels get a colour *and* a hatch; intervals are black error bars).
    labels
        Display names for ``hue`` levels (default: as in :func:`gap_plot`, if the table has a ``group``
        column, else the values).
    percent, title, ylabel, confidence
        Percent axis, title, axis label, interval level named in the alt text.

    Returns
    -------
    matplotlib.figure.Figure
        With ``alt_text`` listing each bar's value, interval and n; suppressed bars are drawn as text.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"label": ["Grade-appropriate assignments", "Strong instruction"], "estimate": [0.26, 0.16],
    ...                    "ci_lower": [0.21, 0.12], "ci_upper": [0.31, 0.2], "n": [800, 190]})
    >>> fig = resource_bars(df, title="Share of class time")
    >>> print(fig.alt_text)
    Share of class time. Grade-appropriate assignments: 26.0% (95% CI 21.0% to 31.0%; n = 800). Strong instruction: 16.0% (95% CI 12.0% to 20.0%; n = 190).
    """
    _check_tidy(data, "resource_bars", [x, y, hue, lower, upper])
    t = data.reset_index(drop=True)
    if t.duplicated([c for c in (x, hue, "group" if hue else None) if c and c in t.columns]).any():
        raise ValueError(
            f"resource_bars: several rows for one bar ({x}{', ' + hue if hue else ''}); filter first"
        )
    supp = _suppressed(t) | t[y].isna().to_numpy()
    cats = list(dict.fromkeys(t[x].astype(str)))
    if hue:
        if "group" in t.columns:
            hue_lab = [level_label(g, h, labels) for g, h in zip(t["group"], t[hue])]
        else:
            hue_lab = [str((labels or {}).get(h, h)) for h in t[hue]]
    else:
        hue_lab = [""] * len(t)
    series = list(dict.fromkeys(hue_lab))
    width = 0.8 / len(series)
    reasons = t["suppression_reason"] if "suppression_reason" in t.columns else [""] * len(t)
    with style():
        # at most the width of the other report figures, so its text prints at the same size (not shrunk to fit)
        fig = Figure(
            figsize=(
                min(7.6, max(6.0, 1.6 * len(cats) * max(1.0, len(series) / 2)) + (1.8 if hue else 0)),
                4.4 + (0.8 if len(series) > 3 else 0),
            ),
            layout="constrained",
        )
        ax = fig.add_subplot()
        ax.grid(axis="x", visible=False)
        ax.grid(axis="y", visible=True)
        top = np.nanmax(
            np.r_[
                t[y].to_numpy(dtype=float, na_value=np.nan)[~supp],
                t[upper].to_numpy(dtype=float, na_value=np.nan)[~supp] if upper else [],
                0.0,
            ]
        )
        top = top if top > 0 else 1.0
        for i, r in t.iterrows():
            s = series.index(hue_lab[i])
            pos = cats.index(str(r[x])) - 0.4 + width * (s + 0.5)
            if supp[i]:
                ax.text(
                    pos,
                    0.02 * top,
                    _mark(reasons[i]),
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    fontstyle="italic",
                    color=GREY,
                )
                continue
            ax.bar(
                pos,
                r[y],
                width=width * 0.92,
                color=PALETTE[s % len(PALETTE)],
                hatch=HATCHES[s % len(HATCHES)],
                edgecolor="black",
                linewidth=0.6,
                zorder=2,
            )
            if lower and upper and not (pd.isna(r[lower]) or pd.isna(r[upper])):
                ax.errorbar(
                    pos,
                    r[y],
                    yerr=[[r[y] - r[lower]], [r[upper] - r[y]]],
                    fmt="none",
                    ecolor="black",
                    elinewidth=1.1,
                    capsize=3,
                    zorder=3,
                )
        ax.set_xticks(range(len(cats)), [textwrap.fill(c, 16) for c in cats])
        ax.set_xlim(-0.6, len(cats) - 0.4)
        ax.set_ylim(0, top * 1.12)
        ax.set_ylabel(ylabel)
        if percent:
            _percent_axis(ax, "y")
        if title:
            ax.set_title(title)
        if hue:
            handles = [
                Patch(
                    facecolor=PALETTE[s % len(PALETTE)],
                    hatch=HATCHES[s % len(HATCHES)],
                    edgecolor="black",
                    label=lab,
                )
                for s, lab in enumerate(series)
            ]
            fig.legend(handles=handles, loc="outside right upper")
    parts = []
    for i, r in t.iterrows():
        name = f"{r[x]}" + (f", {hue_lab[i]}" if hue else "")
        if supp[i]:
            parts.append(f"{name}: {_mark(reasons[i])}.")
            continue
        extra = []
        if lower and upper and not (pd.isna(r[lower]) or pd.isna(r[upper])):
            extra.append(
                f"{confidence:.0%} CI {_num(r[lower], percent=percent)} to {_num(r[upper], percent=percent)}"
            )
        if n and n in t.columns:
            extra.append(_count(r[n]))
        parts.append(
            f"{name}: {_num(r[y], percent=percent)}" + (f" ({'; '.join(extra)})" if extra else "") + "."
        )
    head = title or f"Bar chart: {ylabel.lower()} by {x}" + (f" and {hue}" if hue else "")
    fig.alt_text = f"{head}{'' if head.endswith('.') else '.'} " + " ".join(parts)
    return fig
