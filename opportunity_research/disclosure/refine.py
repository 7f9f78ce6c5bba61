"""After the protection rounds pass: publish again the complements no longer needed, and swap costly ones.

Rule 3 (:mod:`~opportunity_research.disclosure.protection`) chooses complements one at a time, from counts
only, and a complement hides its whole population (rule 2: every close count of the same group, school and
year, in every table). Once the audits pass, two passes lower what the choice hid, each keeping the
protection at every step (a change is kept only if the count audit and the estimate audit pass with it):

* :func:`publish_unneeded` shows again every complement that is no longer needed;
* :func:`swap_complements` takes out the complement population that hides the most rows, lets rule 3
  protect its counts again without it, and keeps the result only if fewer published rows are hidden and
  no more all-students rows.

Both work on the protection pass' state and try at most a fixed number of candidates, in an order fixed by
the counts (never by an estimate, nor by how long anything takes), so what is published never depends on
how busy the machine is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

__all__ = ["hidden_rows_count", "other_order", "publish_unneeded", "swap_complements"]

#: Why a count hidden by rule 2's closure is hidden (recomputed from the other hidden counts when one goes).
DERIVED = ("same group, close count", "same row as a hidden count")


def _populations(st, cands) -> dict:
    """Complement counts by population (one group at one school in one year, every table); others alone."""
    m = st.m
    pops: dict = defaultdict(list)
    for v in cands:
        key = m.var_key[v]
        pops[key[:5] if key[0] == "students" and not m.var_total[v] else (v,)].append(v)
    return pops


def _without(st, group) -> None:
    """Hide ``group`` no more; rule 2's closure recomputed from the primaries and the remaining complements
    (counts hidden only because they were close to, or in the row of, ``group`` are published again)."""
    st.H = {u for u in st.H if u not in group and st.why.get(u) not in DERIVED}
    st.why = {u: w for u, w in st.why.items() if u in st.H}
    st.link()


def publish_unneeded(st, iv: dict, max_tries: int = 400) -> dict:
    """Publish again every complement no longer needed, the most valuable to a reader first.

    Candidates are every complement: totals first, then all-students counts, district counts, then the
    larger counts (the figures a reader looks for first). Each is shown again if the protection still
    holds with it shown (rule 2's closure, recomputed from the primaries and the remaining complements so
    that counts hidden only because they were close to it are published with it, the count audit and the
    estimate audit all pass); otherwise it stays hidden. The pass tries at most ``max_tries`` candidates, in
    that order (the protection holds at every step; the rest stay hidden): a count, not seconds, so that what
    is published never depends on how busy the machine is. First whole populations (every complement count
    of one group at one school in one year, in every table: a count published again alone would be hidden
    again as close to its population's other counts), then single counts. A try that leaves a hidden count
    sharing a relation with a count shown again surely too narrow (pinned, or narrow over the short relations
    near it: ``_State.narrow_near``) is refused before the whole count audit, which would fail on that count
    (the same decisions; at 1,000,000 students all 41 tries failed, 152 CPU-s of count audits), where the count
    audit probes a component block by block (elsewhere its LPs decide sooner: at 10,000 students the check took
    13.9 of the clean-up's 34 CPU-s and refused 6 of 334 tries). Elsewhere, in a district audited cell by cell, a
    try that leaves any hidden count pinned by elimination over the equalities (``_State.pinned``, a fraction of a
    millisecond) is refused the same way (demo_lakeside: 45 of the 55 tries that fail). Measured on the demo districts:
    hidden per small cell Fairview 2.11 -> 1.92, Lakeside 2.86 -> 2.76, Riverton 3.40 -> 2.86.

    ``st`` is the protection pass' state, ``iv`` the count audit's intervals; returns the intervals of the
    state it leaves.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.protection import protect_tables
    >>> from opportunity_research.disclosure.model import TableSpec
    >>> t = pd.DataFrame({"school_id": ["A", "A", "A", "B", "B", "B", "all", "all", "all"],
    ...                   "group": ["all", "x=1", "x=2"] * 3, "n": [40, 4, 36, 50, 20, 30, 90, 24, 66],
    ...                   "estimate": 0.5, "suppressed": False, "suppression_reason": ""})
    >>> spec = TableSpec("cell", estimates={"estimate": (0, 1)})
    >>> out, rep = protect_tables({"t": (t, spec)}, min_n=10, cleanup=True, swaps=0)
    >>> rep.passed, rep.primary, rep.beyond_primary
    (True, 1, 3)
    """
    m = st.m
    cands = [v for v in st.H if st.why.get(v, "").startswith("complement")]
    cands.sort(
        key=lambda v: (
            not m.var_total[v],
            m.var_key[v][3] != "all",
            m.var_key[v][2] != "all",
            -m.var_x[v],
            str(m.var_key[v]),
        )
    )
    pops = _populations(st, cands)
    tries = [g for g in pops.values() if len(g) > 1][:max_tries] + [[v] for v in cands[:max_tries]]
    for group in tries:
        group = [v for v in group if v in st.H]
        if not group:
            continue
        H, why, E = set(st.H), dict(st.why), set(st.E)
        _without(st, group)
        ok = not any(v in st.H for v in group)
        if ok and (st.narrow_near(H - st.H) or st.pinned()):
            ok = False  # a hidden count is surely too narrow (near what is shown again, or pinned): the audit fails
        if ok:
            new_iv, bad = st.count_audit()
            ok = not bad and not st.estimate_audit()
        if ok:
            iv = new_iv
        else:
            st.H, st.why, st.E = H, why, E
    return iv


def hidden_rows_count(st) -> tuple[int, int]:
    """Published rows the protection state ``st`` hides, and of those the all-students rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.protection import protect_tables
    >>> from opportunity_research.disclosure.model import TableSpec
    >>> t = pd.DataFrame({"school_id": ["A", "A", "A", "B", "B", "B", "all", "all", "all"],
    ...                   "group": ["all", "x=1", "x=2"] * 3, "n": [40, 4, 36, 50, 20, 30, 90, 24, 66],
    ...                   "estimate": 0.5, "suppressed": False})
    >>> out, rep = protect_tables({"t": (t, TableSpec("cell", estimates={"estimate": (0, 1)}))}, min_n=10)
    >>> int(out["t"]["suppressed"].sum()), rep.primary + rep.beyond_primary  # what the state hid, as returned
    (4, 4)
    """
    m = st.m
    gone = m.unpublished if len(m.unpublished) else np.zeros(len(m.rows), dtype=bool)
    hid = st.hidden_rows() & ~gone
    if st._all_students is None:  # (fixed by the model)
        st._all_students = (m.rows["variable"] == "all").to_numpy()
    return int(hid.sum()), int((hid & st._all_students).sum())


def other_order(st, rounds: Callable, iv: dict, start: tuple, before: tuple[int, int]) -> dict:
    """Protect again from ``start`` with rule 3's other order (the larger candidate first); keep the better.

    ``st`` has passed the audits (after :func:`publish_unneeded`); ``start`` is ``(H, why, E)`` before rule
    3, ``before`` what the first order hid before its clean-up (:func:`hidden_rows_count`). The other order's
    result is cleaned up only if it hides fewer published rows than that (a second clean-up costs as much as
    the first pass: a 10,000-student district took twice as long), and kept (with its order for what follows)
    if its audits pass and it then hides fewer published rows and no more all-students rows. Neither order is better everywhere: measured on the
    demo districts, larger first hid 310 rows beyond Hillcrest's small cells instead of 372, but more in
    Fairview, Lakeside and Riverton.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.protection import protect_tables
    >>> from opportunity_research.disclosure.model import TableSpec
    >>> counts = {"A": [45, 54, 13], "B": [56, 7, 27], "C": [43, 38, 22], "all": [144, 99, 62]}
    >>> t = pd.DataFrame([(s, g, n) for s, c in counts.items()
    ...                   for g, n in zip(["all", "x=1", "x=2", "x=3"], [sum(c), *c])],
    ...                  columns=["school_id", "group", "n"]).assign(estimate=0.5, suppressed=False)
    >>> spec = TableSpec("cell", estimates={"estimate": (0, 1)})
    >>> [protect_tables({"t": (t, spec)}, min_n=10, swaps=0, strategies=k)[1].beyond_primary for k in (1, 2)]
    [5, 3]
    """
    first = (st.H, st.why, st.E, iv, st.larger_first)
    best = hidden_rows_count(st)
    st.H, st.why, st.E = set(start[0]), dict(start[1]), set(start[2])
    st.larger_first = not st.larger_first
    failures, new_iv = rounds(st)
    if not failures and hidden_rows_count(st)[0] < before[0]:
        new_iv = publish_unneeded(st, new_iv)
        now = hidden_rows_count(st)
        if now[0] < best[0] and now[1] <= best[1]:
            return new_iv
    st.H, st.why, st.E, iv, st.larger_first = first
    return iv


def _cannot_win(st, best: tuple[int, int], group) -> bool:
    """Whether a swap's rounds can no longer give a state :func:`swap_complements` keeps: the rounds only hide
    more (counts, their closure, withheld estimates), so once they hide ``best[0]`` published rows or more,
    more all-students rows than ``best[1]``, or a count of the population taken out, the try is lost."""
    now = hidden_rows_count(st)
    return now[0] >= best[0] or now[1] > best[1] or any(v in st.H for v in group)


def swap_complements(st, rounds: Callable, iv: dict, max_tries: int = 30) -> dict:
    """Swap costly complement populations for cheaper ones (a local search on the rows hidden).

    The complement population (every complement count of one group at one school in one year) shown in
    the most published rows is taken out (with the counts hidden only as close to it), its counts are barred
    from rule 3, and ``rounds`` (rules 3 and 4 until the audits pass) protects what it protected again with
    other complements. The result is kept if the audits pass, fewer published rows are hidden in all
    (complements, their closure and withheld estimates) and no more all-students rows; otherwise the state
    goes back. Each population is tried once, the costliest first (ties by its labels), at most
    ``max_tries`` in all: a count, so what is published never depends on the machine. Measured (30 tries,
    after :func:`publish_unneeded`), hidden per small cell: Fairview 1.92 -> 1.85, Lakeside 2.76 -> 2.67,
    Riverton 2.86 -> 2.85, Hillcrest unchanged; a 10,000-student synthetic district 1.64 -> 1.47 (38 -> 46
    CPU-s for its whole pass).

    ``rounds(st, stop=...)`` returns ``(failures, intervals)``; ``stop(st)`` tells it when the try can no longer
    win (:func:`_cannot_win`: the rounds only hide more), so a losing try ends as soon as it has hidden as many
    rows as the best state (most tries lose: the five demo districts' swaps took 7.1 CPU-s, now 0.6, and keep
    the same states). Returns the intervals of the state it leaves.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.protection import protect_tables
    >>> from opportunity_research.disclosure.model import TableSpec
    >>> t = pd.DataFrame({"school_id": ["A", "A", "A", "B", "B", "B", "all", "all", "all"],
    ...                   "group": ["all", "x=1", "x=2"] * 3, "n": [40, 4, 36, 50, 20, 30, 90, 24, 66],
    ...                   "estimate": 0.5, "suppressed": False, "suppression_reason": ""})
    >>> spec = TableSpec("cell", estimates={"estimate": (0, 1)})
    >>> out, rep = protect_tables({"t": (t, spec)}, min_n=10, swaps=30)
    >>> rep.passed, rep.primary, rep.beyond_primary
    (True, 1, 3)
    """
    m = st.m
    gone = m.unpublished if len(m.unpublished) else np.zeros(len(m.rows), dtype=bool)
    best = hidden_rows_count(st)
    tried: set = set()
    for _ in range(max_tries):
        pops = {
            k: g
            for k, g in _populations(
                st, [v for v in st.H if st.why.get(v, "").startswith("complement")]
            ).items()
            if k not in tried
        }
        if not pops:
            break

        def shown_in(g):
            return len({r for v in g for r in st.var_rows[v] if not gone[r]})

        key = min(pops, key=lambda k: (-shown_in(pops[k]), str(k)))
        tried.add(key)
        group = pops[key]
        barred = st.group_list[st.group_of[group[0]]] if len(key) == 5 else group  # the whole population
        H, why, E, decision = set(st.H), dict(st.why), set(st.E), st.decision.copy()
        _without(st, group)
        st.decision[list(barred)] = False
        failures, new_iv = rounds(st, stop=lambda s, best=best, group=group: _cannot_win(s, best, group))
        st.decision = decision
        now = hidden_rows_count(st)
        if not failures and not any(v in st.H for v in group) and now[0] < best[0] and now[1] <= best[1]:
            best, iv = now, new_iv
        else:
            st.H, st.why, st.E = H, why, E
    return iv
