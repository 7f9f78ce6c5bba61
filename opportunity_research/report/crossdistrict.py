"""Cross-district comparison tables, read from each district's ``findings.json`` (never raw data)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..study.measures import RESOURCE_LABELS

__all__ = ["CrossDistrict", "compare", "summary"]


@dataclass(frozen=True)
class CrossDistrict:
    """Side-by-side tables: ``resources``, ``gaps`` (largest shortfall per resource), ``growth``, ``goals``.

    Examples
    --------
    >>> f = {"resources": {"grade_appropriate": {"n": 100, "estimate": 0.3, "ci_lower": 0.2, "ci_upper": 0.4}},
    ...      "gaps": [], "growth": [], "goals": []}
    >>> t = compare({"demo_a": f, "demo_b": {**f, "resources": {"grade_appropriate": {"n": 300, "estimate": 0.2,
    ...                                                                          "ci_lower": 0.15, "ci_upper": 0.25}}}})
    >>> isinstance(t, CrossDistrict), len(t.resources), len(t.gaps)
    (True, 2, 0)
    """

    resources: pd.DataFrame
    gaps: pd.DataFrame
    growth: pd.DataFrame
    goals: pd.DataFrame


def compare(findings: dict[str, dict]) -> CrossDistrict:
    """Build the comparison tables from ``{district_id: findings}`` (see :func:`reporting.read_findings`).

    The cut points of a district whose ``findings.json`` parameters changed them from TNTP's defaults are kept
    in ``resources.attrs["cuts"]`` (``{district_id: changed cuts}``), so the tables do not compare that
    district's shares with the study's as if they measured the same thing.

    Examples
    --------
    >>> f = {"resources": {"grade_appropriate": {"n": 100, "estimate": 0.3, "ci_lower": 0.2, "ci_upper": 0.4}},
    ...      "gaps": [], "growth": [], "goals": []}
    >>> t = compare({"demo_a": f, "demo_b": {**f, "resources": {"grade_appropriate": {"n": 300, "estimate": 0.2,
    ...                                                                          "ci_lower": 0.15, "ci_upper": 0.25}}}})
    >>> t.resources[["district_id", "label", "estimate"]].to_dict("list")
    {'district_id': ['demo_a', 'demo_b'], 'label': ['Grade-appropriate assignments', 'Grade-appropriate assignments'], 'estimate': [0.3, 0.2]}
    >>> compare({"demo_a": {**f, "parameters": {"cuts": {"grade_appropriate": 5}}}}).resources.attrs
    {'cuts': {'demo_a': {'grade_appropriate': 5}}}
    """
    from .settings import changed_cuts

    res, gaps, growth, goals = [], [], [], []
    for d, f in findings.items():
        for r, v in f["resources"].items():
            res.append({"district_id": d, "resource": r, "label": RESOURCE_LABELS.get(r, r), **v})
        g = pd.DataFrame(f["gaps"])
        if len(g):
            worst = g.sort_values("difference").groupby("measure", sort=False).head(1)
            gaps += [{"district_id": d, **row} for row in worst.to_dict("records")]
        growth += [{"district_id": d, **row} for row in f["growth"]]
        goals += [{"district_id": d, **row} for row in f["goals"]]
    res_df = pd.DataFrame(res)
    if len(res_df):
        res_df = res_df[["district_id", "label", "n", "estimate", "ci_lower", "ci_upper", "resource"]]
    changed = {d: changed_cuts((f.get("parameters") or {}).get("cuts")) for d, f in findings.items()}
    res_df.attrs["cuts"] = {d: c for d, c in changed.items() if c}
    gap_df = pd.DataFrame(gaps)
    if len(gap_df):
        gap_df = gap_df[
            ["district_id", "measure", "subject", "group", "level", "n", "difference", "ci_lower", "ci_upper"]
        ].sort_values(["measure", "district_id"])
    return CrossDistrict(res_df, gap_df, pd.DataFrame(growth), pd.DataFrame(goals))


def summary(t: CrossDistrict) -> dict:
    """Machine-readable findings of the cross-district report.

    Examples
    --------
    >>> f = {"resources": {"grade_appropriate": {"n": 100, "estimate": 0.3, "ci_lower": 0.2, "ci_upper": 0.4}},
    ...      "gaps": [], "growth": [], "goals": []}
    >>> t = compare({"demo_a": f, "demo_b": {**f, "resources": {"grade_appropriate": {"n": 300, "estimate": 0.2,
    ...                                                                          "ci_lower": 0.15, "ci_upper": 0.25}}}})
    >>> s = summary(t)
    >>> s["districts"], round(s["pooled_resource_shares"]["grade_appropriate"], 3)
    (2, 0.225)
    >>> print(s["headline"])
    2 districts compared; pooled share of grade-appropriate assignments 22%.
    """
    pooled = {}
    if len(t.resources):
        for r, part in t.resources.groupby("resource"):
            pooled[r] = float((part["estimate"] * part["n"]).sum() / part["n"].sum())
    n = t.resources["district_id"].nunique() if len(t.resources) else 0
    return {
        "districts": n,
        "pooled_resource_shares": pooled,
        "headline": f"{n} districts compared; pooled share of grade-appropriate assignments "
        f"{100 * pooled.get('grade_appropriate', float('nan')):.0f}%.",
    }
