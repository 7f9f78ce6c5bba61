"""``process`` writes each table but the first in a thread while the next table is read and checked; the first (the
largest file) is written before the next is read. The tables are the same as written one after the other."""

from __future__ import annotations

import time

import pyarrow.parquet as pq

from opportunity_research.intake import dataset, validation

try:
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district

KEY = "0123456789abcdef"


def test_later_tables_are_written_while_the_next_is_read(tmp_path, monkeypatch):
    d = make_valid_district(tmp_path / "d")
    reference = dataset.process_district(d, processed_root=tmp_path / "one", key=KEY)
    checked, writes = [], []
    check, write = validation.check_table, dataset._write_parquet

    def check_table(path, t, *args, **kwargs):
        checked.append(t.name)
        return check(path, t, *args, **kwargs)

    def write_parquet(table, coded, target):
        # whether the next table's check starts while this one is being written (none does until this returns, when
        # the main thread waits for it)
        deadline = time.monotonic() + 1
        while checked[-1] == target.stem and time.monotonic() < deadline:
            time.sleep(0.01)
        writes.append((target.stem, checked[-1] != target.stem))
        write(table, coded, target)

    monkeypatch.setattr(validation, "check_table", check_table)
    monkeypatch.setattr(dataset, "_write_parquet", write_parquet)
    final = dataset.process_district(d, processed_root=tmp_path / "two", key=KEY)
    assert len(writes) >= 3 and [name for name, _ in writes] == [n for n in checked if n in dict(writes)]
    assert writes[0][1] is False  # the first table: written before the next is checked
    # every later table but the last written while the next is checked (the last: while the rules across run)
    assert all(overlapped for _, overlapped in writes[1:-1])
    for name in sorted(p.name for p in reference.glob("*.parquet")):
        assert pq.read_table(final / name).equals(pq.read_table(reference / name)), name
