"""CSV output of the generators: fast (pyarrow), one table at a time, in the contract's column order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..intake.contract import TABLES

__all__ = ["CsvSink", "CsvStream", "write_csv"]


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Fast CSV writer (pyarrow); missing values become empty cells.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_csv(pd.DataFrame({"a": [1, None], "b": ["x, y", "z"]}), path)
    >>> print(path.read_text(), end="")
    "a","b"
    1,"x, y"
    ,"z"
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


class CsvSink(dict):
    """A table dict that writes each table to ``<folder>/<name>.csv`` as it is set and keeps none of them.

    Generating a district then holds at most one finished table at a time, not all fifteen (a district of a
    million students has 12 million assessment and 7 million engagement rows).

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> sink = CsvSink(pathlib.Path(tempfile.mkdtemp()))
    >>> sink["schools"] = pd.DataFrame({"school_id": ["S1"], "school_name": ["Oak"], "school_level": ["elementary"]})
    >>> sink.rows, len(sink), (sink.folder / "schools.csv").read_text().splitlines()[0]
    ({'schools': 1}, 0, '"school_id","school_name","school_level"')
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder
        self.rows: dict[str, int] = {}

    def __setitem__(self, name: str, df: pd.DataFrame | None) -> None:
        if df is None:
            return
        cols = [c for c in TABLES[name].columns if c in df.columns]
        write_csv(df[cols], self.folder / f"{name}.csv")
        self.rows[name] = len(df)

    def stream(self, name: str) -> CsvStream:
        """A writer that takes the table in chunks (``append``) and writes one CSV, header once."""
        return CsvStream(self, name)


class CsvStream:
    """Chunked writer of one table: the same bytes as writing the concatenated table at once.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> sink = CsvSink(pathlib.Path(tempfile.mkdtemp()))
    >>> s = sink.stream("attendance")
    >>> for year in (2015, 2016):
    ...     s.append(pd.DataFrame({"student_id": ["a"], "school_year": [year], "days_enrolled": [180], "days_present": [170]}))
    >>> s.close(), sink.rows
    ([2015, 2016], {'attendance': 2})
    >>> len((sink.folder / "attendance.csv").read_text().splitlines())
    3
    """

    def __init__(self, sink: CsvSink, name: str):
        self.sink, self.name = sink, name
        self.writer = None
        self.years: set[int] = set()
        self.n = 0

    def append(self, df: pd.DataFrame) -> None:
        cols = [c for c in TABLES[self.name].columns if c in df.columns]
        table = pa.Table.from_pandas(df[cols], preserve_index=False)
        if self.writer is None:
            self.writer = pacsv.CSVWriter(
                self.sink.folder / f"{self.name}.csv",
                table.schema,
                write_options=pacsv.WriteOptions(quoting_style="needed"),
            )
            self.schema = table.schema
        self.writer.write_table(table.cast(self.schema))
        self.n += len(df)
        if "school_year" in df.columns:
            self.years.update(int(y) for y in pd.unique(df["school_year"]))

    def close(self) -> list[int]:
        if self.writer is not None:
            self.writer.close()
        self.sink.rows[self.name] = self.n
        return sorted(self.years)
