"""gpg as the publisher runs it leaves no gpg-agent behind, and never stops an agent it did not start."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshcharts import gnupg, repo
from tests import REPO

ARCHIVE = REPO / "packages" / "base-1.12.2.tgz"


def _agents_of(home: Path) -> list[str]:
    """Command lines of live gpg-agent processes serving `home`, read from /proc."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            words = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if words and words[0].endswith("gpg-agent") and str(home) in words and state not in ("Z", "X"):
            found.append(" ".join(words))
    return found


@pytest.fixture
def signing_key(gnupg_home: Callable[[str], Path]) -> tuple[Path, str]:
    """A fresh home with a signing key; the agent key generation started is stopped before the test acts."""
    if shutil.which("gpg") is None or shutil.which("gpg-connect-agent") is None:
        pytest.skip("requires gpg and gpg-connect-agent (Debian package gnupg)")
    home = gnupg_home("signer")
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    subprocess.run(
        [*gpg, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
         "agent test <agent@example.invalid>", "rsa2048", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run([*gpg, "--with-colons", "--list-secret-keys"], check=True, capture_output=True, text=True)
    fingerprint = next(line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr"))
    assert _agents_of(home), "key generation should have started an agent (else this test proves nothing)"
    gnupg.stop_agent(home)
    assert _agents_of(home) == []
    return home, fingerprint


def test_signing_a_chart_leaves_no_gpg_agent_running(signing_key: tuple[Path, str], tmp_path: Path) -> None:
    home, fingerprint = signing_key
    archive = tmp_path / ARCHIVE.name
    shutil.copyfile(ARCHIVE, archive)
    prov = repo.sign(archive, fingerprint, home)
    assert "-----BEGIN PGP SIGNATURE-----" in prov.read_text()
    assert _agents_of(home) == []
    assert gnupg.agent_pid(home) is None


def test_an_agent_that_already_served_the_home_is_left_running(signing_key: tuple[Path, str], tmp_path: Path) -> None:
    home, fingerprint = signing_key
    subprocess.run(["gpg-connect-agent", "--homedir", str(home), "/bye"], check=True, capture_output=True)
    before = gnupg.agent_pid(home)
    assert before is not None
    archive = tmp_path / ARCHIVE.name
    shutil.copyfile(ARCHIVE, archive)
    repo.sign(archive, fingerprint, home)
    assert gnupg.agent_pid(home) == before
    gnupg.stop_agent(home)
    assert _agents_of(home) == []
