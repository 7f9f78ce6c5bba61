"""Which variance components the data can identify, checked before any optimisation."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .design import build_design, check_columns, nested_codes
from .results import NotIdentifiedError

__all__ = ["identified_design", "identify_levels", "level_identification", "nest_kept"]


_IDENT_COLUMNS = ("level", "n_groups", "identified", "reason")


def _complete_rows(
    data: pd.DataFrame, formula: str, groups: Sequence[str], random_slope: str | None, eval_env
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fixed-effect matrix and grouping columns of the rows a fit would use (same rule as ``build_design``)."""
    extra = [random_slope] if random_slope else []
    check_columns(data, list(groups) + extra, "groups")
    keep = data[list(groups) + extra].notna().all(axis=1).to_numpy()
    sub = data.loc[keep].reset_index(drop=True)
    try:
        _, X = patsy.dmatrices(formula, sub, NA_action="drop", return_type="dataframe", eval_env=eval_env)
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r}: {exc}") from exc
    return X.to_numpy(dtype=float), sub.iloc[X.index.to_numpy()][list(groups)]


def level_identification(
    X: np.ndarray,
    codes: Sequence[np.ndarray],
    sizes: Sequence[int],
    groups: Sequence[str],
    xtx: np.ndarray | None = None,
) -> pd.DataFrame:
    """Which random-intercept levels the design identifies, and why not where it does not.

    A level is dropped when (1) it has fewer than two groups; (2) its group indicators lie in the column
    space of the fixed effects (e.g. every grade in one school while grade is a fixed effect): the
    likelihood is then flat in its variance, which any value fits equally well; or (3) it is the same
    partition as an outer level that is kept (every outer group holds exactly one inner group), so the two
    variances are not separable and only their sum is identified. Checks (2) and (3) are exact linear
    algebra on the complete rows: the residual of the level's indicator matrix after projection on the
    fixed effects, ``trace(Z'Z) - trace(Z'X (X'X)^+ X'Z)``, from group sums of ``X`` (where a bound on it, from
    the largest group, does not already show the level identified).
    ``codes`` are nested group codes (unique across outer groups), as ``nested_codes`` returns them; ``xtx`` is
    ``X'X`` when already computed (:class:`~.design.Design` keeps the rank check's).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((6, 1))
    >>> codes = [np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 3, 4, 5])]
    >>> level_identification(X, codes, [2, 6], ["school", "student"])[["level", "identified"]].to_dict("list")
    {'level': ['school', 'student'], 'identified': [True, True]}
    """
    n, p = X.shape
    # The projection's trace is bounded without it: trace(Z'HZ) = ||HZ||^2 <= rank(H) ||Z'Z|| <= p * the largest
    # group (Z'Z is the diagonal of the group sizes). A level whose largest group times p is at most half the rows
    # (a large district's classrooms and schools) keeps a residual of at least n / 2: no group sums are needed.
    sums = {
        level: np.zeros((g, p))
        for level, g in enumerate(sizes)
        if g >= 2 and p * int(np.bincount(codes[level]).max()) > n / 2
    }
    if sums:
        scale = np.sqrt(np.einsum("ij,ij->j", X, X)) if n else np.ones(p)
        div = np.where(scale > 0, scale, 1.0)
        # pseudo-inverse of the small Gram matrix of the scaled columns Xs = X / div (rank-safe)
        w, V = np.linalg.eigh((X.T @ X if xtx is None else xtx) / np.outer(div, div))
        keep = w > max(w.max(initial=0.0), 1e-300) * 1e-12
        ginv = (V[:, keep] / w[keep]) @ V[:, keep].T
    # Z'Xs per level left, (g, p): each group's sums of the rows of Xs, in row order (the sums the sparse product of
    # Z' and Xs makes, to the bit, without building Z), one scaled column at a time (Xs is never made whole)
    for j in range(p if sums else 0):
        xs = X[:, j] / div[j]
        for level, out in sums.items():
            out[:, j] = np.bincount(codes[level], weights=xs, minlength=sizes[level])
    rows = []
    for level, (col, g) in enumerate(zip(groups, sizes)):
        reason = ""
        if g < 2:
            reason = (
                f"only {g} {col} group among the {n} complete rows: a variance between {col} groups needs at "
                f"least two"
            )
        else:
            # trace of Z'(I - H)Z with H the hat matrix of X: zero iff every column of Z lies in span(X) (at least
            # n / 2 for a level without sums, see above)
            if level in sums and n - float(np.sum((sums[level] @ ginv) * sums[level])) <= 1e-8 * n:
                reason = (
                    f"every {col} group is determined by the fixed effects (its indicators are linear "
                    f"combinations of the fixed-effect columns, e.g. each grade in one {col}): the likelihood "
                    f"is flat in the {col} variance, which the data cannot identify"
                )
            else:
                for outer in range(level):
                    if sizes[outer] == g and not rows[outer]["reason"]:
                        reason = (
                            f"each {groups[outer]} group holds exactly one {col} group: the two levels are the "
                            f"same partition of the students, so only the sum of their variances is "
                            f"identified; it is reported at {groups[outer]}"
                        )
                        break
        rows.append({"level": col, "n_groups": int(g), "identified": not reason, "reason": reason})
    return pd.DataFrame(rows, columns=list(_IDENT_COLUMNS))


def identified_design(data, formula, groups, random_slope, slope_level, env):
    """Build the design of the identified levels only; return it with the identification table.

    Levels with a single group among the rows with every grouping value are dropped before the design is
    built; the rank and partition checks run on the design's own matrices (no second formula evaluation),
    and unidentified levels are then removed from it (nested codes stay nested: inner codes are unique
    across outer groups).

    Examples
    --------
    >>> import numpy as np, pandas as pd, patsy
    >>> rng = np.random.default_rng(1)
    >>> school = np.repeat(np.arange(20), 30)
    >>> df = pd.DataFrame({"school": school, "x": rng.normal(size=600)})
    >>> df["y"] = 1 + 0.5 * df["x"] + rng.normal(0, 0.6, 20)[school] + rng.normal(size=600)
    >>> d, table = identified_design(df, "y ~ x", ("school",), None, None, patsy.EvalEnvironment.capture())
    >>> d.groups, table[["level", "identified"]].to_dict("list")
    (('school',), {'level': ['school'], 'identified': [True]})
    """
    extra = [random_slope] if random_slope else []
    check_columns(data, list(groups) + extra, "groups")
    present = data[list(groups)].dropna()
    _, sizes0, _ = nested_codes(present, groups)
    single = {col for col, g in zip(groups, sizes0) if g < 2}
    pre = tuple(g for g in groups if g not in single)
    slope_at = (groups[0] if slope_level is None else slope_level) if random_slope else None
    if pre and (slope_at is None or slope_at in pre):
        d = build_design(data, formula, pre, random_slope, slope_at, env)
        rest = level_identification(d.X, d.codes, d.n_groups, pre, d.xtx)
    else:
        d, rest = None, pd.DataFrame(columns=list(_IDENT_COLUMNS))
    one = pd.DataFrame(
        [
            {
                "level": col,
                "n_groups": int(g),
                "identified": False,
                "reason": (
                    f"only {g} {col} group among the {len(present)} rows with every grouping value: "
                    f"a variance between {col} groups needs at least two"
                ),
            }
            for col, g in zip(groups, sizes0)
            if col in single
        ],
        columns=list(_IDENT_COLUMNS),
    )
    ident = (
        pd.concat([x for x in (one, rest) if len(x)], ignore_index=True).set_index("level").loc[list(groups)]
    )
    ident = ident.reset_index().astype({"identified": bool, "n_groups": int})
    kept = tuple(ident.loc[ident["identified"], "level"])
    if not kept:
        raise NotIdentifiedError(
            f"no grouping level of {groups} has a variance this design can identify (formula "
            f"{formula!r}): "
            + "; ".join(f"{r.level}: {r.reason}" for r in ident.itertuples())
            + ". Fit the fixed effects by OLS (ols_cluster_check) instead"
        )
    if slope_at is not None and slope_at not in kept:
        raise ValueError(
            f"the random slope on {random_slope!r} is at level {slope_at!r}, whose variance this design "
            f"cannot identify: " + ident.set_index("level").at[slope_at, "reason"]
        )
    if kept != d.groups:
        idx = [d.groups.index(g) for g in kept]
        codes = [d.codes[i] for i in idx]
        n_groups = [d.n_groups[i] for i in idx]
        parents = []
        for a in range(1, len(idx)):
            par = np.empty(n_groups[a], dtype=np.int64)
            par[codes[a]] = codes[a - 1]
            parents.append(par)
        d = dataclasses.replace(
            d,
            codes=codes,
            n_groups=n_groups,
            parents=parents,
            level_cols=[d.level_cols[i] for i in idx],
            groups=kept,
        )
    return d, ident


def nest_kept(data: pd.DataFrame, groups: Sequence[str], kept: Sequence[str]) -> pd.DataFrame:
    """A copy of ``data`` where each kept level nested in a dropped one is keyed by its full nesting.

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({"district": ["d1", "d2"], "school": ["A", "A"]})
    >>> nest_kept(data, ["district", "school"], ["school"])["school"].tolist()
    [0, 1]
    """
    for k, col in enumerate(groups):
        if col in kept and any(g not in kept for g in groups[:k]):
            keys = list(groups[: k + 1])
            code = data.groupby(keys, sort=True, dropna=True).ngroup()
            data = data.assign(**{col: code.where(data[keys].notna().all(axis=1))})
    return data


def identify_levels(
    data: pd.DataFrame,
    *,
    formula: str,
    groups: Sequence[str] | str,
    random_slope: str | None = None,
    _eval_env: Any = None,
) -> pd.DataFrame:
    """Check, before fitting, which grouping levels' variances the design can identify.

    :func:`fit_growth_model` runs this check and fits only the identified levels (``drop_unidentified=True``,
    the default), stating the reason for each level it drops in ``warnings`` and in
    ``result.identification``. An unidentified level makes the REML criterion flat in its variance; an
    optimizer then wanders to an arbitrary (often astronomically large) value where round-off can make the
    criterion look better than at the true optimum.

    Parameters
    ----------
    data, formula, groups, random_slope
        As for :func:`fit_growth_model` (the same complete rows are used).

    Returns
    -------
    DataFrame
        ``level``, ``n_groups`` (among the complete rows), ``identified`` (bool), ``reason`` (empty when
        identified).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"grade": np.repeat([3, 4, 5], 40), "classroom": np.repeat(np.arange(12), 10)})
    >>> df["school"] = df["grade"]  # every grade in its own school
    >>> df["y"] = rng.normal(size=120)
    >>> identify_levels(df, formula="y ~ C(grade)", groups=("school", "classroom"))[["level", "identified"]]
           level  identified
    0     school       False
    1  classroom        True
    """
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    env = _eval_env if _eval_env is not None else patsy.EvalEnvironment.capture(1)
    X, frame = _complete_rows(data, formula, groups, random_slope, env)
    codes, sizes, _ = nested_codes(frame, groups)
    return level_identification(X, codes, sizes, groups)
