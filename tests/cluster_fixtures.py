"""The shared installs of the cluster layers (e2e and upgrade): istio-base and istiod in istio-system, their
webhooks answered by one admission recorder.

Registered once, by tests/conftest.py, so both layers share one session recorder and one set of
installs: fixtures defined in each layer's conftest would be two session instances, whose second
recorder the first one's webhooks do not trust.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import tools
from meshcharts.cluster import Cluster, Local
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing import waits
from meshcharts.testing.admission import AdmissionRecorder, adopt_stale_webhooks, patch_ca_bundle
from meshcharts.testing.plugin import Kube

REPO = Path(__file__).resolve().parents[1]
CHARTS = REPO / "charts"
BASE_RELEASE = ("istio-base", "istio-system")
ISTIO_NS = "istio-system"


RECORDER_ONLY_LOCAL = (
    "requires the admission recorder, which listens on this host's loopback: a kind or remote API server cannot "
    "reach it, and there istiod answers its own webhooks (tests of that use the plugin's mesh_control_plane)"
)


@pytest.fixture(scope="session")
def recorder(kube: Kube, mesh_cluster: Cluster) -> Iterator[AdmissionRecorder]:
    """Stands in for istiod's webhook server: the charts' webhooks point at it through their URL values.

    On a kept cluster, webhooks of the earlier run's recorder are re-pointed at this one first: the
    shared releases' upgrade would otherwise be refused by their own stale validator.
    """
    if mesh_cluster.provider != "local":
        simulated = mesh_cluster.simulated_pods()
        reason = f"{RECORDER_ONLY_LOCAL}; nor can istiod answer here: {simulated}" if simulated else RECORDER_ONLY_LOCAL
        pytest.skip(reason)
    with AdmissionRecorder() as rec:
        adopt_stale_webhooks(kube.api_client, rec)
        yield rec


def deployed(helm: Helm, release: str, namespace: str) -> bool:
    try:
        return "STATUS: deployed" in helm.run(["status", release, "--namespace", namespace])
    except HelmError:
        return False


def base_values(recorder: AdmissionRecorder) -> dict[str, object]:
    return {"base": {"validationURL": recorder.url("/validate/base")}}


def istiod_values(recorder: AdmissionRecorder, revision: str = "", **extra: object) -> dict[str, object]:
    rev = revision or "default"
    values: dict[str, object] = {
        "revision": revision,
        "istiodRemote": {"injectionURL": recorder.url(f"/inject/{rev}")},
        "base": {"validationURL": recorder.url(f"/validate/{rev}")},
    }
    values.update(extra)
    return values


def trust_recorder(kube: Kube, recorder: AdmissionRecorder, kind: str, name: str) -> None:
    """What istiod does once it serves: put its CA into the webhook configuration."""
    patch_ca_bundle(kube.api_client, kind, name, recorder)


@pytest.fixture(scope="session")
def current_installs() -> set[str]:
    """Shared releases installed or upgraded by this test run. On a kept cluster they exist from an earlier
    run with webhooks pointing at that run's recorder (another port, another CA): each is brought up to date
    once per run."""
    return set()


NO_DEFAULT_VALIDATOR = {"defaultRevision": ""}
"""base without istiod-default-validator: where the recorder does not answer it and no istiod runs, its webhook
(failurePolicy Fail once istiod set it) would refuse every Istio resource; the CRDs and their schemas stay."""


@pytest.fixture
def istio_base(
    request: pytest.FixtureRequest,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    tmp_path: Path,
    current_installs: set[str],
) -> tuple[str, str]:
    """The base chart from charts/ installed as istio-base in istio-system (installed once, shared).

    On the local provider its default validator calls the recorder; elsewhere base is installed without it,
    so the tests of base (CRDs Established, schemas enforced) hold on any cluster, pods running or not.
    """
    if BASE_RELEASE[0] not in current_installs or not deployed(mesh_helm, *BASE_RELEASE):
        recorder = request.getfixturevalue("recorder") if mesh_cluster.provider == "local" else None
        values = tmp_path / "base-values.yaml"
        values.write_text(yaml.safe_dump(base_values(recorder) if recorder else NO_DEFAULT_VALIDATOR))
        mesh_helm.upgrade(
            BASE_RELEASE[0],
            CHARTS / "base",
            namespace=BASE_RELEASE[1],
            install=True,
            wait=True,
            timeout=120,
            values=[values],
            extra=("--create-namespace",),
        )
        if recorder is not None:
            trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istiod-default-validator")
        current_installs.add(BASE_RELEASE[0])
    return BASE_RELEASE


@dataclass(frozen=True)
class ControlPlane:
    release: str
    namespace: str
    revision: str


@pytest.fixture
def control_plane(
    recorder: AdmissionRecorder,
    istio_base: tuple[str, str],
    mesh_helm: Helm,
    kube: Kube,
    tmp_path: Path,
    current_installs: set[str],
) -> ControlPlane:
    """istiod (default revision) from charts/ in istio-system, its webhooks answered by the recorder."""
    if "istiod" not in current_installs or not deployed(mesh_helm, "istiod", ISTIO_NS):
        values = tmp_path / "istiod-values.yaml"
        values.write_text(yaml.safe_dump(istiod_values(recorder)))
        mesh_helm.upgrade(
            "istiod", CHARTS / "istiod", namespace=ISTIO_NS, install=True, wait=True, timeout=120, values=[values]
        )
        trust_recorder(kube, recorder, "MutatingWebhookConfiguration", "istio-sidecar-injector")
        trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istio-validator-istio-system")
        current_installs.add("istiod")
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod", timeout=60)
    return ControlPlane("istiod", ISTIO_NS, "")


# --- a real istiod ------------------------------------------------------------------------------------

REAL_REVISION = "real"
REAL_NS = "istio-real"


@dataclass
class RealIstiod:
    """istiod of its own revision in its own namespace, answered by a real istiod: on the local provider the
    chart's Deployment run on this host (`host`, a meshcharts.cluster.istiod.Started), elsewhere its own pod."""

    release: str
    namespace: str
    revision: str
    host: Any

    @property
    def deployment(self) -> str:
        return f"istiod-{self.revision}"

    def log_tail(self, kube: Kube, lines: int = 60) -> str:
        """The last lines of istiod's log: the host process's file, or the pod's log through the API."""
        if self.host is not None:
            return str(self.host.istiod.log_tail(lines))
        pods = kube.core.list_namespaced_pod(self.namespace, label_selector=f"istio.io/rev={self.revision}").items
        return "\n".join(
            kube.core.read_namespaced_pod_log(p.metadata.name, self.namespace, tail_lines=lines) for p in pods
        )


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
    installed = RealIstiod(f"istiod-{revision}", namespace, revision, None)
    try:
        helm.upgrade(
            installed.release,
            chart,
            namespace=namespace,
            install=True,
            wait=True,
            timeout=timeout,
            set_values={"revision": revision},
            extra=("--create-namespace",),
        )
        if mesh_cluster.provider == "local":
            installed.host = Local(tools.cache_root()).start_istiod(
                mesh_cluster.name, namespace=namespace, deployment=installed.deployment, timeout=timeout
            )
        else:
            waits.deployment_available(kube.apps, namespace, installed.deployment, timeout=timeout)
    except BaseException:
        # istiod may have set its validator to fail closed before it failed: leave no webhook nobody answers.
        remove_real_istiod(mesh_cluster, helm, kube, installed)
        raise
    return installed


def remove_real_istiod(mesh_cluster: Cluster, helm: Helm, kube: Kube, istiod: RealIstiod) -> None:
    with contextlib.suppress(HelmError):
        helm.uninstall(istiod.release, namespace=istiod.namespace, wait=True, timeout=120)
    if istiod.host is not None:
        istiod.host.istiod.stop(Local(tools.cache_root()).egress(mesh_cluster.name))
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
    if mesh_cluster.provider != "local":
        request.getfixturevalue("mesh_real_pods")
    if REAL_REVISION not in real_istiods:
        istiod = install_real_istiod(
            mesh_cluster, mesh_helm, kube, CHARTS / "istiod", namespace=REAL_NS, revision=REAL_REVISION
        )
        real_istiods[REAL_REVISION] = istiod
    return real_istiods[REAL_REVISION]
