"""``process`` writes each table but the first in a thread while the next table is read and checked; the first (the
largest file) is written before the next is read. The tables are the same as written one after the other."""

from __future__ import annotations

import threading

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
    started, writes, moved = [], [], threading.Condition()
    check, across, write = validation.check_table, validation.check_across_tables, dataset._write_parquet

    def step(name):
        with moved:
            started.append(name)
            moved.notify_all()

    def check_table(path, t, *args, **kwargs):
        step(t.name)
        return check(path, t, *args, **kwargs)

    def check_across_tables(*args, **kwargs):
        step(None)  # every table read and checked
        return across(*args, **kwargs)

    def write_parquet(table, coded, target):
        if (
            writes
        ):  # a later table: written until the main thread moves on (the next check, or the rules across)
            with moved:
                moved.wait_for(lambda: started[-1] != target.stem, timeout=10)
        writes.append((target.stem, started[-1]))  # what the main thread started last while this was written
        write(table, coded, target)

    monkeypatch.setattr(validation, "check_table", check_table)
    monkeypatch.setattr(validation, "check_across_tables", check_across_tables)
    monkeypatch.setattr(dataset, "_write_parquet", write_parquet)
    final = dataset.process_district(d, processed_root=tmp_path / "two", key=KEY)
    tables = [name for name in started if name is not None]
    assert len(writes) >= 3 and [name for name, _ in writes] == [t for t in tables if t in dict(writes)]
    assert writes[0][1] == writes[0][0]  # the first table: written before the next is checked
    for name, meanwhile in writes[1:-1]:  # each later one while the next is checked
        assert tables.index(meanwhile) == tables.index(name) + 1, name
    assert writes[-1][1] is None  # the last: while the rules across tables run
    for name in sorted(p.name for p in reference.glob("*.parquet")):
        assert pq.read_table(final / name).equals(pq.read_table(reference / name)), name
