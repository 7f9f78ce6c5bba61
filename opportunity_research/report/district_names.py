"""District ids as readers see them: whether a district is a synthetic demonstration and its readable name.

Used by every page (report, scorecard, cross-district, summary); re-exported by
:mod:`opportunity_research.report.presentation`.
"""

from __future__ import annotations

__all__ = ["district_name", "is_demo"]


def is_demo(district_id: str) -> bool:
    """Whether a district is one of the synthetic demonstration districts (ids ``demo_*``, as ``synthesize`` writes).

    Examples
    --------
    >>> is_demo("demo_lakeside"), is_demo("north_valley_usd")
    (True, False)
    """
    return str(district_id).startswith("demo_")


def district_name(district_id: str) -> str:
    """A readable district name from its id (``"demo_lakeside"`` -> ``"Lakeside"``, ``"north_valley_usd"`` ->
    ``"North Valley USD"``).

    Examples
    --------
    >>> district_name("demo_lakeside"), district_name("north_valley_usd")
    ('Lakeside', 'North Valley USD')
    """
    words = str(district_id).removeprefix("demo_").replace("-", " ").replace("_", " ").split()
    return " ".join(
        w.upper() if w.lower() in ("usd", "isd", "cusd", "sd") else w[:1].upper() + w[1:] for w in words
    ) or str(district_id)
