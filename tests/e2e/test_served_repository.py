"""The served repository end to end, as `./run.sh` runs it: the committed release re-checked without the
private key, served on loopback, `helm repo add`, `helm search repo --versions --devel`, and base, istiod and
gateway installed from it with `--verify`, at the newest version of the newest line index.yaml publishes.

A cluster of its own: base owns cluster-wide objects (CRDs, webhook configurations), so a second base
release beside the session cluster's would be refused; a local cluster is up in about 5 s.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import semver
import yaml
from kubernetes import client

from meshcharts import cluster as cluster_mod
from meshcharts import demo, index, spec, waits
from meshcharts.errors import HelmError, RepoError
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.testing.plugin import kube_for
from tests.e2e.conftest import REPO

PUBLISHED = index.load(REPO / "index.yaml")


def newest_for(kubernetes: str) -> str:
    """What the demo installs on a cluster running `kubernetes`: the newest version (semver, a release candidate
    too, which `helm install` without --version would pass over) that base, istiod and gateway all publish and
    whose kubeVersion (`>=X.Y.Z-0` on every published chart) the cluster meets."""
    running = semver.Version.parse(kubernetes.lstrip("v").split("+")[0].split("-")[0])
    fitting = []
    for chart in demo.CHARTS:
        versions = set()
        for entry in PUBLISHED["entries"][chart]:
            bound = re.fullmatch(r">=(\d+\.\d+\.\d+)-0", str(entry["kubeVersion"]))
            assert bound, f"{chart} {entry['version']}: kubeVersion {entry['kubeVersion']!r} is not a lower bound"
            if running >= semver.Version.parse(bound.group(1)):
                versions.add(semver.Version.parse(str(entry["version"])))
        fitting.append(versions)
    return str(max(set.intersection(*fitting)))


# Each released line's tree and the version it packs to, the newest published one of that line (a test elsewhere
# keeps them equal): charts/, lines/1.13/, and lines/1.31/ once it says `release: true`.
RELEASED_TREES = [
    (line.charts_label, str(yaml.safe_load((line.charts / "gateway" / "Chart.yaml").read_text())["version"]))
    for line in Layout(REPO).every_line()
    if spec.line_released(line)
]


def line_of(version: str) -> str:
    parsed = semver.Version.parse(version)
    return f"{parsed.major}.{parsed.minor}"


@pytest.fixture(scope="module")
def own_cluster(pytestconfig: pytest.Config) -> Iterator[cluster_mod.Cluster]:
    if pytestconfig.getoption("--cluster-provider") != "local":
        pytest.skip("requires --cluster-provider local: the flow brings up a local cluster of its own")
    name = f"repo-e2e-{uuid.uuid4().hex[:6]}"
    cluster = cluster_mod.up(name, k8s_version=pytestconfig.getoption("--k8s-version"), timeout=180)
    try:
        yield cluster
    finally:
        cluster_mod.down(name)


def test_the_main_job_installs_base_istiod_and_gateway_from_the_served_repository(
    own_cluster: cluster_mod.Cluster, tmp_path: Path
) -> None:
    said: list[str] = []
    shown_lines: list[str] = []
    runner = own_cluster.backend.istiod_runner(own_cluster.name)
    installed = demo.run(
        Layout(REPO), own_cluster.kubeconfig, tmp_path, said.append, out=shown_lines.append, runner=runner
    )
    kubernetes = str(client.VersionApi(kube_for(own_cluster.kubeconfig).api_client).get_code().git_version)
    newest = newest_for(kubernetes)

    # Every version index.yaml publishes is listed, pre-releases too (the search passes --devel).
    rows = sorted(line.split()[:2] for line in installed.search.splitlines()[1:] if line.strip())
    published = sorted(
        [f"meshcharts/{chart}", str(entry["version"])]
        for chart, entries in PUBLISHED["entries"].items()
        for entry in entries
    )
    assert rows == published
    assert installed.releases == [
        ("istio-base", "base", "istio-system"),
        ("istiod", "istiod", "istio-system"),
        ("istio-ingressgateway", "gateway", "istio-ingress"),
    ]
    # Every released line is checked, served and listed.
    assert {line_of(version) for _, version in rows} == {line_of(version) for _, version in RELEASED_TREES}, rows
    for tree, _ in RELEASED_TREES:
        assert any(f"the 3 charts in {tree} pack to their published archives byte for byte" in s for s in said), said
    assert installed.version == newest
    assert any(s.startswith(f"version: installing {newest}: the newest version of line") for s in said), said
    newest_line = max((line_of(v) for _, v in RELEASED_TREES), key=lambda line: tuple(map(int, line.split("."))))
    if line_of(newest) != newest_line:  # the cluster is too old for the newest line: the demo says it left it out
        assert any(f"since the cluster runs Kubernetes {kubernetes}: line {newest_line}" in s for s in said), said
    # A real istiod (the chart's Deployment run on this host) injected the gateway's pods with the line's proxy.
    assert installed.host_istiod is not None
    assert any(f"pilot-discovery pid {installed.host_istiod.pid}" in line for line in said), said
    assert installed.gateway_images, said
    for images in installed.gateway_images.values():
        assert images == {"istio-proxy": f"docker.io/istio/proxyv2:{newest}"}, images
    assert any("webhooks: istiod injected the gateway's pod istio-ingress/" in line for line in said), said

    helm = Helm(kubeconfig=own_cluster.kubeconfig)
    for release, chart, namespace in installed.releases:
        status = helm.run(["status", release, "--namespace", namespace])
        assert "STATUS: deployed" in status, status
        assert f"{chart}-{newest}" in helm.run(["list", "--namespace", namespace, "--filter", f"^{release}$"])
    kube = kube_for(own_cluster.kubeconfig)
    waits.deployment_available(kube.apps, "istio-system", "istiod", timeout=30)
    waits.deployment_available(kube.apps, "istio-ingress", "istio-ingressgateway", timeout=30)
    assert kube.ext.read_custom_resource_definition("virtualservices.networking.istio.io")
    assert installed.gateway_address == waits.service_address(kube.core, "istio-ingress", "istio-ingressgateway")

    shown = "\n".join(shown_lines)
    for expected in ("istio-ingressgateway", "deployment.apps/istiod", "service/istio-ingressgateway", "LoadBalancer"):
        assert expected in shown, shown


@pytest.fixture
def scratch_copy(tmp_path: Path) -> Layout:
    return demo.copy_repository(REPO, tmp_path / "source")


@pytest.mark.any_kubernetes("the release check reads the repository: no cluster")
@pytest.mark.parametrize(
    ("tree", "version"), RELEASED_TREES, ids=[tree.strip("/").replace("/", "-") for tree, _ in RELEASED_TREES]
)
def test_release_check_refuses_a_published_archive_that_charts_no_longer_pack_to(
    scratch_copy: Layout, tmp_path: Path, version: str, tree: str
) -> None:
    archive = scratch_copy.packages / f"gateway-{version}.tgz"  # the version the tree packs to
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(
        RepoError, match=rf"gateway-{re.escape(version)}\.tgz is published with sha256.* but {tree}gateway"
    ):
        demo.check_release(scratch_copy, tmp_path / "work", Helm().with_home(tmp_path / "helm"), lambda _: None)


@pytest.mark.any_kubernetes("the release check reads the repository: no cluster")
def test_release_check_refuses_a_provenance_file_whose_signed_text_was_changed(
    scratch_copy: Layout, tmp_path: Path
) -> None:
    prov = scratch_copy.packages / "istiod-1.12.0.tgz.prov"
    prov.write_text(prov.read_text().replace("sha256:", "sha256:0", 1))
    with pytest.raises(HelmError, match=r"istiod-1\.12\.0\.tgz"):
        demo.check_release(scratch_copy, tmp_path / "work", Helm().with_home(tmp_path / "helm"), lambda _: None)
