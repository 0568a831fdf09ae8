"""cosign signatures on the charts in an OCI registry: `meshcharts push --cosign-key` signs each pushed
manifest by digest, `meshcharts verify` checks them, and a tag re-pushed with other bytes fails, naming
the digest it now points at.

Everything talks to a real registry on 127.0.0.1 (Debian's docker-registry, fixture `oci_registry`). The
key pair is made by the test in a temporary directory, never committed. cosign runs with HTTP(S)_PROXY
pointing at a closed loopback port, so any attempt to reach a transparency log or other Sigstore service
would fail the test instead of going unnoticed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from meshcharts import index as index_mod
from meshcharts import package as package_mod
from meshcharts import tools
from meshcharts.errors import ToolError
from meshcharts.helm import Helm
from meshcharts.testing.registry import OciRegistry
from tests import REPO

CLOSED_PORT_PROXY = "http://127.0.0.1:9"


def published() -> list[tuple[str, str]]:
    data = index_mod.load(REPO / "index.yaml")
    return sorted((name, str(e["version"])) for name, versions in data["entries"].items() for e in versions)


@pytest.fixture(scope="module")
def cosign_binary() -> Path:
    try:
        return tools.path("cosign")
    except ToolError as err:
        pytest.skip(f"requires cosign: {err}")


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        return Helm(major=4).with_home(tmp_path_factory.mktemp("helm-home"))
    except ToolError as err:
        pytest.skip(f"requires Helm 4: {err}")


@pytest.fixture(scope="module")
def env(cosign_binary: Path, helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What `meshcharts push|verify` run with: the test's Helm home, cosign's password, no way off loopback."""
    home = tmp_path_factory.mktemp("cosign-home")
    return {
        **helm.env,
        "PYTHONPATH": os.pathsep.join([str(REPO / "generator"), os.environ.get("PYTHONPATH", "")]),
        "COSIGN_PASSWORD": secrets.token_hex(16),
        "DOCKER_CONFIG": str(home / "docker"),
        "TUF_ROOT": str(home / "sigstore"),
        "HTTP_PROXY": CLOSED_PORT_PROXY,
        "HTTPS_PROXY": CLOSED_PORT_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def key_pair(cosign_binary: Path, env: dict[str, str], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(cosign_binary), "generate-key-pair", "--output-key-prefix", str(directory / "cosign")],
        env=env,
        cwd=directory,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return directory / "cosign.key", directory / "cosign.pub"


@pytest.fixture(scope="module")
def keys(cosign_binary: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return key_pair(cosign_binary, env, tmp_path_factory.mktemp("keys"))


def meshcharts(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcharts.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def push_signed(env: dict[str, str], ref: str, key: Path) -> dict[tuple[str, str], str]:
    """`meshcharts push REF --cosign-key KEY` as a user runs it; (chart, version) -> the digest it reported."""
    done = meshcharts(env, "push", ref, "--plain-http", "--cosign-key", str(key))
    assert done.returncode == 0, f"meshcharts push exited {done.returncode}:\n{done.stderr}"
    digests = {}
    for name, version in published():
        line = next((ln for ln in done.stderr.splitlines() if f"pushed {name} {version} -> {ref}/{name}:" in ln), "")
        assert line.endswith(", signed with cosign key)"), done.stderr
        digests[(name, version)] = line.rsplit("(", 1)[1].split(",", 1)[0]
    return digests


@pytest.fixture(scope="module")
def signed(
    oci_registry: OciRegistry, env: dict[str, str], keys: tuple[Path, Path]
) -> tuple[str, dict[tuple[str, str], str]]:
    ref = oci_registry.ref(f"signed-{uuid.uuid4().hex[:6]}")
    return ref, push_signed(env, ref, keys[0])


def test_verify_accepts_every_pushed_chart_by_the_digest_push_signed(
    signed: tuple[str, dict[tuple[str, str], str]], env: dict[str, str], keys: tuple[Path, Path]
) -> None:
    ref, digests = signed
    done = meshcharts(env, "verify", ref, "--key", str(keys[1]), "--plain-http")
    assert done.returncode == 0, done.stderr
    for (name, version), digest in digests.items():
        assert f"verified {ref}/{name}:{version} {digest}" in done.stderr.splitlines(), done.stderr
    assert done.stderr.count("verified ") == len(published())


def test_the_signature_is_stored_beside_each_chart_in_the_registry(
    signed: tuple[str, dict[tuple[str, str], str]], oci_registry: OciRegistry
) -> None:
    ref, digests = signed
    path = ref.split("/", 3)[3]
    for (name, _), digest in digests.items():
        assert f"{digest.replace(':', '-')}.sig" in oci_registry.tags(f"{path}/{name}")


def test_verify_with_a_key_that_did_not_sign_fails_for_every_chart(
    signed: tuple[str, dict[tuple[str, str], str]],
    cosign_binary: Path,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The control for the test above: the same registry, another key."""
    ref, digests = signed
    _, stranger = key_pair(cosign_binary, env, tmp_path / "stranger")
    done = meshcharts(env, "verify", ref, "--key", str(stranger), "--plain-http")
    assert done.returncode == 1, done.stderr
    assert f"{len(digests)} of {len(digests)} chart(s) failed cosign verification" in done.stderr
    for digest in digests.values():
        assert f"resolves to {digest}, which carries no valid signature by {stranger}" in done.stderr


def _other_archive(name: str, version: str, workdir: Path) -> Path:
    """An archive of chart `name` at `version` whose bytes differ from the published one."""
    chart = workdir / name
    shutil.copytree(REPO / "charts" / name, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = version
    meta["description"] = "not what was released"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    target = workdir / f"{name}-{version}.tgz"
    target.write_bytes(package_mod.archive_bytes(chart))
    return target


def test_a_tag_re_pushed_with_other_bytes_fails_verification_naming_its_new_digest(
    oci_registry: OciRegistry, env: dict[str, str], keys: tuple[Path, Path], helm: Helm, tmp_path: Path
) -> None:
    ref = oci_registry.ref(f"tampered-{uuid.uuid4().hex[:6]}")
    digests = push_signed(env, ref, keys[0])
    name, version = "gateway", max(v for n, v in published() if n == "gateway")
    out, err = helm.run_both(["push", str(_other_archive(name, version, tmp_path)), ref, "--plain-http"])
    new = next(w for w in (out + err).split() if w.startswith("sha256:"))
    assert new != digests[(name, version)]

    one = meshcharts(env, "verify", f"{ref}/{name}:{version}", "--key", str(keys[1]), "--plain-http")
    assert one.returncode == 1, one.stderr
    assert f"{ref}/{name}:{version} resolves to {new}, which carries no valid signature" in one.stderr

    every = meshcharts(env, "verify", ref, "--key", str(keys[1]), "--plain-http")
    assert every.returncode == 1, every.stderr
    assert f"1 of {len(digests)} chart(s) failed cosign verification" in every.stderr, every.stderr
    assert f"resolves to {new}" in every.stderr
