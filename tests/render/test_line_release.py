"""The next key rotation and a patch of the 1.13 line, rehearsed in a scratch copy of the repository.

1.13.0 is published, signed with the key named in generator/lines/1.13/line.yaml. A maintainer without that
key rotates again, as the README says: a new key in a GnuPG home of their own, its public key appended to
meshcharts.asc, the line's signKey naming it, the line's version bumped (1.13.1), `meshcharts generate`,
`meshcharts release --line 1.13`. Helm must verify every archive from the one published file, each with the
key it names, `helm search repo --versions` must list both lines, and `meshcharts lint` must hold 1.13.0 and
1.13.1 to lines/1.13/. Nothing here is committed: the private key lives and dies in the test's temp directory.

The newest line (1.31) is held to what must work once it is published: where its line.yaml still says
`release: false`, a scratch copy releases it for the first time as the README says (the new key named as its
signKey, `release: true`, `meshcharts generate`, `meshcharts release --line 1.31`); once it is published, the
copy is the repository as committed. Either way the demo's release check must check it, the demo's search list
it (a release candidate: Helm lists it only with --devel) and the demo install it, and `meshcharts lint` hold
its archives to lines/<line>/ under that line's own values.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from meshcharts import demo, index, lint, package, repo, spec
from meshcharts.paths import Layout
from tests import REPO
from tests.render.conftest import Helm, edit, meshcharts, scratch_copy

Rotated = tuple[Path, str, str, subprocess.CompletedProcess[str]]  # the copy, old and new fingerprints, release
NewKey = tuple[Path, str]  # the GnuPG home holding the new key, and its fingerprint
NEW_UID = "meshcharts signing key rehearsal <maintainers@meshcharts.dev>"
NEWEST_LINE = Layout(REPO).every_line()[-1]


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
def new_key(gnupg_home: Callable[[str], Path]) -> NewKey:
    """The maintainer's new key pair, in a GnuPG home of the test's own."""
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
    return home, new


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory, new_key: NewKey, helm4: Helm) -> Rotated:
    home, new = new_key
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


# ---------------------------------------------------------------------------------------------------------------
# The newest line, published


Published = tuple[Path, str, subprocess.CompletedProcess[str] | None]  # the copy, the line's version, its release


def _line_version(root: Path, line: str) -> str:
    return str(yaml.safe_load((root / "lines" / line / "gateway" / "Chart.yaml").read_text())["version"])


@pytest.fixture(scope="module")
def newest_published(tmp_path_factory: pytest.TempPathFactory, new_key: NewKey, helm4: Helm) -> Published:
    """A scratch copy in which the newest line is published: released here for the first time, under the new key,
    as the README's rotation says, while its line.yaml says `release: false`; as committed once it is published."""
    root = scratch_copy(tmp_path_factory.mktemp("newest-line") / "meshcharts")
    line = Layout(root, NEWEST_LINE.line)
    if spec.line_released(line):
        return root, _line_version(root, str(line.line)), None
    home, new = new_key
    assert line.overlay is not None
    (root / repo.PUBLIC_KEY).write_text((root / repo.PUBLIC_KEY).read_text() + repo.export_public_key(new, home))
    sign_key = yaml.safe_load(line.overlay.read_text())["suite"].get("signKey")
    if sign_key:
        edit(line.overlay, f"fingerprint: {sign_key['fingerprint']}\n", f"fingerprint: {new}\n")
    else:
        base_key = spec.load(Layout(root)).suite.sign_key
        assert base_key is not None, "generator/specs/suite.yaml names no signKey"
        url = base_key["url"]
        edit(line.overlay, "\nsuite:\n", f"\nsuite:\n  signKey:\n    fingerprint: {new}\n    url: {url}\n")
    edit(line.overlay, "\nrelease: false\n", "\nrelease: true\n")
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    assert "generated charts/: 0 file(s) changed" in generated.stderr
    released = meshcharts(root, "release", "--line", str(line.line), "--sign-key", new, "--gnupg-home", str(home))
    return root, _line_version(root, str(line.line)), released


def test_the_newest_line_is_packaged_signed_by_the_key_it_names_and_indexed(
    helm: Helm, newest_published: Published, tmp_path: Path
) -> None:
    root, version, released = newest_published
    if released is not None:
        assert released.returncode == 0, released.stderr
        for chart in ("base", "istiod", "gateway"):
            assert f"packaged packages/{chart}-{version}.tgz" in released.stderr
            assert f"signed   packages/{chart}-{version}.tgz.prov" in released.stderr
    keyring = repo.public_keyring(root / repo.PUBLIC_KEY, tmp_path / "pubring.gpg")
    entries = index.load(root / "index.yaml")["entries"]
    for chart in ("base", "istiod", "gateway"):
        assert version in {str(e["version"]) for e in entries[chart]}, chart
        archive = root / "packages" / f"{chart}-{version}.tgz"
        out = helm.run("verify", str(archive), "--keyring", str(keyring))
        fingerprint = re.search(r"Fingerprint: ([0-9A-F]{40})", out.stdout + out.stderr)
        assert fingerprint is not None, out.stdout
        assert fingerprint.group(1) == _named_signer(package.read_archive(archive).metadata), archive.name


def test_the_demos_release_check_checks_the_newest_line(newest_published: Published, tmp_path: Path) -> None:
    root, version, _ = newest_published
    said: list[str] = []
    helm = Helm.pinned(4, tmp_path).adapter
    demo.check_release(Layout(root), tmp_path / "work", helm, said.append)
    label = Layout(root, NEWEST_LINE.line).charts_label
    packs = f"release: the 3 charts in {label} pack to their published archives byte for byte; nothing to package, "
    assert f"{packs}sign or index" in said, said
    assert not any("not released yet" in s for s in said), said
    for chart in ("base", "istiod", "gateway"):
        assert any(s.startswith(f"release: helm verify {chart}-{version}.tgz: Signed by") for s in said), said


def test_the_demo_lists_and_picks_the_newest_line_from_the_served_repository(
    helm: Helm, newest_published: Published, tmp_path: Path
) -> None:
    root, version, _ = newest_published
    home = helm.with_home(tmp_path / "helm-home")
    server = repo.serve(root, port=0, background=True)
    try:
        home.run("repo", "add", demo.REPO_NAME, server.url)
        found = home.run(*demo.SEARCH).stdout
        pick = demo.newest_published(demo.served_index(server.url))
    finally:
        server.stop()
    listed = {tuple(line.split()[:2]) for line in found.splitlines()[1:] if line.strip()}
    for chart in ("base", "istiod", "gateway"):
        assert (f"meshcharts/{chart}", version) in listed, found
    assert (pick.version, pick.line) == (version, NEWEST_LINE.line), pick


def test_lint_holds_the_newest_lines_archives_to_its_tree_under_its_own_values(newest_published: Published) -> None:
    root, version, _ = newest_published
    line = Layout(root, NEWEST_LINE.line)
    linted = meshcharts(root, "lint")
    assert linted.returncode == 0, linted.stderr
    for chart in ("base", "istiod", "gateway"):
        compared = f"compared {chart} {version} -> {line.charts_label} ({', '.join(lint.scenarios(line, chart))})"
        assert compared in linted.stderr, linted.stderr
    assert f"{version} -> {line.charts_label} [" not in linted.stderr  # no scenario left uncompared
    # Across skipped minors (1.13 -> 1.31) lint draws no upgrade check between the trees, and says why.
    previous = Layout(root).every_line()[-2]
    before = spec.load(previous).suite.line
    note = f"no upgrade check {previous.charts_label} -> {line.charts_label}: {line.line} skips minors after {before}"
    (major, minor), (old_major, old_minor) = (tuple(int(x) for x in name.split(".")) for name in (line.line, before))
    assert (note in linted.stderr) == ((major, minor) != (old_major, old_minor + 1)), linted.stderr


def test_lint_names_the_newest_lines_own_spec_for_a_values_key_its_published_version_had(
    newest_published: Published, tmp_path: Path
) -> None:
    """A values key of the published version taken out of the line's spec (one no template reads, so the charts still
    generate): lint says where to keep it declared, the line's own spec file."""
    source, version, _ = newest_published
    root = tmp_path / "meshcharts"
    shutil.copytree(source, root)
    line = Layout(root, NEWEST_LINE.line)
    if not line.own_specs:
        pytest.skip(f"{line.charts_label} is declared as changes to the base line's specs, not in specs of its own")
    declared_in = spec.load(line).chart("gateway").source  # generator/lines/<line>/specs/gateway.yaml
    spec_file = root / declared_in
    text = spec_file.read_text()
    start = text.index("\n  defaultRevision:\n") + 1
    end = text.index("\n  pilot:\n", start) + 1
    spec_file.write_text(text[:start] + text[end:])
    generated = meshcharts(root, "generate")
    assert generated.returncode == 0, generated.stderr
    linted = meshcharts(root, "lint")
    assert linted.returncode == 1, linted.stderr
    assert (
        f"gateway {version} -> {line.charts_label}: values key defaultRevision removed or renamed without a declared "
        "deprecation"
    ) in linted.stderr
    assert f"keep it declared in {declared_in} with `deprecated:`" in linted.stderr
