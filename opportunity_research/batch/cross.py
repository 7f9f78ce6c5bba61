"""The batch's last step: the cross-district report over every district whose report is current.

Called by :func:`opportunity_research.batch.runner.run_batch` after all districts, with the merged manifest; the
notebook runs as one more task of the same engine (:class:`~opportunity_research.batch.runner_task.Job` ``"cross"``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .runner_engine import Engine
from .runner_parameters import CROSS_DISTRICT, check_parameters, notebook_parameters
from .runner_task import DistrictResult, Job, mark_stale, rel_path, shown_path

__all__ = ["run_cross"]


def _findings_kind(path: Path) -> str | None:
    """The ``kind`` a findings.json records (None for a district report, or when unreadable)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return found.get("kind") if isinstance(found, dict) else None


def run_cross(
    engine: Engine | None,
    manifest: dict,
    cross_path: Path | None,
    *,
    root: Path,
    reports: Path,
    min_n: int,
    common: dict,
) -> DistrictResult | None:
    """The cross-district report over every district whose report is current (this run's or earlier).

    A counts-only district's report (findings of kind ``level_counts``: no resources to compare) is left out.

    ``cross_path`` is the cross-district notebook (``None``: no cross-district report, returns ``None``);
    ``manifest`` the merged batch manifest; ``common`` the keyword arguments every
    :class:`~opportunity_research.batch.runner_task.Job` of the run shares. A missing notebook or no current
    district report gives a ``"skipped"`` result without running anything.

    Examples
    --------
    >>> from pathlib import Path
    >>> root = Path("/nonexistent-project")
    >>> kw = dict(root=root, reports=root / "reports", min_n=10, common={})
    >>> run_cross(None, {"districts": []}, None, **kw) is None
    True
    >>> r = run_cross(None, {"districts": []}, root / "notebooks" / "cross_district.ipynb", **kw)
    >>> r.status, r.reason
    ('skipped', 'notebooks/cross_district.ipynb does not exist yet')
    """
    ok_ids = [
        e["district_id"]
        for e in manifest["districts"]
        if e.get("status") == "ok"
        and (reports / e["district_id"] / "findings.json").exists()
        and _findings_kind(reports / e["district_id"] / "findings.json") != "level_counts"
    ]
    if cross_path is None:
        return None
    if not cross_path.is_file():
        return DistrictResult(
            CROSS_DISTRICT, "skipped", reason=f"{shown_path(cross_path, root)} does not exist yet"
        )
    if not ok_ids:
        return DistrictResult(CROSS_DISTRICT, "skipped", reason="no district report succeeded")
    cdeclared = notebook_parameters(cross_path)
    cparams = {"reports_dir": rel_path(reports, root), "districts": ok_ids}
    if "output_dir" in cdeclared:
        cparams["output_dir"] = f"{rel_path(reports, root)}/{CROSS_DISTRICT}"
    if "min_n" in cdeclared:
        cparams["min_n"] = min_n
    problems = check_parameters(cparams, cdeclared)
    if problems:
        cross = mark_stale(
            DistrictResult(CROSS_DISTRICT, "failed", reason="invalid parameters: " + "; ".join(problems)),
            reports,
        )
    else:
        out: list[DistrictResult] = []
        job = Job(
            "cross",
            CROSS_DISTRICT,
            str(cross_path),
            parameters=cparams,
            id_districts=tuple(ok_ids),
            require_findings=False,
            **common,
        )
        engine.run([job], out.append, last=True)  # the batch's last task
        cross = out[0]
    cross.districts = ok_ids
    return cross
