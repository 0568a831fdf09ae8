"""The published repository as Helm 4 and 3 see it: archives load, provenance verifies, the served repo works."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcharts import repo
from meshcharts.paths import Layout
from tests import REPO
from tests.render.conftest import Helm


@pytest.fixture(scope="module")
def signing_home(gnupg_home: Callable[[str], Path]) -> tuple[Path, str]:
    """A throwaway GnuPG home with an RSA signing key, as a test's own key."""
    if shutil.which("gpg") is None:
        pytest.skip("requires gpg (Debian package gnupg)")
    home = gnupg_home("gnupg")
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


# Which key signed which version is data the repository already publishes: each version's Chart.yaml carries
# `artifacthub.io/signKey` (copied into its index.yaml entry), written at release from the signKey of the
# suite or line that made it (generator/specs/suite.yaml, generator/lines/<line>/line.yaml). The keys rotated
# twice (README: "Rotating the signing key"); every archive must be signed by exactly the key it names, and
# meshcharts.asc alone must verify them all.
def _named_signer(entry: dict[str, object], where: str) -> str:
    import yaml

    annotations = entry.get("annotations")
    assert isinstance(annotations, dict) and "artifacthub.io/signKey" in annotations, f"{where} names no signKey"
    fingerprint = yaml.safe_load(annotations["artifacthub.io/signKey"])["fingerprint"]
    assert isinstance(fingerprint, str)
    return fingerprint


def test_every_published_archive_is_signed_by_the_key_it_names_and_verifies_with_the_published_keys(
    helm: Helm, gnupg_home: Callable[[str], Path]
) -> None:
    from meshcharts import index, package, spec

    home = gnupg_home("published-keys")
    keyring = repo.public_keyring(REPO / repo.PUBLIC_KEY, home / "pubring.gpg", home)
    named: dict[str, str] = {}
    signed: dict[str, str] = {}
    for chart, entries in index.load(REPO / "index.yaml")["entries"].items():
        for entry in entries:
            archive = REPO / entry["urls"][0]
            expected = _named_signer(entry, f"index.yaml {chart} {entry['version']}")
            inside = _named_signer(package.read_archive(archive).metadata, f"{archive.name}:Chart.yaml")
            assert inside == expected, f"{archive.name}: index.yaml and its Chart.yaml name different signers"
            out = helm.run("verify", str(archive), "--keyring", str(keyring)).stdout
            assert "Chart Hash Verified" in out, archive.name
            (fingerprint,) = [line.split()[-1] for line in out.splitlines() if "Fingerprint" in line]
            named[archive.name], signed[archive.name] = expected, fingerprint
    assert signed == named
    # Each line's working tree names the key that signed its newest published version (the key its next
    # release is signed with, or the one its published tree already names).
    layout = Layout(REPO)
    for line in layout.every_line():
        if not spec.line_released(line):
            continue  # nothing of it is published yet (release: false); its first release names its key
        model = spec.load(line)
        key = model.suite.sign_key
        assert key is not None, f"{line.charts_label} names no signKey"
        published_here = [n for n in named if n.endswith(f"-{model.suite.version}.tgz")]
        assert published_here, f"{model.suite.version} ({line.charts_label}) is not published"
        assert {named[n] for n in published_here} == {key["fingerprint"]}, line.charts_label
    # Rotation keeps the old public keys: more than one key has signed, and all verify from the one file.
    assert len(set(signed.values())) >= 2, signed


def _listed(search_output: str) -> set[tuple[str, str]]:
    """(chart, version) of each row of `helm search repo` output, the header dropped."""
    rows = [line.split() for line in search_output.splitlines()[1:] if line.strip()]
    return {(row[0].removeprefix("meshcharts/"), row[1]) for row in rows}


def test_the_demos_search_lists_every_version_index_yaml_publishes_pre_releases_included(
    helm: Helm, chart_repo: str, tmp_path: Path
) -> None:
    """The committed repository served, added and searched as the demo (./run.sh) and the README do: every version
    in index.yaml is listed, of every line, a release candidate too. Helm hides pre-releases from
    `helm search repo --versions` unless `--devel` is given, which is why the demo's search passes it."""
    import semver

    from meshcharts import demo, index, spec

    home = helm.with_home(tmp_path / "helm-home")
    home.run("repo", "add", "meshcharts", chart_repo)
    published = {
        (chart, str(entry["version"]))
        for chart, entries in index.load(REPO / "index.yaml")["entries"].items()
        for entry in entries
    }
    assert _listed(home.run(*demo.SEARCH).stdout) == published
    # Without --devel, Helm lists only what is not a pre-release.
    plain = _listed(home.run(*(arg for arg in demo.SEARCH if arg != "--devel")).stdout)
    assert plain == {(c, v) for c, v in published if not semver.Version.parse(v).prerelease}
    # Every released line's tree is at a listed version (1.12's charts/, lines/1.13/, lines/1.31/ once released).
    for line in Layout(REPO).every_line():
        if spec.line_released(line):
            for chart_dir in repo.chart_dirs(line):
                version = str(repo.package_mod.load_metadata(chart_dir)["version"])
                assert (chart_dir.name, version) in published, f"{line.charts_label}{chart_dir.name} {version}"
