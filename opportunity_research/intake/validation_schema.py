"""The pandera schema of each contract table, and the vectorized key helpers the rules share.

Holds :func:`table_schema` (built from :data:`opportunity_research.intake.contract.TABLES`), the rule text of
each column check (:func:`column_checks`), duplicate-key detection (:func:`key_codes`,
:func:`duplicated_key`) and two small helpers (:func:`format_number`, :func:`as_chunked_array`).

Decisions
---------
* The schema checks the parsed frame, not the final one: text columns are ``str``, numeric columns
  ``float64`` with NaN for empty cells (so a whole-number check is a separate ``whole_number`` check).
* Keys are hashed by pyarrow into one integer code per row, which is much faster than pandas on text keys of
  tens of millions of rows; missing values are a value of their own.

Examples
--------
>>> table_schema("students").name
'students'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pya
import pyarrow.compute as pyc

from .contract import TABLES, Column, Table

__all__ = [
    "NUMERIC_KINDS",
    "as_chunked_array",
    "column_checks",
    "duplicated_key",
    "format_number",
    "key_codes",
    "table_schema",
]

#: Column kinds parsed as numbers (``float64`` in the parsed frame).
NUMERIC_KINDS = ("int", "float", "flag")


def format_number(x) -> str:
    """A contract value as text: floats in ``g`` format (``3.0`` -> ``3``), anything else by ``str``.

    Examples
    --------
    >>> format_number(3.0), format_number(0.25), format_number("ela")
    ('3', '0.25', 'ela')
    """
    return f"{x:g}" if isinstance(x, float) else str(x)


def column_checks(c: Column) -> list[tuple[pa.Check, str]]:
    """The pandera checks of a column with the rule text each one reports.

    Examples
    --------
    >>> [rule for _, rule in column_checks(TABLES["students"].columns["grade"])]
    ['must be a whole number', 'must be between 3 and 12']
    """
    checks = []
    if c.allowed is not None:
        checks.append(
            (pa.Check.isin(list(c.allowed)), "must be one of: " + ", ".join(map(format_number, c.allowed)))
        )
    if c.kind == "int":
        checks.append((pa.Check(lambda s: s % 1 == 0, name="whole_number"), "must be a whole number"))
    if c.min is not None and c.max is not None:
        checks.append(
            (
                pa.Check.in_range(c.min, c.max),
                f"must be between {format_number(c.min)} and {format_number(c.max)}",
            )
        )
    elif c.min is not None:
        checks.append((pa.Check.ge(c.min), f"must be at least {format_number(c.min)}"))
    elif c.max is not None:
        checks.append((pa.Check.le(c.max), f"must be at most {format_number(c.max)}"))
    return checks


def key_codes(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """One integer code per distinct combination of the key columns (text hashed by pyarrow; NaN is a value).

    Examples
    --------
    >>> codes = key_codes(pd.DataFrame({"a": ["x", "y", "x"], "b": [1.0, 2.0, 1.0]}), ["a", "b"])
    >>> bool(codes[0] == codes[2]), bool(codes[0] == codes[1])
    (True, False)
    """
    codes, span = np.zeros(len(frame), dtype=np.int64), 1
    for k in key:
        col = frame[k]
        if col.dtype == "float64":
            part, uniq = pd.factorize(col, use_na_sentinel=True)
        else:
            enc = pyc.dictionary_encode(as_chunked_array(col))
            part = np.concatenate(
                [pyc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in enc.chunks]
                or [np.zeros(0)]
            ).astype(np.int64)
            uniq = enc.chunk(0).dictionary if enc.num_chunks else []
        n = len(uniq) + 1  # codes -1..len-1 shifted to 0..len
        if span * n >= 2**62:  # keep the combined code inside int64
            codes, _ = pd.factorize(codes)
            span = int(codes.max(initial=0)) + 1
        codes, span = codes * n + part + 1, span * n
    return codes


def duplicated_key(frame: pd.DataFrame, key: list[str], *, keep: str | bool = "first") -> np.ndarray:
    """Boolean mask of rows whose key repeats an earlier row's (``keep=False``: every row of a repeated key).

    Same result as ``frame.duplicated(subset=key, keep=keep)``, faster on text keys of tens of
    millions of rows (the keys are hashed by pyarrow).

    Examples
    --------
    >>> duplicated_key(pd.DataFrame({"a": ["x", "y", "x"], "b": [1.0, 2.0, 1.0]}), ["a", "b"]).tolist()
    [False, False, True]
    """
    return pd.Series(key_codes(frame, key)).duplicated(keep=keep).to_numpy()


def table_schema(table: str | Table, *, columns: list[str] | None = None) -> pa.DataFrameSchema:
    """The pandera schema of one contract table, as checked on the parsed (not yet final) frame.

    Text columns are ``str``, numeric columns ``float64`` (NaN = empty); the schema checks allowed
    values, ranges, whole numbers, nullability and uniqueness of the key (a dataframe-level check
    named ``unique_key`` that fails on every repeat of an earlier row's key). ``columns``
    restricts it to the columns a file has (default: every contract column, optional ones not
    required).

    Examples
    --------
    >>> table_schema("attendance").checks[0].name
    'unique_key'
    """
    t = TABLES[table] if isinstance(table, str) else table
    names = list(t.columns) if columns is None else [c for c in t.columns if c in columns]
    cols = {}
    for name in names:
        c = t.columns[name]
        cols[name] = pa.Column(
            "float64" if c.kind in NUMERIC_KINDS else str,
            nullable=c.nullable,
            required=c.required,
            checks=[ch for ch, _ in column_checks(c)],
        )
    checks = []
    if set(t.key) <= set(names):
        key = list(t.key)
        checks.append(
            pa.Check(lambda df: pd.Series(~duplicated_key(df, key), index=df.index), name="unique_key")
        )
    return pa.DataFrameSchema(cols, checks=checks, name=t.name)


def as_chunked_array(s: pd.Series) -> pya.ChunkedArray:
    """A pandas Series as a pyarrow ChunkedArray (what the pyarrow compute functions here expect).

    Examples
    --------
    >>> as_chunked_array(pd.Series(["a", None])).to_pylist()
    ['a', None]
    """
    a = pya.array(s)
    return a if isinstance(a, pya.ChunkedArray) else pya.chunked_array([a])
