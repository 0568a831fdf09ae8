"""The official Kubernetes client for one kubeconfig, and the API server's refusals as errors naming the object.

User commands (`adopt-crds`, `demo`) and the pytest plugin share this; it imports neither pytest nor
the client library until a client is asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcharts.errors import ClusterError


@dataclass(frozen=True)
class Kube:
    """The official client's typed APIs for one cluster."""

    api_client: Any
    core: Any
    apps: Any
    ext: Any
    admission: Any
    rbac: Any
    autoscaling: Any
    policy: Any
    custom: Any


def api_client(kubeconfig: Path, context: str | None = None) -> Any:
    """The one way meshcharts builds a Kubernetes API client: the official client's ApiClient for `kubeconfig`
    (its `context`, else the current one); ClusterError naming the file when it is missing or unusable."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    if not kubeconfig.is_file():
        raise ClusterError(f"no kubeconfig at {kubeconfig}; pass --kubeconfig or set KUBECONFIG")
    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context
        )
    except (ConfigException, TypeError, ValueError, AttributeError) as err:
        raise ClusterError(f"{kubeconfig} is not a usable kubeconfig: {err}") from err


def kube_for(kubeconfig: Path, context: str | None = None) -> Kube:
    """Clients for the cluster of `kubeconfig` (its current context); ClusterError if it cannot be loaded."""
    return kube_of(api_client(kubeconfig, context))


def kube_of(api_client: Any) -> Kube:
    """The typed APIs over one ApiClient."""
    from kubernetes import client

    return Kube(
        api_client=api_client,
        core=client.CoreV1Api(api_client),
        apps=client.AppsV1Api(api_client),
        ext=client.ApiextensionsV1Api(api_client),
        admission=client.AdmissionregistrationV1Api(api_client),
        rbac=client.RbacAuthorizationV1Api(api_client),
        autoscaling=client.AutoscalingV2Api(api_client),
        policy=client.PolicyV1Api(api_client),
        custom=client.CustomObjectsApi(api_client),
    )


class KubeApiError(ClusterError):
    """The API server refused or failed a request: says what was asked, keeps the HTTP status and reason."""

    def __init__(self, action: str, err: BaseException) -> None:
        self.action = action
        self.status: int | None = getattr(err, "status", None)
        self.reason: str | None = getattr(err, "reason", None)
        detail = _status_message(getattr(err, "body", None))
        super().__init__(
            f"{action}: the API server answered {self.status} {self.reason}" + (f": {detail}" if detail else "")
        )


def _status_message(body: object) -> str:
    """The `message` of a Kubernetes Status body, or the body itself when it is not one."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body.strip():
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else body.strip()


def is_api_error(err: BaseException) -> bool:
    """Whether `err` is the client library's ApiException (the server answered with an error status)."""
    from kubernetes.client.exceptions import ApiException

    return isinstance(err, ApiException)
