"""Publishing the 1.13 line beside 1.12.x with a rotated signing key, in a scratch copy of the repository.

The key that signed 1.12.x is not on this machine (only its public part, in meshcharts.asc), so the copy
rotates as a real project would: a new key in a GnuPG home of the test's own, both public keys in
meshcharts.asc, suite.yaml's signKey naming the new one; then `meshcharts release --line 1.13`. Helm must
verify the old archives with the old key and the new ones with the new key from the one published file,
`helm search repo --versions` must list both lines, and `meshcharts lint` must hold 1.13.0 to lines/1.13/.
Nothing here is committed: the private key lives and dies in the test's temp directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from meshcharts import index, repo
from tests.render.conftest import Helm
from tests.render.test_lint_repo import meshcharts

REPO = Path(__file__).resolve().parents[2]
Rotated = tuple[Path, str, str, subprocess.CompletedProcess[str]]  # the copy, old and new fingerprints, release
COPIED = ("generator", "charts", "lines", "packages", "ci", "index.yaml", "meshcharts.asc", "artifacthub-repo.yml")


def _gpg(home: Path, *args: str) -> str:
    done = subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory, helm4: Helm) -> Rotated:
    if shutil.which("gpg") is None:
        pytest.skip("requires gpg (Debian package gnupg)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "meshcharts signing key 2 <maintainers@meshcharts.dev>", "rsa3072", "sign", "never")  # fmt: skip
    new = next(
        line.split(":")[9] for line in _gpg(home, "--with-colons", "--list-secret-keys").splitlines()
        if line.startswith("fpr")
    )  # fmt: skip
    root = tmp_path_factory.mktemp("rotation") / "meshcharts"
    root.mkdir()
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    suite_path = root / "generator" / "specs" / "suite.yaml"
    old = yaml.safe_load(suite_path.read_text())["signKey"]["fingerprint"]
    assert old != new
    # Rotation: both public keys published, the new one named as the signing key.
    (root / repo.PUBLIC_KEY).write_text((REPO / repo.PUBLIC_KEY).read_text() + repo.export_public_key(new, home))
    suite_path.write_text(suite_path.read_text().replace(old, new))
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    released = meshcharts(root, "release", "--line", "1.13", "--sign-key", new, "--gnupg-home", str(home))
    return root, old, new, released


def test_release_of_the_1_13_line_packages_signs_and_indexes_its_three_charts(
    rotated: Rotated,
) -> None:
    root, _, _, released = rotated
    assert released.returncode == 0, released.stderr
    for chart in ("base", "istiod", "gateway"):
        assert f"packaged packages/{chart}-1.13.0.tgz" in released.stderr
        assert f"signed   packages/{chart}-1.13.0.tgz.prov" in released.stderr
        versions = [str(e["version"]) for e in index.load(root / "index.yaml")["entries"][chart]]
        assert "1.13.0" in versions and "1.12.0" in versions and "1.12.1" in versions


def test_helm_verify_accepts_old_and_new_archives_with_the_published_keys(
    helm: Helm, rotated: Rotated, tmp_path: Path
) -> None:
    root, _, new, _ = rotated
    keyring = repo.public_keyring(root / repo.PUBLIC_KEY, tmp_path / "pubring.gpg")
    signers: dict[str, str] = {}
    for archive in sorted((root / "packages").glob("*.tgz")):
        out = helm.run("verify", str(archive), "--keyring", str(keyring))
        text = out.stdout + out.stderr
        assert "Chart Hash Verified" in text, archive.name
        signer = re.search(r"Signed by: (.*)", text)
        assert signer is not None, text
        signers[archive.name] = signer.group(1)
    old_signed = {name for name in signers if "-1.12." in name}
    new_signed = {name for name in signers if "-1.13." in name}
    assert len(new_signed) == 3 and len(old_signed) >= 6
    assert {signers[name] for name in new_signed} == {"meshcharts signing key 2 <maintainers@meshcharts.dev>"}
    assert not {signers[name] for name in old_signed} & {signers[name] for name in new_signed}
    # The old archives verify only with the old key: the rotation had to keep it published.
    only_new = tmp_path / "new-only.gpg"
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    _gpg(gnupg, "--import", str(keyring))
    only_new.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--homedir", str(gnupg), "--export", new], check=True, capture_output=True
        ).stdout
    )
    for name in ("gateway-1.13.0.tgz", "gateway-1.12.1.tgz"):
        out = helm.run("verify", str(root / "packages" / name), "--keyring", str(only_new), check=False)
        assert (out.returncode == 0) == ("1.13" in name), name


def test_search_lists_both_lines_and_lint_holds_1_13_0_to_its_line(
    helm: Helm, rotated: Rotated, tmp_path: Path
) -> None:
    root, _, _, _ = rotated
    home = helm.with_home(tmp_path / "helm-home")
    server = repo.serve(root, port=0, background=True)
    try:
        home.run("repo", "add", "meshcharts", server.url)
        found = home.run("search", "repo", "meshcharts/gateway", "--versions").stdout
    finally:
        server.stop()
    assert "1.13.0" in found and "1.12.1" in found
    linted = meshcharts(root, "lint")
    assert linted.returncode == 0, linted.stderr
    assert "compared gateway 1.13.0 -> lines/1.13/ (default values" in linted.stderr
    assert "compared gateway 1.12.1 -> working tree" in linted.stderr
