"""The Istio control plane (base + istiod) installed as users install it, answered by a real istiod everywhere.

Where pods run (kind, an existing cluster), the chart's istiod Deployment answers its own webhooks. On the
local provider nothing runs in pods, so the same Deployment runs on the host as a real istiod
(`meshcharts.cluster.local.istiod`: pilot-discovery with a token of the chart's ServiceAccount, reached through the
chart's own Services). Either way the charts are installed with the user's values only, and the install
returns once istiod has written its CA into every webhook configuration of its revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from meshcharts import waits
from meshcharts.helm import Helm
from meshcharts.kube import Kube

BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"
NAMESPACE = "istio-system"
INJECTED = "sidecar.istio.io/status"


class Answering(Protocol):
    """An istiod answering the webhooks of one chart's istiod Deployment."""

    def running(self) -> bool:
        """Whether it still answers (a host process alive; the Deployment's pods available)."""
        ...

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of its log."""
        ...

    def stop(self) -> None:
        """Stop what the runner started (nothing where the Deployment's own pod answers: uninstalling removes it)."""
        ...


class IstiodRunner(Protocol):
    """What makes a chart's istiod Deployment answer: the control plane behind the charts' webhooks.

    `InClusterIstiod` where pods run (the Deployment's own pod); the local provider's host runner where they do
    not (`meshcharts.cluster.local.HostIstiodRunner`: pilot-discovery on this host with the chart's own
    ServiceAccount token, behind the chart's Service). Each cluster provider says which (`istiod_runner`).
    """

    where: str

    def answer(self, kube: Kube, namespace: str, deployment: str, *, timeout: float) -> Answering:
        """Have istiod answer for `namespace/deployment`; returns once it does."""
        ...


@dataclass
class PodIstiod:
    """The chart's istiod Deployment answering through its own pods."""

    kube: Kube
    namespace: str
    deployment: str

    def running(self) -> bool:
        status = self.kube.apps.read_namespaced_deployment(self.deployment, self.namespace).status
        return bool(status.available_replicas)

    def log_tail(self, lines: int = 40) -> str:
        deploy = self.kube.apps.read_namespaced_deployment(self.deployment, self.namespace)
        selector = ",".join(f"{k}={v}" for k, v in (deploy.spec.selector.match_labels or {}).items())
        pods = self.kube.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return "\n".join(
            self.kube.core.read_namespaced_pod_log(p.metadata.name, self.namespace, tail_lines=lines) for p in pods
        )

    def stop(self) -> None:
        return None


class InClusterIstiod:
    """Where pods run: the Deployment's own pods answer once the Deployment is available."""

    where = "the chart's istiod pod"

    def answer(self, kube: Kube, namespace: str, deployment: str, *, timeout: float) -> Answering:
        waits.deployment_available(kube.apps, namespace, deployment, timeout=timeout)
        return PodIstiod(kube, namespace, deployment)


def chart_ref(location: str, chart: str) -> str:
    """`charts` dir, `oci://registry/path` or a repository alias (`meshcharts`) plus the chart's name."""
    if "://" in location or not Path(location).is_dir():
        return f"{location.rstrip('/')}/{chart}"
    return str(Path(location) / chart)


@dataclass
class ControlPlane:
    """base and istiod of one test run, and the real istiod answering it (`istiod`)."""

    namespace: str
    istiod: Answering
    release: str = ISTIOD_RELEASE
    revision: str = ""

    @property
    def host_istiod(self) -> Answering | None:
        """The istiod run on this host where pods do not run (a `meshcharts.cluster.local.istiod.Started`), or
        None where the chart's own pod answers."""
        return None if isinstance(self.istiod, PodIstiod) else self.istiod

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


def _upgrade_install(
    helm: Helm,
    release: str,
    chart: str,
    namespace: str,
    *,
    version: str | None,
    values: Sequence[Path],
    timeout: float,
    keyring: Path | None,
    wait: bool,
    set_values: Mapping[str, str] | None = None,
) -> None:
    """`helm upgrade --install` into `namespace` (created if missing), verifying provenance with `keyring`."""
    verify = ("--verify", "--keyring", str(keyring)) if keyring is not None else ()
    helm.upgrade(
        release,
        chart,
        namespace=namespace,
        install=True,
        version=version,
        values=values,
        set_values=set_values,
        wait=wait,
        timeout=timeout,
        extra=("--create-namespace", *verify),
    )


def install_base(
    helm: Helm,
    *,
    charts: str,
    version: str | None = None,
    values: Sequence[Path] = (),
    timeout: float,
    keyring: Path | None = None,
    wait: bool = False,
) -> None:
    """`helm upgrade --install` base as istio-base into istio-system (created if missing)."""
    _upgrade_install(
        helm,
        BASE_RELEASE,
        chart_ref(charts, "base"),
        NAMESPACE,
        version=version,
        values=values,
        timeout=timeout,
        keyring=keyring,
        wait=wait,
    )


def install_istiod(
    helm: Helm,
    kube: Kube,
    *,
    charts: str,
    runner: IstiodRunner,
    timeout: float,
    version: str | None = None,
    values: Sequence[Path] = (),
    revision: str = "",
    namespace: str = NAMESPACE,
    keyring: Path | None = None,
) -> ControlPlane:
    """`helm upgrade --install` istiod (release `istiod`, or `istiod-<revision>` with the chart's `revision` set)
    into `namespace`, have `runner` make its Deployment (`istiod` / `istiod-<revision>`, the chart's names) answer,
    and return once istiod has written its CA into every webhook configuration of its revision."""
    name = f"istiod-{revision}" if revision else ISTIOD_RELEASE
    _upgrade_install(
        helm,
        name,
        chart_ref(charts, "istiod"),
        namespace,
        version=version,
        values=values,
        timeout=timeout,
        keyring=keyring,
        wait=True,
        set_values={"revision": revision} if revision else None,
    )
    waits.deployment_available(kube.apps, namespace, name, timeout=timeout)
    answering = runner.answer(kube, namespace, name, timeout=timeout)
    labels = kube.apps.read_namespaced_deployment(name, namespace).spec.template.metadata.labels or {}
    wait_webhooks_trusted(kube, labels.get("istio.io/rev", ""), timeout=timeout)
    return ControlPlane(namespace, answering, release=name, revision=revision)


def install(
    helm: Helm,
    kube: Kube,
    *,
    charts: str,
    version: str | None,
    values: Mapping[str, Sequence[Path]],
    runner: IstiodRunner,
    timeout: float,
    keyring: Path | None = None,
) -> ControlPlane:
    """`helm upgrade --install` base then istiod into istio-system (brings a kept cluster's up to date too).

    The one installer of base and istiod (`install_base`, then `install_istiod`): the demo, the plugin's
    `mesh_control_plane` and the tests' fixtures use it. `runner` makes the chart's istiod Deployment answer
    (its pod, or a host process where pods do not run); with `keyring` every chart's provenance is verified
    (`--verify`). Returns once istiod answers and has made its webhooks trusted.
    """
    install_base(helm, charts=charts, version=version, values=values.get("base", ()), timeout=timeout, keyring=keyring)
    return install_istiod(
        helm,
        kube,
        charts=charts,
        runner=runner,
        timeout=timeout,
        version=version,
        values=values.get("istiod", ()),
        keyring=keyring,
    )


def uninstall(helm: Helm) -> None:
    for release in (ISTIOD_RELEASE, BASE_RELEASE):
        helm.uninstall(release, namespace=NAMESPACE, wait=True, timeout=120)


__all__ = [
    "BASE_RELEASE",
    "INJECTED",
    "ISTIOD_RELEASE",
    "NAMESPACE",
    "Answering",
    "ControlPlane",
    "InClusterIstiod",
    "IstiodRunner",
    "PodIstiod",
    "chart_ref",
    "install",
    "install_base",
    "install_istiod",
    "uninstall",
    "wait_webhooks_trusted",
    "webhooks_trusted",
]
