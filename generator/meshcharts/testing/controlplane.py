"""The Istio control plane (base + istiod) installed as users install it, for tests on any provider.

Where pods run (kind, an existing cluster), istiod answers its own webhooks and the fixture waits for
it. On the local provider nothing runs: the admission recorder stands in for istiod, reached through
istiod's own Service by the cluster's egress proxy, and trusted on the webhooks the way istiod patches
its CA in. The charts are installed with the user's values only (no URL overrides) either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshcharts.egress import Egress
from meshcharts.helm import Helm
from meshcharts.kube import Kube
from meshcharts.testing import waits
from meshcharts.testing.admission import AdmissionRecorder, patch_ca_bundle

BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"
NAMESPACE = "istio-system"
# Webhook configurations of the default revision that call the istiod Service: (kind, name) by namespace.
_WEBHOOKS = (
    ("ValidatingWebhookConfiguration", "istiod-default-validator"),
    ("MutatingWebhookConfiguration", "istio-sidecar-injector"),
)


def chart_ref(location: str, chart: str) -> str:
    """`charts` dir, `oci://registry/path` or a repository alias (`meshcharts`) plus the chart's name."""
    if "://" in location or not Path(location).is_dir():
        return f"{location.rstrip('/')}/{chart}"
    return str(Path(location) / chart)


@dataclass
class ControlPlane:
    """base and istiod of one test run; `recorder` is istiod's stand-in on the local provider, else None."""

    namespace: str
    recorder: AdmissionRecorder | None

    @property
    def istiod_host(self) -> str:
        """The name the API server asks for when it calls istiod's webhooks."""
        return f"istiod.{self.namespace}.svc"

    def went_through_injector(self, kube: Kube, namespace: str, pod_name: str) -> bool:
        """Whether the sidecar injector was asked about this pod: the recorder saw it here; where istiod runs,
        the pod carries the `sidecar.istio.io/status` annotation istiod writes when it injects."""
        if self.recorder is not None:
            asked = self.recorder.requests(host=self.istiod_host, path="/inject", kind="Pod", namespace=namespace)
            # A Deployment's pods are created with generateName: the request has no name yet.
            return any(r.name == pod_name or (r.generate_name and pod_name.startswith(r.generate_name)) for r in asked)
        pod = kube.core.read_namespaced_pod(pod_name, namespace)
        return "sidecar.istio.io/status" in (pod.metadata.annotations or {})


def install(
    helm: Helm,
    kube: Kube,
    *,
    charts: str,
    version: str | None,
    values: Mapping[str, Sequence[Path]],
    egress: Egress | None,
    recorder: AdmissionRecorder | None,
    timeout: float,
) -> ControlPlane:
    """`helm upgrade --install` base then istiod into istio-system (brings a kept cluster's up to date too).

    With `recorder` (local provider), istiod's Service is routed to it before anything calls a webhook
    and its CA is trusted on the webhooks afterwards, as istiod does once it serves.
    """
    if recorder is not None and egress is not None:
        recorder.stand_in_for(egress, NAMESPACE, "istiod")
    for release, chart, wait in ((BASE_RELEASE, "base", False), (ISTIOD_RELEASE, "istiod", True)):
        helm.upgrade(
            release,
            chart_ref(charts, chart),
            namespace=NAMESPACE,
            install=True,
            version=version,
            values=values.get(chart, ()),
            wait=wait,
            timeout=timeout,
            extra=("--create-namespace",),
        )
    if recorder is not None:
        validators = {v.metadata.name for v in kube.admission.list_validating_webhook_configuration().items}
        per_revision = ("ValidatingWebhookConfiguration", f"istio-validator-{NAMESPACE}")
        for kind, name in (*_WEBHOOKS, per_revision):
            if kind == "ValidatingWebhookConfiguration" and name not in validators:
                continue  # not rendered with these values (global.configValidation=false, no defaultRevision)
            patch_ca_bundle(kube.api_client, kind, name, recorder)
    waits.deployment_available(kube.apps, NAMESPACE, "istiod", timeout=timeout)
    return ControlPlane(NAMESPACE, recorder)


def uninstall(helm: Helm) -> None:
    for release in (ISTIOD_RELEASE, BASE_RELEASE):
        helm.uninstall(release, namespace=NAMESPACE, wait=True, timeout=120)


__all__ = ["ControlPlane", "chart_ref", "install", "uninstall"]
