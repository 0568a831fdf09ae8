"""The gateway chart rendered by the real Helm: Istio 1.12's objects and selectors, and every value's effect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.render.conftest import CHARTS, Helm, find, kinds
from tests.render.reference import reference_rows

RELEASE = "istio-ingressgateway"


def render(helm: Helm, values: dict[str, Any] | None = None, **kw: Any) -> list[dict[str, Any]]:
    return helm.template("gateway", values, release=kw.pop("release", RELEASE), **kw)


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment")


def pod_spec(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    return find(objects, kind)["spec"]["template"]["spec"]


def proxy(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    (container,) = pod_spec(objects, kind)["containers"]
    return container


def test_helm_lint_strict_is_clean(helm: Helm) -> None:
    proc = helm.run("lint", "--strict", str(CHARTS / "gateway"))
    assert "0 chart(s) failed" in proc.stdout + proc.stderr


def test_default_render_is_istio_1_12_object_set(helm: Helm) -> None:
    expected = {(r["kind"], r["name"]) for r in reference_rows("istio-1.12-default-objects.tsv", "gateway")}
    objects = render(helm)
    assert kinds(objects) == expected
    assert {o["metadata"]["namespace"] for o in objects} == {"istio-system"}


def test_selector_labels_match_istio_1_12(helm: Helm) -> None:
    objects = render(helm)
    selector = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert deployment(objects)["spec"]["selector"]["matchLabels"] == selector
    assert find(objects, "Service")["spec"]["selector"] == selector
    labels = deployment(objects)["spec"]["template"]["metadata"]["labels"]
    assert labels == {**selector, "sidecar.istio.io/inject": "true"}


def test_proxy_is_the_injection_placeholder_with_the_gateway_template(helm: Helm) -> None:
    objects = render(helm)
    assert proxy(objects)["name"] == "istio-proxy" and proxy(objects)["image"] == "auto"
    annotations = deployment(objects)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["inject.istio.io/templates"] == "gateway"
    assert annotations["sidecar.istio.io/inject"] == "true"


def test_every_istio_1_12_values_key_is_accepted(helm: Helm, tmp_path: Path) -> None:
    rows = reference_rows("istio-1.12-values.tsv", "gateway")
    assert len(rows) == 35
    flat: dict[str, Any] = {}
    for row in rows:
        default = json.loads(row["default(json)"])
        flat[row["key"]] = default
    # Keys of podAnnotations contain dots; the reference spells them as podAnnotations.<annotation>.
    values: dict[str, Any] = {"podAnnotations": {}}
    for key, default in flat.items():
        if key.startswith("podAnnotations."):
            values["podAnnotations"][key[len("podAnnotations.") :]] = default
            continue
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = default
    objects = render(helm, values)
    assert kinds(objects) == {
        (r["kind"], r["name"]) for r in reference_rows("istio-1.12-default-objects.tsv", "gateway")
    }


# (values, check) pairs: each asserts the value's effect on the rendered objects.
def _svc(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Service")


VALUE_CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "name",
        {"name": "edge"},
        lambda o: (
            {x["metadata"]["name"] for x in o} == {"edge"}
            and deployment(o)["spec"]["selector"]["matchLabels"] == {"app": "edge", "istio": "edge"}
        ),
    ),
    (
        "revision",
        {"revision": "canary"},
        lambda o: deployment(o)["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] == "canary",
    ),
    (
        "replicaCount without autoscaling",
        {"replicaCount": 3, "autoscaling": {"enabled": False}},
        lambda o: deployment(o)["spec"]["replicas"] == 3 and not any(x["kind"] == "HorizontalPodAutoscaler" for x in o),
    ),
    ("autoscaling leaves replicas to the HPA", {"replicaCount": 3}, lambda o: "replicas" not in deployment(o)["spec"]),
    ("rbac off", {"rbac": {"enabled": False}}, lambda o: not {"Role", "RoleBinding"} & {x["kind"] for x in o}),
    (
        "serviceAccount not created",
        {"serviceAccount": {"create": False}},
        lambda o: "ServiceAccount" not in {x["kind"] for x in o} and pod_spec(o)["serviceAccountName"] == "default",
    ),
    (
        "serviceAccount name",
        {"serviceAccount": {"name": "gw-sa"}},
        lambda o: (
            find(o, "ServiceAccount")["metadata"]["name"] == "gw-sa"
            and pod_spec(o)["serviceAccountName"] == "gw-sa"
            and find(o, "RoleBinding")["subjects"][0]["name"] == "gw-sa"
        ),
    ),
    (
        "serviceAccount annotations",
        {"serviceAccount": {"annotations": {"iam": "role-1"}}},
        lambda o: find(o, "ServiceAccount")["metadata"]["annotations"] == {"iam": "role-1"},
    ),
    (
        "podAnnotations merge with the defaults",
        {"podAnnotations": {"a": "b"}},
        lambda o: (
            deployment(o)["spec"]["template"]["metadata"]["annotations"]["a"] == "b"
            and deployment(o)["spec"]["template"]["metadata"]["annotations"]["inject.istio.io/templates"] == "gateway"
        ),
    ),
    (
        "securityContext replaces the secure default",
        {"securityContext": {"fsGroup": 1337}},
        lambda o: pod_spec(o)["securityContext"] == {"fsGroup": 1337},
    ),
    (
        "containerSecurityContext replaces the secure default",
        {"containerSecurityContext": {"runAsUser": 0}},
        lambda o: proxy(o)["securityContext"] == {"runAsUser": 0},
    ),
    ("service.type", {"service": {"type": "NodePort"}}, lambda o: _svc(o)["spec"]["type"] == "NodePort"),
    ("service.type None", {"service": {"type": "None"}}, lambda o: "Service" not in {x["kind"] for x in o}),
    (
        "service.ports",
        {"service": {"ports": [{"name": "tcp", "port": 9000, "targetPort": 9000}]}},
        lambda o: [p["port"] for p in _svc(o)["spec"]["ports"]] == [9000],
    ),
    (
        "service.extraPorts",
        {"service": {"extraPorts": [{"name": "tcp", "port": 9000}]}},
        lambda o: [p["port"] for p in _svc(o)["spec"]["ports"]] == [15021, 80, 443, 9000],
    ),
    (
        "service.annotations reach the Service",
        {"service": {"annotations": {"lb": "internal"}}},
        lambda o: _svc(o)["metadata"]["annotations"] == {"lb": "internal"},
    ),
    (
        "annotations on workload and Service; service.annotations win",
        {"annotations": {"a": "1", "lb": "x"}, "service": {"annotations": {"lb": "internal"}}},
        lambda o: (
            _svc(o)["metadata"]["annotations"] == {"a": "1", "lb": "internal"}
            and deployment(o)["metadata"]["annotations"] == {"a": "1", "lb": "x"}
        ),
    ),
    (
        "service.loadBalancerIP",
        {"service": {"loadBalancerIP": "203.0.113.7"}},
        lambda o: _svc(o)["spec"]["loadBalancerIP"] == "203.0.113.7",
    ),
    (
        "service.loadBalancerClass",
        {"service": {"loadBalancerClass": "example.com/lb"}},
        lambda o: _svc(o)["spec"]["loadBalancerClass"] == "example.com/lb",
    ),
    (
        "service.loadBalancerSourceRanges",
        {"service": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}},
        lambda o: _svc(o)["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"],
    ),
    (
        "service.externalTrafficPolicy",
        {"service": {"externalTrafficPolicy": "Local"}},
        lambda o: _svc(o)["spec"]["externalTrafficPolicy"] == "Local",
    ),
    (
        "service dual stack",
        {"service": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"]}},
        lambda o: (
            _svc(o)["spec"]["ipFamilyPolicy"] == "RequireDualStack"
            and _svc(o)["spec"]["ipFamilies"] == ["IPv6", "IPv4"]
        ),
    ),
    (
        "service.externalIPs",
        {"service": {"externalIPs": ["198.51.100.1"]}},
        lambda o: _svc(o)["spec"]["externalIPs"] == ["198.51.100.1"],
    ),
    (
        "resources",
        {"resources": {"requests": {"cpu": "1"}}},
        lambda o: (
            proxy(o)["resources"]
            == {"requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1024Mi"}}
        ),
    ),
    (
        "autoscaling bounds and target",
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 9, "targetCPUUtilizationPercentage": 60}},
        lambda o: (
            lambda h: (
                h["minReplicas"] == 2
                and h["maxReplicas"] == 9
                and h["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
            )
        )(find(o, "HorizontalPodAutoscaler")["spec"]),
    ),
    (
        "autoscaling memory target",
        {"autoscaling": {"targetMemoryUtilizationPercentage": 70}},
        lambda o: (
            find(o, "HorizontalPodAutoscaler")["spec"]["metrics"][1]["resource"]
            == {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}
        ),
    ),
    (
        "autoscaling behavior",
        {"autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}},
        lambda o: (
            find(o, "HorizontalPodAutoscaler")["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
        ),
    ),
    (
        "env is a map, quoted",
        {"env": {"B_VAR": 1, "A_VAR": True}},
        lambda o: proxy(o)["env"] == [{"name": "A_VAR", "value": "true"}, {"name": "B_VAR", "value": "1"}],
    ),
    ("env as 1.12's empty list", {"env": []}, lambda o: "env" not in proxy(o)),
    (
        "labels on objects, not on the selector",
        {"labels": {"team": "edge"}},
        lambda o: (
            all(x["metadata"]["labels"]["team"] == "edge" for x in o)
            and "team" not in deployment(o)["spec"]["selector"]["matchLabels"]
        ),
    ),
    (
        "labels.app and labels.istio override the selector",
        {"labels": {"app": "old-gw", "istio": "old"}},
        lambda o: (
            deployment(o)["spec"]["selector"]["matchLabels"] == {"app": "old-gw", "istio": "old"}
            and _svc(o)["spec"]["selector"] == {"app": "old-gw", "istio": "old"}
        ),
    ),
    ("nodeSelector", {"nodeSelector": {"pool": "edge"}}, lambda o: pod_spec(o)["nodeSelector"] == {"pool": "edge"}),
    (
        "tolerations",
        {"tolerations": [{"key": "edge", "operator": "Exists"}]},
        lambda o: pod_spec(o)["tolerations"] == [{"key": "edge", "operator": "Exists"}],
    ),
    ("affinity", {"affinity": {"podAntiAffinity": {}}}, lambda o: pod_spec(o)["affinity"] == {"podAntiAffinity": {}}),
    (
        "topologySpreadConstraints",
        {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
        lambda o: pod_spec(o)["topologySpreadConstraints"][0]["topologyKey"] == "zone",
    ),
    (
        "strategy",
        {"strategy": {"type": "Recreate"}},
        lambda o: deployment(o)["spec"]["strategy"] == {"type": "Recreate"},
    ),
    ("minReadySeconds", {"minReadySeconds": 15}, lambda o: deployment(o)["spec"]["minReadySeconds"] == 15),
    (
        "priorityClassName",
        {"priorityClassName": "system-cluster-critical"},
        lambda o: pod_spec(o)["priorityClassName"] == "system-cluster-critical",
    ),
    (
        "terminationGracePeriodSeconds",
        {"terminationGracePeriodSeconds": 90},
        lambda o: pod_spec(o)["terminationGracePeriodSeconds"] == 90,
    ),
    (
        "imagePullSecrets",
        {"imagePullSecrets": [{"name": "regcred"}]},
        lambda o: pod_spec(o)["imagePullSecrets"] == [{"name": "regcred"}],
    ),
    (
        "volumes and volumeMounts",
        {
            "volumes": [{"name": "certs", "secret": {"secretName": "c"}}],
            "volumeMounts": [{"name": "certs", "mountPath": "/etc/certs"}],
        },
        lambda o: (
            pod_spec(o)["volumes"][0]["name"] == "certs" and proxy(o)["volumeMounts"][0]["mountPath"] == "/etc/certs"
        ),
    ),
    (
        "kind DaemonSet",
        {"kind": "DaemonSet"},
        lambda o: (
            {x["kind"] for x in o} == {"DaemonSet", "Service", "ServiceAccount", "Role", "RoleBinding"}
            and find(o, "DaemonSet")["spec"]["selector"]["matchLabels"] == {"app": RELEASE, "istio": "ingressgateway"}
        ),
    ),
    (
        "DaemonSet updateStrategy from strategy",
        {"kind": "DaemonSet", "strategy": {"type": "OnDelete"}},
        lambda o: find(o, "DaemonSet")["spec"]["updateStrategy"] == {"type": "OnDelete"},
    ),
    (
        "podDisruptionBudget",
        {"podDisruptionBudget": {"enabled": True}},
        lambda o: (
            find(o, "PodDisruptionBudget")["apiVersion"] == "policy/v1"
            and find(o, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
        ),
    ),
    (
        "podDisruptionBudget maxUnavailable",
        {"podDisruptionBudget": {"enabled": True, "minAvailable": None, "maxUnavailable": "25%"}},
        lambda o: (
            find(o, "PodDisruptionBudget")["spec"]
            == {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": RELEASE, "istio": "ingressgateway"}}}
        ),
    ),
    (
        "networkGateway",
        {"networkGateway": "network-2"},
        lambda o: (
            [p["port"] for p in _svc(o)["spec"]["ports"]] == [15021, 15443, 15012, 15017]
            and _svc(o)["metadata"]["labels"]["topology.istio.io/network"] == "network-2"
            and {"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": "network-2"} in proxy(o)["env"]
        ),
    ),
]


@pytest.mark.parametrize(("values", "check"), [(v, c) for _, v, c in VALUE_CASES], ids=[n for n, _, _ in VALUE_CASES])
def test_value_has_its_effect(helm: Helm, values: dict[str, Any], check: Any) -> None:
    objects = render(helm, values)
    assert check(objects), json.dumps(objects, indent=1)[:4000]


def test_secure_defaults_meet_the_restricted_pod_security_standard(helm4: Helm) -> None:
    objects = render(helm4)
    pod = pod_spec(objects)
    container = proxy(objects)["securityContext"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["runAsUser"] == 1337 and container["runAsNonRoot"] is True


def test_schema_accepts_what_umbrella_charts_pass(helm: Helm) -> None:
    objects = render(helm, {"global": {"hub": "example.com/istio", "anything": {"x": 1}}, "enabled": True})
    assert ("Deployment", RELEASE) in kinds(objects)


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"name": 5}, "name"),
    ({"revision": ["a"]}, "revision"),
    ({"kind": "StatefulSet"}, "kind"),
    ({"replicaCount": -1}, "replicaCount"),
    ({"replicaCount": "two"}, "replicaCount"),
    ({"rbac": {"enabled": "yes"}}, "enabled"),
    ({"rbac": {"create": True}}, "create"),
    ({"serviceAccount": {"create": 1}}, "create"),
    ({"serviceAccount": {"annotations": {"a": 1}}}, "annotations"),
    ({"podAnnotations": ["a"]}, "podAnnotations"),
    ({"labels": "app=x"}, "labels"),
    ({"service": {"type": "ExternalName"}}, "type"),
    ({"service": {"ports": [{"name": "x"}]}}, "port"),
    ({"service": {"ports": [{"port": 70000}]}}, "port"),
    ({"service": {"ports": [{"port": 80, "protocol": "HTTP"}]}}, "protocol"),
    ({"service": {"extraPorts": [{"port": 80, "colour": "red"}]}}, "colour"),
    ({"service": {"externalTrafficPolicy": "Remote"}}, "externalTrafficPolicy"),
    ({"service": {"ipFamilyPolicy": "DualStack"}}, "ipFamilyPolicy"),
    ({"service": {"internalTrafficPolicy": "Node"}}, "internalTrafficPolicy"),
    ({"service": {"ipFamilies": ["IPv5"]}}, "ipFamilies"),
    ({"service": {"loadBalancerSourceRanges": "10.0.0.0/8"}}, "loadBalancerSourceRanges"),
    ({"service": {"nodePort": 30000}}, "nodePort"),
    ({"resources": "small"}, "resources"),
    ({"autoscaling": {"minReplicas": 0}}, "minReplicas"),
    ({"autoscaling": {"maxReplicas": "5"}}, "maxReplicas"),
    ({"autoscaling": {"targetCPUUtilizationPercentage": 0}}, "targetCPUUtilizationPercentage"),
    ({"podDisruptionBudget": {"enabled": "true"}}, "enabled"),
    ({"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Never"}}, "unhealthyPodEvictionPolicy"),
    ({"env": {"A": {"nested": 1}}}, "env"),
    ({"env": ["A=1"]}, "env"),
    ({"imagePullSecrets": ["regcred"]}, "imagePullSecrets"),
    ({"tolerations": {"key": "x"}}, "tolerations"),
    ({"minReadySeconds": -5}, "minReadySeconds"),
    ({"networkGateway": True}, "networkGateway"),
    ({"replicas": 2}, "replicas"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[f"{k}-{i}" for i, (_, k) in enumerate(BAD_VALUES)])
def test_bad_value_is_rejected_naming_the_key(helm: Helm, values: dict[str, Any], key: str) -> None:
    error = helm.template_error("gateway", values)
    assert "schema" in error.lower() or "values don't meet" in error.lower(), error
    assert key in error, error


def _budgets(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_a_budget_field_set_without_enabled_still_gets_its_budget(helm: Helm) -> None:
    """Istio 1.12's gateway rendered a budget whenever podDisruptionBudget had content; a set field never
    silently does nothing."""
    assert _budgets(render(helm)) == []
    for values, spec in (
        ({"maxUnavailable": 1, "minAvailable": None}, {"maxUnavailable": 1}),
        ({"minAvailable": "50%"}, {"minAvailable": "50%"}),
        ({"minAvailable": 2}, {"minAvailable": 2}),
    ):
        (budget,) = _budgets(render(helm, {"podDisruptionBudget": values}))
        assert {k: v for k, v in budget["spec"].items() if k != "selector"} == spec, values


def test_a_budget_policy_without_a_size_is_refused_naming_the_keys(helm: Helm) -> None:
    values = {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "AlwaysAllow", "minAvailable": None}}
    error = helm.template_error("gateway", values)
    assert "podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable" in error
