"""The base chart rendered by the real Helm: Istio 1.12's objects, CRDs as kept templates, the default validator."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.conftest import data_table
from tests.render.conftest import CHARTS, Helm, find, kinds
from tests.render.reference import reference_rows

CRD_NAMES = {row["crd"] for row in data_table("istio-1.12-crds.tsv")}


def render(helm: Helm, values: dict[str, Any] | None = None, *extra: str) -> list[dict[str, Any]]:
    return helm.template("base", values, release="base", extra=extra)


def test_helm_lint_strict_is_clean(helm: Helm) -> None:
    proc = helm.run("lint", "--strict", str(CHARTS / "base"))
    assert "0 chart(s) failed" in proc.stdout + proc.stderr


def test_default_render_is_istio_1_12_object_set_plus_the_crds_as_templates(helm: Helm) -> None:
    expected = {(r["kind"], r["name"]) for r in reference_rows("istio-1.12-default-objects.tsv", "base")}
    expected |= {("CustomResourceDefinition", name) for name in CRD_NAMES}
    assert kinds(render(helm)) == expected
    assert len(CRD_NAMES) == 14


def test_every_crd_is_kept_on_uninstall_and_labelled_as_the_release(helm: Helm) -> None:
    for crd in (o for o in render(helm) if o["kind"] == "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "base"


def test_every_istio_1_12_values_key_is_accepted(helm: Helm) -> None:
    values: dict[str, Any] = {}
    for row in reference_rows("istio-1.12-values.tsv", "base"):
        node = values
        *parents, leaf = row["key"].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = json.loads(row["default(json)"])
    objects = render(helm, values)
    # 1.12 defaulted enableCRDTemplates to false (CRDs in crds/); that value still means "no CRD templates".
    assert kinds(objects) == {(r["kind"], r["name"]) for r in reference_rows("istio-1.12-default-objects.tsv", "base")}


def test_crd_templates_off_leaves_only_rbac_and_validator(helm: Helm) -> None:
    objects = render(helm, {"base": {"enableCRDTemplates": False}})
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"]


def test_config_crds_off_keeps_istiooperator(helm: Helm) -> None:
    objects = render(helm, {"base": {"enableIstioConfigCRDs": False}})
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"] == [
        "istiooperators.install.istio.io"
    ]


def _validator(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "ValidatingWebhookConfiguration", "istiod-default-validator")


def test_default_validator_routes_istio_groups_to_istiod_with_ignore_on_install(helm: Helm) -> None:
    (hook,) = _validator(render(helm))["webhooks"]
    assert hook["clientConfig"]["service"] == {"name": "istiod", "namespace": "istio-system", "path": "/validate"}
    assert hook["failurePolicy"] == "Ignore"
    assert set(hook["rules"][0]["apiGroups"]) >= {"networking.istio.io", "security.istio.io"}
    assert hook["admissionReviewVersions"] == ["v1beta1", "v1"]


def test_validator_failure_policy_is_left_to_istiod_on_upgrade(helm: Helm) -> None:
    (hook,) = _validator(render(helm, None, "--is-upgrade"))["webhooks"]
    assert "failurePolicy" not in hook


def test_default_revision_picks_the_revisioned_istiod(helm: Helm) -> None:
    validator = _validator(render(helm, {"defaultRevision": "canary"}))
    assert validator["webhooks"][0]["clientConfig"]["service"]["name"] == "istiod-canary"
    assert validator["metadata"]["labels"]["istio.io/rev"] == "canary"


def test_empty_default_revision_or_validation_off_renders_no_validator(helm: Helm) -> None:
    for values in ({"defaultRevision": ""}, {"global": {"configValidation": False}}):
        assert "ValidatingWebhookConfiguration" not in {o["kind"] for o in render(helm, values)}


def test_validation_url_and_external_istiod(helm: Helm) -> None:
    hook = _validator(render(helm, {"base": {"validationURL": "https://127.0.0.1:9443/validate"}}))["webhooks"][0]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:9443/validate"}
    hook = _validator(render(helm, {"global": {"externalIstiod": True, "remotePilotAddress": "10.0.0.9"}}))["webhooks"][
        0
    ]
    assert hook["clientConfig"] == {"url": "https://10.0.0.9:15017/validate"}


def test_istio_namespace_names_the_rbac(helm: Helm) -> None:
    objects = render(helm, {"global": {"istioNamespace": "mesh"}})
    assert ("ClusterRole", "istiod-mesh") in kinds(objects)
    assert find(objects, "ServiceAccount", "istiod-service-account")["metadata"]["namespace"] == "mesh"


def test_image_pull_secrets_reach_the_service_accounts(helm: Helm) -> None:
    objects = render(helm, {"global": {"imagePullSecrets": ["regcred"]}})
    assert find(objects, "ServiceAccount", "istio-reader-service-account")["imagePullSecrets"] == [{"name": "regcred"}]


def test_analysis_grants_status_updates(helm: Helm) -> None:
    rules = find(render(helm, {"global": {"istiod": {"enableAnalysis": True}}}), "ClusterRole", "istiod-istio-system")
    assert any(r.get("resources") == ["*/status"] and r["verbs"] == ["update"] for r in rules["rules"])


def test_chart_carries_artifacthub_crd_metadata_with_examples() -> None:
    chart = yaml.safe_load((CHARTS / "base" / "Chart.yaml").read_text())
    crds = yaml.safe_load(chart["annotations"]["artifacthub.io/crds"])
    examples = yaml.safe_load(chart["annotations"]["artifacthub.io/crdsExamples"])
    assert {c["name"] for c in crds} == CRD_NAMES
    assert {e["kind"] for e in examples} == {c["kind"] for c in crds}


def _remote(helm: Helm, **global_values: Any) -> dict[tuple[str, str], dict[str, Any]]:
    objects = render(helm, {"global": global_values})
    return {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Service", "Endpoints")}


def test_a_remote_pilot_address_gets_the_istiod_remote_service_and_endpoints_of_istio_1_12(helm: Helm) -> None:
    """Istio 1.12's base chart: proxies of a remote cluster reach its control plane through istiod-remote."""
    found = _remote(helm, remotePilotAddress="192.0.2.10")
    assert set(found) == {("Service", "istiod-remote"), ("Endpoints", "istiod-remote")}
    service, endpoints = found[("Service", "istiod-remote")], found[("Endpoints", "istiod-remote")]
    assert service["metadata"]["namespace"] == "istio-system"
    assert service["spec"] == {
        "clusterIP": "None",
        "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}],
    }
    assert endpoints["subsets"] == [
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}]}
    ]


def test_an_external_istiod_is_the_istiod_service_itself(helm: Helm) -> None:
    by_ip = _remote(helm, remotePilotAddress="192.0.2.10", externalIstiod=True)
    assert set(by_ip) == {("Service", "istiod"), ("Endpoints", "istiod")}
    assert by_ip[("Service", "istiod")]["spec"]["clusterIP"] == "None"
    by_name = _remote(helm, remotePilotAddress="istiod.example.com", externalIstiod=True)
    assert set(by_name) == {("Service", "istiod")}
    assert by_name[("Service", "istiod")]["spec"] == {
        "type": "ExternalName",
        "externalName": "istiod.example.com",
        "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}],
    }


def test_no_remote_pilot_address_renders_no_service(helm: Helm) -> None:
    assert _remote(helm) == {}


def test_a_hostname_without_external_istiod_is_refused_naming_both_keys(helm: Helm) -> None:
    """Istio 1.12 rendered the hostname into an Endpoints IP, which the API server rejects at install."""
    error = helm.template_error("base", {"global": {"remotePilotAddress": "istiod.example.com"}}, release="base")
    assert 'global.remotePilotAddress="istiod.example.com" must be an IPv4 address' in error
    assert "global.externalIstiod is false" in error
