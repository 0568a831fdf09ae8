"""The pytest plugin, tested with pytester: its options, fixtures and failure reports."""

from __future__ import annotations

import pytest

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
    from meshcharts import cluster

    if cluster.container_engine_socket() is not None:
        pytest.skip("a container engine answers here, so kind would really run")
    pytester.makepyfile("def test_needs_cluster(kube):\n    pass\n")
    result = pytester.runpytest("--cluster-provider", "kind", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: {cluster.KIND_ENGINE_SKIP}"])
    print(next(line for line in result.outlines if line.startswith("SKIPPED")))


def test_namespace_names_are_dns_labels() -> None:
    from meshcharts.testing.plugin import _namespace_name

    name = _namespace_name("test_gateway[Values With Spaces/and_slashes-" + "x" * 80 + "]")
    assert len(name) <= 63 and name == name.lower()
    assert all(c.isalnum() or c == "-" for c in name)
