"""The pytest plugin, tested with pytester: its options, fixtures and failure reports."""

from __future__ import annotations

import json

import pytest

from meshcharts.cluster.kind import KIND_ENGINE_SKIP, container_engine_socket

pytest_plugins = ["pytester"]


def test_options_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for option in ("--cluster-provider", "--kubeconfig", "--keep-cluster", "--helm", "--k8s-version"):
        assert option in out


def test_unit_tests_start_no_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("--cluster-provider", "existing", "--kubeconfig", "/nonexistent/kubeconfig")
    result.assert_outcomes(passed=1)


def test_an_unreachable_existing_cluster_fails_the_test_with_the_cause(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_needs_cluster(kube):\n    pass\n")
    result = pytester.runpytest("--cluster-provider", "existing", "--kubeconfig", "/nonexistent/kubeconfig")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the session cluster could not be brought up*nonexistent*"])


def test_kind_without_a_container_engine_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:

    if container_engine_socket() is not None:
        pytest.skip("a container engine answers here, so kind would really run")
    pytester.makepyfile("def test_needs_cluster(kube):\n    pass\n")
    result = pytester.runpytest("--cluster-provider", "kind", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: {KIND_ENGINE_SKIP}"])
    print(next(line for line in result.outlines if line.startswith("SKIPPED")))


def test_namespace_names_are_dns_labels() -> None:
    from meshcharts.testing.plugin import _namespace_name

    name = _namespace_name("test_gateway[Values With Spaces/and_slashes-" + "x" * 80 + "]")
    assert len(name) <= 63 and name == name.lower()
    assert all(c.isalnum() or c == "-" for c in name)


UPGRADE_ROWS = """
import pytest
from meshcharts.upgrade import PathResult


@pytest.mark.parametrize("n", range(6))
def test_path(upgrade_results, n):
    upgrade_results.append(PathResult("gateway", f"1.12.{n}", "1.13.0", "default", "in-place", "4", "passed", 1.0))
"""


def test_workers_of_pytest_xdist_hand_their_upgrade_results_to_one_report(pytester: pytest.Pytester) -> None:
    """Under `-n`, each worker records its own paths; the report the controller writes holds them all."""
    pytester.makepyfile(test_rows=UPGRADE_ROWS)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--upgrade-report", str(report))
    result.assert_outcomes(passed=6)
    rows = json.loads((report / "upgrade-report.json").read_text())
    assert sorted(r["from_version"] for r in rows) == [f"1.12.{n}" for n in range(6)]
    assert "6/6 paths passed" in (report / "upgrade-report.md").read_text()
