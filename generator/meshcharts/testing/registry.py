"""A real OCI registry on loopback for tests: the CNCF distribution registry from Debian's docker-registry.

`OciRegistry` writes its own configuration (127.0.0.1, a free port, filesystem storage in a directory
it is given, no auth), starts `/usr/bin/docker-registry serve CONFIG` as a child process, waits until
`GET /v2/` answers and stops that process by its pid. The system service and its configuration in
/etc/docker/registry are never used.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from meshcharts.errors import MeshchartsError
from meshcharts.waits import wait_for

BINARY = Path("/usr/bin/docker-registry")
MISSING = "requires docker-registry (Debian package docker-registry)"
HOST = "127.0.0.1"
_LOG_TAIL = 30


class StartStop(ABC):
    """A server a test starts and stops; as a context manager, `with` starts it and stops it however the block ends.

    The OCI registry here and the admission recorder (meshcharts.testing.admission) are both.
    """

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class RegistryError(MeshchartsError):
    """The registry could not start, answer in time, or stop."""


def registry_binary() -> Path | None:
    """The distribution registry binary, or None when the Debian package is not installed."""
    if BINARY.is_file():
        return BINARY
    found = shutil.which("docker-registry")
    return Path(found) if found else None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def config_text(storage: Path, host: str, port: int) -> str:
    """The registry's configuration: loopback only, filesystem storage, no auth, no access log.

    JSON is YAML, so the file is written with json and needs no YAML dumper.
    """
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}, "fields": {"service": "meshcharts-test-registry"}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"{host}:{port}", "secret": "meshcharts-loopback-test-registry"},
    }
    return json.dumps(config, indent=2) + "\n"


class OciRegistry(StartStop):
    """One registry process serving plain HTTP on 127.0.0.1; use as a context manager."""

    def __init__(self, workdir: Path, *, binary: Path | None = None, host: str = HOST) -> None:
        self.workdir = workdir
        self.binary = binary or registry_binary()
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """`HOST:PORT`, as it goes into an oci:// reference."""
        return f"{self.host}:{self.port}"

    def ref(self, path: str = "charts") -> str:
        """`oci://HOST:PORT/PATH`."""
        return f"oci://{self.address}/{path.strip('/')}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> Self:
        """Start on a free port and wait until /v2/ answers; retries when another process took the port."""
        if self.binary is None:
            raise RegistryError(MISSING)
        if self.process is not None:
            raise RegistryError(f"the registry already runs as pid {self.process.pid} on {self.address}")
        if attempts < 1:
            raise RegistryError(f"attempts must be at least 1, not {attempts}")
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        lost: list[int] = []
        for _ in range(attempts):
            self.port = _free_port(self.host)
            config = self.workdir / "config.yml"
            config.write_text(config_text(storage, self.host, self.port))
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [str(self.binary), "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                self._wait_ready(timeout)
                return self
            except RegistryError:
                exited = self.process.poll() is not None
                self.stop()
                if not exited or "address already in use" not in self.log_tail():
                    raise
                lost.append(self.port)
        raise RegistryError(
            f"docker-registry lost its free port to another process {attempts} time(s) in a row (ports {lost}); "
            f"its log ({self.log_path}):\n{self.log_tail()}"
        )

    def _wait_ready(self, timeout: float) -> None:
        process = self.process
        if process is None:
            raise RegistryError("the registry was not started")
        url = f"http://{self.address}/v2/"
        last = "no answer yet"

        def answers() -> bool:
            nonlocal last
            code = process.poll()
            if code is not None:
                raise RegistryError(
                    f"docker-registry exited {code} before {url} answered; its log ({self.log_path}):\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:
                last = str(getattr(err, "reason", err))
            return False

        wait_for(
            answers,
            what=f"{url} to answer 200",
            timeout=timeout,
            describe=lambda: f"last: {last}; its log ({self.log_path}):\n{self.log_tail()}",
        )

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the registry process by its pid: SIGTERM, then SIGKILL after `timeout` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def manifest(self, repository: str, tag: str) -> dict[str, Any]:
        """The OCI manifest of `repository:tag`, read straight from the registry's API."""
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repository}/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def tags(self, repository: str) -> list[str]:
        with urllib.request.urlopen(f"http://{self.address}/v2/{repository}/tags/list", timeout=10) as response:
            data = json.loads(response.read())
        return sorted(data.get("tags") or [])
