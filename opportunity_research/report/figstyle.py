"""The look of every figure: a colour-blind-safe palette with markers and hatches, the shared matplotlib
settings, and saving a figure as a PNG with its alt text (atomically). :mod:`opportunity_research.report.plots`
draws with these and re-exports them."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure

from ..files import atomic_write

__all__ = ["GREY", "HATCHES", "MARKERS", "PALETTE", "STYLE", "apply_style", "save_figure", "style"]

#: Okabe & Ito (2008) colour-blind-safe palette (yellow left out: too light on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Marker shapes paired with the palette, so series differ without colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Bar hatches paired with the palette.
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "+++", "ooo")
#: The grey of axes and secondary text.
GREY = "#4d4d4d"

#: matplotlib settings shared by every figure.
STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": GREY,
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "axes.grid.axis": "x",
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.labelcolor": "#222222",
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.6,
    "font.size": 10,
    "font.family": "DejaVu Sans",
    "xtick.color": GREY,
    "ytick.color": "#222222",
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "hatch.color": "#222222",
    "hatch.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 6,
    "errorbar.capsize": 3,
}


@contextmanager
def style() -> Iterator[None]:
    """Context manager applying :data:`STYLE` to the figures created inside it.

    Examples
    --------
    >>> import matplotlib
    >>> with style():
    ...     inside = matplotlib.rcParams["axes.grid"], matplotlib.rcParams["savefig.dpi"]
    >>> inside
    (True, 150.0)
    """
    with mpl.rc_context(STYLE):
        yield


def apply_style() -> None:
    """Apply :data:`STYLE` globally (e.g. at the top of a notebook) for figures made outside this module.

    Examples
    --------
    >>> import matplotlib
    >>> with matplotlib.rc_context():  # restores the settings afterwards
    ...     apply_style()
    ...     matplotlib.rcParams["axes.grid"], matplotlib.rcParams["figure.dpi"]
    (True, 110.0)
    """
    mpl.rcParams.update(STYLE)


def save_figure(fig: Figure, path: str | os.PathLike, *, alt: str | None = None, dpi: int = 150) -> str:
    """Write ``fig`` as a PNG atomically (temporary file, then rename) and return its alt text.

    The alt text (``alt`` or ``fig.alt_text``; required) is also stored in the PNG's ``Description``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([2015, 2016], [0.2, 0.25])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "figs" / "trend.png"
    >>> save_figure(fig, path, alt="Belonging rose from 20% to 25%."), path.read_bytes()[1:4]
    ('Belonging rose from 20% to 25%.', b'PNG')
    """
    alt = alt if alt is not None else getattr(fig, "alt_text", None)
    if not alt or not str(alt).strip():
        raise ValueError(f"save_figure({Path(path).name}): the figure has no alt text; pass alt='...'")
    path = Path(path)
    buf = io.BytesIO()
    with style():  # settings read at draw time (e.g. hatch line width) come from the same style
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Description": str(alt), "Software": None})
    atomic_write(path, buf.getvalue())
    return str(alt)
