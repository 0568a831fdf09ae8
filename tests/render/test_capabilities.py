"""API versions by capability: each chart renders the PodDisruptionBudget and HorizontalPodAutoscaler
versions the cluster serves, from Kubernetes 1.19 (Istio 1.12's oldest) to the newest toolchain release.

A live cluster tells Helm the kinds it serves (`policy/v1/PodDisruptionBudget`); `--api-versions` stands
in for that here. Without them (offline renders) the Kubernetes version decides.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import tools
from tests.render.conftest import CHARTS, Helm, find

PDB = "PodDisruptionBudget"
HPA = "HorizontalPodAutoscaler"
NEWEST = tools.DEFAULT_KUBERNETES.lstrip("v")

# What each Kubernetes minor serves of the two APIs (Kubernetes' deprecation guide: policy/v1 from 1.21,
# policy/v1beta1 until 1.24; autoscaling/v2 from 1.23, v2beta1 until 1.24, v2beta2 until 1.25).
SERVED: dict[str, tuple[str, ...]] = {
    "1.19.0": (f"policy/v1beta1/{PDB}", f"autoscaling/v2beta1/{HPA}", f"autoscaling/v2beta2/{HPA}"),
    "1.22.0": (f"policy/v1/{PDB}", f"policy/v1beta1/{PDB}", f"autoscaling/v2beta1/{HPA}", f"autoscaling/v2beta2/{HPA}"),
    "1.25.0": (f"policy/v1/{PDB}", f"autoscaling/v2/{HPA}", f"autoscaling/v2beta2/{HPA}"),
    NEWEST: (f"policy/v1/{PDB}", f"autoscaling/v2/{HPA}"),
}
# The newest version each of those clusters serves, which the charts must pick.
EXPECTED = {
    "1.19.0": ("policy/v1beta1", "autoscaling/v2beta2"),
    "1.22.0": ("policy/v1", "autoscaling/v2beta2"),
    "1.25.0": ("policy/v1", "autoscaling/v2"),
    NEWEST: ("policy/v1", "autoscaling/v2"),
}
GATEWAY_VALUES = {"podDisruptionBudget": {"enabled": True}, "autoscaling": {"targetMemoryUtilizationPercentage": 70}}


def flags(kube: str, served: tuple[str, ...] = ()) -> tuple[str, ...]:
    return ("--kube-version", kube, *(arg for api in served for arg in ("--api-versions", api)))


def render(
    helm: Helm, chart: str, extra: tuple[str, ...], values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    release = {"gateway": "istio-ingressgateway", "istiod": "istiod"}[chart]
    if chart == "gateway":
        values = {**GATEWAY_VALUES, **(values or {})}
    return helm.template(chart, values, release=release, extra=extra)


def utilization(metric: dict[str, Any], api_version: str) -> tuple[str, int]:
    """The resource and percentage of one Resource metric, read the way its API version spells them."""
    resource = metric["resource"]
    if api_version == "autoscaling/v2beta1":
        assert "target" not in resource
        return resource["name"], resource["targetAverageUtilization"]
    assert "targetAverageUtilization" not in resource and resource["target"]["type"] == "Utilization"
    return resource["name"], resource["target"]["averageUtilization"]


@pytest.mark.parametrize("kube", list(SERVED), ids=[f"k8s-{v}" for v in SERVED])
@pytest.mark.parametrize("chart", ["istiod", "gateway"])
def test_served_apis_pick_pdb_and_hpa_versions(helm: Helm, chart: str, kube: str) -> None:
    objects = render(helm, chart, flags(kube, SERVED[kube]))
    pdb_version, hpa_version = EXPECTED[kube]
    assert find(objects, PDB)["apiVersion"] == pdb_version
    hpa = find(objects, HPA)
    assert hpa["apiVersion"] == hpa_version
    metrics = [utilization(m, hpa_version) for m in hpa["spec"]["metrics"]]
    assert metrics == ([("cpu", 80)] if chart == "istiod" else [("cpu", 80), ("memory", 70)])


@pytest.mark.parametrize("kube", list(SERVED), ids=[f"k8s-{v}" for v in SERVED])
@pytest.mark.parametrize("chart", ["istiod", "gateway"])
def test_offline_render_follows_the_kubernetes_version(helm: Helm, chart: str, kube: str) -> None:
    objects = render(helm, chart, flags(kube))
    assert (find(objects, PDB)["apiVersion"], find(objects, HPA)["apiVersion"]) == EXPECTED[kube]


@pytest.mark.parametrize("chart", ["istiod", "gateway"])
def test_cluster_serving_only_autoscaling_v2beta1_gets_target_average_utilization(helm: Helm, chart: str) -> None:
    objects = render(helm, chart, flags("1.19.0", (f"autoscaling/v2beta1/{HPA}", f"policy/v1beta1/{PDB}")))
    hpa = find(objects, HPA)
    assert hpa["apiVersion"] == "autoscaling/v2beta1"
    assert utilization(hpa["spec"]["metrics"][0], "autoscaling/v2beta1") == ("cpu", 80)


@pytest.mark.parametrize(
    ("chart", "values", "key"),
    [
        (
            "gateway",
            {"autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
            "autoscaling.behavior",
        ),
        (
            "istiod",
            {"pilot": {"autoscaleBehavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
            "pilot.autoscaleBehavior",
        ),
    ],
)
def test_hpa_behavior_on_v2beta1_only_cluster_fails_naming_the_value(
    helm: Helm, chart: str, values: dict[str, Any], key: str, tmp_path: Path
) -> None:
    extra = flags("1.19.0", (f"autoscaling/v2beta1/{HPA}",))
    proc = _template_proc(helm, chart, values, extra, tmp_path)
    assert proc.returncode != 0 and f"{key} needs autoscaling/v2beta2 or autoscaling/v2" in proc.stderr
    # The same values render on a cluster serving v2beta2, with behavior kept.
    hpa = find(render(helm, chart, flags("1.19.0", SERVED["1.19.0"]), values), HPA)
    assert hpa["apiVersion"] == "autoscaling/v2beta2"
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}


@pytest.mark.parametrize(
    ("chart", "values", "key"),
    [
        (
            "gateway",
            {"podDisruptionBudget": {"enabled": True, "unhealthyPodEvictionPolicy": "AlwaysAllow"}},
            "podDisruptionBudget.unhealthyPodEvictionPolicy",
        ),
        ("istiod", {"pdb": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}, "pdb.unhealthyPodEvictionPolicy"),
    ],
)
def test_unhealthy_pod_eviction_policy_on_policy_v1beta1_fails_naming_the_value(
    helm: Helm, chart: str, values: dict[str, Any], key: str, tmp_path: Path
) -> None:
    proc = _template_proc(helm, chart, values, flags("1.19.0", SERVED["1.19.0"]), tmp_path)
    assert proc.returncode != 0 and f"{key} needs policy/v1" in proc.stderr
    pdb = find(render(helm, chart, flags(NEWEST, SERVED[NEWEST]), values), PDB)
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("chart", ["base", "istiod", "gateway"])
def test_kube_version_constraint_admits_1_19_and_refuses_1_18(helm: Helm, chart: str) -> None:
    assert helm.run("template", "r", str(CHARTS / chart), *flags("1.19.0")).returncode == 0
    proc = helm.run("template", "r", str(CHARTS / chart), *flags("1.18.20"), check=False)
    assert proc.returncode != 0 and "kubeVersion" in proc.stderr


def _template_proc(
    helm: Helm, chart: str, values: dict[str, Any], extra: tuple[str, ...], tmp: Path
) -> subprocess.CompletedProcess[str]:
    release = {"gateway": "istio-ingressgateway", "istiod": "istiod"}[chart]
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm.run("template", release, str(CHARTS / chart), "--values", str(path), *extra, check=False)


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])
@pytest.mark.parametrize("kube", ["1.19.0", "1.21.14", "1.22.0", NEWEST])
def test_gateway_binds_low_ports_by_sysctl_from_1_22_and_by_capability_before(helm: Helm, kind: str, kube: str) -> None:
    objects = render(helm, "gateway", flags(kube), {"kind": kind})
    pod = find(objects, kind)["spec"]["template"]["spec"]
    (proxy,) = pod["containers"]
    if kube >= "1.22":
        assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert proxy["securityContext"]["runAsUser"] == 1337 and proxy["securityContext"]["capabilities"] == {
            "drop": ["ALL"]
        }
    else:
        # Kubelets before 1.22 refuse a pod asking for this sysctl (SysctlForbidden).
        assert "sysctls" not in pod["securityContext"] and "runAsNonRoot" not in pod["securityContext"]
        assert proxy["securityContext"]["runAsUser"] == 0
        assert proxy["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
        assert proxy["securityContext"]["allowPrivilegeEscalation"] is False
