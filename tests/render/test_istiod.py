"""The istiod chart rendered by the real Helm 4 and 3: Istio 1.12's objects, webhooks and revisions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts._yaml import parse, parse_all
from tests.conftest import data_table
from tests.render.conftest import CHARTS, REPO, Helm, find, kinds

NS = "istio-system"

# The objects of 1.12's default render this chart leaves out on purpose (see the chart README).
LEFT_OUT = {
    ("EnvoyFilter", "stats-filter-1.10"),
    ("EnvoyFilter", "tcp-stats-filter-1.10"),
    ("EnvoyFilter", "stats-filter-1.11"),
    ("EnvoyFilter", "tcp-stats-filter-1.11"),
}
# ...and what it adds: the per-revision validator that 1.12 meant to render (a fixed defect).
ADDED = {("ValidatingWebhookConfiguration", "istio-validator-istio-system")}

Objects = list[dict[str, Any]]


def render(helm: Helm, values: dict[str, Any] | None = None, **kw: Any) -> Objects:
    kw.setdefault("release", "istiod")
    return helm.template("istiod", values, **kw)


def webhooks(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["name"]: w for w in obj["webhooks"]}


def expressions(selector: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(e["key"], e["operator"], tuple(e.get("values", ()))) for e in selector["matchExpressions"]}


def container(objects: Objects, name: str = "istiod") -> dict[str, Any]:
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def env(objects: Objects, name: str = "istiod") -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container(objects, name)["env"]}


def mesh(objects: Objects, name: str = "istio") -> dict[str, Any]:
    return yaml.safe_load(find(objects, "ConfigMap", name)["data"]["mesh"])


def injector(objects: Objects, key: str) -> Any:
    data = find(objects, "ConfigMap", "istio-sidecar-injector")["data"][key]
    return json.loads(data) if key == "values" else parse(data)


def pod_spec(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment", "istiod")["spec"]["template"]["spec"]


def stats_config(objects: Objects, filter_name: str, context: str) -> dict[str, Any]:
    ef = find(objects, "EnvoyFilter", filter_name)
    patch = next(p for p in ef["spec"]["configPatches"] if p["match"]["context"] == context)
    return json.loads(patch["patch"]["value"]["typed_config"]["value"]["config"]["configuration"]["value"])


# ---------------------------------------------------------------------------------------------
# lint and the 1.12 default object set


def test_istiod_lints_strict_with_defaults_and_with_a_revision(helm: Helm) -> None:
    for extra in ((), ("--set", "revision=canary", "--set", "revisionTags={prod}")):
        proc = helm.run("lint", "--strict", str(CHARTS / "istiod"), *extra)
        assert "0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr


def test_default_render_is_the_1_12_object_set_less_old_proxy_filters_plus_the_validator(helm: Helm) -> None:
    rows = data_table("istio-1.12-default-objects.tsv")
    expected = {(r["kind"], r["name"]) for r in rows if r["chart"] == "istiod"}
    assert expected >= LEFT_OUT
    objects = render(helm)
    assert kinds(objects) == (expected - LEFT_OUT) | ADDED
    namespaces = {(r["kind"], r["name"]): r["namespace"] for r in rows if r["chart"] == "istiod"}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in namespaces:
            assert obj["metadata"].get("namespace", "") == namespaces[key], key


def test_values_yaml_holds_every_1_12_istiod_key_with_its_default(helm: Helm) -> None:
    rows = [r for r in data_table("istio-1.12-values.tsv") if r["chart"] == "istiod"]
    assert len(rows) == 126
    values = yaml.safe_load((CHARTS / "istiod" / "values.yaml").read_text())
    # Published charts point at the release images, not 1.12's development defaults.
    suite = yaml.safe_load((REPO / "generator" / "specs" / "suite.yaml").read_text())
    release_defaults = {"global.hub": suite["hub"], "global.tag": suite["version"]}
    for row in rows:
        node: Any = values
        for part in row["key"].split("."):
            assert isinstance(node, dict) and part in node, f"values.yaml lacks {row['key']}"
            node = node[part]
        assert node == release_defaults.get(row["key"], json.loads(row["default(json)"])), row["key"]


def test_every_1_12_istiod_key_set_to_its_default_passes_the_schema(helm: Helm) -> None:
    rows = [r for r in data_table("istio-1.12-values.tsv") if r["chart"] == "istiod"]
    values: dict[str, Any] = {}
    for row in rows:
        node = values
        parts = row["key"].split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = json.loads(row["default(json)"])
    assert kinds(render(helm, values)) == kinds(render(helm))


def test_default_release_images_follow_the_suite(helm: Helm) -> None:
    suite = yaml.safe_load((REPO / "generator" / "specs" / "suite.yaml").read_text())
    assert container(render(helm))["image"] == f"{suite['hub']}/pilot:{suite['version']}"


# ---------------------------------------------------------------------------------------------
# webhooks: the reference table for revision "", a revision and tags

NOT_FALSE = ("sidecar.istio.io/inject", "NotIn", ("false",))


def expected_injection(rev: str, *, legacy: bool, auto: bool = False) -> dict[str, tuple[set[Any], set[Any]]]:
    hooks = {
        "rev.namespace.sidecar-injector.istio.io": (
            {("istio.io/rev", "In", (rev,)), ("istio-injection", "DoesNotExist", ())},
            {NOT_FALSE},
        ),
        "rev.object.sidecar-injector.istio.io": (
            {("istio.io/rev", "DoesNotExist", ()), ("istio-injection", "DoesNotExist", ())},
            {NOT_FALSE, ("istio.io/rev", "In", (rev,))},
        ),
    }
    if legacy:
        hooks["namespace.sidecar-injector.istio.io"] = ({("istio-injection", "In", ("enabled",))}, {NOT_FALSE})
        hooks["object.sidecar-injector.istio.io"] = (
            {("istio-injection", "DoesNotExist", ()), ("istio.io/rev", "DoesNotExist", ())},
            {("sidecar.istio.io/inject", "In", ("true",)), ("istio.io/rev", "DoesNotExist", ())},
        )
    if auto:
        hooks["auto.sidecar-injector.istio.io"] = (
            {("istio-injection", "DoesNotExist", ()), ("istio.io/rev", "DoesNotExist", ())},
            {("sidecar.istio.io/inject", "DoesNotExist", ()), ("istio.io/rev", "DoesNotExist", ())},
        )
    return hooks


def assert_injection(config: dict[str, Any], expected: dict[str, Any], service: str, namespace: str = NS) -> None:
    hooks = webhooks(config)
    assert list(hooks) == list(expected)
    for name, (ns_sel, obj_sel) in expected.items():
        hook = hooks[name]
        assert expressions(hook["namespaceSelector"]) == ns_sel, name
        assert expressions(hook["objectSelector"]) == obj_sel, name
        assert hook["clientConfig"]["service"] == {
            "name": service,
            "namespace": namespace,
            "path": "/inject",
            "port": 443,
        }
        assert "caBundle" not in hook["clientConfig"]  # istiod's to fill in; Helm must never reset it
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1beta1", "v1"]
        assert hook["rules"] == [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
        ]


def test_default_revision_injection_webhooks_equal_the_reference_table(helm: Helm) -> None:
    mwc = find(render(helm), "MutatingWebhookConfiguration", "istio-sidecar-injector")
    assert_injection(mwc, expected_injection("default", legacy=True), "istiod")


def test_enable_namespaces_by_default_adds_the_auto_webhook_only_for_the_default_revision(helm: Helm) -> None:
    values = {"sidecarInjectorWebhook": {"enableNamespacesByDefault": True}}
    mwc = find(render(helm, values), "MutatingWebhookConfiguration", "istio-sidecar-injector")
    assert_injection(mwc, expected_injection("default", legacy=True, auto=True), "istiod")
    mwc = find(render(helm, {**values, "revision": "canary"}), "MutatingWebhookConfiguration")
    assert_injection(mwc, expected_injection("canary", legacy=False), "istiod-canary")


def test_canary_revision_injection_webhooks_serve_only_its_label(helm: Helm) -> None:
    mwc = find(render(helm, {"revision": "canary"}), "MutatingWebhookConfiguration", "istio-sidecar-injector-canary")
    assert mwc["metadata"]["labels"]["istio.io/rev"] == "canary"
    assert_injection(mwc, expected_injection("canary", legacy=False), "istiod-canary")


def test_revision_tags_render_one_configuration_per_tag_and_default_tag_takes_the_legacy_labels(helm: Helm) -> None:
    objects = render(helm, {"revision": "1-12-0", "revisionTags": ["prod", "default"]})
    tags = [o for o in objects if o["metadata"]["name"].startswith("istio-revision-tag-")]
    assert sorted(o["metadata"]["name"] for o in tags) == ["istio-revision-tag-default", "istio-revision-tag-prod"]
    prod = find(objects, "MutatingWebhookConfiguration", "istio-revision-tag-prod")
    assert prod["metadata"]["labels"]["istio.io/tag"] == "prod"
    assert_injection(prod, expected_injection("prod", legacy=False), "istiod-1-12-0")
    default = find(objects, "MutatingWebhookConfiguration", "istio-revision-tag-default")
    assert_injection(default, expected_injection("default", legacy=True), "istiod-1-12-0")


def test_validator_renders_by_default_with_ignore_on_install_only(helm: Helm) -> None:
    vwc = find(render(helm), "ValidatingWebhookConfiguration", "istio-validator-istio-system")
    (hook,) = vwc["webhooks"]
    assert hook["name"] == "rev.validation.istio.io"
    assert hook["failurePolicy"] == "Ignore"
    assert hook["clientConfig"]["service"] == {"name": "istiod", "namespace": NS, "path": "/validate", "port": 443}
    assert expressions(hook["objectSelector"]) == {("istio.io/rev", "In", ("default",))}
    assert hook["rules"][0]["apiGroups"] == [
        "security.istio.io",
        "networking.istio.io",
        "telemetry.istio.io",
        "extensions.istio.io",
    ]
    upgraded = find(render(helm, extra=("--is-upgrade",)), "ValidatingWebhookConfiguration")
    assert "failurePolicy" not in upgraded["webhooks"][0]


def test_validator_of_a_revision_selects_its_config(helm: Helm) -> None:
    vwc = find(
        render(helm, {"revision": "canary"}), "ValidatingWebhookConfiguration", "istio-validator-canary-istio-system"
    )
    hook = vwc["webhooks"][0]
    assert expressions(hook["objectSelector"]) == {("istio.io/rev", "In", ("canary",))}
    assert hook["clientConfig"]["service"]["name"] == "istiod-canary"


# ---------------------------------------------------------------------------------------------
# revisions side by side, other namespaces, subcharts


def test_revisions_1_12_0_and_canary_share_no_object_name(helm: Helm) -> None:
    one = render(helm, {"revision": "1-12-0", "revisionTags": ["stable"]})
    two = render(helm, {"revision": "canary", "revisionTags": ["next"]})

    def names(objects: Objects) -> set[tuple[str, str, str]]:
        return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects}

    assert len(names(one)) == len(one)
    assert names(one).isdisjoint(names(two))
    cluster_scoped = {n for n in names(one) if n[1] == ""}
    assert {k for k, _, _ in cluster_scoped} >= {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}


def test_revision_switches_the_selector_and_suffixes_every_namespaced_name(helm: Helm) -> None:
    objects = render(helm, {"revision": "canary"})
    deployment = find(objects, "Deployment", "istiod-canary")
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "istiod", "istio.io/rev": "canary"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["istio"] == "istiod"
    assert find(objects, "Service", "istiod-canary")["spec"]["selector"] == {"app": "istiod", "istio.io/rev": "canary"}
    for obj in objects:
        if obj["metadata"].get("namespace"):
            assert obj["metadata"]["name"].endswith("-canary"), obj["metadata"]["name"]
            assert obj["metadata"]["labels"]["istio.io/rev"] == "canary"
    assert mesh(objects, "istio-canary")["defaultConfig"]["discoveryAddress"] == "istiod-canary.istio-system.svc:15012"


def test_default_revision_keeps_1_12_selector(helm: Helm) -> None:
    objects = render(helm)
    assert find(objects, "Deployment")["spec"]["selector"]["matchLabels"] == {"istio": "pilot"}
    assert find(objects, "Service")["spec"]["selector"] == {"app": "istiod", "istio": "pilot"}
    assert find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == {
        "app": "istiod",
        "istio": "pilot",
    }


def test_other_namespace_puts_everything_there_and_names_webhooks_after_it(helm: Helm) -> None:
    objects = render(helm, namespace="mesh")
    for obj in objects:
        if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding", "Service", "Deployment", "ConfigMap"):
            assert obj["metadata"]["namespace"] == "mesh", obj["metadata"]["name"]
    for binding in [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]:
        if binding["subjects"][0]["name"] == "istiod":
            assert binding["subjects"][0]["namespace"] == "mesh"
    assert find(objects, "ClusterRole", "istiod-clusterrole-mesh")
    mwc = find(objects, "MutatingWebhookConfiguration", "istio-sidecar-injector-mesh")
    assert all(w["clientConfig"]["service"]["namespace"] == "mesh" for w in mwc["webhooks"])
    assert find(objects, "ValidatingWebhookConfiguration", "istio-validator-mesh")


def test_istiod_works_as_a_subchart_with_umbrella_values(helm: Helm, tmp_path: Path) -> None:
    umbrella = tmp_path / "mesh"
    (umbrella / "charts").mkdir(parents=True)
    (umbrella / "Chart.yaml").write_text(
        "apiVersion: v2\nname: mesh\nversion: 0.1.0\ndependencies:\n"
        "  - {name: istiod, version: 1.12.0, condition: istiod.enabled}\n"
    )
    (umbrella / "values.yaml").write_text(
        "global: {hub: registry.example/istio, tag: 1.12.1, logAsJson: true, other: x}\n"
        "istiod: {enabled: true, revision: canary}\n"
    )
    helm.run("package", str(CHARTS / "istiod"), "--destination", str(umbrella / "charts"))
    out = helm.run("template", "mesh", str(umbrella), "--namespace", NS).stdout
    objects = [d for d in parse_all(out) if d]
    assert container(objects, "istiod-canary")["image"] == "registry.example/istio/pilot:1.12.1"
    assert "--log_as_json" in container(objects, "istiod-canary")["args"]


# ---------------------------------------------------------------------------------------------
# values cases: each a values file and its asserted effect on the rendered objects

Check = Callable[[Objects], None]


def _hpa_absent(o: Objects) -> None:
    assert not [x for x in o if x["kind"] == "HorizontalPodAutoscaler"]
    assert find(o, "Deployment")["spec"]["replicas"] == 3


def _no_kind(kind: str) -> Check:
    def check(o: Objects) -> None:
        assert not [x for x in o if x["kind"] == kind], kind

    return check


CASES: dict[str, tuple[dict[str, Any], Check]] = {
    "meshConfig.defaultHttpRetryPolicy passes through": (
        {"meshConfig": {"defaultHttpRetryPolicy": {"attempts": 2, "retryOn": "5xx"}}},
        lambda o: _eq(mesh(o)["defaultHttpRetryPolicy"], {"attempts": 2, "retryOn": "5xx"}),
    ),
    "meshConfig deep-merges into defaultConfig": (
        {"meshConfig": {"defaultConfig": {"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}}},
        lambda o: _eq(
            mesh(o)["defaultConfig"],
            {
                "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"},
                "discoveryAddress": "istiod.istio-system.svc:15012",
                "tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}},
            },
        ),
    ),
    "meshConfig.trustDomain": (
        {"meshConfig": {"trustDomain": "example.org"}},
        lambda o: _eq(mesh(o)["trustDomain"], "example.org"),
    ),
    "meshConfig.rootNamespace moves mesh root and EnvoyFilters": (
        {"meshConfig": {"rootNamespace": "istio-config"}},
        lambda o: (
            _eq(mesh(o)["rootNamespace"], "istio-config"),
            _eq(find(o, "EnvoyFilter", "stats-filter-1.12")["metadata"]["namespace"], "istio-config"),
        ),
    ),
    "meshConfig.enablePrometheusMerge false drops scrape annotations": (
        {"meshConfig": {"enablePrometheusMerge": False}},
        lambda o: _absent(find(o, "Deployment")["spec"]["template"]["metadata"]["annotations"], "prometheus.io/scrape"),
    ),
    "pilot.env": (
        {"pilot": {"env": {"PILOT_ENABLE_STATUS": True, "EXTERNAL_ISTIOD": "false", "WORKERS": 3}}},
        lambda o: _sub(env(o), {"PILOT_ENABLE_STATUS": "true", "EXTERNAL_ISTIOD": "false", "WORKERS": "3"}),
    ),
    "pilot.env gateway deployment controller off drops its RBAC": (
        {"pilot": {"env": {"PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": False}}},
        lambda o: _eq([x for x in o if "gateway-controller" in x["metadata"]["name"]], []),
    ),
    "autoscaling off uses replicaCount": ({"pilot": {"autoscaleEnabled": False, "replicaCount": 3}}, _hpa_absent),
    "autoscale bounds and target": (
        {"pilot": {"autoscaleMin": 2, "autoscaleMax": 9, "cpu": {"targetAverageUtilization": 60}}},
        lambda o: _eq(
            (lambda s: (s["minReplicas"], s["maxReplicas"], s["metrics"][0]["resource"]["target"]))(
                find(o, "HorizontalPodAutoscaler")["spec"]
            ),
            (2, 9, {"type": "Utilization", "averageUtilization": 60}),
        ),
    ),
    "autoscale behavior": (
        {"pilot": {"autoscaleBehavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}}},
        lambda o: _eq(
            find(o, "HorizontalPodAutoscaler")["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 600
        ),
    ),
    "pilot.resources": (
        {"pilot": {"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "4Gi"}}}},
        # Helm merges the keys given over the defaults.
        lambda o: _eq(
            container(o)["resources"], {"requests": {"cpu": "1", "memory": "2048Mi"}, "limits": {"memory": "4Gi"}}
        ),
    ),
    "null pilot.resources falls back to global.defaultResources": (
        {"pilot": {"resources": None}, "global": {"defaultResources": {"requests": {"cpu": "20m"}}}},
        lambda o: _eq(container(o)["resources"], {"requests": {"cpu": "20m"}}),
    ),
    "pilot.nodeSelector": (
        {"pilot": {"nodeSelector": {"pool": "system"}}},
        lambda o: _eq(pod_spec(o)["nodeSelector"], {"pool": "system"}),
    ),
    "pilot.tolerations": (
        {"pilot": {"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}},
        lambda o: _eq(pod_spec(o)["tolerations"], [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]),
    ),
    "pilot.affinity": (
        {"pilot": {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}}},
        lambda o: _eq(list(pod_spec(o)["affinity"]), ["podAntiAffinity"]),
    ),
    "pilot.hub and tag": (
        {"pilot": {"hub": "r.example", "tag": "t1"}},
        lambda o: _eq(container(o)["image"], "r.example/pilot:t1"),
    ),
    "pilot.image with a slash is the full image": (
        {"pilot": {"image": "r.example/custom/pilot:9"}},
        lambda o: _eq(container(o)["image"], "r.example/custom/pilot:9"),
    ),
    "pilot.traceSampling": ({"pilot": {"traceSampling": 5.5}}, lambda o: _eq(env(o)["PILOT_TRACE_SAMPLING"], "5.5")),
    "protocol sniffing off": (
        {"pilot": {"enableProtocolSniffingForOutbound": False, "enableProtocolSniffingForInbound": False}},
        lambda o: _sub(
            env(o),
            {
                "PILOT_ENABLE_PROTOCOL_SNIFFING_FOR_OUTBOUND": "false",
                "PILOT_ENABLE_PROTOCOL_SNIFFING_FOR_INBOUND": "false",
            },
        ),
    ),
    "pilot.podAnnotations, podLabels, deploymentLabels": (
        {"pilot": {"podAnnotations": {"a": "1"}, "podLabels": {"team": "mesh"}, "deploymentLabels": {"tier": "cp"}}},
        lambda o: (
            _eq(find(o, "Deployment")["spec"]["template"]["metadata"]["annotations"]["a"], "1"),
            _eq(find(o, "Deployment")["spec"]["template"]["metadata"]["labels"]["team"], "mesh"),
            _eq(find(o, "Deployment")["metadata"]["labels"]["tier"], "cp"),
        ),
    ),
    "pilot.serviceAnnotations": (
        {"pilot": {"serviceAnnotations": {"lb": "internal"}}},
        lambda o: _eq(find(o, "Service")["metadata"]["annotations"], {"lb": "internal"}),
    ),
    "pilot.jwksResolverExtraRootCA mounts a ConfigMap": (
        {"pilot": {"jwksResolverExtraRootCA": "-----BEGIN CERTIFICATE-----"}},
        lambda o: (
            _eq(find(o, "ConfigMap", "pilot-jwks-extra-cacerts")["data"]["extra.pem"], "-----BEGIN CERTIFICATE-----"),
            _eq(pod_spec(o)["volumes"][-1]["configMap"]["name"], "pilot-jwks-extra-cacerts"),
        ),
    ),
    "pilot.plugins and keepalive": (
        {"pilot": {"plugins": ["a", "b"], "keepaliveMaxServerConnectionAge": "1h"}},
        lambda o: (_has(container(o)["args"], "--plugins=a,b"), _has(container(o)["args"], "1h")),
    ),
    "pilot.configMap false drops the mesh ConfigMap": (
        {"pilot": {"configMap": False}},
        lambda o: _eq([x for x in o if x["metadata"]["name"] == "istio"], []),
    ),
    "rolling update bounds": (
        {"pilot": {"rollingMaxSurge": 1, "rollingMaxUnavailable": "0%"}},
        lambda o: _eq(
            find(o, "Deployment")["spec"]["strategy"]["rollingUpdate"], {"maxSurge": 1, "maxUnavailable": "0%"}
        ),
    ),
    "PDB off": ({"global": {"defaultPodDisruptionBudget": {"enabled": False}}}, _no_kind("PodDisruptionBudget")),
    "PDB maxUnavailable": (
        {"pdb": {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}},
        lambda o: _eq(
            {k: v for k, v in find(o, "PodDisruptionBudget")["spec"].items() if k != "selector"},
            {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        ),
    ),
    "PDB minAvailable percentage": (
        {"pdb": {"minAvailable": "50%"}},
        lambda o: _eq(find(o, "PodDisruptionBudget")["spec"]["minAvailable"], "50%"),
    ),
    "validator off": ({"global": {"configValidation": False}}, _no_kind("ValidatingWebhookConfiguration")),
    "operator manages webhooks": (
        {"global": {"operatorManageWebhooks": True}},
        _no_kind("MutatingWebhookConfiguration"),
    ),
    "injector ConfigMap omitted": (
        {"global": {"omitSidecarInjectorConfigMap": True}},
        lambda o: _eq(
            [x for x in o if x["kind"] == "ConfigMap" and x["metadata"]["name"] == "istio-sidecar-injector"], []
        ),
    ),
    "injectionURL replaces the service": (
        {"istiodRemote": {"injectionURL": "https://127.0.0.1:9443/inject"}},
        lambda o: _eq(
            {w["clientConfig"].get("url") for w in find(o, "MutatingWebhookConfiguration")["webhooks"]},
            {"https://127.0.0.1:9443/inject"},
        ),
    ),
    "injectionPath": (
        {"istiodRemote": {"injectionPath": "/inject/net/n2"}},
        lambda o: _eq(
            find(o, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]["path"], "/inject/net/n2"
        ),
    ),
    "base.validationURL replaces the validator service": (
        {"base": {"validationURL": "https://127.0.0.1:9443/validate"}},
        lambda o: _eq(
            find(o, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"],
            {"url": "https://127.0.0.1:9443/validate"},
        ),
    ),
    "injector policy, selectors and annotations": (
        {
            "global": {"proxy": {"autoInject": "disabled"}},
            "sidecarInjectorWebhook": {
                "neverInjectSelector": [{"matchLabels": {"skip": "yes"}}],
                "injectedAnnotations": {"example.com/x": "z1"},
                "defaultTemplates": ["sidecar", "extra"],
                "templates": {"extra": "metadata:\n  labels:\n    extra: labelled\n"},
            },
        },
        lambda o: (
            _eq(injector(o, "config")["policy"], "disabled"),
            _eq(injector(o, "config")["neverInjectSelector"], [{"matchLabels": {"skip": "yes"}}]),
            _eq(injector(o, "config")["injectedAnnotations"], {"example.com/x": "z1"}),
            _eq(injector(o, "config")["defaultTemplates"], ["sidecar", "extra"]),
            _eq(
                sorted(injector(o, "config")["templates"]), ["extra", "gateway", "grpc-agent", "grpc-simple", "sidecar"]
            ),
        ),
    ),
    "a custom template named sidecar replaces the built-in one": (
        {"sidecarInjectorWebhook": {"templates": {"sidecar": "spec: {}\n"}}},
        lambda o: _eq(injector(o, "config")["templates"]["sidecar"], "spec: {}"),
    ),
    "global values reach the injector values JSON": (
        {"global": {"proxy": {"holdApplicationUntilProxyStarts": True}, "network": "n1"}, "revision": "canary"},
        lambda o: (
            _eq(
                json.loads(find(o, "ConfigMap", "istio-sidecar-injector-canary")["data"]["values"])["global"][
                    "network"
                ],
                "n1",
            ),
            _eq(
                json.loads(find(o, "ConfigMap", "istio-sidecar-injector-canary")["data"]["values"])["revision"],
                "canary",
            ),
        ),
    ),
    "global.meshNetworks": (
        {"global": {"meshNetworks": {"n1": {"endpoints": [{"fromRegistry": "c1"}]}}}},
        lambda o: _eq(
            yaml.safe_load(find(o, "ConfigMap", "istio")["data"]["meshNetworks"]),
            {"networks": {"n1": {"endpoints": [{"fromRegistry": "c1"}]}}},
        ),
    ),
    "global.meshID and tracer": (
        {"global": {"meshID": "m1", "proxy": {"tracer": "datadog"}, "tracer": {"datadog": {"address": "dd:8126"}}}},
        lambda o: _sub(mesh(o)["defaultConfig"], {"meshId": "m1", "tracing": {"datadog": {"address": "dd:8126"}}}),
    ),
    "global logging, json, clusterDomain, oneNamespace": (
        {
            "global": {
                "logging": {"level": "ads:debug"},
                "logAsJson": True,
                "oneNamespace": True,
                "proxy": {"clusterDomain": "c.example"},
            }
        },
        lambda o: _eq(
            container(o)["args"],
            [
                "discovery",
                "--monitoringAddr=:15014",
                "--log_output_level=ads:debug",
                "--log_as_json",
                "--domain",
                "c.example",
                "-a",
                NS,
                "--keepaliveMaxServerConnectionAge",
                "30m",
            ],
        ),
    ),
    "global priorityClassName, imagePullPolicy and imagePullSecrets": (
        {
            "global": {
                "priorityClassName": "system-cluster-critical",
                "imagePullPolicy": "Always",
                "imagePullSecrets": ["regcred"],
            }
        },
        lambda o: (
            _eq(pod_spec(o)["priorityClassName"], "system-cluster-critical"),
            _eq(container(o)["imagePullPolicy"], "Always"),
            _eq(find(o, "ServiceAccount")["imagePullSecrets"], [{"name": "regcred"}]),
        ),
    ),
    "first-party-jwt drops the projected token": (
        {"global": {"jwtPolicy": "first-party-jwt"}},
        lambda o: _eq([v["name"] for v in pod_spec(o)["volumes"] if v["name"] == "istio-token"], []),
    ),
    "cluster name and analysis": (
        {"global": {"multiCluster": {"clusterName": "east"}, "istiod": {"enableAnalysis": True}}},
        lambda o: (
            _sub(env(o), {"CLUSTER_ID": "east", "PILOT_ENABLE_ANALYSIS": "true"}),
            _eq(
                sum(
                    1
                    for r in find(o, "ClusterRole", "istiod-clusterrole-istio-system")["rules"]
                    if r["verbs"] == ["update"]
                ),
                1,
            ),
        ),
    ),
    "external istiod gives the reader webhook rights": (
        {"global": {"externalIstiod": True}},
        lambda o: _eq(
            any(
                "mutatingwebhookconfigurations" in r["resources"]
                for r in find(o, "ClusterRole", "istio-reader-clusterrole-istio-system")["rules"]
            ),
            True,
        ),
    ),
    "remote pilot address points discovery at istiod-remote": (
        {"global": {"remotePilotAddress": "10.0.0.1"}},
        lambda o: _eq(mesh(o)["defaultConfig"]["discoveryAddress"], "istiod-remote.istio-system.svc:15012"),
    ),
    "ownerName label": (
        {"ownerName": "op"},
        lambda o: _eq(find(o, "Deployment")["metadata"]["labels"]["install.operator.istio.io/owning-resource"], "op"),
    ),
    "telemetry off drops every EnvoyFilter": ({"telemetry": {"enabled": False}}, _no_kind("EnvoyFilter")),
    "prometheus off drops the stats filters": (
        {"telemetry": {"v2": {"prometheus": {"enabled": False}}}},
        _no_kind("EnvoyFilter"),
    ),
    "prometheus configOverride replaces inbound sidecar config": (
        {"telemetry": {"v2": {"prometheus": {"configOverride": {"inboundSidecar": {"debug": "true"}}}}}},
        lambda o: (
            _eq(stats_config(o, "stats-filter-1.12", "SIDECAR_INBOUND"), {"debug": "true"}),
            _eq(stats_config(o, "tcp-stats-filter-1.12", "SIDECAR_INBOUND"), {"debug": "true"}),
            _eq(stats_config(o, "stats-filter-1.12", "SIDECAR_OUTBOUND"), {"debug": "false", "stat_prefix": "istio"}),
        ),
    ),
    "stackdriver with logging, no outbound and access log policy": (
        {
            "telemetry": {
                "v2": {
                    "stackdriver": {"enabled": True, "logging": True, "disableOutbound": True},
                    "accessLogPolicy": {"enabled": True, "logWindowDuration": "60s"},
                }
            }
        },
        lambda o: (
            _eq(
                [
                    p["match"]["context"]
                    for p in find(o, "EnvoyFilter", "stackdriver-filter-1.12")["spec"]["configPatches"]
                ],
                ["SIDECAR_INBOUND", "GATEWAY"],
            ),
            _eq(stats_config(o, "stackdriver-filter-1.12", "SIDECAR_INBOUND")["disable_server_access_logging"], False),
            _eq(
                stats_config(o, "stackdriver-sampling-accesslog-filter-1.12", "SIDECAR_INBOUND"),
                {"log_window_duration": "60s"},
            ),
        ),
    ),
}


def _eq(actual: Any, expected: Any) -> None:
    assert actual == expected


def _sub(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert {k: actual.get(k) for k in expected} == expected


def _absent(mapping: dict[str, Any], key: str) -> None:
    assert key not in mapping


def _has(items: list[Any], item: Any) -> None:
    assert item in items


def test_there_are_at_least_30_values_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES))
def test_values_case_has_its_effect(helm: Helm, case: str) -> None:
    values, check = CASES[case]
    check(render(helm, values))


def test_values_cases_differ_from_the_default_render(helm4: Helm) -> None:
    """Guards the cases themselves: each check fails on the default render, so none passes vacuously."""
    default = render(helm4)
    vacuous = []
    for case, (_, check) in CASES.items():
        try:
            check(default)
        except (AssertionError, KeyError, StopIteration):
            continue
        vacuous.append(case)
    assert vacuous == []


# ---------------------------------------------------------------------------------------------
# bad values, rejected by the schema naming the key

BAD: list[tuple[dict[str, Any], str]] = [
    ({"pdb": {"unhealthyPodEvictionPolicy": "Never"}}, "unhealthyPodEvictionPolicy"),
    ({"pdb": {"minAvailable": [1]}}, "minAvailable"),
    ({"revision": "Canary"}, "revision"),
    ({"revision": 12}, "revision"),
    ({"revisionTags": ["Prod"]}, "revisionTags"),
    ({"revisionTags": "prod"}, "revisionTags"),
    ({"pilot": {"autoscaleEnabled": "yes"}}, "autoscaleEnabled"),
    ({"pilot": {"autoscaleMin": -1}}, "autoscaleMin"),
    ({"pilot": {"replicaCount": "3"}}, "replicaCount"),
    ({"pilot": {"rollingMaxSurge": "lots"}}, "rollingMaxSurge"),
    ({"pilot": {"traceSampling": 101}}, "traceSampling"),
    ({"pilot": {"resources": "big"}}, "resources"),
    ({"pilot": {"env": {"A": ["x"]}}}, "env"),
    ({"pilot": {"nodeSelector": {"pool": 1}}}, "nodeSelector"),
    ({"pilot": {"tolerations": {"key": "x"}}}, "tolerations"),
    ({"pilot": {"keepaliveMaxServerConnectionAge": "forever"}}, "keepaliveMaxServerConnectionAge"),
    ({"pilot": {"replicas": 3}}, "replicas"),
    ({"sidecarInjectorWebhook": {"enableNamespacesByDefault": 1}}, "enableNamespacesByDefault"),
    ({"sidecarInjectorWebhook": {"templates": {"x": {"a": 1}}}}, "templates"),
    ({"istiodRemote": {"injectionURL": "http://insecure/inject"}}, "injectionURL"),
    ({"istiodRemote": {"injectionPath": "inject"}}, "injectionPath"),
    ({"telemetry": {"v2": {"prometheus": {"enabled": "true"}}}}, "enabled"),
    ({"telemetry": {"v2": {"accessLogPolicy": {"logWindowDuration": "12h"}}}}, "logWindowDuration"),
    ({"meshConfig": {"trustDomain": 5}}, "trustDomain"),
    ({"global": {"proxy": {"logLevel": "loud"}}}, "logLevel"),
    ({"global": {"proxy": {"autoInject": "yes"}}}, "autoInject"),
    ({"global": {"proxy": {"statusPort": 70000}}}, "statusPort"),
    ({"global": {"jwtPolicy": "jwt"}}, "jwtPolicy"),
    ({"global": {"imagePullPolicy": "Sometimes"}}, "imagePullPolicy"),
    ({"global": {"imagePullSecrets": "regcred"}}, "imagePullSecrets"),
    ({"global": {"proxy": {"tracer": "jaeger"}}}, "tracer"),
    ({"base": {"validationURL": "ftp://x"}}, "validationURL"),
    ({"unknownTopLevel": True}, "unknownTopLevel"),
]


def test_there_are_at_least_20_bad_values() -> None:
    assert len(BAD) >= 20


@pytest.mark.parametrize(("values", "key"), BAD, ids=[key for _, key in BAD])
def test_bad_value_is_rejected_naming_the_key(helm: Helm, values: dict[str, Any], key: str) -> None:
    error = helm.template_error("istiod", values)
    assert key in error, error
    assert "schema" in error.lower(), error


def test_global_accepts_keys_of_other_charts_and_meshconfig_a_1_12_field(helm: Helm) -> None:
    objects = render(helm, {"global": {"istio_cni": {"enabled": True}}, "meshConfig": {"discoverySelectors": []}})
    assert mesh(objects)["discoverySelectors"] == []


def test_pdb_values_with_the_budget_switched_off_are_refused_naming_both_keys(helm: Helm) -> None:
    """A pdb.* value that would silently do nothing is an error, not a no-op."""
    for pdb in ({"maxUnavailable": 1}, {"minAvailable": 2}, {"unhealthyPodEvictionPolicy": "AlwaysAllow"}):
        values = {"global": {"defaultPodDisruptionBudget": {"enabled": False}}, "pdb": pdb}
        error = helm.template_error("istiod", values)
        assert "global.defaultPodDisruptionBudget.enabled is false" in error and "pdb.*" in error, pdb
    switched_off = render(helm, {"global": {"defaultPodDisruptionBudget": {"enabled": False}}})
    assert [o for o in switched_off if o["kind"] == "PodDisruptionBudget"] == []
