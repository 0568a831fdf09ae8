"""The Istio control plane (base + istiod) installed as users install it, answered by a real istiod everywhere.

Where pods run (kind, an existing cluster), the chart's istiod Deployment answers its own webhooks. On the
local provider nothing runs in pods, so the same Deployment runs on the host as a real istiod
(`meshcharts.cluster.istiod`: pilot-discovery with a token of the chart's ServiceAccount, reached through the
chart's own Services). Either way the charts are installed with the user's values only, and the install
returns once istiod has written its CA into every webhook configuration of its revision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcharts import waits
from meshcharts.helm import Helm
from meshcharts.kube import Kube

BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"
NAMESPACE = "istio-system"
INJECTED = "sidecar.istio.io/status"

# Runs the chart's istiod Deployment (namespace, name) where pods do not run; returns what it started.
HostIstiodStarter = Callable[[str, str], Any]


def chart_ref(location: str, chart: str) -> str:
    """`charts` dir, `oci://registry/path` or a repository alias (`meshcharts`) plus the chart's name."""
    if "://" in location or not Path(location).is_dir():
        return f"{location.rstrip('/')}/{chart}"
    return str(Path(location) / chart)


@dataclass
class ControlPlane:
    """base and istiod of one test run; `host_istiod` is the real istiod run on the host (local provider) or
    None where the chart's own Deployment runs it."""

    namespace: str
    host_istiod: Any = None

    @property
    def istiod_host(self) -> str:
        """The name the API server asks for when it calls istiod's webhooks."""
        return f"istiod.{self.namespace}.svc"

    def went_through_injector(self, kube: Kube, namespace: str, pod_name: str) -> bool:
        """Whether istiod injected this pod: it carries the `sidecar.istio.io/status` annotation istiod writes."""
        pod = kube.core.read_namespaced_pod(pod_name, namespace)
        return INJECTED in (pod.metadata.annotations or {})


def _label_selector(revision: str) -> str:
    return f"istio.io/rev={revision or 'default'}"


def webhooks_trusted(kube: Kube, revision: str = "") -> dict[str, bool]:
    """Each webhook configuration of `revision` -> whether every one of its webhooks carries a caBundle."""
    selector = _label_selector(revision)
    found: dict[str, bool] = {}
    for kind, items in (
        ("MutatingWebhookConfiguration", kube.admission.list_mutating_webhook_configuration(label_selector=selector)),
        (
            "ValidatingWebhookConfiguration",
            kube.admission.list_validating_webhook_configuration(label_selector=selector),
        ),
    ):
        for config in items.items:
            hooks = config.webhooks or []
            found[f"{kind} {config.metadata.name}"] = bool(hooks) and all(w.client_config.ca_bundle for w in hooks)
    return found


def wait_webhooks_trusted(kube: Kube, revision: str = "", *, timeout: float) -> dict[str, bool]:
    """Wait until istiod has written its CA into every webhook configuration of `revision` (and there is one)."""
    last: dict[str, bool] = {}

    def check() -> dict[str, bool] | None:
        nonlocal last
        last = webhooks_trusted(kube, revision)
        return last if last and all(last.values()) else None

    return waits.wait_until(
        check,
        condition=f"istiod's CA in every webhook configuration labelled {_label_selector(revision)}",
        timeout=timeout,
        describe=lambda: f"caBundle set: {last}",
    )


def install(
    helm: Helm,
    kube: Kube,
    *,
    charts: str,
    version: str | None,
    values: Mapping[str, Sequence[Path]],
    host_istiod: HostIstiodStarter | None,
    timeout: float,
) -> ControlPlane:
    """`helm upgrade --install` base then istiod into istio-system (brings a kept cluster's up to date too).

    With `host_istiod` (local provider), the chart's istiod Deployment is then run on the host; elsewhere the
    Deployment's own pod runs. Returns once istiod is available and has made its webhooks trusted.
    """
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
    waits.deployment_available(kube.apps, NAMESPACE, "istiod", timeout=timeout)
    started = host_istiod(NAMESPACE, "istiod") if host_istiod is not None else None
    revision = kube.apps.read_namespaced_deployment("istiod", NAMESPACE).spec.template.metadata.labels.get(
        "istio.io/rev", ""
    )
    wait_webhooks_trusted(kube, revision, timeout=timeout)
    return ControlPlane(NAMESPACE, started)


def uninstall(helm: Helm) -> None:
    for release in (ISTIOD_RELEASE, BASE_RELEASE):
        helm.uninstall(release, namespace=NAMESPACE, wait=True, timeout=120)


__all__ = ["ControlPlane", "chart_ref", "install", "uninstall", "wait_webhooks_trusted", "webhooks_trusted"]
