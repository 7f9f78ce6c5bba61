"""``process`` writes each table's pseudonyms one row group at a time, hashing the distinct ids a block at a time:
the tables are the same whatever the row groups and blocks (empty ids, header-only tables included)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from opportunity_research.intake import dataset

try:
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district

KEY = "0123456789abcdef"


def _district(folder):
    d = make_valid_district(folder / "d")
    (d / "programs.csv").write_text((d / "programs.csv").read_text().splitlines()[0] + "\n")  # header only
    return d


def test_tables_do_not_depend_on_row_groups_or_hash_blocks(tmp_path, monkeypatch):
    d = _district(tmp_path)
    whole = dataset.process_district(d, processed_root=tmp_path / "whole", key=KEY)
    monkeypatch.setattr(dataset, "ROW_GROUP", 7)
    monkeypatch.setattr(dataset, "_HASH_BLOCK", 3)
    small = dataset.process_district(d, processed_root=tmp_path / "small", key=KEY)
    names = sorted(p.name for p in whole.glob("*.parquet"))
    assert names == sorted(p.name for p in small.glob("*.parquet")) and "programs.parquet" in names
    for name in names:
        a, b = pq.read_table(whole / name), pq.read_table(small / name)
        assert a.schema.equals(b.schema, check_metadata=True) and a.equals(b), name
    assert pq.ParquetFile(small / "assessments.parquet").metadata.num_row_groups > 1
    assert pq.read_table(small / "programs.parquet").num_rows == 0
    assert all(
        t.startswith("T-")
        for t in pq.read_table(small / "classrooms.parquet").column("teacher_id").to_pylist()
    )
    # the rows' pseudonyms are pseudonymize's
    students = pq.read_table(small / "assessments.parquet").to_pandas()["student_id"]
    raw = dataset.load_district("d", processed_root=tmp_path / "whole").assessments["student_id"]
    assert students.equals(raw)
    ids = pd.read_csv(d / "assessments.csv", dtype=str)["student_id"]
    assert students.equals(dataset.pseudonymize(ids, key=KEY, prefix="S-", salt="d"))


def test_missing_ids_stay_missing_across_row_groups(tmp_path, monkeypatch):
    frame = pd.DataFrame(
        {"student_id": pd.Series(["b", "a", None, "b", "c"] * 5, dtype="str"), "x": range(25)}
    )
    expected = dataset.pseudonymize(frame["student_id"], key=KEY, prefix="S-", salt="d")
    coded = {"student_id": dataset._pseudonyms(frame["student_id"], key=KEY, prefix="S-", salt="d", memo={})}
    monkeypatch.setattr(dataset, "ROW_GROUP", 4)
    dataset._write_parquet(pa.Table.from_pandas(frame, preserve_index=False), coded, tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 7
    assert table.schema.field("student_id").type == pa.large_string()
    assert table.column("student_id").to_pylist() == pa.array(expected).to_pylist()
    assert table.column("x").to_pylist() == list(range(25))
