"""What ``opportunity-research run`` prints after a batch: one line per district, then why each failure failed."""

from __future__ import annotations

import textwrap

__all__ = ["batch_summary"]


def batch_summary(result) -> str:
    """The table printed after a batch (district, status, seconds, reason), then the reasons of the failures.

    ``result`` is a :class:`~opportunity_research.batch.runner.BatchResult`.

    Examples
    --------
    >>> from pathlib import Path
    >>> from opportunity_research.batch.runner import BatchResult, DistrictResult
    >>> ok = DistrictResult("demo_lakeside", "ok", seconds=12.3)
    >>> bad = DistrictResult("demo_riverton", "failed", reason="contract violation", seconds=1.0)
    >>> print(batch_summary(BatchResult([ok, bad], None, Path("m.json"), Path("index.html"))))  # doctest: +NORMALIZE_WHITESPACE
    district       status  seconds  reason
    -------------  ------  -------  ------
    demo_lakeside  ok      12.3
    demo_riverton  failed  1.0      contract violation
    <BLANKLINE>
    why:
      demo_riverton: contract violation
    """
    everything = result.districts + ([result.cross] if result.cross is not None else [])
    rows = [
        (
            r.district_id,
            "stale" if r.stale else r.status,
            f"{r.seconds:.1f}",
            (r.reason.splitlines() or [""])[0],
        )
        for r in everything
    ]
    head = ("district", "status", "seconds", "reason")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head[:3])]

    def fmt(r):
        reason = r[3] if len(r[3]) <= 100 else r[3][:97] + "..."
        return "  ".join(str(v).ljust(w) for v, w in zip(r[:3], widths)) + "  " + reason

    lines = [fmt(head), fmt(tuple("-" * w for w in widths) + ("-" * 6,))] + [fmt(r) for r in rows]
    failed = [r for r in everything if r.status == "failed"]
    if failed:
        lines.append("\nwhy:")
        for r in failed:
            lines += textwrap.wrap(
                r.reason,
                width=110,
                initial_indent=f"  {r.district_id}: ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
            if r.stale:
                lines.append(
                    f"    kept its last good report (published {r.last_good}), marked stale in the index"
                )
            if r.traceback:
                lines += ["    | " + ln for ln in r.traceback.splitlines()]
            if r.log:
                lines.append(
                    f"    failed notebook and full traceback (private, may hold student data): {r.log}/"
                )
    retried = [r.district_id for r in result.districts if r.runs > 1]
    if retried:
        lines.append(f"\nre-run after a worker was lost: {', '.join(retried)} (each published once)")
    return "\n".join(lines)
