"""Each line's istiod meshConfig schema against Istio's own mesh-config loader (`istioctl kube-inject
--meshConfigFile` loads and validates the mesh config as istiod does; the toolchain's istioctl is Istio 1.31's).

Valid configs (tests/data/istio-<minor>-meshconfig/valid.yaml) must pass both the line's schema (helm template of
its istiod chart) and the loader: where the loader takes something the schema refuses, the schema is wrong. Each
refused config (bad.yaml) says what the loader does with it: `refused` ones fail the loader too; `ignored` (an
unknown field) and `taken` (a snake_case proto name) pass it: the schema's documented deviations, proven here to
be exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.meshconfig_lines import MeshConfigLine, bad_params, valid_params
from tests.oracle import cases
from tests.oracle.injection import Injector, OracleError, inject, render_injector

WORKLOAD = yaml.safe_dump(cases.workloads()["reviews"])
# holdApplicationUntilProxyStarts shows in the injected pod (istio-proxy first): proof of what the loader read.
# Every line's cases use these names for it.
FIRST_CONTAINER = {
    "hold-application-until-proxy-starts": "istio-proxy",
    "misspelt-hold-application": "reviews",  # ignored
    "snake-case-hold-application": "istio-proxy",  # taken under its proto name
}


def injected_containers(istioctl: Path, injector: Injector) -> list[str]:
    injected = inject(istioctl, injector, WORKLOAD)
    return [c["name"] for c in injected["reviews"]["spec"]["template"]["spec"]["containers"]]


@pytest.mark.parametrize(("line", "name"), valid_params())
def test_valid_mesh_config_passes_the_schema_and_istios_loader(
    helm_binary: Path, istioctl: Path, line: MeshConfigLine, name: str
) -> None:
    injector = render_injector(helm_binary, line.chart, {"meshConfig": line.valid[name]})
    containers = injected_containers(istioctl, injector)
    assert sorted(containers) == ["istio-proxy", "reviews"]
    assert containers[0] == FIRST_CONTAINER.get(name, "reviews")


@pytest.fixture(scope="module")
def default_injector(helm_binary: Path) -> Callable[[MeshConfigLine], Injector]:
    """Each line's istiod rendered with its defaults, once per line."""
    cache: dict[str, Injector] = {}

    def get(line: MeshConfigLine) -> Injector:
        if line.minor not in cache:
            cache[line.minor] = render_injector(helm_binary, line.chart, {})
        return cache[line.minor]

    return get


def with_mesh(injector: Injector, over: dict[str, Any]) -> Injector:
    """`injector` with `over` set over its mesh config's top-level keys, as the chart's merge would (no schema)."""
    mesh = {**yaml.safe_load(injector.mesh), **over}
    return Injector(injector.config, injector.values, yaml.safe_dump(mesh), injector.revision)


@pytest.mark.parametrize(("line", "case"), bad_params())
def test_what_istios_loader_does_with_each_refused_mesh_config(
    default_injector: Callable[[MeshConfigLine], Injector], istioctl: Path, line: MeshConfigLine, case: dict[str, Any]
) -> None:
    injector = with_mesh(default_injector(line), case["meshConfig"])
    if case["istio"] == "refused":
        with pytest.raises(OracleError, match="failed to convert to proto"):
            injected_containers(istioctl, injector)
    else:
        assert case["istio"] in ("ignored", "taken")
        containers = injected_containers(istioctl, injector)
        assert sorted(containers) == ["istio-proxy", "reviews"]
        assert containers[0] == FIRST_CONTAINER.get(case["name"], "reviews")
