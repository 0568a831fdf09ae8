"""mapkubeapis as data: which objects of a stored manifest change, how, and what is refused."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
import yaml

from meshcharts import mapkubeapis
from meshcharts.errors import ReleaseError

PDB_V1BETA1 = """\
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata:
  name: istiod
  namespace: istio-system
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: istiod
      istio: pilot
"""
HPA_V2BETA1 = """\
apiVersion: autoscaling/v2beta1
kind: HorizontalPodAutoscaler
metadata:
  name: istiod
  namespace: istio-system
spec:
  maxReplicas: 5
  minReplicas: 1
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: istiod
  metrics:
  - type: Resource
    resource:
      name: cpu
      targetAverageUtilization: 80
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: istiod
spec:
  ports:
  - {name: grpc-xds, port: 15010}
"""


def manifest(*docs: tuple[str, str]) -> str:
    """A manifest laid out the way Helm stores it: `---`, a `# Source:` line, the object."""
    return "".join(f"---\n# Source: istiod/templates/{source}\n{text}" for source, text in docs)


def serves_all(_: str) -> bool:
    return True


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_pdb_gets_policy_v1_and_other_documents_keep_their_bytes() -> None:
    before = manifest(("service.yaml", SERVICE), ("poddisruptionbudget.yaml", PDB_V1BETA1))
    after, mapped, kept = mapkubeapis.map_manifest(before, serves_all)
    assert [str(m) for m in mapped] == ["PodDisruptionBudget istiod: policy/v1beta1 -> policy/v1"] and kept == []
    assert after == before.replace("apiVersion: policy/v1beta1", "apiVersion: policy/v1")
    assert "# Source: istiod/templates/poddisruptionbudget.yaml" in after


def test_hpa_v2beta1_becomes_v2_with_target_utilization() -> None:
    after, mapped, _ = mapkubeapis.map_manifest(manifest(("horizontalpodautoscaler.yaml", HPA_V2BETA1)), serves_all)
    (hpa,) = docs(after)
    assert hpa["apiVersion"] == "autoscaling/v2" and mapped[0].fields_converted
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istiod"}
    assert after.startswith("---\n# Source: istiod/templates/horizontalpodautoscaler.yaml\n")


def test_hpa_v2beta2_only_changes_its_api_version() -> None:
    v2beta2 = HPA_V2BETA1.replace("v2beta1", "v2beta2").replace(
        "targetAverageUtilization: 80", "target: {type: Utilization, averageUtilization: 80}"
    )
    before = manifest(("horizontalpodautoscaler.yaml", v2beta2))
    after, mapped, _ = mapkubeapis.map_manifest(before, serves_all)
    assert after == before.replace("autoscaling/v2beta2", "autoscaling/v2") and not mapped[0].fields_converted


@pytest.mark.parametrize(
    ("v2beta1", "v2"),
    [
        (
            {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "1Gi"}},
            {
                "type": "Resource",
                "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}},
            },
        ),
        (
            {
                "type": "ContainerResource",
                "containerResource": {"name": "cpu", "container": "c", "targetAverageUtilization": 50},
            },
            {
                "type": "ContainerResource",
                "containerResource": {
                    "name": "cpu",
                    "container": "c",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            },
        ),
        (
            {
                "type": "Pods",
                "pods": {"metricName": "rps", "targetAverageValue": "10", "selector": {"matchLabels": {"a": "b"}}},
            },
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "rps", "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "AverageValue", "averageValue": "10"},
                },
            },
        ),
        (
            {
                "type": "Object",
                "object": {"target": {"kind": "Service", "name": "s"}, "metricName": "hits", "targetValue": "5"},
            },
            {
                "type": "Object",
                "object": {
                    "describedObject": {"kind": "Service", "name": "s"},
                    "metric": {"name": "hits"},
                    "target": {"type": "Value", "value": "5"},
                },
            },
        ),
        (
            {
                "type": "External",
                "external": {
                    "metricName": "q",
                    "metricSelector": {"matchLabels": {"q": "x"}},
                    "targetAverageValue": "3",
                },
            },
            {
                "type": "External",
                "external": {
                    "metric": {"name": "q", "selector": {"matchLabels": {"q": "x"}}},
                    "target": {"type": "AverageValue", "averageValue": "3"},
                },
            },
        ),
    ],
    ids=["resource-average-value", "container-resource", "pods", "object", "external"],
)
def test_every_v2beta1_metric_type_converts(v2beta1: dict[str, Any], v2: dict[str, Any]) -> None:
    hpa = yaml.safe_load(HPA_V2BETA1)
    hpa["spec"]["metrics"] = [v2beta1]
    assert mapkubeapis.hpa_v2beta1_to_v2(hpa, "HPA x")["spec"]["metrics"] == [v2]


def test_v2beta1_metric_with_two_targets_or_unknown_fields_is_refused() -> None:
    hpa = yaml.safe_load(HPA_V2BETA1)
    hpa["spec"]["metrics"][0]["resource"]["targetAverageValue"] = "1"
    with pytest.raises(ReleaseError, match=r"HPA x spec.metrics\[0\]: expected exactly one target"):
        mapkubeapis.hpa_v2beta1_to_v2(hpa, "HPA x")
    hpa["spec"]["metrics"] = [{"type": "Pods", "pods": {"metricName": "m", "targetAverageValue": "1", "extra": 1}}]
    with pytest.raises(ReleaseError, match=r"unknown autoscaling/v2beta1 Pods metric fields \['extra'\]"):
        mapkubeapis.hpa_v2beta1_to_v2(hpa, "HPA x")


def test_objects_whose_new_api_the_cluster_lacks_are_kept() -> None:
    before = manifest(("poddisruptionbudget.yaml", PDB_V1BETA1), ("horizontalpodautoscaler.yaml", HPA_V2BETA1))
    after, mapped, kept = mapkubeapis.map_manifest(before, lambda gv: gv == "policy/v1")
    assert [m.kind for m in mapped] == ["PodDisruptionBudget"]
    assert [str(k) for k in kept] == [
        "HorizontalPodAutoscaler istiod: kept autoscaling/v2beta1; the cluster does not serve autoscaling/v2 yet"
    ]
    assert "autoscaling/v2beta1" in after


def test_manifest_without_removed_apis_maps_nothing() -> None:
    before = manifest(("service.yaml", SERVICE))
    assert mapkubeapis.map_manifest(before, serves_all) == (before, [], [])


def test_unparsable_document_is_refused_naming_its_source() -> None:
    broken = manifest(("service.yaml", SERVICE), ("broken.yaml", "kind: [unclosed\n"))
    with pytest.raises(ReleaseError, match=r"manifest document from istiod/templates/broken.yaml does not parse"):
        mapkubeapis.map_manifest(broken, serves_all)


def test_release_record_round_trips_helm_encoding() -> None:
    record = {"name": "istiod", "info": {"status": "deployed"}, "manifest": "---\n", "version": 1}
    encoded = mapkubeapis.encode_release(record)
    assert gzip.decompress(base64.b64decode(encoded))[:1] == b"{"
    assert mapkubeapis.decode_release(encoded, "Secret x") == record
    # Helm also reads records stored as plain (ungzipped) JSON.
    assert mapkubeapis.decode_release(base64.b64encode(json.dumps(record).encode()), "Secret x") == record


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not base64!", "Secret x: not a Helm release record"),
        (base64.b64encode(gzip.compress(b"{not json")), "Secret x: not a Helm release record"),
        (base64.b64encode(gzip.compress(b'{"name": "x"}')), "Secret x: the release record has no manifest or info"),
    ],
    ids=["not-base64", "not-json", "no-manifest"],
)
def test_undecodable_record_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        mapkubeapis.decode_release(data, "Secret x")
