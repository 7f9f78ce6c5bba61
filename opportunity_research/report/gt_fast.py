"""great_tables' ``GT`` with its unformatted cells escaped a column at a time, and its table markup without the CSS
(the same HTML, a fraction of the time).

Every table of a report is laid out by `great_tables <https://posit-dev.github.io/great-tables/>`_ from values
this package has already formatted as text (:func:`~opportunity_research.report.tables.table`), so no cell has a
great_tables formatter, and before rendering great_tables escapes every one of them on its own: one pandas
``iloc`` assignment per cell (great_tables 1.1, ``_migrate_unformatted_to_output``), about 0.35 CPU seconds of
each demo district's notebook. :class:`FastGT` does the same escaping (``html.escape(str(value))`` of every
visible cell that no formatter wrote and that is not missing) with one assignment per column; any other case
(another output context, a table that is not a pandas frame, a column of numbers) is left
to great_tables' own code. ``tests/test_gt_fast.py`` checks that the HTML is the same, byte for byte.

The report's pages style every table with one stylesheet of their own, so :func:`~opportunity_research.report.tables.table`
drops the ``<style>`` block ``as_raw_html`` puts in each table; :meth:`FastGT.markup` gives the same markup without
compiling that CSS first (about a sixth of a small table's rendering, for some forty tables of a demo district's report,
scorecard and summaries). Before the body's rows, great_tables casts the whole original frame to text
(``cast_frame_to_string``) and fills the body's missing cells from it (``replace_null_frame``), about ten pandas
operations a table (half of a report table's body: 12.4 ms, 5.8 ms without them); for a frame of text cells (every
column text or Python objects, every value a ``str`` or missing, as :func:`~opportunity_research.report.tables.table`
gives) :meth:`FastGT.markup` does both with one NumPy pass (:class:`TextCells`), and leaves any other frame to
great_tables. The rows are then written a cell at a time, each read with a pandas ``iloc`` (about 15 µs); the filled
body of text cells is a :class:`BodyCells`, whose cells are read from its NumPy array instead.

It overrides a private method of great_tables 1.1 (the version ``requirements.lock`` pins), so
:data:`TableClass` is :class:`FastGT` only under great_tables 1.1 and great_tables' own ``GT`` under any other
version: an upgrade can only make the tables slower, never different.
"""

from __future__ import annotations

import html
from collections import defaultdict
from importlib.metadata import version
from typing import ClassVar

import numpy as np
import pandas as pd
from great_tables import GT
from great_tables._gt_data import Body
from great_tables._render_checks import _render_check
from great_tables._tbl_data import _get_cell, cast_frame_to_string, replace_null_frame
from great_tables._utils import _migrate_unformatted_to_output
from great_tables._utils_render_html import (
    _get_table_aria_attrs,
    _get_table_defs,
    create_body_component_h,
    create_columns_component_h,
    create_footer_component_h,
    create_heading_component_h,
)

__all__ = ["BodyCells", "FastGT", "TableClass", "TextCells"]


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

    def markup(self) -> str:
        """The ``<table>`` element ``as_raw_html()`` gives, without the ``<div>`` and the ``<style>`` around it (and
        without compiling that CSS): great_tables 1.1's ``GT._render_as_html`` up to its table.

        Examples
        --------
        >>> import pandas as pd
        >>> gt = FastGT(pd.DataFrame({"group": ["A & B"], "n": ["12"]}), id="t")
        >>> gt.markup() in gt.as_raw_html(), gt.markup().startswith('<table class="gt_table"'), "<style>" in gt.markup()
        (True, True, False)
        """
        data = self._build_data(context="html")
        _render_check(data)
        heading_component = create_heading_component_h(data=data)
        column_labels_component = create_columns_component_h(data=data)
        body_component = create_body_component_h(
            data=data._replace(_tbl_data=TextCells(data._tbl_data), _body=Body(TextCells(data._body.body)))
        )
        footer_component = create_footer_component_h(data=data)
        table_defs = _get_table_defs(data=data)
        quarto_disable_processing = str(data._options.quarto_disable_processing.value).lower()
        quarto_use_bootstrap = str(data._options.quarto_use_bootstrap.value).lower()
        colgroups = "" if table_defs["table_colgroups"] is None else f"\n{table_defs['table_colgroups']}\n"
        style = "" if table_defs["table_style"] is None else f' style="{table_defs["table_style"]}"'
        return (
            f'<table{style} class="gt_table"{_get_table_aria_attrs(data=data)} data-quarto-disable-processing='
            f'"{quarto_disable_processing}" data-quarto-bootstrap="{quarto_use_bootstrap}">{colgroups}\n<thead>\n'
            f"{heading_component}\n{column_labels_component}\n</thead>\n{body_component}\n{footer_component}\n"
            "</table>\n"
        )


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
            # the column made anew from its cells as Python objects (writing into the body's pyarrow strings cell by
            # cell cost as much again), of the body's own type
            new = body.iloc[:, j]
            cells = new.to_numpy(dtype=object)
            cells[rows] = text
            body.isetitem(j, pd.Series(pd.array(cells, dtype=new.dtype), index=new.index, name=new.name))
    if rest:
        # the other columns' cells, as great_tables escapes them (every cell it does not see here counts as done)
        every = {(col, r) for col in data_tbl.columns for r in range(len(data_tbl))}
        data = _migrate_unformatted_to_output(data, data_tbl, formatted_cells | (every - rest), context)
    return data


class TextCells(pd.DataFrame):
    """A pandas frame marked for :meth:`FastGT.markup`'s body: great_tables' ``cast_frame_to_string`` and
    ``replace_null_frame`` (registered for this class) take one NumPy pass over a frame of text cells (:func:`_text`),
    and great_tables' own pandas code for any other frame; either returns a pandas ``DataFrame`` (the filled body of
    text cells a :class:`BodyCells`). Every other great_tables function sees a pandas frame.

    Examples
    --------
    >>> import pandas as pd
    >>> orig = TextCells(pd.DataFrame({"a": ["x", None], "b": ["y", "z"]}))
    >>> text = cast_frame_to_string(orig)
    >>> type(text).__name__, text["a"].tolist()
    ('DataFrame', ['x', None])
    >>> replace_null_frame(TextCells(pd.DataFrame({"a": [None, "1"], "b": ["2", None]})), text).values.tolist()
    [['x', '2'], ['1', 'z']]
    """

    @property
    def _constructor(self):
        return pd.DataFrame  # a frame derived from this one (a copy, a slice) is a plain one


def _text(df: pd.DataFrame) -> np.ndarray | None:
    """``df``'s cells as a 2-D object array if every column is text or Python objects and every cell a ``str`` or
    missing (then great_tables' pandas casts leave each ``str`` as it is); ``None`` otherwise."""
    if not df.columns.is_unique or not all(d == object or pd.api.types.is_string_dtype(d) for d in df.dtypes):
        return None
    cells = df.to_numpy(dtype=object)
    missing = pd.isna(cells)
    if not all(type(v) is str for v in cells[~missing]):
        return None
    return cells


@cast_frame_to_string.register(TextCells)
def _cast_text(df: TextCells) -> pd.DataFrame:
    cells = _text(df)
    if cells is None:
        return cast_frame_to_string.dispatch(pd.DataFrame)(pd.DataFrame(df))
    # astype("string").astype(object).where(df.notna(), None): each str itself, each missing value None
    return pd.DataFrame(
        np.where(pd.isna(cells), None, cells), index=df.index, columns=df.columns, dtype=object
    )


@replace_null_frame.register(TextCells)
def _replace_text(df: TextCells, replacement) -> pd.DataFrame:
    cells = _text(df)
    same = isinstance(replacement, pd.DataFrame) and all(replacement.dtypes == object)
    if (
        cells is None
        or not same
        or not (df.index.equals(replacement.index) and df.columns.equals(replacement.columns))
    ):
        return replace_null_frame.dispatch(pd.DataFrame)(pd.DataFrame(df), replacement)
    # astype(object).fillna(replacement): a missing cell takes the replacement's cell (text, or None)
    return BodyCells(
        np.where(pd.isna(cells), replacement.to_numpy(dtype=object), cells), df.index, df.columns
    )


class BodyCells(pd.DataFrame):
    """The filled body great_tables lays out row by row (from a :class:`TextCells` body): a pandas frame of Python
    objects whose cells great_tables' ``_get_cell`` (registered for this class) reads from the NumPy array it was
    made from, instead of one pandas ``iloc`` a cell (about 15 µs each, for every cell of every table).

    Examples
    --------
    >>> import numpy as np
    >>> from great_tables._tbl_data import _get_cell
    >>> body = BodyCells(np.array([["a", "b"], ["c", None]], dtype=object), pd.RangeIndex(2), pd.Index(["x", "y"]))
    >>> _get_cell(body, 1, "x"), _get_cell(body, 1, "y"), body.iloc[1, 0]
    ('c', None, 'c')
    """

    _metadata: ClassVar[list[str]] = ["_cells", "_column_at"]

    def __init__(self, cells: np.ndarray, index: pd.Index, columns: pd.Index):
        super().__init__(cells, index=index, columns=columns, dtype=object)
        self._cells = cells
        self._column_at = {c: j for j, c in enumerate(columns)}

    @property
    def _constructor(self):
        return pd.DataFrame  # a frame derived from this one (a copy, a slice) is a plain one


@_get_cell.register(BodyCells)
def _body_cell(data: BodyCells, row: int, column: str):
    return data._cells[row, data._column_at[column]]


#: The table class the report uses: :class:`FastGT` under the great_tables version it was written against (1.1),
#: great_tables' own ``GT`` otherwise.
TableClass = FastGT if version("great_tables").startswith("1.1.") else GT
