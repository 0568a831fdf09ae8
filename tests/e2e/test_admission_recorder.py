"""The real kube-apiserver of a local cluster calls the admission recorder on loopback, and only as configured."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from meshcharts import cluster
from meshcharts.testing.admission import AdmissionRecorder, RecorderError, adopt_stale_webhooks, patch_ca_bundle, where

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.local_only(
        "the recorder listens on this host's loopback, which a kind or remote API server cannot reach"
    ),
]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Until the meshcharts plugin offers a session cluster, this module brings up its own local cluster.
@pytest.fixture(scope="module")
def kube_api(mesh_cluster: cluster.Cluster) -> Iterator[client.ApiClient]:
    """A client of the plugin's session cluster (the recorder only needs an API server on this host)."""
    api = config.new_client_from_config(config_file=str(mesh_cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def recorder() -> Iterator[AdmissionRecorder]:
    with AdmissionRecorder() as started:
        yield started


def _namespace(core: client.CoreV1Api, labels: dict[str, str]) -> str:
    name = _unique("ns")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


def _pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
    )


@pytest.fixture
def injector(kube_api: client.ApiClient, recorder: AdmissionRecorder) -> Iterator[str]:
    """A MutatingWebhookConfiguration shaped like istiod's namespace injector, calling the recorder's /inject."""
    admission = client.AdmissionregistrationV1Api(kube_api)
    name = _unique("recorder-injector")
    admission.create_mutating_webhook_configuration(
        client.V1MutatingWebhookConfiguration(
            metadata=client.V1ObjectMeta(name=name),
            webhooks=[
                client.V1MutatingWebhook(
                    name="namespace.recorder.meshcharts.test",
                    client_config=client.AdmissionregistrationV1WebhookClientConfig(url=recorder.url("/inject")),
                    rules=[
                        client.V1RuleWithOperations(
                            api_groups=[""], api_versions=["v1"], operations=["CREATE"], resources=["pods"]
                        )
                    ],
                    namespace_selector=client.V1LabelSelector(match_labels={"istio-injection": "enabled"}),
                    failure_policy="Fail",
                    side_effects="None",
                    admission_review_versions=["v1beta1", "v1"],
                    timeout_seconds=5,
                )
            ],
        )
    )
    yield name
    admission.delete_mutating_webhook_configuration(name)


def test_patch_ca_bundle_sets_the_recorders_ca_on_the_webhooks_that_call_it(
    kube_api: client.ApiClient, recorder: AdmissionRecorder, injector: str
) -> None:
    assert patch_ca_bundle(kube_api, "MutatingWebhookConfiguration", injector, recorder) == [
        "namespace.recorder.meshcharts.test"
    ]
    stored = client.AdmissionregistrationV1Api(kube_api).read_mutating_webhook_configuration(injector)
    assert stored.webhooks[0].client_config.ca_bundle == recorder.ca_bundle


def test_only_the_pod_in_the_namespace_the_webhook_selects_reaches_the_recorder(
    kube_api: client.ApiClient, recorder: AdmissionRecorder, injector: str
) -> None:
    core = client.CoreV1Api(kube_api)
    patch_ca_bundle(kube_api, "MutatingWebhookConfiguration", injector, recorder)
    injected = _namespace(core, {"istio-injection": "enabled"})
    plain = _namespace(core, {})
    # Admission is synchronous: once create returns, the API server has called (or skipped) the webhook.
    core.create_namespaced_pod(injected, _pod("selected"))
    core.create_namespaced_pod(plain, _pod("ignored"))

    calls = [(r.path, r.operation, r.kind, r.namespace, r.name) for r in recorder.requests()]
    assert calls == [("/inject", "CREATE", "Pod", injected, "selected")]
    (record,) = recorder.requests()
    assert record.labels == {"app": "selected"}
    assert record.dry_run is False
    assert recorder.tls_errors == []


def test_a_dry_run_create_reaches_the_recorder_marked_dry_run(
    kube_api: client.ApiClient, recorder: AdmissionRecorder, injector: str
) -> None:
    core = client.CoreV1Api(kube_api)
    patch_ca_bundle(kube_api, "MutatingWebhookConfiguration", injector, recorder)
    injected = _namespace(core, {"istio-injection": "enabled"})
    core.create_namespaced_pod(injected, _pod("rehearsal"), dry_run="All")
    (record,) = recorder.requests(name="rehearsal")
    assert record.dry_run is True


def test_a_pod_created_by_a_deployment_reaches_the_recorder_within_the_deadline(
    kube_api: client.ApiClient, recorder: AdmissionRecorder, injector: str
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    patch_ca_bundle(kube_api, "MutatingWebhookConfiguration", injector, recorder)
    injected = _namespace(core, {"istio-injection": "enabled"})
    labels = {"app": "gateway"}
    apps.create_namespaced_deployment(
        injected,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="gateway"),
            spec=client.V1DeploymentSpec(
                replicas=1,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels), spec=_pod("x").spec),
            ),
        ),
    )
    record = recorder.wait_for(
        where(path="/inject", kind="Pod", namespace=injected),
        timeout=30,
        condition=f"the ReplicaSet's pod in {injected} reaches /inject",
    )
    assert record.generate_name.startswith("gateway-")
    owners = record.obj["metadata"]["ownerReferences"]
    assert [o["kind"] for o in owners] == ["ReplicaSet"]


def test_without_the_ca_bundle_the_api_server_refuses_to_trust_the_recorder_and_fails_closed(
    kube_api: client.ApiClient, recorder: AdmissionRecorder, injector: str
) -> None:
    core = client.CoreV1Api(kube_api)
    injected = _namespace(core, {"istio-injection": "enabled"})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(injected, _pod("untrusted"))
    assert err.value.status == 500
    assert "namespace.recorder.meshcharts.test" in err.value.body
    assert "x509" in err.value.body or "certificate" in err.value.body
    assert recorder.requests() == []
    # The API server gives up on the handshake before the recorder's thread notes the failure.
    deadline = time.monotonic() + 5
    while not recorder.tls_errors and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.tls_errors, "the recorder saw no failed TLS handshake within 5s"


def test_a_validating_webhook_with_a_deny_rule_rejects_the_object_with_the_recorders_message(
    kube_api: client.ApiClient, recorder: AdmissionRecorder
) -> None:
    core = client.CoreV1Api(kube_api)
    admission = client.AdmissionregistrationV1Api(kube_api)
    namespace = _namespace(core, {})
    name = _unique("recorder-validator")
    admission.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(
            metadata=client.V1ObjectMeta(name=name),
            webhooks=[
                client.V1ValidatingWebhook(
                    name="validate.recorder.meshcharts.test",
                    client_config=client.AdmissionregistrationV1WebhookClientConfig(url=recorder.url("/validate")),
                    rules=[
                        client.V1RuleWithOperations(
                            api_groups=[""],
                            api_versions=["v1"],
                            operations=["CREATE", "UPDATE"],
                            resources=["configmaps"],
                        )
                    ],
                    namespace_selector=client.V1LabelSelector(match_labels={"kubernetes.io/metadata.name": namespace}),
                    failure_policy="Fail",
                    side_effects="None",
                    admission_review_versions=["v1"],
                    timeout_seconds=5,
                )
            ],
        )
    )
    try:
        patch_ca_bundle(kube_api, "ValidatingWebhookConfiguration", name, recorder)
        recorder.deny(where(kind="ConfigMap", name="forbidden"), "ConfigMap forbidden is refused by the test")

        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="forbidden"), data={"k": "v"})
            )
        assert err.value.status == 403
        assert json.loads(err.value.body)["message"] == (
            'admission webhook "validate.recorder.meshcharts.test" denied the request: '
            "ConfigMap forbidden is refused by the test"
        )
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fine")))

        # kube-controller-manager publishes kube-root-ca.crt into every new namespace, whenever it gets to it.
        ours = [r for r in recorder.requests(namespace=namespace) if r.name != "kube-root-ca.crt"]
        assert [(r.path, r.name, r.allowed) for r in ours] == [
            ("/validate", "forbidden", False),
            ("/validate", "fine", True),
        ]
        with pytest.raises(ApiException):
            core.read_namespaced_config_map("forbidden", namespace)
    finally:
        admission.delete_validating_webhook_configuration(name)


def test_patch_ca_bundle_of_a_configuration_that_does_not_call_the_recorder_says_so(
    kube_api: client.ApiClient, recorder: AdmissionRecorder
) -> None:
    admission = client.AdmissionregistrationV1Api(kube_api)
    name = _unique("elsewhere")
    admission.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(
            metadata=client.V1ObjectMeta(name=name),
            webhooks=[
                client.V1ValidatingWebhook(
                    name="elsewhere.meshcharts.test",
                    client_config=client.AdmissionregistrationV1WebhookClientConfig(
                        service=client.AdmissionregistrationV1ServiceReference(
                            namespace="istio-system", name="istiod", path="/validate"
                        )
                    ),
                    side_effects="None",
                    admission_review_versions=["v1"],
                )
            ],
        )
    )
    try:
        with pytest.raises(RecorderError, match=r"reaches the admission recorder.*service istio-system/istiod"):
            patch_ca_bundle(kube_api, "ValidatingWebhookConfiguration", name, recorder)
    finally:
        admission.delete_validating_webhook_configuration(name)


def test_webhooks_of_an_earlier_recorder_are_re_pointed_at_this_one_and_others_left_alone(
    kube_api: client.ApiClient, recorder: AdmissionRecorder
) -> None:
    """A kept cluster's earlier test run left webhooks on a dead port with a stale CA; nothing else is touched."""
    admission = client.AdmissionregistrationV1Api(kube_api)
    name = _unique("stale")

    def hook(
        webhook: str, client_config: client.AdmissionregistrationV1WebhookClientConfig
    ) -> client.V1ValidatingWebhook:
        return client.V1ValidatingWebhook(
            name=webhook,
            client_config=client_config,
            rules=[
                client.V1RuleWithOperations(
                    api_groups=["example.test"], api_versions=["v1"], operations=["CREATE"], resources=["nothing"]
                )
            ],
            side_effects="None",
            admission_review_versions=["v1"],
        )

    stale_url = "https://127.0.0.1:1/validate/base"
    admission.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(
            metadata=client.V1ObjectMeta(name=name),
            webhooks=[
                hook(
                    "stale.meshcharts.test",
                    client.AdmissionregistrationV1WebhookClientConfig(url=stale_url, ca_bundle="c3RhbGU="),
                ),
                hook(
                    "service.meshcharts.test",
                    client.AdmissionregistrationV1WebhookClientConfig(
                        service=client.AdmissionregistrationV1ServiceReference(namespace="istio-system", name="istiod")
                    ),
                ),
            ],
        )
    )
    try:
        adopted = adopt_stale_webhooks(kube_api, recorder)
        assert f"ValidatingWebhookConfiguration/{name}/stale.meshcharts.test" in adopted
        assert not [a for a in adopted if a.endswith("/service.meshcharts.test")]
        stale, service = admission.read_validating_webhook_configuration(name).webhooks
        assert stale.client_config.url == recorder.url("/validate/base")
        assert stale.client_config.ca_bundle == recorder.ca_bundle
        assert service.client_config.url is None and service.client_config.ca_bundle is None
        again = adopt_stale_webhooks(kube_api, recorder)
        assert not [a for a in again if f"/{name}/" in a]  # already this recorder's: left alone
    finally:
        admission.delete_validating_webhook_configuration(name)
