"""The audit of published tables from their values alone (what the publishing gate runs).

:func:`audit_published` reads protected tables as an attacker who reads every page would: hidden counts are
unknowns, every shown count an equality, and the relations of
:class:`~opportunity_research.disclosure.model.PopulationModel` (levels, schools, subjects, columns) hold.
The protection pass (:mod:`~opportunity_research.disclosure.protection`) ends only on a passing audit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import config
from .lp import TOL, interval_width, intervals
from .memo import without_cyclic_gc
from .model import LABELS, REASON, AuditReport, PopulationModel, TableSpec, row_label, var_label

__all__ = ["apply_hidden", "audit", "audit_published", "suppressed_flags"]


def audit(
    tables: Mapping[str, tuple[pd.DataFrame, TableSpec]],
    *,
    min_n: int = config.MIN_CELL_SIZE,
    protection: int | None = None,
    year: int | None = None,
) -> AuditReport:
    """Audit already protected tables as an attacker who reads all of them would (published values only).

    Hidden counts are unknowns; every shown count is an equality; levels add up to totals and schools to
    the district. Each hidden count's interval is computed with :func:`scipy.optimize.linprog`. The report's
    ``failures`` name each hidden count whose interval is narrower than ``protection`` (default ``min_n``)
    and reaches below ``min_n`` (a hidden row pinned at ``min_n`` or more is a large group withheld for its
    estimates, whose size other tables publish), and each shown count below ``min_n``.

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.model import ALL_OTHERS
    >>> t = pd.DataFrame({"group": "ell", "level": [0, 1], "n": [45, 3], "reference": ALL_OTHERS,
    ...                   "reference_n": [3, 45], "estimate": [0.4, 0.0], "reference_estimate": [0.0, 0.4],
    ...                   "suppressed": False, "suppression_reason": ""})
    >>> spec = TableSpec("gap", estimates={"estimate": (0, 1)})
    >>> audit({"t": (t, spec)}, min_n=10).passed  # the group of 3 is shown
    False
    >>> from opportunity_research.disclosure.protection import protect_tables
    >>> out, _ = protect_tables({"t": (t, spec)}, min_n=10)
    >>> audit({"t": (out["t"], spec)}, min_n=10).passed
    True
    """
    return audit_published(tables, min_n=min_n, protection=protection, year=year)


@without_cyclic_gc
def audit_published(
    tables: Mapping[str, tuple[pd.DataFrame, TableSpec]],
    *,
    min_n: int = config.MIN_CELL_SIZE,
    protection: int | None = None,
    year: int | None = None,
) -> AuditReport:
    """See :func:`audit` (which calls it).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.disclosure.model import ALL_OTHERS
    >>> t = pd.DataFrame({"group": "ell", "level": [0, 1], "n": [45, 3], "reference": ALL_OTHERS,
    ...                   "reference_n": [3, 45], "estimate": [0.4, 0.0], "reference_estimate": [0.0, 0.4],
    ...                   "suppressed": False, "suppression_reason": ""})
    >>> spec = TableSpec("gap", estimates={"estimate": (0, 1)})
    >>> report = audit_published({"t": (t, spec)}, min_n=10)
    >>> report.passed, len(report.failures) > 0
    (False, True)
    """
    import time

    t0 = time.perf_counter()
    protection = min_n if protection is None else int(protection)
    model = PopulationModel(tables, year=year, known=False, min_n=min_n)
    hidden = np.array(model.pre_hidden, dtype=bool)
    failures = []
    targets = sorted(
        {v for rid in np.flatnonzero(hidden) for v in model.row_vars[rid] if math.isnan(model.var_x[v])}
    )
    iv = intervals(model, ~hidden, targets, protection)
    for v in targets:
        # a hidden row whose count the attacker pins at min_n or more is a large group whose size is published
        # elsewhere (a row withheld for its estimates only): not a small cell
        if interval_width(iv[v]) < protection and iv[v][0] < min_n - TOL:
            failures.append((var_label(model, v), *iv[v]))
    ent = model.entries  # a shown count below min_n (the entries' arrays, in order)
    for i in np.flatnonzero(~hidden[ent.rid] & (ent.val > 0) & (ent.val < min_n)).tolist():
        rid, value = int(ent.rid[i]), ent.val[i]
        failures.append((row_label(model, rid) + " (shown count below min_n)", value, value))
    ivs = pd.DataFrame(
        [{"cell": var_label(model, v), "true": None, "low": iv[v][0], "high": iv[v][1]} for v in targets],
        columns=["cell", "true", "low", "high"],
    )
    return AuditReport(
        min_n=min_n,
        protection=protection,
        cells=len(model.rows),
        primary=0,
        beyond_primary=0,
        hidden_counts=len(targets),
        failures=failures,
        intervals=ivs,
        seconds=time.perf_counter() - t0,
    )


def suppressed_flags(df: pd.DataFrame) -> np.ndarray:
    """A table's ``suppressed`` column as booleans (missing: False; no column: none suppressed).

    Examples
    --------
    >>> suppressed_flags(pd.DataFrame({"suppressed": [True, None, False]})).tolist()
    [True, False, False]
    """
    if "suppressed" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df["suppressed"].fillna(False).astype(bool).to_numpy()


def apply_hidden(model: PopulationModel, hidden: np.ndarray, min_n: int) -> dict[str, pd.DataFrame]:
    """The model's tables with the rows ``hidden`` (one flag a model row) suppressed: every number blanked, the labels
    kept, ``suppressed`` set and one reason text for every suppressed row (what the pass publishes and the gate reads).

    Examples
    --------
    >>> t = pd.DataFrame({"school_id": "A", "group": ["all", "ell=1", "ell=0"], "n": [50, 4, 46]})
    >>> m = PopulationModel({"t": (t, TableSpec("cell"))}, year=2016, known=True, min_n=10)
    >>> out = apply_hidden(m, np.array([False, True, True]), 10)["t"]
    >>> out["n"].tolist(), out["suppressed"].tolist()
    ([50, <NA>, <NA>], [False, True, True])
    """
    reason = REASON.format(min_n=min_n)
    out = {}
    rows = model.rows
    for tid, (name, df) in enumerate(zip(model.names, model.frames)):
        df = df.copy()
        sup = np.zeros(len(df), dtype=bool)
        if len(df):
            sel = rows["tid"].to_numpy() == tid
            sup[rows["row"].to_numpy()[sel]] = hidden[sel]
        old = suppressed_flags(df)
        spec = model.specs[tid]
        keep = LABELS | set(spec.universe)
        for c in df.columns:
            if c in keep:
                continue
            col = df[c]
            if pd.api.types.is_bool_dtype(col) or str(col.dtype) == "boolean":
                df[c] = col.astype("boolean").mask(sup)
            elif pd.api.types.is_integer_dtype(col):
                df[c] = col.astype("Int64").mask(sup)
            elif pd.api.types.is_numeric_dtype(col):
                df[c] = col.mask(sup)
            else:
                df[c] = col.mask(sup, "" if col.dtype == object or str(col.dtype) == "str" else pd.NA)
        df["suppressed"] = sup | old
        # one reason for every hidden row, whatever hid it: a reader cannot tell a small cell from a complement
        df["suppression_reason"] = np.where(sup | old, reason, "")
        df["suppression_reason"] = df["suppression_reason"].astype("str")
        df.attrs = dict(model.frames[tid].attrs)
        df.attrs["disclosure"] = "protected"
        out[name] = df
    return out
