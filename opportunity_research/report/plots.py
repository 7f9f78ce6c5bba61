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

import math
import re
import textwrap
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..intake.contract import ALL_OTHERS
from ..study import labels as registry
from .figstyle import GREY, HATCHES, MARKERS, PALETTE, STYLE, apply_style, save_figure, style

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

_ID_COLUMN = re.compile(r"(^|_)(student|teacher)s?_?(id|ids|name|names)$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Formatting helpers


def _check_tidy(data: pd.DataFrame, where: str, required) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{where}: expected a DataFrame, got {type(data).__name__}")
    bad = [c for c in data.columns if _ID_COLUMN.search(str(c))]
    if bad:
        raise ValueError(
            f"{where}: figures take summary tables, not student rows (identifier column(s) {bad})"
        )
    missing = [c for c in required if c and c not in data.columns]
    if missing:
        raise KeyError(f"{where}: column(s) {missing} not in the table")


def _suppressed(data: pd.DataFrame) -> np.ndarray:
    if "suppressed" not in data.columns:
        return np.zeros(len(data), dtype=bool)
    return data["suppressed"].fillna(False).astype(bool).to_numpy()


def _mark(reason) -> str:
    reason = "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else str(reason)
    if not reason:
        return "suppressed"
    if reason.startswith("complementary"):
        return "suppressed (complementary)"
    return f"suppressed ({reason.split(' (')[0]})"


def _num(v: float, *, percent: bool, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "not available"
    x = 100 * float(v) if percent else float(v)
    fmt = "+.1f" if signed and percent else ".1f" if percent else "+.2f" if signed else ".2f"
    return f"{x:{fmt}}" + ("%" if percent and not signed else "")


def _count(v) -> str:
    return (
        "n not available"
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
        else f"n = {int(v):,}"
    )


def level_label(group, level, labels: Mapping | None = None) -> str:
    """Readable label of a group level: ``labels`` first (by ``(group, level)`` or ``level``), then the
    package's label registry (:func:`opportunity_research.study.labels.level`).

    Examples
    --------
    >>> level_label("low_income", 1), level_label("low_income", 1, {("low_income", 1): "LI"}), level_label("grade", 5)
    ('Low-income students', 'LI', 'Grade 5')
    """
    labels = labels or {}
    for key in ((group, level), (group, str(level)), level, str(level)):
        try:
            if key in labels:
                return str(labels[key])
        except TypeError:
            continue
    return registry.level(group, level)


def tick_text(value: float, *, points: bool = False) -> str:
    """The label of a tick at ``value`` (a share, 0.025 = 2.5%) on a percent or percentage-point axis.

    The label always equals the tick's value: as many decimals as the value needs (up to 2), never a rounded
    neighbour (a tick at 0.025 reads "+2.5", not "+2").

    Examples
    --------
    >>> [tick_text(v, points=True) for v in (-0.075, -0.025, 0.0, 0.025, 0.1)]
    ['−7.5', '−2.5', '0', '+2.5', '+10']
    >>> tick_text(0.125), tick_text(0.5)
    ('12.5%', '50%')
    """
    x = 100 * float(value)
    digits = next((d for d in range(3) if abs(round(x, d) - x) < 1e-9 * max(1.0, abs(x))), 2)
    x = round(x, digits)
    if abs(x) < 10 ** -(digits + 1):
        return "0" if points else "0%"
    text = f"{abs(x):.{digits}f}"
    if points:
        return ("+" if x > 0 else "\u2212") + text
    return ("\u2212" if x < 0 else "") + text + "%"


def _percent_axis(ax, axis="x", *, points=False):
    a = ax.xaxis if axis == "x" else ax.yaxis
    # ticks on whole multiples of 1, 2 or 5 points where the range allows; labels equal the tick values
    a.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 5, 10]))
    a.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v, points=points)))


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
    rows.loc[~supp & rows["supp"], "mark"] = "not available"
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


# ---------------------------------------------------------------------------------------------
# Report charts: gaps per resource, growth effects, trends, the district beside the study


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
        reference = ALL_OTHERS if refs <= {ALL_OTHERS, "nan"} else "the reference group"
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
