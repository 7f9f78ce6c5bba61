"""``read_rows`` reads a row group's columns only when one of its rows is selected: the rows, dtypes and labels are
those of the whole table's selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from opportunity_research.intake import dataset


def test_row_groups_without_a_selected_row_are_not_read(tmp_path, monkeypatch):
    # in the order of the selecting column, as the assessments are: row groups of 4 rows, spring in groups 1 and
    # 2 (all of group 1, half of group 2), none in groups 0 and 3
    t = pd.DataFrame(
        {
            "window": pd.array(["fall"] * 4 + ["spring"] * 6 + ["winter"] * 6, dtype="str"),
            "score": np.arange(16, dtype=float),
            "id": pd.array([f"s{i}" for i in range(16)], dtype="str"),
        }
    )
    path = tmp_path / "t.parquet"
    t.to_parquet(path, row_group_size=4)
    read, real_read = [], pq.ParquetFile.read_row_group
    monkeypatch.setattr(
        pq.ParquetFile,
        "read_row_group",
        lambda self, i, columns=None, **kw: (
            read.append((i, tuple(columns))) or real_read(self, i, columns=columns, **kw)
        ),
    )
    got = dataset.read_rows(path, ["window"], lambda f: f["window"] == "spring", columns=["score", "id"])
    whole = pd.read_parquet(path, columns=["score", "id"])
    pd.testing.assert_frame_equal(got, whole[t["window"] == "spring"], check_exact=True)
    assert [i for i, cols in read if cols == ("score", "id")] == [1, 2]  # groups 0 and 3: their window only
