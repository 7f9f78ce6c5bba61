"""Diagnosis: where the cells hidden beyond the small cells come from, per demo district (issue 22).

Runs each demo district's analysis (``unprotected_analysis``, ``n_boot=20``; counts do not depend on it), then
the joint pass (``disclosure.joint.protect_district``) with the pass' state kept, and attributes every published
row hidden beyond the small cells to one cause:

* ``complement``: the row shows a count rule 3 chose as a complement, split by the relation it shares with the
  count it protects (``levels`` within a school or the district, ``schools->district``, ``same population``
  (another count of the same group: columns ``n`` / ``n_students`` / ``n_start`` or subjects), ``neighbours``
  (no shared relation: found through hidden neighbours), ``gate`` (added for the publish gate's audit));
* ``close to complement`` / ``close to small``: rule 2's closure (a count of the same group, school and year
  within the protection range of a hidden count: of a complement, or of a small count);
* ``same row``: a row hidden because another count of the row is hidden (rule 2, a row is hidden as a whole);
* ``estimates withheld``: rule 4 (the row's counts stay public, its estimates are withheld).

Printed per district: the totals, a table x cause grid, the small (primary) rows per table, and the complement
populations that cost most. ``--pickle DIR`` keeps the analyses between runs. Not a timed benchmark.

Usage::

    python benchmarks/disclosure_causes.py [--districts demo_hillcrest ...] [--pickle /tmp/cache]
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from opportunity_research.disclosure import joint, protection
from opportunity_research.study import analysis

DEMO = ("demo_fairview", "demo_hillcrest", "demo_lakeside", "demo_pinebrook", "demo_riverton")


def load(district: str, cache: Path | None):
    """The unprotected analysis and indicators of a district (pickled in ``cache`` when given)."""
    if cache is not None:
        p = cache / f"{district}.pkl"
        if p.exists():
            return pickle.loads(p.read_bytes())
    got = analysis.unprotected_analysis(district, n_boot=20)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{district}.pkl").write_bytes(pickle.dumps(got, protocol=5))
    return got


def protect_with_state(protect, *args, **kw):
    """``protect(*args, **kw)`` (``joint.protect_district``, ``protect_tables``, ...) with the protection pass' state
    and each complement's count kept: ``(result, state, parent)``, ``parent[c]`` the count complement ``c``
    protects (the last pass' state, as the returned tables show it)."""
    states, parent = [], {}
    init = protection._State.__init__
    nxt = protection.next_complement

    def keep_init(self, *a, **k):
        init(self, *a, **k)
        states.append(self)

    def keep_next(st, v):
        c = nxt(st, v)
        if c is not None:
            parent[c] = v
        return c

    protection._State.__init__ = keep_init
    protection.next_complement = keep_next
    try:
        out = protect(*args, **kw)
    finally:
        protection._State.__init__ = init
        protection.next_complement = nxt
    return out, states[-1], parent


def relation_kind(m, c: int, v: int | None) -> str:
    """How complement ``c`` is linked to the count ``v`` it protects."""
    if v is None:
        return "gate"
    kc, kv = m.var_key[c], m.var_key[v]
    shared = any(c in coefs and v in coefs for coefs, _ in m.relations)
    if not shared:
        return "neighbours"
    if kc[:5] == kv[:5]:
        return "same population"
    if kc[2] != kv[2] and kc[3:5] == kv[3:5]:
        return "schools->district"
    if kc[2] == kv[2]:
        return "levels (district)" if kc[2] == "all" else "levels (school)"
    return "other relation"


def row_causes(st, parent: dict) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int]:
    """Every published row hidden beyond the small cells with its cause (see the module), as
    ``(rows, primary, gone, floor)``: ``rows`` has ``school``, ``variable``, ``level``, ``year``, ``table`` and
    ``cause``; ``primary`` and ``gone`` mark the model's small rows and rows not published; ``floor`` counts the
    published rows rule 2 hides from the small cells alone (before any complement)."""
    m = st.m
    nv = len(m.var_key)
    gone = m.unpublished if len(m.unpublished) else np.zeros(len(m.rows), dtype=bool)
    start = set(m.primary_vars) | {m.row_vars[r][0] for r in m.ref_small_rows}
    h0 = np.zeros(nv)
    h0[list(start)] = 1.0
    primary = m.pre_hidden | (m.row_var_mat @ h0 > 0)
    hidden = st.hidden_rows()
    beyond = hidden & ~primary & ~gone
    # rule 2 applied to the small cells alone (before any complement): what no choice of complements avoids
    kept = (st.H, st.why, st._closed)
    st.H, st.why, st._closed = set(start), {v: "primary" for v in start}, (set(), set())
    st.link()
    floor = int((st.hidden_rows(counts=True) & ~primary & ~gone).sum())
    st.H, st.why, st._closed = kept
    names = np.array(m.names, dtype=object)[m.rows["tid"].to_numpy()]
    x = np.asarray(m.var_x)

    def cause_of_var(v: int) -> str:
        why = st.why.get(v, "")
        if why == "primary":
            return "small"
        if why.startswith("complement"):
            if "publish audit" in why:
                return "complement: gate"
            return "complement: " + relation_kind(m, v, parent.get(v))
        if why == "same group, close count":
            grp = st.group_list[st.group_of[v]] if st.group_of[v] >= 0 else []
            near = [u for u in grp if u in st.H and u != v and abs(x[u] - x[v]) < st.protection]
            if any(u in start for u in near):
                return "close to small"
            return "close to complement"
        if why == "same row as a hidden count":
            return "same row"
        return why or "?"

    order = [
        "complement: levels (school)",
        "complement: levels (district)",
        "complement: schools->district",
        "complement: same population",
        "complement: neighbours",
        "complement: other relation",
        "complement: gate",
        "close to complement",
        "close to small",
        "same row",
        "estimates withheld",
    ]
    rank = {c: i for i, c in enumerate(order)}
    causes = []
    for r in np.flatnonzero(beyond).tolist():
        hv = [v for v in m.row_vars[r] if v in st.H]
        if not hv:
            causes.append("estimates withheld")
            continue
        cs = [cause_of_var(v) for v in hv]
        causes.append(min(cs, key=lambda c: rank.get(c, 99)))
    rows = m.rows.loc[beyond, ["school", "variable", "level", "year"]].assign(
        table=names[beyond], cause=causes
    )
    return rows.reset_index(drop=True), primary, gone, floor


def diagnose(district: str, cache: Path | None) -> dict:
    """Causes of the rows hidden beyond the small cells in one district (see the module)."""
    a, ind = load(district, cache)
    out, st, parent = protect_with_state(joint.protect_district, a, indicators=ind)
    m, rep = st.m, out.disclosure
    rows, primary, gone, floor = row_causes(st, parent)
    names = np.array(m.names, dtype=object)[m.rows["tid"].to_numpy()]
    grid = rows.groupby(["table", "cause"]).size().unstack(fill_value=0)
    prim = pd.Series(names[primary & ~gone]).value_counts().rename("small")
    shown = pd.Series(names[~gone]).value_counts().rename("published")
    # complement populations (one group at one school in one year) by the published rows they hide directly
    pops = Counter()
    for v in st.H:
        if st.why.get(v, "").startswith("complement"):
            pops[m.var_key[v][:5]] += int((~gone[st.var_rows[v]]).sum())
    fam = (
        rows.assign(at=np.where(rows["school"] == "all", "district", "school"))
        .groupby(["at", "variable"])
        .size()
    )
    return {
        "district": district,
        "report": rep.to_dict(),
        "grid": grid,
        "small": prim,
        "published": shown,
        "pops": pops,
        "families": fam,
        "floor": floor,
    }


def show(d: dict) -> None:
    """Print one district's diagnosis."""
    r = d["report"]
    print(
        f"\n=== {d['district']}: published {r['published_cells']:,}, small {r['suppressed_primary']}, "
        f"beyond {r['suppressed_beyond_primary']} = {r['secondary_per_primary']:.2f} per small cell; "
        f"estimates withheld {r['estimates_withheld']}"
    )
    grid = d["grid"]
    if len(grid):
        tab = pd.concat([d["published"], d["small"], grid], axis=1).fillna(0).astype(int)
        tab.loc["total"] = tab.sum()
        tab["beyond"] = tab[list(grid.columns)].sum(axis=1)
        print(tab.to_string())
        small = r["suppressed_primary"]
        print(
            f"rule 2's closure of the small cells alone (hidden before any complement, so no choice of "
            f"complements avoids it): {d['floor']} rows = {d['floor'] / small if small else 0:.2f} per small cell"
        )
        print("beyond rows by family (district / school x variable):")
        print(d["families"].to_string())
        print("costliest complement populations (rows hidden directly):")
        for k, n in d["pops"].most_common(8):
            print("  ", n, k)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--districts", nargs="*", default=list(DEMO))
    p.add_argument("--pickle", type=Path, default=None)
    args = p.parse_args(argv)
    for dist in args.districts:
        show(diagnose(dist, args.pickle))


if __name__ == "__main__":
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        main()
