"""The istiod chart's meshConfig schema against Istio's own mesh-config loader (`istioctl kube-inject
--meshConfigFile` loads and validates the mesh config as istiod does).

Valid configs must pass both the schema (helm template) and the loader: where the loader takes something the
schema refuses, the schema is wrong. Each refused config (tests/data/istio-1.12-meshconfig/bad.yaml) says what
the loader does with it: `refused` ones fail the loader too; `ignored` (an unknown field) and `taken` (a snake_case
proto name) pass it: the schema's documented deviations, proven here to be exactly those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.oracle import cases
from tests.oracle.conftest import CHART
from tests.oracle.injection import Injector, OracleError, inject, render_injector

DATA = Path(__file__).resolve().parents[1] / "data" / "istio-1.12-meshconfig"
VALID: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "valid.yaml").read_text())
BAD: list[dict[str, Any]] = yaml.safe_load((DATA / "bad.yaml").read_text())
WORKLOAD = yaml.safe_dump(cases.workloads()["reviews"])
# holdApplicationUntilProxyStarts shows in the injected pod (istio-proxy first): proof of what the loader read.
FIRST_CONTAINER = {
    "hold-application-until-proxy-starts": "istio-proxy",
    "misspelt-hold-application": "reviews",  # ignored
    "snake-case-hold-application": "istio-proxy",  # taken under its proto name
}


def injected_containers(istioctl: Path, injector: Injector) -> list[str]:
    injected = inject(istioctl, injector, WORKLOAD)
    return [c["name"] for c in injected["reviews"]["spec"]["template"]["spec"]["containers"]]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_mesh_config_passes_the_schema_and_istios_loader(helm_binary: Path, istioctl: Path, name: str) -> None:
    injector = render_injector(helm_binary, CHART, {"meshConfig": VALID[name]})
    containers = injected_containers(istioctl, injector)
    assert sorted(containers) == ["istio-proxy", "reviews"]
    assert containers[0] == FIRST_CONTAINER.get(name, "reviews")


@pytest.fixture(scope="module")
def default_injector(helm_binary: Path) -> Injector:
    return render_injector(helm_binary, CHART, {})


def with_mesh(injector: Injector, over: dict[str, Any]) -> Injector:
    """`injector` with `over` set over its mesh config's top-level keys, as the chart's merge would (no schema)."""
    mesh = {**yaml.safe_load(injector.mesh), **over}
    return Injector(injector.config, injector.values, yaml.safe_dump(mesh), injector.revision)


@pytest.mark.parametrize("case", BAD, ids=[case["name"] for case in BAD])
def test_what_istios_loader_does_with_each_refused_mesh_config(
    default_injector: Injector, istioctl: Path, case: dict[str, Any]
) -> None:
    injector = with_mesh(default_injector, case["meshConfig"])
    if case["istio"] == "refused":
        with pytest.raises(OracleError, match="failed to convert to proto"):
            injected_containers(istioctl, injector)
    else:
        assert case["istio"] in ("ignored", "taken")
        containers = injected_containers(istioctl, injector)
        assert sorted(containers) == ["istio-proxy", "reviews"]
        assert containers[0] == FIRST_CONTAINER.get(case["name"], "reviews")
