"""Trusting the recorder in the cluster, as istiod does for its own webhooks at runtime: `patch_ca_bundle` sets
the recorder's CA on the webhooks that reach it, `adopt_stale_webhooks` re-points those an earlier recorder left."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from meshcharts.testing.admission.recorder import HOST, AdmissionRecorder, RecorderError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def patch_ca_bundle(api: ApiClient, kind: str, name: str, recorder: AdmissionRecorder) -> list[str]:
    """Set `caBundle` to the recorder's CA on the webhooks of `kind` `name` that reach the recorder: by a URL
    pointing at it, or by a Service it stands in for (`AdmissionRecorder.stand_in_for`).

    Returns the names of the webhooks patched; RecorderError if none reaches the recorder (the
    configuration would never reach it). Each change is guarded by a JSON patch `test` of the URL or
    Service name, so a concurrent edit of that webhook fails instead of being overwritten.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    admission = client.AdmissionregistrationV1Api(api)
    webhooks: list[tuple[str, Any]]
    try:
        if kind == "MutatingWebhookConfiguration":
            mutating = admission.read_mutating_webhook_configuration(name)
            webhooks = [(w.name, w.client_config) for w in mutating.webhooks or []]
        elif kind == "ValidatingWebhookConfiguration":
            validating = admission.read_validating_webhook_configuration(name)
            webhooks = [(w.name, w.client_config) for w in validating.webhooks or []]
        else:
            raise RecorderError(f"cannot patch caBundle of kind {kind!r}; choose one of: {', '.join(_KINDS)}")
    except ApiException as err:
        raise RecorderError(f"cannot read {kind} {name}: {err.status} {err.reason}") from err

    ops: list[dict[str, Any]] = []
    patched: list[str] = []
    services = recorder.services
    for index, (webhook, client_config) in enumerate(webhooks):
        url, service = client_config.url, client_config.service
        if url is not None and _points_at(url, recorder):
            ops.append({"op": "test", "path": f"/webhooks/{index}/clientConfig/url", "value": url})
        elif service is not None and (service.namespace, service.name) in services:
            ops.append({"op": "test", "path": f"/webhooks/{index}/clientConfig/service/name", "value": service.name})
        else:
            continue
        ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": recorder.ca_bundle})
        patched.append(webhook)
    if not patched:
        calls = [c.url or f"service {c.service.namespace}/{c.service.name}" for _, c in webhooks]
        stands_in = ", ".join(f"{ns}/{svc}" for ns, svc in sorted(services)) or "no Service"
        raise RecorderError(
            f"no webhook of {kind} {name} reaches the admission recorder ({recorder.base_url}, standing in for "
            f"{stands_in}); its webhooks call {calls}; fix: recorder.stand_in_for(egress, NAMESPACE, SERVICE), "
            "or set their clientConfig.url to recorder.url(PATH)"
        )
    try:
        if kind == "MutatingWebhookConfiguration":
            admission.patch_mutating_webhook_configuration(name, ops)
        else:
            admission.patch_validating_webhook_configuration(name, ops)
    except ApiException as err:
        raise RecorderError(f"cannot patch caBundle of {kind} {name}: {err.status} {err.reason}: {err.body}") from err
    return patched


def adopt_stale_webhooks(api: ApiClient, recorder: AdmissionRecorder) -> list[str]:
    """Re-point webhooks left by an earlier recorder (a kept cluster's earlier test run) at this one.

    A webhook whose URL is `https://127.0.0.1:PORT/...` on a port where nothing listens calls a recorder that is gone,
    with that recorder's CA in its caBundle: every object it selects would be refused, including the
    objects of the `helm upgrade` meant to repair it. Its URL moves to this recorder (same path) and its
    caBundle to this recorder's CA, each guarded by a JSON patch `test` of the old URL. Returns
    `KIND/NAME/WEBHOOK` of each webhook re-pointed.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    admission = client.AdmissionregistrationV1Api(api)
    prefix = f"https://{HOST}:"
    adopted: list[str] = []
    lists: tuple[tuple[str, Any, Any], ...] = (
        (
            "MutatingWebhookConfiguration",
            admission.list_mutating_webhook_configuration,
            admission.patch_mutating_webhook_configuration,
        ),
        (
            "ValidatingWebhookConfiguration",
            admission.list_validating_webhook_configuration,
            admission.patch_validating_webhook_configuration,
        ),
    )
    for kind, list_them, patch in lists:
        try:
            configurations: list[Any] = list_them().items
        except ApiException as err:
            raise RecorderError(f"cannot list {kind}s: {err.status} {err.reason}") from err
        for configuration in configurations:
            ops: list[dict[str, Any]] = []
            for index, webhook in enumerate(configuration.webhooks or []):
                url = webhook.client_config.url
                if url is None or not url.startswith(prefix) or _points_at(url, recorder):
                    continue
                rest = url[len(prefix) :]
                port = rest.split("/", 1)[0]
                if not port.isdigit() or _listening(HOST, int(port)):
                    continue  # another live server (another run's recorder): not ours to take
                path = rest[rest.index("/") :] if "/" in rest else ""
                ops += [
                    {"op": "test", "path": f"/webhooks/{index}/clientConfig/url", "value": url},
                    {"op": "replace", "path": f"/webhooks/{index}/clientConfig/url", "value": recorder.base_url + path},
                    {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": recorder.ca_bundle},
                ]
                adopted.append(f"{kind}/{configuration.metadata.name}/{webhook.name}")
            if ops:
                try:
                    patch(configuration.metadata.name, ops)
                except ApiException as err:
                    raise RecorderError(
                        f"cannot re-point {kind} {configuration.metadata.name}: {err.status} {err.reason}: {err.body}"
                    ) from err
    return adopted


def _listening(host: str, port: int) -> bool:
    """True when something accepts connections on loopback `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _points_at(url: str, recorder: AdmissionRecorder) -> bool:
    base = recorder.base_url
    return url == base or url.startswith(base + "/") or url.startswith(base + "?")
