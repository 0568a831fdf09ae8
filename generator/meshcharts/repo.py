"""The Helm repository: package every chart, sign, index, serve over HTTP, push to OCI.

A published archive never changes. Every step checks all charts before it writes anything, so a
refused release leaves packages/ and index.yaml exactly as they were.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import http
import http.server
import os
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import gnupg, write
from meshcharts import index as index_mod
from meshcharts import package as package_mod
from meshcharts._files import atomic_write
from meshcharts.cosign import Cosign, pushed_digest
from meshcharts.errors import RepoError, SignatureError
from meshcharts.helm import Helm
from meshcharts.paths import Layout

PUBLIC_KEY = "meshcharts.asc"
SERVED_TOP_LEVEL = ("index.yaml", "artifacthub-repo.yml", PUBLIC_KEY)


def chart_dirs(layout: Layout) -> list[Path]:
    return sorted(p.parent for p in layout.charts.glob("*/Chart.yaml"))


def package_all(layout: Layout) -> list[package_mod.PackageResult]:
    """Archives for versions not yet published; refuse, before writing any, if one would change."""
    planned = []
    refusals = []
    for chart_dir in chart_dirs(layout):
        data = package_mod.archive_bytes(chart_dir)
        target = layout.packages / package_mod.archive_name(package_mod.load_metadata(chart_dir))
        if target.exists():
            old = target.read_bytes()
            if old != data:
                refusals.append(
                    f"{target.name} is published with sha256 {hashlib.sha256(old).hexdigest()}, but "
                    f"{layout.charts_label}{chart_dir.name} now packs to sha256 {hashlib.sha256(data).hexdigest()}"
                )
            continue
        planned.append((target, data))
    if refusals:
        raise RepoError(
            "a published archive never changes; nothing was written:\n"
            + "\n".join(f"  {r}" for r in refusals)
            + "\nBump `version` in "
            + (f"generator/lines/{layout.line}/line.yaml (suite)" if layout.line else "generator/specs/suite.yaml")
            + " and run `meshcharts generate` first."
        )
    results = []
    for target, data in planned:
        atomic_write(target, data)
        results.append(package_mod.PackageResult(target, created=True))
    return results


def provenance_message(archive: Path) -> str:
    """The text Helm signs: the chart metadata, `...`, then the archive's sha256 under `files`."""
    meta = package_mod.read_archive(archive)
    body = yaml.safe_dump(meta.metadata, sort_keys=True, default_flow_style=False)
    files = yaml.safe_dump({"files": {archive.name: f"sha256:{meta.digest}"}}, default_flow_style=False)
    return f"{body}\n...\n{files}"


def _gpg(args: list[str], gnupg_home: Path | None, stdin: str | None = None) -> str:
    """gpg, stopping any gpg-agent the call starts (see meshcharts.gnupg)."""
    return gnupg.run(args, gnupg_home, stdin)


def sign(archive: Path, key: str, gnupg_home: Path | None = None) -> Path:
    """Write `<archive>.prov`, an OpenPGP clear-signed provenance file Helm verifies."""
    prov = archive.with_name(archive.name + ".prov")
    signed = _gpg(
        ["--local-user", key, "--digest-algo", "SHA512", "--clearsign"], gnupg_home, provenance_message(archive)
    )
    if prov.exists():
        if prov.read_text() == signed:
            return prov
        raise RepoError(f"{prov.name} already exists; a published provenance file is never replaced")
    atomic_write(prov, signed.encode())
    return prov


def export_public_key(key: str, gnupg_home: Path | None = None) -> str:
    return _gpg(["--armor", "--export", key], gnupg_home)


def public_keyring(armored: Path, dest: Path, gnupg_home: Path | None = None) -> Path:
    """The armored public key (meshcharts.asc) as the binary keyring `helm --keyring` reads (gpg --dearmor)."""
    if not armored.is_file():
        raise RepoError(f"{armored} does not exist: the repository publishes its public key there")
    _gpg(["--dearmor", "--output", str(dest), str(armored)], gnupg_home)
    return dest


@dataclass
class ReleaseReport:
    packaged: list[Path] = field(default_factory=list)
    signed: list[Path] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)


def release(
    layout: Layout,
    *,
    sign_key: str | None,
    gnupg_home: Path | None = None,
    clock: Callable[[], str] = index_mod.now_rfc3339,
) -> ReleaseReport:
    """generate --check, package, sign, index: one step, refusing on drift or on a changed archive."""
    from meshcharts import spec

    if not spec.line_released(layout):
        raise RepoError(
            f"line {layout.line} is not released yet (`release: false` in {layout.overlay}): its charts are "
            "generated and tested, not published; nothing was written"
        )
    drift = write.check(layout)
    if drift:
        raise RepoError("charts/ differs from generator/specs; run `meshcharts generate` and commit first")
    unpublished = [
        d.name for d in chart_dirs(layout)
        if not (layout.packages / package_mod.archive_name(package_mod.load_metadata(d))).exists()
    ]  # fmt: skip
    if unpublished and not sign_key:
        raise RepoError(
            f"no signing key for the new versions of {', '.join(unpublished)}; nothing was written. Pass "
            "--sign-key or set MESHCHARTS_SIGN_KEY (the fingerprint in generator/specs/suite.yaml signKey)"
        )
    report = ReleaseReport()
    report.packaged = [r.archive for r in package_all(layout)]
    if sign_key:
        for archive in sorted(layout.packages.glob("*.tgz")):
            if not archive.with_name(archive.name + ".prov").exists():
                report.signed.append(sign(archive, sign_key, gnupg_home))
    merged = index_mod.merge(layout.root, sorted(layout.packages.glob("*.tgz")), index_path=layout.index, clock=clock)
    report.indexed = merged.added
    return report


class _ServedFiles:
    """The request paths `serve` answers: the top-level files and each archive index.yaml names, with its .prov.

    Re-read when index.yaml changes on disk, so a release made while serving is served at once.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._paths: frozenset[str] = frozenset()
        # The last requests answered, newest last (client port, request line, status, file sent): `Server.requests`.
        self.requests: collections.deque[str] = collections.deque(maxlen=50)

    def paths(self) -> frozenset[str]:
        index = self.root / "index.yaml"
        try:
            stat = index.stat()
        except OSError:
            return frozenset(SERVED_TOP_LEVEL)
        with self._lock:
            if self._stamp != (stat.st_mtime_ns, stat.st_size):
                try:
                    entries = index_mod.load(index)["entries"]
                except RepoError:
                    return frozenset(SERVED_TOP_LEVEL)  # Helm reports the bad index; no archive is served
                named = {
                    url
                    for versions in entries.values()
                    for entry in versions
                    for url in entry["urls"]
                    if "://" not in url
                }
                self._paths = frozenset({*SERVED_TOP_LEVEL, *named, *(f"{url}.prov" for url in named)})
                self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self._paths

    def resolve(self, request_path: str) -> Path | None:
        """The file to send for a request path, or None: not named, or not a regular file inside the root."""
        clean = urllib.parse.unquote(request_path.split("?", 1)[0].split("#", 1)[0]).lstrip("/")
        if clean not in self.paths():
            return None
        real = (self.root / clean).resolve()
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real


class _RepoHandler(http.server.SimpleHTTPRequestHandler):
    """Serves only the repository's files: index.yaml, the archives it names, the key and ArtifactHub metadata.

    Anything else (a traversal, plain or percent-encoded, a symlink leading out of the repository, a file
    the index does not name, a directory) is 404, with no path in the answer.
    """

    def __init__(self, *args: Any, served: _ServedFiles, **kwargs: Any) -> None:
        self.served = served
        super().__init__(*args, directory=str(served.root), **kwargs)

    # The file a request resolved to (send_head resolves each request once; translate_path and log_request use it).
    target: Path | None = None

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Kept for a test that fails after a request: the request line, the status, and the file sent with its size.
        # A record that cannot be made never gets in the way of the answer.
        sent = ""
        if code == 200 and self.target is not None:
            try:
                sent = f" {self.target.relative_to(self.served.root)} ({self.target.stat().st_size} bytes)"
            except OSError as err:
                sent = f" {self.target} (gone: {err.strerror})"
        self.served.requests.append(f"{self.client_address[1]} {self.requestline!r} -> {code}{sent}")
        super().log_request(code, size)

    def send_head(self) -> Any:
        self.target = self.served.resolve(self.path)
        if self.target is None:
            self.send_error(http.HTTPStatus.NOT_FOUND, "Not a file of this chart repository")
            return None
        return super().send_head()

    def translate_path(self, path: str) -> str:
        # Called by SimpleHTTPRequestHandler.send_head with the same path send_head resolved above.
        return "" if self.target is None else str(self.target)

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("MESHCHARTS_SERVE_LOG"):
            super().log_message(format, *args)


@dataclass
class Server:
    httpd: http.server.ThreadingHTTPServer
    served: _ServedFiles
    thread: threading.Thread | None = None

    @property
    def requests(self) -> list[str]:
        """The last requests answered, oldest first: client port, request line, status and the file sent."""
        return list(self.served.requests)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)


def serve(root: Path, *, host: str = "127.0.0.1", port: int = 8879, background: bool = False) -> Server:
    """An HTTP server for `helm repo add`; loopback by default. Background servers run in a thread."""
    served = _ServedFiles(root)
    handler = functools.partial(_RepoHandler, served=served)
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as err:
        raise RepoError(f"cannot listen on {host}:{port}: {err.strerror}; choose another --port") from err
    server = Server(httpd, served)
    if background:
        server.thread = threading.Thread(target=httpd.serve_forever, name="meshcharts-serve", daemon=True)
        server.thread.start()
    return server


@dataclass(frozen=True)
class Signing:
    """How `push` signs each chart with cosign: a key (offline), keyless (CI's OIDC token), or not at all."""

    key: str | None = None
    keyless: bool = False

    def describe(self) -> str:
        return "signed with cosign key" if self.key else "signed keyless" if self.keyless else "not signed"


def _oci_tag(version: object) -> str:
    return str(version).replace("+", "_")


def push(
    layout: Layout,
    ref: str,
    helm: Helm,
    *,
    signing: Signing,
    plain_http: bool = False,
    cosign: Cosign | None = None,
) -> list[str]:
    """`helm push` every indexed archive to `oci://HOST/PATH` (Helm uploads the .prov beside it too), then
    sign the manifest it pushed by digest, so a signature never follows a tag that moved."""
    if not ref.startswith("oci://"):
        raise RepoError(f"{ref!r} is not an OCI reference; write oci://HOST/PATH")
    if signing.key or signing.keyless:
        cosign = cosign or Cosign()
    data = index_mod.load(layout.index)
    pushed = []
    for name, versions in sorted(data["entries"].items()):
        for entry in versions:
            archive = layout.root / entry["urls"][0]
            args = ["push", str(archive), ref, *(["--plain-http"] if plain_http else [])]
            out, err = helm.run_both(args)
            digest = pushed_digest(out + "\n" + err)
            if cosign is not None:
                cosign.sign(f"{ref[len('oci://') :]}/{name}@{digest}", key=signing.key, plain_http=plain_http)
            tag = _oci_tag(entry["version"])
            pushed.append(f"{name} {entry['version']} -> {ref}/{name}:{tag} ({digest}, {signing.describe()})")
    return pushed


def verify_oci(
    layout: Layout, ref: str, *, key: str, plain_http: bool = False, cosign: Cosign | None = None
) -> list[str]:
    """Check the cosign signature of `oci://HOST/PATH/CHART:TAG`, or of every version index.yaml lists under
    `oci://HOST/PATH`. Each tag is resolved to its digest first and the digest is verified, so a report
    names exactly what was checked; every failure is reported, then RepoError."""
    if not ref.startswith("oci://"):
        raise RepoError(f"{ref!r} is not an OCI reference; write oci://HOST/PATH or oci://HOST/PATH/CHART:VERSION")
    base = ref[len("oci://") :].rstrip("/")
    if ":" in base.rsplit("/", 1)[-1]:
        images = [base]
    else:
        data = index_mod.load(layout.index)
        images = [
            f"{base}/{name}:{_oci_tag(entry['version'])}"
            for name, versions in sorted(data["entries"].items())
            for entry in versions
        ]
    cosign = cosign or Cosign()
    verified, failures = [], []
    for image in images:
        try:
            digest = cosign.digest(image, plain_http=plain_http)
        except RepoError as err:
            failures.append(f"oci://{image}: cannot resolve its digest: {err}")
            continue
        pinned = f"{image.rsplit(':', 1)[0]}@{digest}"
        reason = cosign.verify(pinned, key=key, plain_http=plain_http)
        if reason is None:
            verified.append(f"oci://{image} {digest}")
        else:
            failures.append(f"oci://{image} resolves to {digest}, which carries no valid signature by {key}: {reason}")
    if failures:
        raise SignatureError(
            f"{len(failures)} of {len(images)} chart(s) failed cosign verification:\n"
            + "\n".join(f"  {f}" for f in failures)
        )
    return verified
