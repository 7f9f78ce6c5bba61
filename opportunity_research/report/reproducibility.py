"""The reproducibility card of a report: parameters, package versions, input checksums, git commit."""

from __future__ import annotations

import subprocess
from importlib import metadata

import pandas as pd

from ..intake.dataset import District
from ..version import __version__

__all__ = ["git_commit", "reproducibility_card"]

_PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "pyarrow", "papermill", "matplotlib")


def git_commit() -> str:
    """The checked-out commit of the project (``"unknown"`` outside a git checkout).

    Examples
    --------
    >>> c = git_commit()
    >>> c == "unknown" or len(c) == 12
    True
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], check=False, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def reproducibility_card(district: District, *, parameters: dict) -> pd.DataFrame:
    """Two-column table (``item``, ``value``): everything needed to reproduce a report.

    Input files are identified by SHA-256 checksums of the raw CSV files (recorded at processing), never by
    path. Parameters are shown as given (they must not contain paths or identifiers); every one that differs
    from the package's defaults is also stated in words
    (:func:`opportunity_research.report.settings.changed_settings`), and the card says whether the git working
    tree had uncommitted changes (``clean``, ``modified (N files not committed)``, or ``unknown``).

    Examples
    --------
    >>> import pandas as pd
    >>> from opportunity_research.intake.dataset import District
    >>> d = District("demo", {}, manifest={"inputs": {"students.csv": "ab" * 32}})
    >>> card = reproducibility_card(d, parameters={"min_n": 20})
    >>> card["item"].tolist()[:5]
    ['opportunity-research', 'git commit', 'git working tree', 'settings changed from the defaults', 'parameter: min_n']
    >>> c = card.set_index("item")["value"]
    >>> c["settings changed from the defaults"], c["input sha256: students.csv"]
    ('Smallest published cell: 20 students (default: 10)', 'abababababababab')
    """
    from .settings import changed_settings, working_tree

    changed = changed_settings(parameters)
    rows = [
        ("opportunity-research", __version__),
        ("git commit", git_commit()),
        ("git working tree", working_tree()),
        (
            "settings changed from the defaults",
            "; ".join(changed) if changed else "none (every default used)",
        ),
    ]
    rows += [(f"parameter: {k}", repr(v)) for k, v in parameters.items()]
    rows += [(p, metadata.version(p)) for p in _PACKAGES]
    rows += [
        (f"input sha256: {name}", digest[:16])
        for name, digest in sorted(district.manifest.get("inputs", {}).items())
    ]
    return pd.DataFrame(rows, columns=["item", "value"])
