"""A small adapter over the pinned cosign: sign a pushed chart by digest, find a tag's digest, verify it.

Key-based signing and verification never contact a transparency log or any other Sigstore service
(`--tlog-upload=false`, `--insecure-ignore-tlog=true`), so they work offline against a loopback
registry. Keyless signing (`keyless=True`) is for CI with an OIDC token (GitHub Actions): cosign gets a
short-lived certificate from Fulcio and records the signature in Rekor, which is what lets anyone verify it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from meshcharts import tools
from meshcharts.errors import RepoError

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SIGNATURE_TAG = re.compile(r":sha256-([0-9a-f]{64})\.sig$")


class Cosign:
    """The cosign binary of the toolchain with a fixed environment (COSIGN_PASSWORD, DOCKER_CONFIG, ...)."""

    def __init__(self, *, binary: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 300.0):
        self.binary = binary or tools.path("cosign")
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args]
        try:
            return subprocess.run(
                argv,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise RepoError(f"{' '.join(argv)} timed out after {self.timeout:.0f}s") from err
        except OSError as err:
            raise RepoError(f"cannot run {argv[0]}: {err}") from err

    def _checked(self, args: Sequence[str]) -> str:
        done = self.run(args)
        if done.returncode != 0:
            raise RepoError(f"cosign {' '.join(args)} exited {done.returncode}:\n{done.stderr.strip()}")
        return done.stdout

    @staticmethod
    def _registry_flags(plain_http: bool) -> list[str]:
        return ["--allow-http-registry", "--allow-insecure-registry"] if plain_http else []

    def sign(self, image: str, *, key: str | None, plain_http: bool = False) -> None:
        """Sign `image` (HOST/PATH@sha256:...): with `key` offline, or keyless through the ambient OIDC token."""
        if "@sha256:" not in image:
            raise RepoError(f"{image} names no digest: sign what was pushed, not a tag that can move")
        args = ["sign", "--yes", "--key", key, "--tlog-upload=false"] if key else ["sign", "--yes"]
        self._checked([*args, *self._registry_flags(plain_http), image])

    def digest(self, image: str, *, plain_http: bool = False) -> str:
        """The manifest digest `image` (HOST/PATH:TAG) resolves to now, as `sha256:...`."""
        out = self._checked(["triangulate", *self._registry_flags(plain_http), image]).strip()
        found = _SIGNATURE_TAG.search(out)
        if not found:
            raise RepoError(f"cosign triangulate {image} printed no signature tag: {out!r}")
        return f"sha256:{found.group(1)}"

    def verify(self, image: str, *, key: str, plain_http: bool = False) -> str | None:
        """None when `image` (pinned by digest) carries a valid signature by `key`, else cosign's reason."""
        done = self.run(
            ["verify", "--key", key, "--insecure-ignore-tlog=true", *self._registry_flags(plain_http), image]
        )
        if done.returncode == 0:
            return None
        lines = [line for line in done.stderr.splitlines() if line.strip() and "WARNING" not in line]
        return lines[-1].strip() if lines else f"cosign verify exited {done.returncode}"


def pushed_digest(helm_output: str) -> str:
    """The manifest digest `helm push` reports (`Digest: sha256:...`)."""
    for line in helm_output.splitlines():
        if line.startswith("Digest:"):
            found = _DIGEST.search(line)
            if found:
                return found.group(0)
    raise RepoError(f"helm push reported no digest; its output was:\n{helm_output.strip()}")
