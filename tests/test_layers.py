"""The package's layers, read from its source (AST; nothing is imported).

Order: ``intake`` -> ``stats`` -> ``study`` -> ``disclosure`` -> ``report`` -> ``batch``. A module may import
modules of its own layer and of the layers before it, never after. Beside the order:

* the base modules (:data:`BASE`: ``config``, the version, the shared file helpers) import nothing from the
  package and are importable from everywhere;
* ``synth`` (synthetic data) may import ``intake`` and the base; only ``batch`` and the command line import it;
* ``cli`` and the package ``__init__`` (the public API) may import everything;
* inside ``study`` the analyses come before the scorecard that gathers them (:data:`STUDY_ORDER`);
* no import cycle between modules, counting imports inside functions;
* no private name (``_x``) of one module imported or used by another.

Every import is counted: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "opportunity_research"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: Layers, lowest first.
ORDER = ("intake", "stats", "study", "disclosure", "report", "batch")
#: Top-level modules every module may import; they import nothing from the package themselves.
BASE = {"config", "version", "files"}
#: Top-level modules that may import everything.
TOP = {"__init__", "cli"}
#: Layers a subpackage outside :data:`ORDER` may import, and which layers may import it.
SIDE = {"synth": {"imports": {"intake"}, "imported_by": {"batch"}}}
#: Order inside ``study``: a module may import modules of its own rank or lower ranks only.
STUDY_ORDER = (
    {"labels", "indicators", "months", "joins"},
    {"measures"},
    {"panels"},
    {"climate", "trajectories", "movement", "equity", "growth", "levelgaps"},
    {"scorecard"},
    {"findings"},
    {"analysis"},
)
#: Known violations still to fix, as (importer, imported) module pairs. Shrink it; never grow it.
ALLOWED_ORDER: set[tuple[str, str]] = set()
#: Known private names used across modules, as (user, "module._name"). Shrink it; never grow it.
ALLOWED_PRIVATE: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    """Dotted module name (without the package prefix; ``__init__`` for the package) -> file."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts
        if parts[-1] == "__init__" and len(parts) > 1:
            name = ".".join(parts[:-1])
        else:
            name = ".".join(parts)
        out[name] = path
    return out


MODULES = _modules()


def _package_of(name: str, path: Path) -> list[str]:
    """The package a module's relative imports start from."""
    parts = name.split(".") if name != "__init__" else []
    return parts if path.name == "__init__.py" else parts[:-1]


def _resolve(base: list[str], target: str) -> str | None:
    """The module a dotted target names: itself if a module, else its package (``__init__`` at the top)."""
    if target in MODULES:
        return target
    return None


def _imports(name: str) -> list[tuple[str, set[str], int]]:
    """(imported module, names taken from it, line) for every package import of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _package_of(name, path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
                dotted = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                dotted = node.module.split(".")[1:]
            else:
                continue
            target = ".".join(dotted) or "__init__"
            taken = set()
            for alias in node.names:
                sub = ".".join(dotted + [alias.name])
                if sub in MODULES:  # ``from .pkg import module``
                    found.append((sub, set(), node.lineno))
                else:
                    taken.add(alias.name)
            if taken:
                found.append((target if target in MODULES else "__init__", taken, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.append((alias.name[len(PACKAGE) + 1 :], set(), node.lineno))
    return found


def _layer(name: str) -> str:
    head = name.split(".")[0]
    if name in BASE or name in TOP:
        return name
    return head


def _order_problem(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (None when it may)."""
    if importer == imported:
        return None
    a, b = _layer(importer), _layer(imported)
    if a in TOP or b in BASE:
        return None
    if a in BASE:
        return f"base module {importer} imports {imported}"
    if b in TOP:
        return f"{importer} imports the package's {imported} (put what it needs in a base module)"
    if a in SIDE:
        return (
            None if b == a or b in SIDE[a]["imports"] else f"{a} may import only {sorted(SIDE[a]['imports'])}"
        )
    if b in SIDE:
        return (
            None if a in SIDE[b]["imported_by"] else f"only {sorted(SIDE[b]['imported_by'])} may import {b}"
        )
    if ORDER.index(a) < ORDER.index(b):
        return f"{a} comes before {b}"
    if a == b == "study":
        rank = {m: i for i, group in enumerate(STUDY_ORDER) for m in group}
        ra, rb = rank.get(importer.split(".")[-1]), rank.get(imported.split(".")[-1])
        if ra is not None and rb is not None and ra < rb:
            return f"inside study, {imported} comes after {importer}"
    return None


def test_every_module_is_placed():
    """A new module must sit in a layer (or be named in BASE/TOP deliberately)."""
    stray = [m for m in MODULES if _layer(m) not in set(ORDER) | BASE | TOP | set(SIDE)]
    assert stray == []


def test_base_modules_import_nothing_from_the_package():
    bad = [(m, t, line) for m in BASE if m in MODULES for t, _, line in _imports(m) if t != m]
    assert bad == []


def test_layer_order():
    bad = []
    for m in MODULES:
        for target, _, line in _imports(m):
            why = _order_problem(m, target)
            if why and (m, target) not in ALLOWED_ORDER:
                bad.append(f"{m}:{line} imports {target}: {why}")
    assert bad == []


def test_allowlists_hold_no_fixed_entries():
    """An allowlist entry that no longer happens must be removed (the lists only shrink)."""
    edges = {(m, t) for m in MODULES for t, _, _ in _imports(m)}
    assert ALLOWED_ORDER - edges == set()
    used = {(m, u) for m in MODULES for u in _private_uses(m)}
    assert ALLOWED_PRIVATE - used == set()


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in _imports(m) if t != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle():
    """The check itself can fail."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _private_uses(name: str) -> set[str]:
    """``module._name`` for every private name of another package module that ``name`` imports or uses."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _package_of(name, path)
    aliases: dict[str, str] = {}  # local name -> package module
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
                dotted = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                dotted = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                sub = ".".join(dotted + [alias.name])
                if sub in MODULES:
                    aliases[alias.asname or alias.name] = sub
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        used.add(sub)
                elif alias.name.startswith("_") and not alias.name.endswith("__"):
                    used.add(f"{'.'.join(dotted) or '__init__'}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + ".") and alias.asname:
                    aliases[alias.asname] = alias.name[len(PACKAGE) + 1 :]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.endswith("__")
        ):
            used.add(f"{aliases[node.value.id]}.{node.attr}")
    return {u for u in used if u.rsplit(".", 1)[0] != name}


def test_no_private_names_across_modules():
    bad = sorted((m, u) for m in MODULES for u in _private_uses(m) if (m, u) not in ALLOWED_PRIVATE)
    assert bad == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_resolve(name):
    """Every package import names a module of the package (guards the checks above against typos)."""
    for target, _, line in _imports(name):
        assert target in MODULES, f"{name}:{line} imports unknown module {target}"


def test_top_level_stays_small():
    """At most 12 modules beside the subpackages at the top of the package."""
    top = [p.name for p in ROOT.glob("*.py")]
    assert len(top) <= 12, top
