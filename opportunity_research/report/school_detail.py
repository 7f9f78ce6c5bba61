"""How much per-school detail a page shows: every school up to a limit, then a bounded selection.

The rule (issue 21). A page table with one row per school (and measure, or subject and period) shows **every
school when the table has at most** :data:`~opportunity_research.config.PAGE_SCHOOLS` **schools** (20; the demo
districts have 2-7). Above that, within each comparison (a measure; a subject and period) it shows the
:data:`EACH_END` (5) schools with the lowest value, the school in the middle (the lower median) and the 5 with the
highest, each with its rank among the schools whose value is shown ("1 of 170": 1 is the lowest), after the
district's own row where the table has one. Schools whose value is hidden (‡, small numbers) are never ranked or
shown. A subtitle says how many schools the district has and what the table shows; a source note names (and
links) the published CSV table that has every school. So a page holds at most 11 schools per comparison whatever
the district's size: a district of 1,750 schools prints the pages of one of 20, instead of a table of every school
that no reader uses and that made the pages' HTML, their printing time and Chromium's memory grow with the
number of schools (at 100,000 students, 175 schools: 1.2 MB of the report's 2.6 MB, 1.3 MB scorecard).

Every value shown is a row of the published CSV, formatted as everywhere else; the CSV tables and
``findings.json`` keep every school, unchanged.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"measure": "engaged", "school_id": [f"S{i:02d}" for i in range(30)],
...                   "estimate": [i / 100 for i in range(30)]})
>>> shown, info = select_schools(t, within=["measure"])
>>> len(shown), shown["rank_text"].tolist()[:2], shown["rank_text"].tolist()[-1], info["schools"]
(11, ['1 of 30', '2 of 30'], '30 of 30', 30)
>>> select_schools(t.head(20), within=["measure"])[1] is None  # 20 schools: every school, unchanged
True
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence

import pandas as pd

from .. import config

__all__ = ["EACH_END", "csv_label", "select_schools", "selection_notes"]

#: Schools shown at each end (lowest, highest) of a comparison when a table has more schools than
#: :data:`~opportunity_research.config.PAGE_SCHOOLS`; with the middle school, 2 * EACH_END + 1 rows.
EACH_END = 5


def csv_label(stem: str) -> str:
    """The name a published CSV table goes by on the pages (its Downloads entry).

    Examples
    --------
    >>> csv_label("growth_grade_levels")
    'Growth grade levels (CSV)'
    """
    return f"{stem.replace('_', ' ').capitalize()} (CSV)"


def select_schools(
    data: pd.DataFrame,
    *,
    within: Sequence[str],
    value: str = "estimate",
    school: str = "school_id",
    max_schools: int | None = None,
    each_end: int = EACH_END,
) -> tuple[pd.DataFrame, dict | None]:
    """The rows of a per-school table a page shows (see the module notes), and what was left out.

    ``data``: one row per school (``school``; ``"all"`` is the district) and comparison (``within`` columns).
    With at most ``max_schools`` schools (default :data:`~opportunity_research.config.PAGE_SCHOOLS`) it is
    returned as it is, with ``None``. Otherwise: the district's rows, then per comparison the ``each_end`` lowest,
    the middle and the ``each_end`` highest schools by ``value`` among rows whose value is shown (not
    ``suppressed``, not missing), ordered lowest first, with ``rank_text`` ("3 of 170"); and ``{"schools": number
    of schools in the table, "each_end": each_end}``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"measure": "engaged", "school_id": ["all"] + [f"S{i}" for i in range(8)],
    ...                   "estimate": [0.5, 0.3, 0.1, 0.7, 0.2, None, 0.4, 0.9, 0.6],
    ...                   "suppressed": [False] * 5 + [True] + [False] * 3})
    >>> shown, info = select_schools(t, within=["measure"], max_schools=3, each_end=2)
    >>> shown[["school_id", "rank_text"]].values.tolist()  # S4 is hidden: not ranked
    [['all', ''], ['S1', '1 of 7'], ['S3', '2 of 7'], ['S5', '4 of 7'], ['S2', '6 of 7'], ['S6', '7 of 7']]
    >>> info
    {'schools': 8, 'each_end': 2}
    """
    limit = config.PAGE_SCHOOLS if max_schools is None else max_schools
    if not len(data):
        return data, None
    sid = data[school].astype(str)
    is_school = sid.ne("all")
    n_schools = int(sid[is_school].nunique())
    if n_schools <= limit:
        return data, None
    within = list(within)
    v = pd.to_numeric(data[value], errors="coerce")
    hidden = (
        data["suppressed"].fillna(False).astype(bool)
        if "suppressed" in data.columns
        else pd.Series(False, index=data.index)
    )
    # comparisons keep the order in which they first appear (the measures' order of the scorecard)
    order = [f"_k{i}" for i in range(len(within))]
    keyed = data.assign(**{k: pd.factorize(data[c])[0] for k, c in zip(order, within)}, _v=v, _sid=sid)
    ranked = keyed[is_school & v.notna() & ~hidden].sort_values([*order, "_v", "_sid"], kind="stable")
    pos = ranked.groupby(order, sort=False).cumcount().to_numpy() + 1
    m = ranked.groupby(order, sort=False)["_v"].transform("size").to_numpy()
    keep = (pos <= each_end) | (pos > m - each_end) | (pos == (m + 1) // 2)
    ranked = ranked.assign(_pos=pos, rank_text=[f"{p} of {n}" for p, n in zip(pos, m)])[keep]
    district = keyed[~is_school].assign(_pos=0, rank_text="")
    out = pd.concat([district, ranked]).sort_values([*order, "_pos"], kind="stable")
    return out.drop(columns=[*order, "_v", "_sid", "_pos"]), {"schools": n_schools, "each_end": int(each_end)}


def selection_notes(info: dict, *, per: str, csv: str) -> tuple[str, object]:
    """(subtitle, source note) of a table cut down by :func:`select_schools`: what it shows, and a sentence that
    names and links (``tables/<csv>.csv``, beside the pages) the published CSV table with every school.

    Examples
    --------
    >>> sub, note = selection_notes({"schools": 175, "each_end": 5}, per="measure", csv="scorecard")
    >>> sub
    '175 schools, more than a page lists: for each measure, the 5 with the lowest value, the one in the middle and the 5 with the highest (rank 1 is the lowest, among the schools whose value is shown).'
    >>> print(note.text)
    Every school is in the published table <a href="tables/scorecard.csv">Scorecard (CSV)</a>.
    """
    from great_tables import html

    k = info["each_end"]
    sub = (
        f"{info['schools']:,} schools, more than a page lists: for each {per}, the {k} with the lowest value, "
        f"the one in the middle and the {k} with the highest (rank 1 is the lowest, among the schools whose "
        "value is shown)."
    )
    href = f"tables/{csv}.csv"
    note = html(
        f'Every school is in the published table <a href="{_html.escape(href)}">'
        f"{_html.escape(csv_label(csv))}</a>."
    )
    return sub, note
