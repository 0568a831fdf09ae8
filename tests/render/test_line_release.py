"""The next key rotation and a patch of the 1.13 line, rehearsed in a scratch copy of the repository.

1.13.0 is published, signed with the key named in generator/lines/1.13/line.yaml. A maintainer without that
key rotates again, as the README says: a new key in a GnuPG home of their own, its public key appended to
meshcharts.asc, the line's signKey naming it, the line's version bumped (1.13.1), `meshcharts generate`,
`meshcharts release --line 1.13`. Helm must verify every archive from the one published file, each with the
key it names, `helm search repo --versions` must list both lines, and `meshcharts lint` must hold 1.13.0 and
1.13.1 to lines/1.13/. Nothing here is committed: the private key lives and dies in the test's temp directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from meshcharts import index, package, repo
from tests.render.conftest import Helm, edit, meshcharts, scratch_copy

Rotated = tuple[Path, str, str, subprocess.CompletedProcess[str]]  # the copy, old and new fingerprints, release
NEW_UID = "meshcharts signing key rehearsal <maintainers@meshcharts.dev>"


def _gpg(home: Path, *args: str) -> str:
    done = subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], check=True, capture_output=True, text=True)
    return done.stdout


def _named_signer(metadata: dict[str, object]) -> str:
    annotations = metadata["annotations"]
    assert isinstance(annotations, dict)
    fingerprint = yaml.safe_load(annotations["artifacthub.io/signKey"])["fingerprint"]
    assert isinstance(fingerprint, str)
    return fingerprint


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory, gnupg_home: Callable[[str], Path], helm4: Helm) -> Rotated:
    if shutil.which("gpg") is None:
        pytest.skip("requires gpg (Debian package gnupg)")
    home = gnupg_home("gnupg")
    _gpg(
        home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", NEW_UID, "rsa3072", "sign", "never"
    )
    new = next(
        line.split(":")[9] for line in _gpg(home, "--with-colons", "--list-secret-keys").splitlines()
        if line.startswith("fpr")
    )  # fmt: skip
    root = scratch_copy(tmp_path_factory.mktemp("rotation") / "meshcharts")
    line_path = root / "generator" / "lines" / "1.13" / "line.yaml"
    overlay = yaml.safe_load(line_path.read_text())
    old, version = overlay["suite"]["signKey"]["fingerprint"], overlay["suite"]["version"]
    assert old != new and version == "1.13.0"
    # Rotation: every public key stays published, the new one is named as the line's signing key.
    (root / repo.PUBLIC_KEY).write_text((root / repo.PUBLIC_KEY).read_text() + repo.export_public_key(new, home))
    edit(line_path, f"fingerprint: {old}\n", f"fingerprint: {new}\n")
    edit(line_path, "  version: 1.13.0\n", "  version: 1.13.1\n")
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    assert "generated charts/: 0 file(s) changed" in generated.stderr
    released = meshcharts(root, "release", "--line", "1.13", "--sign-key", new, "--gnupg-home", str(home))
    return root, old, new, released


def test_release_of_the_1_13_line_packages_signs_and_indexes_its_three_charts(rotated: Rotated) -> None:
    root, _, _, released = rotated
    assert released.returncode == 0, released.stderr
    for chart in ("base", "istiod", "gateway"):
        assert f"packaged packages/{chart}-1.13.1.tgz" in released.stderr
        assert f"signed   packages/{chart}-1.13.1.tgz.prov" in released.stderr
        versions = [str(e["version"]) for e in index.load(root / "index.yaml")["entries"][chart]]
        assert {"1.13.1", "1.13.0", "1.12.0", "1.12.1", "1.12.2"} <= set(versions)


def test_helm_verify_accepts_old_and_new_archives_with_the_published_keys(
    helm: Helm, rotated: Rotated, tmp_path: Path, gnupg_home: Callable[[str], Path]
) -> None:
    root, old, new, _ = rotated
    keyring = repo.public_keyring(root / repo.PUBLIC_KEY, tmp_path / "pubring.gpg")
    signers: dict[str, str] = {}
    for archive in sorted((root / "packages").glob("*.tgz")):
        out = helm.run("verify", str(archive), "--keyring", str(keyring))
        text = out.stdout + out.stderr
        assert "Chart Hash Verified" in text, archive.name
        fingerprint = re.search(r"Fingerprint: ([0-9A-F]{40})", text)
        assert fingerprint is not None, text
        signers[archive.name] = fingerprint.group(1)
        assert signers[archive.name] == _named_signer(package.read_archive(archive).metadata), archive.name
    assert {signers[f"{chart}-1.13.1.tgz"] for chart in ("base", "istiod", "gateway")} == {new}
    assert {signers[f"{chart}-1.13.0.tgz"] for chart in ("base", "istiod", "gateway")} == {old}
    assert new not in {key for name, key in signers.items() if "-1.13.1." not in name}
    # The old archives verify only with the old keys: the rotation had to keep them published.
    only_new = tmp_path / "new-only.gpg"
    gnupg = gnupg_home("new-only")
    _gpg(gnupg, "--import", str(keyring))
    only_new.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--homedir", str(gnupg), "--export", new], check=True, capture_output=True
        ).stdout
    )
    for name in ("gateway-1.13.1.tgz", "gateway-1.13.0.tgz", "gateway-1.12.1.tgz"):
        out = helm.run("verify", str(root / "packages" / name), "--keyring", str(only_new), check=False)
        assert (out.returncode == 0) == ("1.13.1" in name), name


def test_search_lists_both_lines_and_lint_holds_1_13_x_to_its_line(
    helm: Helm, rotated: Rotated, tmp_path: Path, gnupg_home: Callable[[str], Path]
) -> None:
    root, _, _, _ = rotated
    home = helm.with_home(tmp_path / "helm-home")
    server = repo.serve(root, port=0, background=True)
    try:
        home.run("repo", "add", "meshcharts", server.url)
        found = home.run("search", "repo", "meshcharts/gateway", "--versions").stdout
    finally:
        server.stop()
    listed = {line.split()[1] for line in found.splitlines()[1:] if line.strip()}
    assert {"1.13.1", "1.13.0", "1.12.2", "1.12.1", "1.12.0"} <= listed, found
    linted = meshcharts(root, "lint")
    assert linted.returncode == 0, linted.stderr
    assert "compared gateway 1.13.1 -> lines/1.13/ (default values" in linted.stderr
    assert "compared gateway 1.13.0 -> lines/1.13/ (default values" in linted.stderr
    assert "compared gateway 1.12.1 -> working tree" in linted.stderr
