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


# Tests that test one provider itself may name it; everything else asks the cluster what it can do.
PROVIDER_TESTS = {
    "tests/e2e/test_local_cluster.py",
    "tests/e2e/test_loadbalancer.py",
    "tests/e2e/test_control_plane_fixture.py",
    "tests/e2e/test_served_repository.py",
    "tests/e2e/test_installed_package.py",
    "tests/e2e/test_sharded_matrix.py",
}


def provider_name_comparisons(path: Path, names: frozenset[str]) -> Iterator[int]:
    """Lines of `path` comparing something with a provider's name (`provider == "local"`, `!= "kind"`, `in`)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in names for o in operands) and any(
                isinstance(o, ast.Attribute | ast.Name | ast.Call) and "provider" in ast.unparse(o) for o in operands
            ):
                yield node.lineno


def test_no_code_outside_the_providers_branches_on_a_provider_name() -> None:
    from meshcharts.cluster import PROVIDERS

    names = frozenset(PROVIDERS)
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if not p.is_relative_to(PACKAGE / "cluster")]
    files += [p for p in sorted((REPO / "tests").rglob("*.py")) if str(p.relative_to(REPO)) not in PROVIDER_TESTS]
    offenders = [f"{p.relative_to(REPO)}:{line}" for p in files for line in provider_name_comparisons(p, names)]
    assert not offenders, "ask the cluster (cluster.capabilities, cluster.backend) instead:\n" + "\n".join(offenders)


def test_the_provider_rule_sees_a_comparison(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        'if mesh_cluster.provider != "local":\n    pass\n'
        'if config.getoption("--cluster-provider") == "kind":\n    pass\n'
    )
    assert list(provider_name_comparisons(probe, frozenset({"local", "kind"}))) == [1, 3]
