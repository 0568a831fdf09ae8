"""Import rules that keep the layers apart: the product never imports the harness, and test files never import
other test files (shared helpers live in library modules)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests import REPO

PACKAGE = REPO / "generator" / "meshcharts"


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def test_no_module_of_the_package_outside_testing_imports_meshcharts_testing() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.is_relative_to(PACKAGE / "testing")
        for line, module in imported_modules(path)
        if module == "meshcharts.testing" or module.startswith("meshcharts.testing.")
    ]
    assert not offenders, "\n".join(offenders)


def is_test_file(module: str) -> bool:
    """`tests.<...>.test_x` (or a name inside it) where tests/<...>/test_x.py exists."""
    parts = module.split(".")
    return parts[0] == "tests" and any(
        part.startswith("test_") and (REPO.joinpath(*parts[: i + 1]).with_suffix(".py")).is_file()
        for i, part in enumerate(parts)
    )


def test_no_test_file_imports_another_test_file() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in sorted((REPO / "tests").rglob("*.py"))
        for line, module in imported_modules(path)
        if is_test_file(module)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_rule_recognises_an_import_of_a_test_file() -> None:
    assert is_test_file("tests.unit.test_import_rules")
    assert is_test_file("tests.unit.test_import_rules.imported_modules")
    assert not is_test_file("tests.upgrade.steps.path_slot")
    assert not is_test_file("tests.unit.test_no_such_file")
