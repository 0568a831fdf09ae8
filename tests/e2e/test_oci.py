"""The published archives in a real OCI registry (Debian's docker-registry on loopback): `meshcharts push`
uploads each archive with its provenance layer, `helm pull --verify` checks the signature against the
published key, `helm show chart` reads each one, and the gateway installs from oci:// into the cluster."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcharts import controlplane, repo, waits
from meshcharts import index as index_mod
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from meshcharts.testing.registry import OciRegistry
from meshcharts.testing.releases import ReleaseFactory
from tests.e2e.conftest import REPO, ControlPlane

PROVENANCE = "application/vnd.cncf.helm.chart.provenance.v1.prov"
CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def published() -> list[tuple[str, str, Path]]:
    """(chart, version, archive) for every entry of the committed index.yaml."""
    data = index_mod.load(REPO / "index.yaml")
    return sorted(
        (name, str(entry["version"]), REPO / entry["urls"][0])
        for name, versions in data["entries"].items()
        for entry in versions
    )


PUBLISHED = published()
IDS = [f"{name}-{version}" for name, version, _ in PUBLISHED]


@pytest.fixture(scope="module")
def offline_helm(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned Helm with a home of its own (registry logins, cache), bound to no cluster."""
    return Helm(major=int(pytestconfig.getoption("--helm"))).with_home(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def pushed(oci_registry: OciRegistry, offline_helm: Helm) -> str:
    """`meshcharts push oci://127.0.0.1:PORT/charts --plain-http` run as a user runs it; returns the ref."""
    ref = oci_registry.ref("charts")
    env = {
        **offline_helm.env,
        "PYTHONPATH": os.pathsep.join([str(REPO / "generator"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "meshcharts.cli", "push", ref, "--plain-http", "--unsigned"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"meshcharts push exited {done.returncode}:\n{done.stderr}"
    for name, version, _ in PUBLISHED:
        assert f"pushed {name} {version} -> {ref}/{name}:{version}" in done.stderr, done.stderr
    return ref


@pytest.fixture(scope="module")
def keyring(gnupg_home: Callable[[str], Path]) -> Path:
    """The published public key (meshcharts.asc) dearmored into the keyring format `helm --keyring` reads."""
    home = gnupg_home("gnupg")
    return repo.public_keyring(REPO / repo.PUBLIC_KEY, home / "pubring.gpg", home)


@pytest.fixture(scope="module")
def stranger_keyring(gnupg_home: Callable[[str], Path]) -> Path:
    """A keyring holding only a throwaway key that signed nothing here."""
    home = gnupg_home("stranger")
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [*gpg, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "stranger <stranger@example.invalid>", "rsa2048", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    path = home / "stranger.gpg"
    path.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    return path


@pytest.mark.any_kubernetes("the OCI registry and Helm only: no cluster")
@pytest.mark.parametrize(("name", "version", "archive"), PUBLISHED, ids=IDS)
def test_push_stores_the_archive_and_its_provenance_as_layers(
    pushed: str, oci_registry: OciRegistry, name: str, version: str, archive: Path
) -> None:
    published = sorted(a.name[len(name) + 1 : -len(".tgz")] for a in (REPO / "packages").glob(f"{name}-*.tgz"))
    assert oci_registry.tags(f"charts/{name}") == [v.replace("+", "_") for v in published]
    manifest = oci_registry.manifest(f"charts/{name}", version.replace("+", "_"))
    layers = {layer["mediaType"]: layer["digest"] for layer in manifest["layers"]}
    prov = archive.with_name(archive.name + ".prov")
    assert layers == {
        CONTENT: "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest(),
        PROVENANCE: "sha256:" + hashlib.sha256(prov.read_bytes()).hexdigest(),
    }, json.dumps(manifest, indent=2)


@pytest.mark.any_kubernetes("the OCI registry and Helm only: no cluster")
@pytest.mark.parametrize(("name", "version", "archive"), PUBLISHED, ids=IDS)
def test_helm_pull_verify_from_oci_checks_the_published_signature(
    pushed: str, offline_helm: Helm, keyring: Path, tmp_path: Path, name: str, version: str, archive: Path
) -> None:
    out = offline_helm.run(
        ["pull", f"{pushed}/{name}", "--version", version, "--plain-http", "--verify", "--keyring", str(keyring),
         "--destination", str(tmp_path)]
    )  # fmt: skip
    assert "Chart Hash Verified" in out, out
    assert (tmp_path / archive.name).read_bytes() == archive.read_bytes()
    assert (tmp_path / (archive.name + ".prov")).read_bytes() == archive.with_name(archive.name + ".prov").read_bytes()


@pytest.mark.any_kubernetes("the OCI registry and Helm only: no cluster")
def test_helm_pull_verify_refuses_a_key_that_did_not_sign(
    pushed: str, offline_helm: Helm, stranger_keyring: Path, tmp_path: Path
) -> None:
    """The control for the test above: the same pull against another key fails."""
    with pytest.raises(HelmError) as refused:
        offline_helm.run(
            ["pull", f"{pushed}/gateway", "--version", "1.12.0", "--plain-http", "--verify", "--keyring",
             str(stranger_keyring), "--destination", str(tmp_path)]
        )  # fmt: skip
    assert "unknown entity" in refused.value.stderr or "signature" in refused.value.stderr, refused.value.stderr


@pytest.mark.any_kubernetes("the OCI registry and Helm only: no cluster")
@pytest.mark.parametrize(("name", "version", "archive"), PUBLISHED, ids=IDS)
def test_helm_show_chart_reads_each_chart_from_oci(
    pushed: str, offline_helm: Helm, name: str, version: str, archive: Path
) -> None:
    shown = offline_helm.run(["show", "chart", f"{pushed}/{name}:{version}", "--plain-http"])
    lines = shown.splitlines()
    assert f"name: {name}" in lines and f"version: {version}" in lines, shown


def test_gateway_installs_from_oci_and_becomes_available_behind_the_injector(
    pushed: str,
    keyring: Path,
    control_plane: ControlPlane,
    releases: ReleaseFactory,
    kube: Kube,
    mesh_namespace: str,
) -> None:
    releases.install(
        "oci-gateway",
        f"{pushed}/gateway",
        version="1.12.0",
        extra=("--plain-http", "--verify", "--keyring", str(keyring)),
    )
    deployment = waits.deployment_available(kube.apps, mesh_namespace, "oci-gateway")
    assert deployment.metadata.labels["helm.sh/chart"] == "gateway-1.12.0"
    pods = kube.core.list_namespaced_pod(mesh_namespace, label_selector="app=oci-gateway").items
    assert pods and all(controlplane.INJECTED in (p.metadata.annotations or {}) for p in pods), "istiod injected no pod"
    assert waits.service_address(kube.core, mesh_namespace, "oci-gateway")
