"""meshcharts lint's comparisons on hand-made object pairs, without helm: each finding kind, and what is fine."""

from __future__ import annotations

import copy
from typing import Any

from meshcharts import lint
from meshcharts.errors import HelmError


def deployment(kind: str = "Deployment", **labels: str) -> dict[str, Any]:
    labels = labels or {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"selector": {"matchLabels": dict(labels)}, "template": {"metadata": {"labels": dict(labels)}}},
    }


def service(ports: list[dict[str, Any]] | None = None, **selector: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {
            "selector": selector or {"app": "istio-ingressgateway", "istio": "ingressgateway"},
            "ports": ports
            if ports is not None
            else [
                {"name": "status-port", "port": 15021, "protocol": "TCP"},
                {"name": "http2", "port": 80, "protocol": "TCP"},
                {"name": "https", "port": 443, "protocol": "TCP"},
            ],
        },
    }


def crd(versions: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "sha256": {"type": "string"},
            "phase": {"type": "string", "enum": ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]},
            "priority": {"type": "integer", "nullable": True},
            "pluginConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "selector": {
                "type": "object",
                "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "servers": {
                "type": "array",
                "items": {"type": "object", "properties": {"port": {"type": "integer"}, "bind": {"type": "string"}}},
            },
        },
    }
    schema = {"type": "object", "properties": {"spec": spec_schema}}
    versions = versions or {"v1alpha1": {"served": True, "storage": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "wasmplugins.extensions.istio.io"},
        "spec": {
            "group": "extensions.istio.io",
            "versions": [
                {"name": name, **flags, "schema": {"openAPIV3Schema": copy.deepcopy(schema)}}
                for name, flags in versions.items()
            ],
        },
    }


def spec_schema(obj: dict[str, Any], version: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = obj["spec"]["versions"][version]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


# ---------------------------------------------------------------------------------------------
# selectors


def test_unchanged_objects_give_no_finding_of_any_kind() -> None:
    old = [deployment(), service(), crd()]
    assert lint.compare_selectors(old, copy.deepcopy(old)) == []
    assert lint.compare_service_ports(old, copy.deepcopy(old)) == []
    assert lint.compare_crds(old, copy.deepcopy(old)) == []


def test_changed_deployment_selector_is_named_with_object_field_and_both_values() -> None:
    old = [deployment()]
    new = [deployment(app="istio-ingressgateway", istio="istio-ingressgateway")]
    assert lint.compare_selectors(old, new) == [
        "Deployment istio-system/istio-ingressgateway spec.selector.matchLabels changed: "
        "{app: istio-ingressgateway, istio: ingressgateway} -> "
        "{app: istio-ingressgateway, istio: istio-ingressgateway} "
        '(immutable: helm upgrade fails with "field is immutable")'
    ]


def test_added_selector_label_on_a_daemonset_is_a_change_too() -> None:
    old = [deployment("DaemonSet")]
    new = [deployment("DaemonSet", app="istio-ingressgateway", istio="ingressgateway", version="v2")]
    (finding,) = lint.compare_selectors(old, new)
    assert finding.startswith("DaemonSet istio-system/istio-ingressgateway spec.selector.matchLabels changed:")
    assert "version: v2" in finding


def test_selector_gaining_match_expressions_names_that_field() -> None:
    old = [deployment("StatefulSet")]
    new = copy.deepcopy(old)
    new[0]["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "Exists"}]
    (finding,) = lint.compare_selectors(old, new)
    assert "StatefulSet istio-system/istio-ingressgateway spec.selector.matchExpressions changed: null ->" in finding


def test_changed_service_selector_is_a_finding() -> None:
    (finding,) = lint.compare_selectors([service()], [service(app="gw")])
    assert finding.startswith(
        "Service istio-system/istio-ingressgateway spec.selector changed: "
        "{app: istio-ingressgateway, istio: ingressgateway} -> {app: gw}"
    )


def test_workload_that_exists_in_one_render_only_is_not_a_selector_change() -> None:
    assert lint.compare_selectors([deployment()], [deployment("DaemonSet", app="x")]) == []


def test_objects_are_matched_by_namespace_too() -> None:
    moved = deployment(app="x")
    moved["metadata"]["namespace"] = "istio-ingress"
    assert lint.compare_selectors([deployment()], [moved]) == []


# ---------------------------------------------------------------------------------------------
# Service ports


def test_renamed_service_port_is_named_by_number_with_old_and_new_name() -> None:
    new = service()
    new["spec"]["ports"][1]["name"] = "http"
    (finding,) = lint.compare_service_ports([service()], [new])
    assert finding.startswith(
        "Service istio-system/istio-ingressgateway spec.ports[port=80].name renamed: http2 -> http"
    )


def test_changed_port_number_is_named_by_port_name() -> None:
    new = service()
    new["spec"]["ports"][2]["port"] = 8443
    (finding,) = lint.compare_service_ports([service()], [new])
    assert finding.startswith(
        "Service istio-system/istio-ingressgateway spec.ports[name=https].port changed: 443 -> 8443"
    )


def test_removed_service_port_lists_what_is_left() -> None:
    new = service()
    del new["spec"]["ports"][0]
    (finding,) = lint.compare_service_ports([service()], [new])
    assert finding.startswith("Service istio-system/istio-ingressgateway spec.ports[name=status-port] removed")
    assert "[http2, https]" in finding


def test_added_and_reordered_service_ports_are_fine() -> None:
    new = service()
    new["spec"]["ports"].reverse()
    new["spec"]["ports"].append({"name": "tls", "port": 15443, "protocol": "TCP"})
    assert lint.compare_service_ports([service()], [new]) == []


def test_service_present_in_one_render_only_is_not_a_port_change() -> None:
    assert lint.compare_service_ports([service()], []) == []


# ---------------------------------------------------------------------------------------------
# CRDs


def test_removed_crd_schema_field_is_named_with_version_and_path() -> None:
    new = crd()
    del spec_schema(new)["properties"]["sha256"]
    (finding,) = lint.compare_crds([crd()], [new])
    assert finding.startswith(
        "CustomResourceDefinition wasmplugins.extensions.istio.io v1alpha1 spec.sha256 removed from the schema"
    )


def test_removed_field_inside_list_items_has_a_path_through_the_list() -> None:
    new = crd()
    del spec_schema(new)["properties"]["servers"]["items"]["properties"]["bind"]
    (finding,) = lint.compare_crds([crd()], [new])
    assert " v1alpha1 spec.servers[].bind removed from the schema" in finding


def test_narrowed_type_and_lost_nullability_are_findings() -> None:
    new = crd()
    spec_schema(new)["properties"]["priority"] = {"type": "integer"}
    spec_schema(new)["properties"]["url"] = {"type": "integer"}
    findings = lint.compare_crds([crd()], [new])
    assert any("spec.priority type narrowed: [integer, null] -> [integer]" in f for f in findings), findings
    assert any("spec.url type narrowed: [string] -> [integer]" in f for f in findings), findings


def test_narrowed_enum_names_the_values_no_longer_accepted() -> None:
    new = crd()
    spec_schema(new)["properties"]["phase"]["enum"] = ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ"]
    (finding,) = lint.compare_crds([crd()], [new])
    assert finding.endswith("v1alpha1 spec.phase enum narrowed: [STATS] no longer accepted")


def test_map_values_narrowed_and_free_form_closed_are_findings() -> None:
    new = crd()
    spec_schema(new)["properties"]["selector"]["properties"]["matchLabels"]["additionalProperties"] = {
        "type": "integer"
    }
    del spec_schema(new)["properties"]["pluginConfig"]["x-kubernetes-preserve-unknown-fields"]
    findings = lint.compare_crds([crd()], [new])
    assert any("spec.selector.matchLabels.* type narrowed: [string] -> [integer]" in f for f in findings), findings
    assert any("spec.pluginConfig no longer preserves unknown fields" in f for f in findings), findings


def test_newly_required_field_is_a_finding() -> None:
    new = crd()
    spec_schema(new)["required"] = ["url"]
    (finding,) = lint.compare_crds([crd()], [new])
    assert "v1alpha1 spec now requires [url]" in finding


def test_added_fields_wider_types_and_enums_are_fine() -> None:
    new = crd()
    props = spec_schema(new)["properties"]
    props["verificationKey"] = {"type": "string"}
    props["phase"]["enum"].append("UNSPECIFIED_PHASE_2")
    props["servers"]["items"]["properties"]["port"] = {"x-kubernetes-int-or-string": True}
    props["priority"] = {"type": "number", "nullable": True}
    assert lint.compare_crds([crd()], [new]) == []


def test_removed_crd_version_and_unserved_version_are_findings() -> None:
    old = crd({"v1alpha3": {"served": True, "storage": False}, "v1beta1": {"served": True, "storage": True}})
    gone = crd({"v1beta1": {"served": True, "storage": True}})
    (finding,) = lint.compare_crds([old], [gone])
    assert finding.startswith(
        "CustomResourceDefinition wasmplugins.extensions.istio.io spec.versions[name=v1alpha3] removed"
    )
    unserved = crd({"v1alpha3": {"served": False, "storage": False}, "v1beta1": {"served": True, "storage": True}})
    assert lint.compare_crds([old], [unserved]) == [
        "CustomResourceDefinition wasmplugins.extensions.istio.io spec.versions[name=v1alpha3].served changed: "
        "true -> false"
    ]


def test_removed_crd_is_a_finding() -> None:
    (finding,) = lint.compare_crds([crd()], [])
    assert finding.startswith("CustomResourceDefinition wasmplugins.extensions.istio.io removed from the chart")


# ---------------------------------------------------------------------------------------------
# values


VALUES = {
    "name": "",
    "service": {"type": "LoadBalancer", "loadBalancerClass": "", "annotations": {}},
    "labels": {"app": "gw"},
}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "service": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string"},
                "loadBalancerClass": {"type": "string"},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def surface(values: dict[str, Any] = VALUES, schema: dict[str, Any] | None = SCHEMA) -> lint.ValuesSurface:
    return lint.values_surface(values, schema)


def without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part] if "properties" not in node else node["properties"][part]
    if "properties" in node:
        del node["properties"][path[-1]]
    else:
        del node[path[-1]]
    return data


def test_same_values_give_no_finding() -> None:
    assert lint.compare_values(surface(), surface(), {}) == []


def test_removed_values_key_is_named_with_where_to_declare_the_deprecation() -> None:
    new = surface(without(VALUES, "service", "loadBalancerClass"), without(SCHEMA, "service", "loadBalancerClass"))
    (finding,) = lint.compare_values(surface(), new, {}, source="generator/specs/gateway.yaml")
    assert finding.startswith("values key service.loadBalancerClass removed or renamed without a declared deprecation")
    assert "generator/specs/gateway.yaml" in finding


def test_removed_values_key_declared_deprecated_in_the_spec_is_fine() -> None:
    new = surface(without(VALUES, "service", "loadBalancerClass"), without(SCHEMA, "service", "loadBalancerClass"))
    assert lint.compare_values(surface(), new, {"service.loadBalancerClass": "Use service.class."}) == []


def test_renamed_values_key_reports_the_old_name_only() -> None:
    values = without(VALUES, "name")
    values["gatewayName"] = ""
    schema = without(SCHEMA, "name")
    schema["properties"]["gatewayName"] = {"type": "string"}
    (finding,) = lint.compare_values(surface(), surface(values, schema), {})
    assert finding.startswith("values key name removed or renamed")


def test_key_dropped_from_values_yaml_but_kept_in_the_schema_is_still_accepted() -> None:
    new = surface(without(VALUES, "service", "loadBalancerClass"), SCHEMA)
    assert lint.compare_values(surface(), new, {}) == []


def test_removed_key_is_found_from_values_yaml_alone_when_neither_version_has_a_schema() -> None:
    old = surface(VALUES, None)
    new = surface(without(VALUES, "service", "type"), None)
    (finding,) = lint.compare_values(old, new, {})
    assert finding.startswith("values key service.type removed")


def test_entries_of_a_free_form_map_are_the_users_not_the_charts() -> None:
    new_values = copy.deepcopy(VALUES)
    new_values["labels"] = {}
    assert lint.compare_values(surface(), surface(new_values, SCHEMA), {}) == []


def test_a_map_removed_whole_is_one_finding() -> None:
    new = surface(without(VALUES, "labels"), without(SCHEMA, "labels"))
    assert [f.split(" removed")[0] for f in lint.compare_values(surface(), new, {})] == ["values key labels"]


# ---------------------------------------------------------------------------------------------
# compare: one chart version against another, across scenarios


def snapshot(label: str, renders: dict[str, Any], values: lint.ValuesSurface | None = None) -> lint.Snapshot:
    return lint.Snapshot("gateway", label, renders, values or surface())


def test_compare_names_chart_versions_and_scenario_and_reports_a_message_once() -> None:
    old = snapshot("1.12.0", {lint.DEFAULT_SCENARIO: [deployment()], "values ds.yaml": [deployment()]})
    changed = [deployment(app="x", istio="y")]
    new = snapshot(lint.WORKING_TREE, {lint.DEFAULT_SCENARIO: changed, "values ds.yaml": changed})
    problems, notes = lint.compare(old, new, {})
    assert [p.where for p in problems] == ["gateway 1.12.0 -> working tree"]
    assert notes == []
    daemonset_only = snapshot(lint.WORKING_TREE, {lint.DEFAULT_SCENARIO: [deployment()], "values ds.yaml": changed})
    problems, _ = lint.compare(old, daemonset_only, {})
    assert [p.where for p in problems] == ["gateway 1.12.0 -> working tree [values ds.yaml]"]


def test_values_the_published_version_rendered_and_the_tree_refuses_are_a_finding() -> None:
    error = HelmError(["helm", "template"], 1, "Error: values don't meet the specifications of the schema(s)")
    old = snapshot("1.12.0", {lint.DEFAULT_SCENARIO: [deployment()]})
    new = snapshot(lint.WORKING_TREE, {lint.DEFAULT_SCENARIO: error})
    (problem,) = lint.compare(old, new, {})[0]
    assert "helm template fails" in problem.message and "schema(s)" in problem.message


def test_values_the_published_version_could_not_render_are_a_note_not_a_finding() -> None:
    error = HelmError(["helm", "template"], 1, "Error: kind: Additional property kind is not allowed")
    old = snapshot("1.12.0", {"values ds.yaml": error})
    new = snapshot(lint.WORKING_TREE, {"values ds.yaml": [deployment()]})
    problems, notes = lint.compare(old, new, {})
    assert problems == []
    assert notes == [
        "gateway 1.12.0 -> working tree [values ds.yaml]: not compared, 1.12.0 does not render with these values"
    ]


def test_flow_spells_values_like_yaml_flow_style() -> None:
    assert lint.flow({"istio": "ingressgateway", "app": "gw"}) == "{app: gw, istio: ingressgateway}"
    assert lint.flow([None, True, "", 3]) == '[null, true, "", 3]'


def test_parse_manifests_drops_empty_documents() -> None:
    text = "---\n# Source: x\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n"
    assert [o["kind"] for o in lint.parse_manifests(text)] == ["Service"]
