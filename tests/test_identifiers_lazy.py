"""The batch names the folders of a district's identifiers before its notebook runs; ``Identifiers`` reads them when
the screen or a redaction first needs them, once, also when two threads ask at the same time."""

from __future__ import annotations

import threading

from opportunity_research.disclosure.identifiers import Identifiers


def _folder(path, n):
    path.mkdir()
    rows = "".join(f"L{i:07d},3\n" for i in range(n))
    (path / "students.csv").write_text("student_id,grade\n" + rows)
    return path


def test_read_holds_no_id_until_the_lookups_need_them(tmp_path):
    ids = Identifiers(["S0000001"])
    ids.read(_folder(tmp_path / "raw", 3))
    assert len(ids._arrays) == 1  # only the strings given: the folder is not read yet
    assert ids.lookups(5)[0] == {"s0000001", "l0000000", "l0000001", "l0000002"}
    held = len(ids._arrays)
    assert ids.lookups(5)[0] is ids.lookups(5)[0] and len(ids._arrays) == held  # read once


def test_a_folder_named_after_the_lookups_is_read_for_the_next(tmp_path):
    ids = Identifiers()
    ids.read(_folder(tmp_path / "a", 1))
    first = ids.lookups(5)[0]
    ids.read(_folder(tmp_path / "b", 2))
    assert first == {"l0000000"} and ids.lookups(5)[0] == {"l0000000", "l0000001"}


def test_threads_asking_at_once_all_see_every_id(tmp_path):
    folders = [_folder(tmp_path / f"d{i}", 2000) for i in range(4)]
    for _ in range(5):
        ids = Identifiers()
        ids.read(*folders)
        seen, start = [], threading.Barrier(4)

        def ask(ids=ids, seen=seen, start=start):
            start.wait()
            seen.append(len(ids.lookups(5)[0]))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [2000] * 4
