"""The shared installs of the cluster layers (e2e and upgrade): istio-base, and istiod (default revision) in
istio-system with a real istiod answering its webhooks: on the local provider the chart's Deployment run on this
host (meshcharts.cluster.local.istiod), elsewhere the Deployment's own pod.

Registered once, by tests/conftest.py, so both layers share one set of installs per session cluster.

One default-revision istiod per cluster, as Istio has it: an istiod patches the CA into every webhook
configuration labelled with its revision, wherever it lives, so two default-revision istiods would overwrite each
other's CA. The istiod upgrade paths install their own (`sole_default_istiod`); the shared one is removed for them
and installed again for the next test that asks for `control_plane`.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from meshcharts import controlplane, waits
from meshcharts.cluster import Cluster
from meshcharts.controlplane import ControlPlane, PodIstiod
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests import REPO

CHARTS = REPO / "charts"
BASE_RELEASE = ("istio-base", "istio-system")
ISTIO_NS = "istio-system"

# What a running istiod writes into every namespace it sees (Istio's namespace controller): the CA root
# certificate and the CRL. Tests that compare a namespace's objects before and after leave these out.
ISTIOD_WRITES_EVERYWHERE = frozenset({"istio-ca-root-cert", "istio-ca-crl"})


def deployed(helm: Helm, release: str, namespace: str) -> bool:
    try:
        return "STATUS: deployed" in helm.run(["status", release, "--namespace", namespace])
    except HelmError:
        return False


NO_DEFAULT_VALIDATOR = {"defaultRevision": ""}
"""base without istiod-default-validator. That webhook calls istiod in istio-system; once an istiod has set it to
fail closed, it refuses every Istio resource while no istiod there answers (Istio's own behaviour: its
uninstall guide removes it with istiod). The shared base is installed so while no shared istiod runs."""


# --- answering istiods ------------------------------------------------------------------------------------


def run_istiod(mesh_cluster: Cluster, kube: Kube, namespace: str, deployment: str, *, timeout: float = 180) -> Any:
    """Have a real istiod answer the chart's istiod Deployment `namespace/deployment`, as the cluster's provider
    runs it (meshcharts.controlplane.IstiodRunner): where pods are simulated a process on this host (an istiod
    already running for it is restarted, as a kubelet rolls a changed Deployment), elsewhere its own pod.
    Returns the answering istiod (`stop()`, `running()`, `log_tail()`)."""
    runner = mesh_cluster.backend.istiod_runner(mesh_cluster.name)
    return runner.answer(kube, namespace, deployment, timeout=timeout)


def stop_istiod(mesh_cluster: Cluster, answering: Any) -> None:
    """Stop what `run_istiod` started (nothing where the Deployment's own pod answered)."""
    if answering is not None:
        answering.stop()


def host_process(answering: Any) -> Any:
    """The host istiod (a meshcharts.cluster.local.istiod.Started) behind `answering`, or None where a pod answers."""
    return None if answering is None or isinstance(answering, PodIstiod) else answering


def istiod_deployment(objects: list[dict[str, Any]]) -> str:
    """The istiod Deployment among a release's rendered objects."""
    (name,) = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].startswith("istiod")
    ]
    return str(name)


# --- the shared installs ----------------------------------------------------------------------------------


@dataclass
class Shared:
    """The shared default-revision istiod this session runs (the host process answering it on the local
    provider). Whether base is there and with its default validator is read from the cluster each time: other
    tests uninstall and reinstall base."""

    kube: Kube
    istiod: bool = False
    host: Any = None
    checked_leftovers: bool = False

    @property
    def base(self) -> str:
        """How base is installed: "default" (with istiod-default-validator) or "no-default-validator"."""
        listed = self.kube.admission.list_validating_webhook_configuration(
            field_selector="metadata.name=istiod-default-validator"
        ).items
        if listed:
            annotations = listed[0].metadata.annotations or {}
            if annotations.get("meta.helm.sh/release-name") == BASE_RELEASE[0]:
                return "default"
        return "no-default-validator"


@pytest.fixture(scope="session")
def shared_installs(mesh_cluster: Cluster, kube: Kube) -> Iterator[Shared]:
    shared = Shared(kube)
    yield shared
    stop_istiod(mesh_cluster, shared.host)


def _install_base(helm: Helm, shared: Shared, mode: str, tmp_path: Path) -> None:
    """Install base in `mode`; an installed base in the other mode is uninstalled first (its CRDs and users'
    resources stay). Not upgraded: the validators render `failurePolicy: Ignore` at install only, so a default
    validator an upgrade creates fails closed at once, and refuses istiod's own install before istiod answers."""
    if deployed(helm, *BASE_RELEASE):
        helm.uninstall(BASE_RELEASE[0], namespace=BASE_RELEASE[1], wait=True, timeout=120)
    values = tmp_path / f"base-{mode}.yaml"
    values.write_text(yaml.safe_dump(NO_DEFAULT_VALIDATOR if mode == "no-default-validator" else {}))
    controlplane.install_base(helm, charts=str(CHARTS), values=[values], wait=True, timeout=120)


def drop_shared_istiod(mesh_cluster: Cluster, helm: Helm, shared: Shared, tmp_path: Path) -> None:
    """Remove the shared default-revision istiod (an earlier run's too, on a kept cluster) and base's default
    validator with it, which nothing would answer any more."""
    if deployed(helm, "istiod", ISTIO_NS):
        helm.uninstall("istiod", namespace=ISTIO_NS, wait=True, timeout=120)
    stop_istiod(mesh_cluster, shared.host)
    shared.host, shared.istiod = None, False
    if deployed(helm, *BASE_RELEASE) and shared.base != "no-default-validator":
        _install_base(helm, shared, "no-default-validator", tmp_path)


def _ensure_base(mesh_cluster: Cluster, helm: Helm, shared: Shared, tmp_path: Path, mode: str | None) -> None:
    if not shared.checked_leftovers:
        shared.checked_leftovers = True
        if deployed(helm, "istiod", ISTIO_NS):  # a kept cluster's, from an earlier run: nothing answers it now
            drop_shared_istiod(mesh_cluster, helm, shared, tmp_path)
    have = shared.base if deployed(helm, *BASE_RELEASE) else None
    want = mode or have or "no-default-validator"
    if have != want:
        _install_base(helm, shared, want, tmp_path)


@pytest.fixture
def istio_base(mesh_helm: Helm, mesh_cluster: Cluster, tmp_path: Path, shared_installs: Shared) -> tuple[str, str]:
    """The base chart from charts/ installed as istio-base in istio-system (shared; installed when missing). Its
    default validator is there while the shared istiod answers it (`control_plane`), not otherwise."""
    _ensure_base(mesh_cluster, mesh_helm, shared_installs, tmp_path, None)
    return BASE_RELEASE


@pytest.fixture
def sole_default_istiod(
    mesh_helm: Helm, mesh_cluster: Cluster, tmp_path: Path, shared_installs: Shared
) -> tuple[str, str]:
    """base without its default validator and no shared istiod: a test installs a default-revision istiod of its
    own (an istiod upgrade path), which no other default-revision istiod may overwrite."""
    _ensure_base(mesh_cluster, mesh_helm, shared_installs, tmp_path, None)
    drop_shared_istiod(mesh_cluster, mesh_helm, shared_installs, tmp_path)
    return BASE_RELEASE


@pytest.fixture
def no_default_validator(
    mesh_helm: Helm, mesh_cluster: Cluster, tmp_path: Path, shared_installs: Shared
) -> tuple[str, str]:
    """base without its default validator (the shared istiod may run): a test that must see which revision's own
    validator refused a resource, which the default validator (it sees every Istio resource) would also refuse."""
    _ensure_base(mesh_cluster, mesh_helm, shared_installs, tmp_path, "no-default-validator")
    return BASE_RELEASE


@pytest.fixture
def control_plane(
    request: pytest.FixtureRequest,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    tmp_path: Path,
    shared_installs: Shared,
) -> ControlPlane:
    """base (default values) and istiod (default revision, default values) from charts/ in istio-system, with a
    real istiod answering their webhooks; returns once istiod has written its CA into all of them. Where every
    node is kwok's and the provider is not local, nothing could run istiod: it skips."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    shared = shared_installs
    _ensure_base(mesh_cluster, mesh_helm, shared, tmp_path, "default")
    runner = mesh_cluster.backend.istiod_runner(mesh_cluster.name)
    if not shared.istiod or not deployed(mesh_helm, "istiod", ISTIO_NS):
        stop_istiod(mesh_cluster, shared.host)
        shared.host = None
        plane = controlplane.install_istiod(mesh_helm, kube, charts=str(CHARTS), runner=runner, timeout=120)
        shared.istiod, shared.host = True, plane.istiod
    elif shared.host is None or not shared.host.running():
        shared.host = runner.answer(kube, ISTIO_NS, "istiod", timeout=120)
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    return ControlPlane(ISTIO_NS, shared.host)


# --- a real istiod ------------------------------------------------------------------------------------

REAL_REVISION = "real"
REAL_NS = "istio-real"


@dataclass
class RealIstiod:
    """istiod of its own revision in its own namespace, answered by a real istiod (`answering`): on the local
    provider the chart's Deployment run on this host (`host`, a meshcharts.cluster.local.istiod.Started),
    elsewhere its own pod (`host` None)."""

    release: str
    namespace: str
    revision: str
    answering: Any = None
    istio_resources: list[dict[str, Any]] | None = None  # its release's Istio resources, read once (restore)

    @property
    def host(self) -> Any:
        return host_process(self.answering)

    @property
    def deployment(self) -> str:
        return f"istiod-{self.revision}"

    def log_tail(self, kube: Kube, lines: int = 60) -> str:
        """The last lines of istiod's log: the host process's file, or the pods' logs through the API."""
        return str(self.answering.log_tail(lines)) if self.answering is not None else ""


def install_real_istiod(
    mesh_cluster: Cluster,
    helm: Helm,
    kube: Kube,
    chart: Path,
    *,
    namespace: str,
    revision: str,
    timeout: float = 180,
) -> RealIstiod:
    """Install the istiod chart at `chart` with `revision` (default values otherwise) into `namespace`, and have a
    real istiod answer it: on the local provider run on this host, elsewhere the chart's own pod."""
    if chart.name != "istiod":
        raise ValueError(f"{chart}: the istiod chart's directory must be called istiod (helm installs <dir>/istiod)")
    installed = RealIstiod(f"istiod-{revision}", namespace, revision)
    runner = mesh_cluster.backend.istiod_runner(mesh_cluster.name)
    try:
        plane = controlplane.install_istiod(
            helm, kube, charts=str(chart.parent), runner=runner, timeout=timeout, revision=revision, namespace=namespace
        )
        installed.answering = plane.istiod
    except BaseException:
        # istiod may have set its validator to fail closed before it failed: leave no webhook nobody answers.
        remove_real_istiod(mesh_cluster, helm, kube, installed)
        raise
    return installed


def remove_real_istiod(mesh_cluster: Cluster, helm: Helm, kube: Kube, istiod: RealIstiod) -> None:
    with contextlib.suppress(HelmError):
        helm.uninstall(istiod.release, namespace=istiod.namespace, wait=True, timeout=120)
    stop_istiod(mesh_cluster, istiod.answering)
    with contextlib.suppress(Exception):
        kube.core.delete_namespace(istiod.namespace)


@pytest.fixture(scope="session")
def real_istiods(mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube) -> Iterator[dict[str, RealIstiod]]:
    """The real istiods this test run installed, by revision; each removed (its host istiod stopped by pid)
    when the run ends, before the session cluster goes."""
    made: dict[str, RealIstiod] = {}
    yield made
    for istiod in made.values():
        remove_real_istiod(mesh_cluster, mesh_helm, kube, istiod)


@pytest.fixture
def real_istiod(
    request: pytest.FixtureRequest,
    istio_base: tuple[str, str],
    mesh_cluster: Cluster,
    mesh_helm: Helm,
    kube: Kube,
    real_istiods: dict[str, RealIstiod],
) -> RealIstiod:
    """istiod from charts/ as revision `real` in istio-real, with a real istiod answering its webhooks (installed
    once per run, removed at its end). Where every node is kwok's and the provider is not local, it skips."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    if REAL_REVISION not in real_istiods:
        istiod = install_real_istiod(
            mesh_cluster, mesh_helm, kube, CHARTS / "istiod", namespace=REAL_NS, revision=REAL_REVISION
        )
        real_istiods[REAL_REVISION] = istiod
    istiod = real_istiods[REAL_REVISION]
    restore_istio_resources(mesh_helm, kube, istiod)
    return istiod


def absent_as_none(read: Any, *args: Any) -> Any:
    """`read(*args)` (a client read), or None where the API server answers 404: for waits on an object to appear."""
    try:
        return read(*args)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def istiod_ca_root(kube: Kube, namespace: str) -> bytes:
    """The CA certificate of the istiod in `namespace`: the `istio-ca-secret` its self-signed CA keeps there (no
    other istiod writes it; every istiod writes istio-ca-root-cert into every namespace)."""
    secret = waits.wait_until(
        lambda: absent_as_none(kube.core.read_namespaced_secret, "istio-ca-secret", namespace),
        condition=f"istiod's CA secret in {namespace}",
        timeout=120,
    )
    return base64.b64decode(secret.data["ca-cert.pem"]).strip()


def _istio_resource_exists(kube: Kube, doc: dict[str, Any], namespace: str) -> bool:
    group, version = doc["apiVersion"].split("/")
    plural = doc["kind"].lower() + "s"
    read = kube.custom.get_namespaced_custom_object
    return absent_as_none(read, group, version, namespace, plural, doc["metadata"]["name"]) is not None


def restore_istio_resources(helm: Helm, kube: Kube, istiod: RealIstiod) -> None:
    """Put back the Istio resources of the shared real istiod's release (its EnvoyFilters) if they are gone: the
    base upgrade paths start from a slate without Istio's CRDs, and deleting a CRD deletes every resource of it,
    also those of a release installed earlier in the run. `helm upgrade` with the same values creates what is
    missing and changes nothing else."""
    if istiod.istio_resources is None:  # the release is upgraded only with the same values: read its manifest once
        manifest = helm.run(["get", "manifest", istiod.release, "--namespace", istiod.namespace])
        istiod.istio_resources = [
            doc
            for doc in yaml.safe_load_all(manifest)
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).split("/")[0].endswith("istio.io")
        ]

    def missing() -> list[str]:
        return [
            doc["metadata"]["name"]
            for doc in istiod.istio_resources or []
            if not _istio_resource_exists(kube, doc, doc["metadata"].get("namespace") or istiod.namespace)
        ]

    if not missing():
        return
    helm.upgrade(
        istiod.release, CHARTS / "istiod", namespace=istiod.namespace, wait=True, timeout=180,
        set_values={"revision": istiod.revision},
    )  # fmt: skip
    left = missing()
    assert not left, f"helm upgrade did not restore {left} of {istiod.release}"
