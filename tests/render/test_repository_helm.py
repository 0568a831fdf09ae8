"""The published repository as Helm 4 and 3 see it: archives load, provenance verifies, the served repo works."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from meshcharts import repo
from meshcharts.paths import Layout
from tests.render.conftest import Helm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signing_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A throwaway GnuPG home with an RSA signing key, as a test's own key."""
    if shutil.which("gpg") is None:
        pytest.skip("requires gpg (Debian package gnupg)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "meshcharts test <test@example.invalid>",
            "rsa2048",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    return home, fingerprint


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, signing_home: tuple[Path, str]) -> Layout:
    """A release of the working tree's charts into a scratch repository, signed with the test key."""
    root = tmp_path_factory.mktemp("repo")
    for part in ("generator/specs", "generator/templates", "charts"):
        shutil.copytree(REPO / part, root / part)
    (root / "packages").mkdir()
    layout = Layout(root)
    home, fingerprint = signing_home
    repo.release(layout, sign_key=fingerprint, gnupg_home=home)
    (root / repo.PUBLIC_KEY).write_text(repo.export_public_key(fingerprint, home))
    return layout


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory, signing_home: tuple[Path, str]) -> Path:
    """The public key in the legacy binary keyring format Helm's --keyring reads."""
    home, fingerprint = signing_home
    path = tmp_path_factory.mktemp("keyring") / "pubring.gpg"
    data = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--export", fingerprint], check=True, capture_output=True
    ).stdout
    path.write_bytes(data)
    return path


@pytest.fixture
def helm_home(helm: Helm, tmp_path: Path) -> Helm:
    """The same helm binary with repository config and cache of its own, so tests never touch the user's."""
    return helm.with_home(tmp_path / "helm-home")


def test_archives_load_lint_and_render_in_helm(helm: Helm, published: Layout) -> None:
    archives = sorted(published.packages.glob("*.tgz"))
    assert archives
    for archive in archives:
        shown = helm.run("show", "chart", str(archive)).stdout
        assert f"name: {archive.name.rsplit('-', 1)[0]}" in shown
        helm.run("lint", "--strict", str(archive))
        assert "kind:" in helm.run("template", "r", str(archive), "--namespace", "istio-system").stdout


def test_packaging_twice_gives_the_same_digest(published: Layout, tmp_path: Path) -> None:
    for archive in published.packages.glob("*.tgz"):
        chart = published.charts / archive.name.rsplit("-", 1)[0]
        again = repo.package_mod.package(chart, tmp_path).archive
        assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(archive.read_bytes()).digest()


def test_helm_verify_accepts_the_provenance(helm: Helm, published: Layout, keyring: Path) -> None:
    for archive in published.packages.glob("*.tgz"):
        out = helm.run("verify", str(archive), "--keyring", str(keyring))
        assert "Chart Hash Verified" in out.stdout + out.stderr


def test_helm_verify_rejects_a_tampered_archive(helm: Helm, published: Layout, keyring: Path, tmp_path: Path) -> None:
    archive = next(published.packages.glob("gateway-*.tgz"))
    shutil.copy(archive.with_name(archive.name + ".prov"), tmp_path / (archive.name + ".prov"))
    (tmp_path / archive.name).write_bytes(
        repo.package_mod.archive_bytes(published.charts / "base")
        if (published.charts / "base").exists()
        else b"x" * 100
    )
    proc = helm.run("verify", str(tmp_path / archive.name), "--keyring", str(keyring), check=False)
    assert proc.returncode != 0


def test_served_repository_works_with_repo_add_search_and_pull_verify(
    helm_home: Helm, published: Layout, keyring: Path, tmp_path: Path
) -> None:
    server = repo.serve(published.root, port=0, background=True)
    try:
        helm_home.run("repo", "add", "meshcharts", server.url)
        found = helm_home.run("search", "repo", "meshcharts/", "--versions").stdout
        for archive in published.packages.glob("*.tgz"):
            name, version = archive.name[: -len(".tgz")].rsplit("-", 1)
            assert any(line.split()[:2] == [f"meshcharts/{name}", version] for line in found.splitlines()), found
        pulled = tmp_path / "pulled"
        pulled.mkdir()
        helm_home.run("pull", "meshcharts/gateway", "--verify", "--keyring", str(keyring), "--destination", str(pulled))
        newest = max(published.packages.glob("gateway-*.tgz"))
        assert (pulled / newest.name).read_bytes() == newest.read_bytes()
        missing = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{server.url}/pyproject.toml"],
            capture_output=True,
            text=True,
            check=False,
        )
        if missing.returncode == 0:
            assert missing.stdout == "404"
    finally:
        server.stop()


# The release key was rotated after 1.12.1 (README: "Rotating the signing key"): older archives keep the
# old key's signature, newer ones carry the new key's, and meshcharts.asc holds both public keys.
OLD_KEY = "C2BF2DAB675122AA99FB0F45F65A6209FAE0A292"


def test_every_published_archive_verifies_with_the_published_keys_old_and_new(
    helm: Helm, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import yaml

    home = tmp_path_factory.mktemp("published-keys")
    keyring = repo.public_keyring(REPO / repo.PUBLIC_KEY, home / "pubring.gpg", home)
    suite = yaml.safe_load((REPO / "generator" / "specs" / "suite.yaml").read_text())
    current = suite["signKey"]["fingerprint"]
    signers: dict[str, str] = {}
    for archive in sorted((REPO / "packages").glob("*.tgz")):
        out = helm.run("verify", str(archive), "--keyring", str(keyring)).stdout
        (fingerprint,) = [line.split()[-1] for line in out.splitlines() if "Fingerprint" in line]
        signers[archive.name] = fingerprint
    assert set(signers.values()) == {OLD_KEY, current}, signers
    assert {name for name, key in signers.items() if key == OLD_KEY} == {
        f"{chart}-{version}.tgz" for chart in ("base", "gateway", "istiod") for version in ("1.12.0", "1.12.1")
    }
