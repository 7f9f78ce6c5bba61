"""Atomic file writes, the one home for them.

A file is written under a temporary name (``.<name>.<random>.tmp``) in its own folder and then renamed over
the target, so a reader sees the old file or the new one, never half of one, and a failed write leaves no
temporary file behind. ``mkstemp`` creates the file with mode 0600; pass ``mode`` (e.g. 0o644) for a file
meant for readers.

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends without error.

    For writers that need a path rather than bytes (a browser printing a PDF, a library saving a file). The
    folder is created when missing. On an error the temporary file is removed and the error re-raised;
    ``path`` is left as it was.

    Parameters
    ----------
    path
        The file to write.
    mode
        Permission bits set on the new file before the rename (default: leave ``mkstemp``'s 0600).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "out.txt", mode=0o644) as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "out.txt").read_text(), oct((folder / "out.txt").stat().st_mode & 0o777)
    ('done', '0o644')
    >>> [p.name for p in folder.iterdir()]
    ['out.txt']
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    Parameters
    ----------
    path
        The file to write; its folder is created when missing.
    data
        The file's bytes (encode text first, e.g. ``text.encode("utf-8")``).
    mode
        Permission bits of the new file (default: ``mkstemp``'s 0600).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "table.csv"
    >>> atomic_write(target, b"a,b\\n1,2\\n")
    >>> target.read_bytes()
    b'a,b\\n1,2\\n'
    >>> oct(target.stat().st_mode & 0o777)
    '0o600'
    """
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)
