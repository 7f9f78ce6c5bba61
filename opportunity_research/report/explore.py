"""Exploring one district's gaps interactively in JupyterLab (``notebooks/explore.ipynb``).

:func:`explore_gaps` is the computation behind the explorer: for one district, resource, subject and
student-group variable, each group's access against all other students or a named reference group,
under the cut points given. :class:`Explorer` wraps it in ipywidgets (district, resource, subject,
group variable, reference group, one slider per cut point); every change recomputes the table and the
chart. Only aggregate tables are shown, never a student row, labelled as in the report (label registry,
differences in percentage points; :func:`opportunity_research.report.presentation.gaps_table`).

Protection is the report's: every row the district report's joint disclosure pass hides
(:func:`report_hidden`, which runs :func:`opportunity_research.disclosure.district.analyze_district` with the report's
suppression once per district) is hidden here too, and the table shown is then protected on its own with the
same public pass (:func:`opportunity_research.disclosure.joint.protect_tables`), so a changed cut point or reference
group shows no small cell and no complement. A banner stays above the controls: the explorer is for analysts
with access to the district's data, it writes nothing anywhere, and only the district report publishes.

ipywidgets is imported only when an :class:`Explorer` is built, so the batch pipeline does not need it.

Examples
--------
>>> explore_options()["resources"][:2]
['grade_appropriate', 'strong_instruction']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from .. import config
from ..disclosure import joint as disclosure
from ..intake.contract import (
    CUT_POINTS,
    POOLED_RACE_ETHNICITY,
    RACE_ETHNICITY,
    SUBGROUP_VARIABLES,
    SUBJECTS_TESTED,
)
from ..intake.dataset import District, load_district
from ..stats.gaps import gap_table
from ..study import labels, measures
from ..study.analysis import check_analysis_options, pool_small_groups, reference_label

__all__ = ["BANNER", "Explorer", "explore_gaps", "explore_options", "processed_districts", "report_hidden"]

#: Bootstrap replicates used while exploring (fewer than the report's 1000, so changes show quickly).
EXPLORE_N_BOOT = 200
#: The "Compared with" control's value for "all other students" (a widget value, not the table value
#: ``contract.ALL_OTHERS``; a Dropdown shows None as a blank choice, so it gets a word of its own).
ALL_OTHERS_CHOICE = "all"
#: The explorer's persistent notice, above its controls.
BANNER = (
    "<b>For analysts with access to this district's data.</b> Cells the district report hides are hidden "
    "here too (‡), and this table is protected on its own against small cells (fewer than {min_n} students) "
    "and their complements; the explorer writes nothing to disk. Numbers shared with anyone come only "
    "from the published district report."
)
_REPORT_HIDDEN: dict[tuple, frozenset] = {}


def report_hidden(
    district_id: str, *, processed_dir: str | os.PathLike | None = None, min_n: int = config.MIN_CELL_SIZE
) -> frozenset[tuple[str, str, str, str]]:
    """The gap rows the district report hides: ``(measure, subject, group, level)`` of every row its joint
    disclosure pass suppresses (with the report's default settings; suppression is decided from counts, which
    cut points do not change). Computed once per district and cached; takes a few seconds.

    Examples
    --------
    Pinebrook's report pools its smallest race/ethnicity groups and hides no gap row:

    >>> hidden = report_hidden("demo_pinebrook")
    >>> type(hidden).__name__, sorted(hidden)
    ('frozenset', [])
    """
    key = (district_id, str(processed_dir), min_n)
    if key not in _REPORT_HIDDEN:
        from ..disclosure.district import analyze_district

        a = analyze_district(
            district_id, processed_dir=str(processed_dir) if processed_dir else None, min_n=min_n, n_boot=20
        )
        g = a.gaps[a.gaps["suppressed"].astype(bool)]
        _REPORT_HIDDEN[key] = frozenset(
            zip(
                g["measure"].astype(str),
                g["subject"].astype(str),
                g["group"].astype(str),
                g["level"].map(_level_key),
            )
        )
    return _REPORT_HIDDEN[key]


def _level_key(level) -> str:
    text = str(level)
    return text.removesuffix(".0")


def explore_options() -> dict[str, list]:
    """The choices the explorer offers: resources, subjects, group variables and each variable's levels.

    Examples
    --------
    >>> o = explore_options()
    >>> o["subjects"], o["levels"]["low_income"]
    (['ela', 'math'], [0, 1])
    """
    return {
        "resources": list(measures.RESOURCES),
        "subjects": list(SUBJECTS_TESTED),
        "variables": list(SUBGROUP_VARIABLES),
        "levels": {
            v: ([*RACE_ETHNICITY, POOLED_RACE_ETHNICITY] if v == "race_ethnicity" else [0, 1])
            for v in SUBGROUP_VARIABLES
        },
        "cuts": {k: v for k, v in CUT_POINTS.items()},
    }


def processed_districts(processed_dir: str | os.PathLike | None = None) -> list[str]:
    """Ids of the districts with processed tables (a ``manifest.json``) under ``processed_dir``.

    Examples
    --------
    >>> import tempfile
    >>> processed_districts(tempfile.mkdtemp())
    []
    """
    root = config.resolve(processed_dir) if processed_dir is not None else config.processed_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith(".") and (p / "manifest.json").exists()
    )


def explore_gaps(
    district: District,
    *,
    resource: str = "grade_appropriate",
    subject: str = "ela",
    variable: str = "race_ethnicity",
    reference=None,
    cuts: dict | None = None,
    min_n: int = config.MIN_CELL_SIZE,
    n_boot: int = EXPLORE_N_BOOT,
    seed: int = 0,
    hidden: frozenset | set | None = None,
    protect: bool = True,
) -> pd.DataFrame:
    """Access to one resource in one subject by the levels of one student-group variable.

    Parameters
    ----------
    district
        Processed district.
    resource, subject, variable
        What to compare (see :func:`explore_options`).
    reference
        A level of ``variable`` to compare with (e.g. ``"white"``), or None for all other students.
    cuts
        Cut points replacing TNTP's defaults (``{"grade_appropriate": 5}``; see the contract's scoring rules).
    min_n, n_boot, seed
        Smallest published cell, cluster-bootstrap replicates and seed (as in the district report).
    hidden
        ``(measure, subject, group, level)`` rows to hide whatever their counts: the report's hidden rows
        (:func:`report_hidden`).
    protect
        Protect the table with the disclosure pass (:func:`opportunity_research.disclosure.joint.protect_tables`):
        small cells and their complements hidden. Only tests of the computation turn it off.

    Returns
    -------
    DataFrame
        :func:`~opportunity_research.stats.gaps.gap_table`'s columns plus ``measure``, ``subject`` and
        ``reference_label`` (the reference in words).

    Examples
    --------
    >>> from opportunity_research.intake.dataset import load_district
    >>> t = explore_gaps(load_district("demo_pinebrook"), cuts={"grade_appropriate": 5}, n_boot=20)
    >>> t[["level", "n", "estimate", "suppressed"]].round(2)
                     level    n  estimate  suppressed
    0                black  174      0.04       False
    1      hispanic_latino   72      0.05       False
    2  pooled_small_groups   54      0.04       False
    """
    o = explore_options()
    for name, value, allowed in (
        ("resource", resource, o["resources"]),
        ("subject", subject, o["subjects"]),
        ("variable", variable, o["variables"]),
    ):
        if value not in allowed:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    ref = {variable: reference} if reference is not None else None
    check_analysis_options(subjects=[subject], reference=ref, cuts=cuts)
    # the smallest race/ethnicity groups are pooled exactly as in the district report (one regime)
    district, _ = pool_small_groups(
        district, pool_below=2 * min_n, keep=[(ref or {}).get("race_ethnicity", "")]
    )
    acc = measures.student_access(district, cuts={**measures.default_cuts(), **(cuts or {})})
    part = acc[acc["subject"] == subject]
    t = gap_table(
        part,
        outcome=resource,
        group=variable,
        reference=reference,
        cluster="classroom_id",
        n_boot=n_boot,
        seed=seed,
    )
    t = t.assign(measure=resource, subject=subject, reference_label=reference_label(ref, variable))
    if hidden:
        keys = zip(
            t["measure"].astype(str),
            t["subject"].astype(str),
            t["group"].astype(str),
            t["level"].map(_level_key),
        )
        t.loc[[k in hidden for k in keys], "suppressed"] = True
    if protect:
        from types import SimpleNamespace

        protected, _ = disclosure.protect_tables(
            disclosure.district_tables(SimpleNamespace(gaps=t)),
            min_n=min_n,
            year=measures.analysis_year(district),
        )
        t = protected["gaps"].assign(reference_label=t["reference_label"])  # a label, kept in hidden rows
    return t


@dataclass
class Explorer:
    """ipywidgets controls over :func:`explore_gaps`: pick a district, resource, subject, group variable,
    reference group and cut points; the table and the chart update on every change.

    Display ``explorer.widget`` in a notebook. ``explorer.table`` is the table shown; ``explorer.controls``
    holds the widgets by name (``district``, ``resource``, ``subject``, ``variable``, ``reference`` and
    ``cut_<name>`` per cut point), so a script can drive them the way a click would.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()):  # outside a notebook, the widgets print what they show
    ...     ex = Explorer(["demo_pinebrook"], n_boot=20)
    ...     ex.controls["variable"].value = "low_income"
    ...     ex.controls["cut_grade_appropriate"].value = 5
    >>> ex.error, ex.table[["level", "n", "estimate"]].round(2).values.tolist()
    (None, [[0, 74, 0.04], [1, 226, 0.04]])
    """

    districts: list[str] | None = None
    processed_dir: str | None = None
    min_n: int = config.MIN_CELL_SIZE
    n_boot: int = EXPLORE_N_BOOT
    seed: int = 0
    protect: bool = True
    controls: dict = field(default_factory=dict, init=False)
    table: pd.DataFrame | None = field(default=None, init=False)
    error: str | None = field(default=None, init=False)
    n_updates: int = field(default=0, init=False)

    def __post_init__(self):
        import ipywidgets as w

        ids = list(self.districts) if self.districts else processed_districts(self.processed_dir)
        if not ids:
            raise FileNotFoundError(
                "no processed district to explore; run 'opportunity-research process' first"
            )
        self._cache: dict[str, District] = {}
        o = explore_options()
        c = self.controls
        c["district"] = w.Dropdown(options=ids, value=ids[0], description="District")
        c["resource"] = w.Dropdown(
            options=[(measures.RESOURCE_LABELS[r], r) for r in o["resources"]],
            value="grade_appropriate",
            description="Resource",
        )
        c["subject"] = w.Dropdown(
            options=[(labels.subject(s), s) for s in o["subjects"]], value="ela", description="Subject"
        )
        c["variable"] = w.Dropdown(
            options=[(SUBGROUP_VARIABLES[v], v) for v in o["variables"]],
            value="race_ethnicity",
            description="Groups",
        )
        c["reference"] = w.Dropdown(description="Compared with", style={"description_width": "initial"})
        from .settings import CUT_WORDS

        for key, (default, lo, hi) in CUT_POINTS.items():
            c[f"cut_{key}"] = w.FloatSlider(
                value=default,
                min=lo,
                max=hi,
                step=0.5 if hi <= 3 else 1,
                description=f"{CUT_WORDS[key][0]} (of {hi:g})",
                continuous_update=False,
                style={"description_width": "initial"},
                layout=w.Layout(width="26rem"),
            )
        self._set_reference_options()
        self.table_out, self.chart_out, self.status = w.Output(), w.Output(), w.HTML()
        from .presentation import LAB_CSS

        # persistent: part of the widget itself, above the controls, whatever is chosen
        self.banner = w.HTML(
            f"<style>{LAB_CSS}</style><div role='note' style='border-left: 4px solid #D55E00; "
            "padding: .3rem .6rem; background: #fff4ec; color: #222'>"
            + BANNER.format(min_n=self.min_n)
            + "</div>"
        )
        for name, ctl in c.items():
            ctl.observe(self._on_variable if name == "variable" else self._on_change, names="value")
        picks = w.VBox([c["district"], c["resource"], c["subject"], c["variable"], c["reference"]])
        sliders = w.VBox(
            [w.HTML("<b>Cut points</b> (TNTP's defaults shown first)")] + [c[f"cut_{k}"] for k in CUT_POINTS]
        )
        self.widget = w.VBox(
            [self.banner, w.HBox([picks, sliders]), self.status, self.table_out, self.chart_out]
        )
        self.update()

    def _set_reference_options(self) -> None:
        var = self.controls["variable"].value
        levels = explore_options()["levels"][var]
        self.controls["reference"].options = [(labels.ALL_OTHERS_LABEL.capitalize(), ALL_OTHERS_CHOICE)] + [
            (labels.level(var, lv), lv) for lv in levels
        ]
        self.controls["reference"].value = ALL_OTHERS_CHOICE

    def _on_variable(self, change) -> None:
        self._set_reference_options()  # resetting the reference triggers no update when it was all others already
        self.update()

    def _on_change(self, change) -> None:
        self.update()

    def cuts(self) -> dict[str, float]:
        """The cut points the sliders show."""
        return {k: self.controls[f"cut_{k}"].value for k in CUT_POINTS}

    def district(self) -> District:
        """The chosen district (loaded once)."""
        d = self.controls["district"].value
        if d not in self._cache:
            self._cache[d] = load_district(
                d, processed_root=config.resolve(self.processed_dir) if self.processed_dir else None
            )
        return self._cache[d]

    def reference(self):
        """The chosen reference level, or None for all other students."""
        v = self.controls["reference"].value
        return None if v == ALL_OTHERS_CHOICE else v

    def update(self) -> None:
        """Recompute the table and the chart from the widgets' values."""
        from IPython.display import display

        from . import plots, reporting
        from .presentation import gaps_table
        from .settings import changed_settings

        c = self.controls
        try:
            hidden = (
                report_hidden(c["district"].value, processed_dir=self.processed_dir, min_n=self.min_n)
                if self.protect
                else None
            )
            self.table = explore_gaps(
                self.district(),
                resource=c["resource"].value,
                subject=c["subject"].value,
                variable=c["variable"].value,
                reference=self.reference(),
                cuts=self.cuts(),
                min_n=self.min_n,
                n_boot=self.n_boot,
                seed=self.seed,
                hidden=hidden,
                protect=self.protect,
            )
            self.error = None
        except (ValueError, FileNotFoundError) as exc:
            self.table, self.error = None, str(exc)
        self.n_updates += 1
        self.table_out.clear_output(wait=True)
        self.chart_out.clear_output(wait=True)
        if self.table is None:
            self.status.value = f"<b>Cannot compute:</b> {self.error}"
            return
        t = self.table
        reference = t["reference_label"].iloc[0]
        title = (
            f"{measures.RESOURCE_LABELS[c['resource'].value]}, {labels.subject(c['subject'].value)}: "
            f"{SUBGROUP_VARIABLES[c['variable'].value]} compared with {reference}"
        )
        changed = changed_settings({"cuts": self.cuts()})
        self.status.value = (
            f"<b>{title}</b><br>Cut points: " + ("; ".join(changed) if changed else "TNTP’s defaults") + "."
        )
        with self.table_out:
            display(gaps_table(t, c["resource"].value, min_n=self.min_n))
        with self.chart_out:
            display(
                reporting.figure_output(
                    plots.gap_plot(t, title=title, xlabel=f"Difference from {reference} (percentage points)")
                )
            )
