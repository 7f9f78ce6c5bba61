"""``process`` keeps freed pages for the next table while a district is processed (jemalloc's decay in the arenas
made meanwhile, glibc's heap neither mapping arrays on their own nor trimming), and sets both back after, its free
pages returned: the tables are the same either way."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from opportunity_research.intake import dataset

try:
    from .districtkit import make_valid_district
except ImportError:  # pragma: no cover - tests/ not a package
    from districtkit import make_valid_district

KEY = "0123456789abcdef"


def test_freed_pages_are_kept_while_a_district_is_processed_and_returned_after(tmp_path, monkeypatch):
    d = make_valid_district(tmp_path / "d")
    reference = dataset.process_district(d, processed_root=tmp_path / "one", key=KEY)
    calls, during = [], []

    class Glibc:
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setattr(dataset, "_glibc", Glibc)
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", lambda ms: calls.append(("decay", ms)))
    write = dataset._write_parquet
    monkeypatch.setattr(dataset, "_write_parquet", lambda *a: during.append(list(calls)) or write(*a))
    final = dataset.process_district(d, processed_root=tmp_path / "two", key=KEY)
    jemalloc = pa.default_memory_pool().backend_name == "jemalloc"
    kept = [("decay", dataset.PROCESS_DECAY_MS)] * jemalloc + [
        ("mallopt", p, v) for p, v in dataset._GLIBC_KEPT.items()
    ]
    after = [("decay", 0)] * jemalloc + [("mallopt", p, v) for p, v in dataset._GLIBC_AFTER.items()]
    assert during and all(seen == kept for seen in during)  # every table written with the pages kept
    assert calls == kept + after + [("trim", 0)]
    for name in sorted(p.name for p in reference.glob("*.parquet")):
        assert pq.read_table(final / name).equals(pq.read_table(reference / name)), name
