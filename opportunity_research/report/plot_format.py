"""Formatting helpers shared by the report's figures (:mod:`opportunity_research.report.plots` and
:mod:`opportunity_research.report.charts`): the tidy-table check, suppressed rows and their marks, group labels
and percent ticks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..study import labels as registry

__all__ = ["check_tidy", "level_label", "percent_axis", "suppressed_rows", "suppression_mark", "tick_text"]

_ID_COLUMN = re.compile(r"(^|_)(student|teacher)s?_?(id|ids|name|names)$", re.IGNORECASE)


def check_tidy(data: pd.DataFrame, where: str, required) -> None:
    """Refuse what a figure must not draw: no DataFrame, student or teacher identifier columns, missing columns.

    Examples
    --------
    >>> import pandas as pd
    >>> check_tidy(pd.DataFrame({"group": [], "estimate": []}), "demo", ["group", "estimate", None])
    >>> check_tidy(pd.DataFrame({"student_id": [1]}), "demo", [])
    Traceback (most recent call last):
    ...
    ValueError: demo: figures take summary tables, not student rows (identifier column(s) ['student_id'])
    """
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


def suppressed_rows(data: pd.DataFrame) -> np.ndarray:
    """Which rows are suppressed (the ``suppressed`` column, missing read as not suppressed; none without it).

    Examples
    --------
    >>> import pandas as pd
    >>> suppressed_rows(pd.DataFrame({"suppressed": [True, None, False]})).tolist()
    [True, False, False]
    >>> suppressed_rows(pd.DataFrame({"estimate": [0.5]})).tolist()
    [False]
    """
    if "suppressed" not in data.columns:
        return np.zeros(len(data), dtype=bool)
    return data["suppressed"].fillna(False).astype(bool).to_numpy()


def suppression_mark(reason) -> str:
    """The words drawn where a suppressed value would be, from the row's ``suppression_reason``.

    Examples
    --------
    >>> suppression_mark(None), suppression_mark("n < 10 (minimum cell size)"), suppression_mark("complementary x")
    ('suppressed', 'suppressed (n < 10)', 'suppressed (complementary)')
    """
    reason = "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else str(reason)
    if not reason:
        return "suppressed"
    if reason.startswith("complementary"):
        return "suppressed (complementary)"
    return f"suppressed ({reason.split(' (')[0]})"


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


def percent_axis(ax, axis="x", *, points=False):
    """Put percent (or, with ``points``, percentage-point) ticks on an axis, labelled by :func:`tick_text`.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> ax.set_xlim(0, 0.3)
    (0.0, 0.3)
    >>> percent_axis(ax, "x")
    >>> ax.xaxis.get_major_formatter()(0.25, 0)
    '25%'
    """
    a = ax.xaxis if axis == "x" else ax.yaxis
    # ticks on whole multiples of 1, 2 or 5 points where the range allows; labels equal the tick values
    a.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 5, 10]))
    a.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v, points=points)))
