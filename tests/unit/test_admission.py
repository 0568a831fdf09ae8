"""The admission recorder without a cluster: AdmissionReviews posted over TLS as the API server posts them."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from meshcharts.testing import admission
from meshcharts.testing.admission import INJECTED_BY, AdmissionRecorder, RecorderError, patch_ca_bundle, where
from meshcharts.waits import wait_for


@pytest.fixture
def recorder() -> Iterator[AdmissionRecorder]:
    with AdmissionRecorder() as started:
        yield started


def _review(
    operation: str = "CREATE",
    kind: str = "Pod",
    namespace: str = "apps",
    name: str = "web",
    labels: dict[str, str] | None = None,
    *,
    api_version: str = "admission.k8s.io/v1",
    dry_run: bool = False,
) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
            "namespace": namespace,
            "name": name,
            "operation": operation,
            "userInfo": {"username": "system:admin"},
            "object": None if operation == "DELETE" else obj,
            "oldObject": obj if operation == "DELETE" else None,
            "dryRun": dry_run,
        },
    }


def _post(url: str, body: bytes, *, ca_pem: bytes) -> tuple[int, dict[str, Any]]:
    """POST as the API server does: TLS verified against the webhook's caBundle and the URL's IP."""
    host, port = url.removeprefix("https://").split("/", 1)[0].split(":")
    context = ssl.create_default_context(cadata=ca_pem.decode())
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=5)
    try:
        connection.request("POST", "/" + url.split("/", 3)[3], body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _send(recorder: AdmissionRecorder, path: str, review: dict[str, Any]) -> dict[str, Any]:
    status, answer = _post(recorder.url(path), json.dumps(review).encode(), ca_pem=recorder.ca_pem)
    assert status == 200
    return answer


def test_a_review_over_tls_is_recorded_and_allowed_echoing_uid_and_api_version(recorder: AdmissionRecorder) -> None:
    review = _review(labels={"app": "web", "sidecar.istio.io/inject": "true"}, dry_run=True)
    answer = _send(recorder, "/validate", review)
    uid = review["request"]["uid"]
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": True},
    }
    (record,) = recorder.requests()
    assert (record.path, record.operation, record.kind, record.namespace, record.name, record.uid) == (
        "/validate",
        "CREATE",
        "Pod",
        "apps",
        "web",
        uid,
    )
    assert record.labels == {"app": "web", "sidecar.istio.io/inject": "true"}
    assert record.dry_run is True
    assert record.resource == "pods"
    assert record.user == "system:admin"


def test_a_v1beta1_review_is_answered_as_v1beta1(recorder: AdmissionRecorder) -> None:
    answer = _send(recorder, "/inject", _review(api_version="admission.k8s.io/v1beta1"))
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert recorder.requests()[0].api_version == "admission.k8s.io/v1beta1"


def test_a_delete_is_recorded_with_the_labels_of_the_old_object(recorder: AdmissionRecorder) -> None:
    _send(recorder, "/validate", _review("DELETE", "ConfigMap", labels={"istio.io/rev": "canary"}))
    (record,) = recorder.requests(operation="DELETE")
    assert (record.kind, record.labels) == ("ConfigMap", {"istio.io/rev": "canary"})


def test_requests_filter_on_path_kind_namespace_and_name(recorder: AdmissionRecorder) -> None:
    _send(recorder, "/inject", _review(namespace="a", name="p1"))
    _send(recorder, "/inject", _review(namespace="b", name="p2"))
    _send(recorder, "/validate", _review(kind="ConfigMap", namespace="a", name="c1"))
    assert [r.name for r in recorder.requests(path="/inject")] == ["p1", "p2"]
    assert [r.name for r in recorder.requests(namespace="a")] == ["p1", "c1"]
    assert [r.name for r in recorder.requests(kind="ConfigMap")] == ["c1"]
    assert recorder.requests(path="/inject", name="c1") == []
    recorder.clear()
    assert recorder.requests() == []


def test_a_deny_rule_refuses_matching_objects_with_its_message_and_allows_the_rest(recorder: AdmissionRecorder) -> None:
    recorder.deny(lambda r: r.labels.get("reject") == "yes", "rejected by the test's rule")
    refused = _send(recorder, "/validate", _review(kind="ConfigMap", name="bad", labels={"reject": "yes"}))
    accepted = _send(recorder, "/validate", _review(kind="ConfigMap", name="good"))
    assert refused["response"]["allowed"] is False
    assert refused["response"]["status"] == {"code": 403, "message": "rejected by the test's rule"}
    assert accepted["response"]["allowed"] is True
    assert [(r.name, r.allowed, r.message) for r in recorder.requests()] == [
        ("bad", False, "rejected by the test's rule"),
        ("good", True, ""),
    ]
    recorder.allow_all()
    again = _send(recorder, "/validate", _review(kind="ConfigMap", name="bad", labels={"reject": "yes"}))
    assert again["response"]["allowed"] is True


def test_wait_for_returns_the_request_that_arrives_later_from_another_thread(recorder: AdmissionRecorder) -> None:
    """The request is sent only after wait_for has looked at what was recorded and found no match (the
    predicate saw the earlier request): it waits, and returns the later one. No clock is read."""
    _send(recorder, "/inject", _review(name="early"))
    looked = threading.Event()
    late = where(name="late")

    def predicate(record: Any) -> bool:
        if record.name == "early":
            looked.set()
        return late(record)

    def send_when_looked() -> None:
        assert looked.wait(60), "wait_for never looked at the recorded requests"
        _send(recorder, "/inject", _review(name="late"))

    sender = threading.Thread(target=send_when_looked)
    sender.start()
    try:
        record = recorder.wait_for(predicate, timeout=60, condition="pod late reaches /inject")
        assert record.name == "late"
        assert [r.name for r in recorder.requests()] == ["early", "late"]
    finally:
        sender.join()


def test_wait_for_that_runs_out_names_the_condition_and_lists_what_was_recorded(
    recorder: AdmissionRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its deadline is read from the monotonic clock; a clock that advances 0.2 s per reading runs it out
    after a few readings, whatever the machine's load."""
    _send(recorder, "/inject", _review(namespace="other", name="unrelated"))
    readings = iter(range(1_000_000))
    monkeypatch.setattr(admission.recorder.time, "monotonic", lambda: 0.2 * next(readings))
    with pytest.raises(RecorderError) as err:
        recorder.wait_for(where(namespace="apps"), timeout=0.5, condition="a pod of namespace apps reaches /inject")
    assert next(readings) < 10, "wait_for read the clock many times: it did not stop at its deadline"
    message = str(err.value)
    assert "timed out after 0.5s waiting for: a pod of namespace apps reaches /inject" in message
    assert "/inject CREATE Pod other/unrelated allowed" in message


def test_a_client_that_does_not_trust_the_ca_is_refused_and_the_handshake_failure_is_kept(
    recorder: AdmissionRecorder,
) -> None:
    stranger = AdmissionRecorder()
    with pytest.raises(ssl.SSLCertVerificationError):
        _post(recorder.url("/inject"), json.dumps(_review()).encode(), ca_pem=stranger.ca_pem)
    wait_for(lambda: recorder.tls_errors, what="the recorder to keep the failed handshake", timeout=5, interval=0.02)
    assert recorder.requests() == []


def test_the_serving_certificate_is_for_ip_127_0_0_1_and_signed_by_the_ca_bundle(recorder: AdmissionRecorder) -> None:
    context = ssl.create_default_context(cadata=recorder.ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", recorder.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert base64.b64decode(recorder.ca_bundle) == recorder.ca_pem


def test_a_body_that_is_not_an_admission_review_gets_400_and_is_not_recorded(recorder: AdmissionRecorder) -> None:
    status, answer = _post(recorder.url("/inject"), b'{"kind": "Pod"}', ca_pem=recorder.ca_pem)
    assert status == 400
    assert "not an AdmissionReview" in answer["error"]
    assert recorder.requests() == []


def test_stop_closes_the_port_and_ends_the_serving_thread() -> None:
    before = set(threading.enumerate())
    with AdmissionRecorder() as recorder:
        port = recorder.port
        _send(recorder, "/inject", _review())
        assert any(t.name == f"admission-recorder-{port}" for t in threading.enumerate())
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    wait_for(
        lambda: not set(threading.enumerate()) - before,
        what="the recorder's threads to end",
        timeout=5,
        interval=0.02,
        describe=lambda: f"still running: {set(threading.enumerate()) - before}",
    )
    with pytest.raises(RecorderError, match="not started"):
        recorder.url("/inject")


def test_two_recorders_listen_on_different_free_ports_with_different_cas() -> None:
    with AdmissionRecorder() as first, AdmissionRecorder() as second:
        assert first.port != second.port
        assert first.ca_pem != second.ca_pem


def test_url_wants_an_absolute_path(recorder: AdmissionRecorder) -> None:
    assert recorder.url("/inject") == f"https://127.0.0.1:{recorder.port}/inject"
    with pytest.raises(RecorderError, match="must start with '/'"):
        recorder.url("inject")


def test_patch_ca_bundle_refuses_a_kind_that_has_no_webhooks(recorder: AdmissionRecorder) -> None:
    from kubernetes import client

    with pytest.raises(
        RecorderError, match="choose one of: MutatingWebhookConfiguration, ValidatingWebhookConfiguration"
    ):
        patch_ca_bundle(client.ApiClient(), "ConfigMap", "x", recorder)


def test_a_deny_rule_that_raises_refuses_the_request_naming_the_error(recorder: AdmissionRecorder) -> None:
    def broken(_: object) -> bool:
        raise KeyError("labels")

    recorder.deny(broken, "never shown")
    answer = _send(recorder, "/validate", _review(kind="ConfigMap"))
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 500
    assert "raised KeyError('labels')" in answer["response"]["status"]["message"]


def test_a_service_name_asked_by_sni_gets_a_certificate_for_that_name_and_is_recorded_as_the_host(
    recorder: AdmissionRecorder,
) -> None:
    """How a Service webhook reaches the recorder through the egress proxy: TLS for `istiod.istio-system.svc`."""
    context = ssl.create_default_context(cadata=recorder.ca_pem.decode())
    raw = socket.create_connection(("127.0.0.1", recorder.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="istiod.istio-system.svc") as tls:
        names = [value for kind, value in tls.getpeercert()["subjectAltName"]]
        assert names == ["istiod.istio-system.svc"]
        body = json.dumps(_review()).encode()
        tls.sendall(
            b"POST /inject HTTP/1.1\r\nHost: istiod.istio-system.svc\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert tls.recv(64).startswith(b"HTTP/1.0 200")
    (seen,) = recorder.requests(host="istiod.istio-system.svc", path="/inject")
    assert seen.describe().startswith("istiod.istio-system.svc/inject CREATE Pod apps/web")
    assert recorder.requests(host="", path="/inject") == []


def test_without_sni_the_recorder_presents_its_ip_certificate(recorder: AdmissionRecorder) -> None:
    """URL webhooks (`https://127.0.0.1:PORT/...`) send no server name: they get the IP certificate."""
    context = ssl.create_default_context(cadata=recorder.ca_pem.decode())
    context.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", recorder.port), timeout=5)
    with context.wrap_socket(raw) as tls:
        assert tls.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)


def _patch_of(answer: dict[str, Any]) -> list[dict[str, Any]] | None:
    response = answer["response"]
    if "patch" not in response:
        return None
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


def test_a_pod_it_is_asked_to_inject_is_marked_with_where_it_was_asked_and_nothing_else(
    recorder: AdmissionRecorder,
) -> None:
    """The mark the local cluster's kwok stage wants before an `image: auto` pod may become Ready."""
    assert _patch_of(_send(recorder, "/inject/default", _review())) == [
        {"op": "add", "path": "/metadata/annotations", "value": {INJECTED_BY: "/inject/default"}}
    ]
    annotated = _review()
    annotated["request"]["object"]["metadata"]["annotations"] = {"team": "web"}
    assert _patch_of(_send(recorder, "/inject", annotated)) == [
        {"op": "add", "path": "/metadata/annotations/admission.meshcharts.github.io~1injected-by", "value": "/inject"}
    ]


def test_nothing_but_a_pod_created_through_an_inject_path_is_patched(recorder: AdmissionRecorder) -> None:
    assert _patch_of(_send(recorder, "/validate", _review())) is None
    assert _patch_of(_send(recorder, "/inject", _review(kind="Service"))) is None
    assert _patch_of(_send(recorder, "/inject", _review(operation="UPDATE"))) is None
    recorder.deny(where(kind="Pod"), "no pods today")
    assert _patch_of(_send(recorder, "/inject", _review())) is None
