"""great_tables' ``GT`` with its unformatted cells escaped a column at a time (the same HTML, a fraction of the time).

Every table of a report is laid out by `great_tables <https://posit-dev.github.io/great-tables/>`_ from values
this package has already formatted as text (:func:`~opportunity_research.report.tables.table`), so no cell has a
great_tables formatter, and before rendering great_tables escapes every one of them on its own: one pandas
``iloc`` assignment per cell (great_tables 1.1, ``_migrate_unformatted_to_output``), about 0.35 CPU seconds of
each demo district's notebook. :class:`FastGT` does the same escaping (``html.escape(str(value))`` of every
visible cell that no formatter wrote and that is not missing) with one assignment per column; any other case
(another output context, a table that is not a pandas frame, a column of numbers) is left
to great_tables' own code. ``tests/test_gt_fast.py`` checks that the HTML is the same, byte for byte.

It overrides a private method of great_tables 1.1 (the version ``requirements.lock`` pins), so
:data:`TableClass` is :class:`FastGT` only under great_tables 1.1 and great_tables' own ``GT`` under any other
version: an upgrade can only make the tables slower, never different.
"""

from __future__ import annotations

import html
from collections import defaultdict
from importlib.metadata import version

import numpy as np
import pandas as pd
from great_tables import GT
from great_tables._utils import _migrate_unformatted_to_output

__all__ = ["FastGT", "TableClass"]


class FastGT(GT):
    """``great_tables.GT``, rendered with :func:`escape_unformatted` instead of great_tables' cell-by-cell
    escaping (see the module docstring).

    Examples
    --------
    >>> import pandas as pd
    >>> from great_tables import GT
    >>> frame = pd.DataFrame({"group": ["A & B", "<C>"], "share": ["25%", None]})
    >>> fast = FastGT(frame, id="t").as_raw_html()
    >>> fast == GT(frame, id="t").as_raw_html(), "A &amp; B" in fast, "&lt;C&gt;" in fast
    (True, True, True)
    """

    def _render_formats(self, context: str):
        # great_tables 1.1's GT._render_formats, with escape_unformatted for its _migrate_unformatted_to_output
        new_body = self._body.copy()
        formatted = new_body.render_formats(self._tbl_data, self._formats, context)
        formatted |= new_body.render_formats(self._tbl_data, self._substitutions, context)
        result = self._replace(_body=new_body)
        result = escape_unformatted(result, self._tbl_data, formatted, context)
        new_stub = self._stub.update_group_row_labels(result._body, self._tbl_data, self._boxhead)
        return result._replace(_stub=new_stub)


def escape_unformatted(data, data_tbl, formatted_cells: set, context: str):
    """Escape every visible cell of ``data_tbl`` that no formatter wrote (``formatted_cells``: ``(column, row)``)
    into ``data``'s body, a column at a time: what great_tables' ``_migrate_unformatted_to_output`` does one cell
    at a time. Missing values are left for great_tables to fill in later, as it does.

    Examples
    --------
    >>> import pandas as pd
    >>> from great_tables import GT
    >>> gt = GT(pd.DataFrame({"a": ["x < y", None]}))
    >>> out = escape_unformatted(gt._replace(_body=gt._body.copy()), gt._tbl_data, set(), "html")
    >>> out._body.body["a"].tolist()
    ['x &lt; y', <NA>]
    """
    body = data._body.body
    if context != "html" or not isinstance(data_tbl, pd.DataFrame) or not isinstance(body, pd.DataFrame):
        return _migrate_unformatted_to_output(data, data_tbl, formatted_cells, context)
    done = defaultdict(set)
    for col, row in formatted_cells:
        done[col].add(row)
    rest: set = set()  # columns great_tables escapes itself (numbers, dates, ...)
    for j, col in enumerate(data_tbl.columns):
        values = data_tbl.iloc[:, j]
        plain = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)  # Python objects or text
        if not plain or not isinstance(col, str) or body.columns.get_loc(col) != j:
            rest |= {(col, r) for r in range(len(data_tbl))}
            continue
        skip = done.get(col, ())
        rows, text = [], []
        for i, v in enumerate(values.to_numpy(dtype=object)):
            if i in skip or v is None or pd.isna(v):
                continue
            rows.append(i)
            text.append(html.escape(str(v)))
        if rows:
            new = body.iloc[:, j].copy()
            new.iloc[np.asarray(rows, dtype=np.int64)] = text
            body.isetitem(j, new)
    if rest:
        # the other columns' cells, as great_tables escapes them (every cell it does not see here counts as done)
        every = {(col, r) for col in data_tbl.columns for r in range(len(data_tbl))}
        data = _migrate_unformatted_to_output(data, data_tbl, formatted_cells | (every - rest), context)
    return data


#: The table class the report uses: :class:`FastGT` under the great_tables version it was written against (1.1),
#: great_tables' own ``GT`` otherwise.
TableClass = FastGT if version("great_tables").startswith("1.1.") else GT
