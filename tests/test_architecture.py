"""The import rule of docs/architecture.md, checked on the source: every import statement of every module.

Layers, bottom up: the core (``regionstat`` without its entry points) imports no stage; the stages (``extract``,
``expectations``, ``warehouse``) import the core and themselves, never each other; the entry points
(``regionstat.cli``, ``regionstat.dag_support``, ``dags/``) may import anything. Imports inside functions
count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("extract", "expectations", "warehouse")
CORE = "regionstat"
#: modules of the regionstat package that sit above the stages (they run them)
ENTRY_POINTS = ("regionstat.cli", "regionstat.dag_support")
PROJECT_PACKAGES = (*STAGES, CORE)
#: (importing module, imported module) pairs allowed despite the rule, each with its reason. Keep it empty.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, including ``from x import y`` as ``x.y``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports would hide the package; the project uses none
                found.append((node.lineno, "." * node.level + (node.module or "")))
            elif node.module:
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def top_package(name: str) -> str:
    return name.split(".")[0]


def is_entry_point(name: str) -> bool:
    return any(name == e or name.startswith(e + ".") for e in ENTRY_POINTS)


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None if the rule allows it."""
    if imported.startswith("."):
        return "relative import (write the package name)"
    src, dst = top_package(importer), top_package(imported)
    if dst not in PROJECT_PACKAGES or is_entry_point(importer):
        return None
    if src == CORE:
        if dst != CORE:
            return f"the core must not import the stage {dst!r}"
        if is_entry_point(imported):
            return "the core must not import an entry point"
        return None
    if src in STAGES:
        if dst == CORE and is_entry_point(imported):
            return "a stage must not import an entry point"
        if dst in STAGES and dst != src:
            return f"stage {src!r} must not import stage {dst!r} (share it through regionstat.*)"
    return None


def project_modules() -> list[Path]:
    files: list[Path] = []
    for package in PROJECT_PACKAGES:
        files += list((ROOT / package).rglob("*.py"))
    return sorted(files)


def test_every_package_is_scanned() -> None:
    names = {top_package(module_name(p)) for p in project_modules()}
    assert names == set(PROJECT_PACKAGES)
    assert any(module_name(p) == "regionstat.batches" for p in project_modules())


def test_stages_share_only_through_the_core() -> None:
    problems = []
    for path in project_modules():
        importer = module_name(path)
        for line, imported in imported_modules(path):
            why = violation(importer, imported)
            if why and (importer, imported) not in EXCEPTIONS:
                problems.append(f"{path.relative_to(ROOT)}:{line}: import {imported}: {why}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "importer,imported,allowed",
    [
        ("warehouse.load", "regionstat.batches.Batch", True),
        ("warehouse.load", "extract.landing.Manifest", False),
        ("expectations.validate", "warehouse.db.connect_reader", False),
        ("extract.pipeline", "extract.landing.write_batch", True),
        ("regionstat.batches", "extract.landing.write_batch", False),
        ("regionstat.catalogue", "regionstat.cli.main", False),
        ("extract.pipeline", "regionstat.dag_support.CATALOGUE", False),
        ("regionstat.cli.main", "warehouse.load.load_validated", True),
        ("regionstat.dag_support", "expectations.validate.validate_batch", True),
        ("warehouse.build", "dbt.cli.main.dbtRunner", True),
    ],
)
def test_the_rule_itself(importer: str, imported: str, allowed: bool) -> None:
    assert (violation(importer, imported) is None) is allowed


def test_a_lazy_import_inside_a_function_is_seen(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from warehouse.db import connect_reader\n", encoding="utf-8")
    assert imported_modules(source) == [(2, "warehouse.db.connect_reader")]
