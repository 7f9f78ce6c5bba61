"""The indicator format shared by every analysis that feeds the Opportunity Scorecard, and the "needs"
convention for missing data.

The indicator format
    Every analysis that feeds the scorecard (the resources and multiple measures in
    :mod:`~opportunity_research.study.measures`, belonging / consistency / coherence in
    :mod:`~opportunity_research.study.climate`, catch-up and growth in
    :mod:`~opportunity_research.study.trajectories`) returns, beside its detailed tables, one long table
    with the columns :data:`INDICATOR_COLUMNS`:

    ======================  ===================================================================
    ``measure``             one of :data:`opportunity_research.intake.contract.GOAL_MEASURES`
    ``school_id``           a school, or ``"all"`` for the district
    ``group``               ``"all"`` or ``"<variable>=<level>"`` (``"low_income=1"``,
                            ``"race_ethnicity=black"``), the same spelling as the goals file
    ``school_year``         the school year the value describes (int)
    ``n``                   students (or evidence rows) behind the estimate; ``<NA>`` when suppressed
    ``estimate``            the value (a share 0-1, or grade levels per year); NaN when suppressed
    ``ci_lower/ci_upper``   its 95% interval; NaN when suppressed or not estimable
    ``suppressed``          bool
    ``suppression_reason``  ``""`` unless suppressed (e.g. ``"n < 10"``, ``"complementary"``)
    ======================  ===================================================================

    :func:`validate_indicators` checks a table against the format.

Missing data: the "needs" convention
    When a district lacks the data an analysis needs (no climate survey, one year of
    assessments, no grade-equivalent scores), the analysis functions of ``climate``,
    ``trajectories`` and ``scorecard`` do not raise: they return an *empty* DataFrame with the
    documented columns and ``.attrs["needs"]``, a list of plain sentences naming what is missing
    (e.g. ``"climate_surveys.csv (belonging, consistency and coherence items) for ..."``).
    Results that could be computed carry ``.attrs["needs"] == []``. :func:`unavailable` makes
    such an empty result. (The same convention as
    :func:`opportunity_research.study.equity.multiple_measures_gaps`.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..intake.contract import GOAL_MEASURES

__all__ = [
    "INDICATOR_COLUMNS",
    "indicator_rows",
    "needs_of",
    "normalize_group",
    "unavailable",
    "validate_indicators",
]

#: Columns of the shared indicator table, in order.
INDICATOR_COLUMNS = (
    "measure",
    "school_id",
    "group",
    "school_year",
    "n",
    "estimate",
    "ci_lower",
    "ci_upper",
    "suppressed",
    "suppression_reason",
)
_GROUP = re.compile(r"^(all|[a-z][a-z0-9_]*=[^=\s][^=]*)$")


def unavailable(columns: Iterable[str], needs: str | Iterable[str]) -> pd.DataFrame:
    """An empty result with the documented ``columns`` and ``.attrs["needs"]`` (a list of sentences).

    Examples
    --------
    >>> t = unavailable(["n", "estimate"], "climate_surveys.csv for belonging")
    >>> len(t), list(t.columns), t.attrs["needs"]
    (0, ['n', 'estimate'], ['climate_surveys.csv for belonging'])
    """
    out = pd.DataFrame(columns=list(columns))
    out.attrs["needs"] = [needs] if isinstance(needs, str) else list(needs)
    return out


def needs_of(*results: pd.DataFrame) -> list[str]:
    """The ``attrs["needs"]`` sentences of several results, in order, without duplicates.

    Examples
    --------
    >>> a, b = unavailable(["n"], "climate_surveys.csv"), unavailable(["n"], ["attendance.csv", "climate_surveys.csv"])
    >>> needs_of(a, b)
    ['climate_surveys.csv', 'attendance.csv']
    """
    out: list[str] = []
    for r in results:
        for s in r.attrs.get("needs", []) if r is not None else []:
            if s not in out:
                out.append(s)
    return out


def normalize_group(value) -> str:
    """A group's canonical spelling: ``"all"`` or ``"<variable>=<level>"`` with whole-number levels without ``.0``.

    Examples
    --------
    >>> normalize_group(" low_income = 1.0 "), normalize_group("all"), normalize_group("race_ethnicity=black")
    ('low_income=1', 'all', 'race_ethnicity=black')
    """
    text = str(value).strip()
    if text == "all" or "=" not in text:
        return text
    var, _, level = text.partition("=")
    level = level.strip()
    if re.fullmatch(r"-?\d+\.0+", level):
        level = level.split(".")[0]
    return f"{var.strip()}={level}"


def validate_indicators(data: pd.DataFrame) -> pd.DataFrame:
    """Check a table against the indicator format and return a normalized copy.

    Columns beyond :data:`INDICATOR_COLUMNS` are kept. Group spellings are normalized
    (``"low_income=1.0"`` -> ``"low_income=1"``); ``n`` becomes ``Int64``, ``school_year`` ``int64``,
    ``suppressed`` ``bool``, ``suppression_reason`` text (``""`` when not suppressed).

    Raises
    ------
    ValueError
        Naming the column and the offending value: a missing column, a measure not in
        ``GOAL_MEASURES``, a malformed group, a missing school year, a suppressed row that still
        shows an estimate, or duplicate (measure, school_id, group, school_year) rows.

    Examples
    --------
    >>> import pandas as pd
    >>> ind = pd.DataFrame({"measure": ["catch_up_rate"], "school_id": ["all"], "group": ["low_income=1.0"],
    ...                     "school_year": [2016], "n": [40], "estimate": [0.3], "ci_lower": [0.2], "ci_upper": [0.45],
    ...                     "suppressed": [False], "suppression_reason": [None]})
    >>> validate_indicators(ind)[["group", "n", "suppression_reason"]].iloc[0].to_dict()
    {'group': 'low_income=1', 'n': 40, 'suppression_reason': ''}
    >>> try:
    ...     validate_indicators(ind.assign(measure="shoe_size"))
    ... except ValueError as e:
    ...     print(e)
    indicator table: column measure has 'shoe_size', not one of contract.GOAL_MEASURES
    """
    missing = [c for c in INDICATOR_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"indicator table: missing column(s) {', '.join(missing)}")
    out = data.copy()
    if len(out) == 0:
        return out.astype(
            {"n": "Int64", "estimate": float, "ci_lower": float, "ci_upper": float, "suppressed": bool}
        )
    bad = sorted(set(out["measure"].astype(str)) - set(GOAL_MEASURES))
    if bad:
        raise ValueError(f"indicator table: column measure has {bad[0]!r}, not one of contract.GOAL_MEASURES")
    out["group"] = out["group"].map(normalize_group).astype("str")
    badg = out.loc[~out["group"].str.fullmatch(_GROUP.pattern), "group"]
    if len(badg):
        raise ValueError(
            f"indicator table: column group has {badg.iloc[0]!r}; use 'all' or '<variable>=<level>'"
        )
    out["school_id"] = out["school_id"].astype("str")
    if out["school_year"].isna().any():
        raise ValueError("indicator table: column school_year has a missing value")
    out["school_year"] = out["school_year"].astype(np.int64)
    out["suppressed"] = out["suppressed"].fillna(False).astype(bool)
    for c in ("estimate", "ci_lower", "ci_upper"):
        out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
    out["n"] = pd.to_numeric(out["n"], errors="raise").astype("Int64")
    shown = out["suppressed"] & (
        out[["estimate", "ci_lower", "ci_upper"]].notna().any(axis=1) | out["n"].notna()
    )
    if shown.any():
        r = out[shown].iloc[0]
        raise ValueError(
            f"indicator table: suppressed row ({r['measure']}, {r['school_id']}, {r['group']}, "
            f"{r['school_year']}) still shows n or an estimate; blank them"
        )
    out["suppression_reason"] = (
        out["suppression_reason"].fillna("").astype("str").where(out["suppressed"], "")
    )
    key = ["measure", "school_id", "group", "school_year"]
    dup = out.duplicated(key)
    if dup.any():
        r = out[dup].iloc[0]
        raise ValueError(
            f"indicator table: duplicate row for ({r['measure']}, {r['school_id']}, {r['group']}, "
            f"{r['school_year']})"
        )
    return out


def indicator_rows(table: pd.DataFrame, *, measure: str, year: str = "school_year") -> pd.DataFrame:
    """Reshape a detailed table (``school_id``, ``group``, year, ``n``, estimate/CI, suppression) to indicators.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"school_id": ["all"], "group": ["all"], "year": [2016], "n": [40], "estimate": [0.3],
    ...                   "ci_lower": [0.2], "ci_upper": [0.45], "suppressed": [False], "suppression_reason": [""]})
    >>> indicator_rows(t, measure="catch_up_rate", year="year").iloc[0].to_dict()
    {'measure': 'catch_up_rate', 'school_id': 'all', 'group': 'all', 'school_year': 2016, 'n': 40, 'estimate': 0.3, 'ci_lower': 0.2, 'ci_upper': 0.45, 'suppressed': False, 'suppression_reason': ''}
    """
    out = table.rename(columns={year: "school_year"}).assign(measure=measure)
    return out[list(INDICATOR_COLUMNS)].reset_index(drop=True)
