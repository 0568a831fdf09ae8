"""What every cluster provider shares: the Cluster handle, readiness waits, running tools, pids and ports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcharts import tools
from meshcharts.errors import ClusterError
from meshcharts.kube import api_client

if TYPE_CHECKING:
    from meshcharts.cluster.provider import Capabilities, Provider

LOG_TAIL_LINES = 30

Say = Callable[[str], None]


def go_gc_percent() -> str:
    """GOGC for the Go processes a local cluster starts (its components, the host istiods): the environment's, or
    tools.GOGC (a test cluster on one machine whose cores the test layers keep busy)."""
    return os.environ.get("GOGC") or tools.GOGC


def quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Cluster:
    """A reachable cluster: how to talk to it and who owns its lifecycle."""

    name: str
    provider: str
    kubeconfig: Path
    context: str | None = None

    def simulated_pods(self) -> str | None:
        """Why pods never really run on this cluster (its nodes are kwok's), or None where they may.

        Asked by whatever needs a running pod (istiod answering its webhooks): such a test skips with this text.
        """
        return simulated_nodes(self.kubeconfig, self.context)

    @property
    def backend(self) -> Provider:
        """The provider this cluster belongs to: what to ask instead of comparing `provider` with a name."""
        from meshcharts.cluster import get_provider

        return get_provider(self.provider)

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process that should talk to this cluster (KUBECONFIG set explicitly)."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env


# --- readiness (shared by every provider) -----------------------------------------------------------

# kwok marks every node it simulates with this annotation (value "fake"); its pods get Running and Ready
# from kwok's stages while no container starts.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def _readyz(api: Any) -> bool:
    try:
        request = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=2)
    except Exception:
        return False
    return bool(response.status == 200)


def _ready_nodes(api: Any) -> int:
    from kubernetes import client

    try:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
    except Exception:
        return 0
    ready = 0
    for node in nodes:
        for cond in (node.status.conditions if node.status else None) or []:
            if cond.type == "Ready" and cond.status == "True":
                ready += 1
    return ready


def _default_service_account(api: Any) -> bool:
    from kubernetes import client

    try:
        client.CoreV1Api(api).read_namespaced_service_account("default", "default", _request_timeout=5)
    except Exception:
        return False
    return True


@dataclass
class _Condition:
    name: str
    check: Callable[[], bool]
    component: str


def wait_ready(
    kubeconfig: Path,
    *,
    nodes: int,
    timeout: float,
    context: str | None = None,
    logs: Callable[[str], str] | None = None,
    failed: Callable[[], str | None] | None = None,
) -> None:
    """Wait until /readyz answers, `nodes` nodes are Ready and ServiceAccount default/default exists.

    The last condition means the controller-manager runs, so workloads can be created at once.
    On timeout, ClusterError names the condition and carries the tail of the responsible component's log;
    `failed`, polled too, ends the wait at once with its description (e.g. a component that exited).
    """
    deadline = time.monotonic() + timeout
    api = api_client(kubeconfig, context)
    try:
        conditions = [
            _Condition("API server answers /readyz", lambda: _readyz(api), "kube-apiserver"),
            _Condition(f"{nodes} node(s) Ready", lambda: _ready_nodes(api) >= nodes, "kwok-controller"),
            _Condition(
                "ServiceAccount default/default exists (controller-manager running)",
                lambda: _default_service_account(api),
                "kube-controller-manager",
            ),
        ]
        for cond in conditions:
            while not cond.check():
                problem = failed() if failed else None
                if problem:
                    raise ClusterError(f"while waiting for: {cond.name}: {problem}")
                if time.monotonic() > deadline:
                    tail = logs(cond.component) if logs else ""
                    detail = f"\nlast lines of {cond.component}'s log:\n{tail}" if tail else ""
                    raise ClusterError(
                        f"timed out after {timeout:.0f}s waiting for: {cond.name}{detail}\n"
                        "fix: look at the log above; retry with a longer --timeout if the machine is busy"
                    )
                time.sleep(0.1)
    finally:
        api.close()


def simulated_nodes(kubeconfig: Path, context: str | None = None) -> str | None:
    """The reason no pod runs on the cluster when every node is simulated by kwok, else None (a cluster with
    one real node may run pods). ClusterError if the nodes cannot be listed."""
    from kubernetes import client

    api = api_client(kubeconfig, context)
    try:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
    except Exception as err:
        raise ClusterError(f"cannot list the nodes of {kubeconfig}: {err}") from err
    finally:
        api.close()
    if not nodes:
        return "this cluster has no node: pods never run, so istiod cannot answer its webhooks"
    if all(((n.metadata and n.metadata.annotations) or {}).get(KWOK_NODE_ANNOTATION) == "fake" for n in nodes):
        return (
            f"this cluster's nodes are simulated by kwok (every node has {KWOK_NODE_ANNOTATION}=fake): "
            "pods never run, so istiod cannot answer its webhooks"
        )
    return None


def check_reachable(kubeconfig: Path, *, timeout: float, context: str | None = None) -> None:
    """ClusterError unless the API server behind `kubeconfig` answers /readyz within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    api = api_client(kubeconfig, context)
    try:
        while not _readyz(api):
            if time.monotonic() > deadline:
                host = getattr(api.configuration, "host", "?")
                raise ClusterError(
                    f"the API server of {kubeconfig} ({host}) did not answer /readyz within {timeout:.0f}s; "
                    "fix: check that the cluster runs and that the kubeconfig points at it"
                )
            time.sleep(0.2)
    finally:
        api.close()


# --- processes, ports and tools --------------------------------------------------------------------


def run_tool(
    argv: Sequence[str], *, env: Mapping[str, str], timeout: float, what: str, stdin: str | None = None
) -> str:
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin or "",
        )
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"{what}: `{' '.join(argv)}` did not finish within {timeout:.0f}s") from err
    except OSError as err:
        raise ClusterError(f"{what}: cannot run `{argv[0]}`: {err}") from err
    if done.returncode != 0:
        raise ClusterError(
            f"{what}: `{' '.join(argv)}` exited {done.returncode}:\n{(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listeners() -> Iterator[tuple[int, str]]:
    """(port, socket inode) of every TCP socket in LISTEN state on this host (IPv4 and IPv6), from /proc/net."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A":
                    yield int(fields[1].rsplit(":", 1)[1], 16), fields[9]


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (IPv4 and IPv6), from /proc/net."""
    return {port for port, _ in _listeners()}


def listener_pids(ports: Iterable[int]) -> dict[int, set[int]]:
    """Which of `ports` are in LISTEN state on this host, and the pids holding each listening socket (matched by
    its inode in /proc/PID/fd; empty where /proc does not say, such as another user's process)."""
    wanted = set(ports)
    inodes = {inode: port for port, inode in _listeners() if port in wanted}
    owners: dict[int, set[int]] = {port: set() for port in inodes.values()}
    if not inodes:
        return owners
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        owners[inodes[target[8:-1]]].add(int(proc.name))
    return owners


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_runs(pid: int, executables: set[Path]) -> bool:
    """True if `pid` is alive and runs one of `executables`: the guard before counting or signalling it."""
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    return pid_alive(pid) and exe in executables


def processes_naming(directory: Path, executables: set[Path]) -> dict[int, str]:
    """Live processes running one of `executables` with `directory` (or a path inside it) in their arguments.

    kwokctl starts each component detached (setsid) and writes its pid file only after the start, so a
    kwokctl killed in between leaves a component no pid file names; each component's arguments name the
    cluster's directory, which is how such a one is still found. Returns pid -> command line.
    """
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        words = _arguments(pid)  # read once: it decides and it is what is returned
        if _words_name(words, directory) and pid_runs(pid, executables):
            found[pid] = " ".join(words)
    return found


def _arguments(pid: int) -> list[str]:
    """A process's command line as words; empty when it is gone or /proc does not say."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []
    return [a.decode(errors="replace") for a in args if a]


def names_directory(pid: int, directory: Path | str) -> bool:
    """True when an argument of `pid` (not its executable) is `directory` or a path inside it."""
    return _words_name(_arguments(pid), directory)


def _words_name(words: list[str], directory: Path | str) -> bool:
    """True when an argument among a command line's `words` (not the executable) is `directory` or inside it."""
    target = str(directory)
    return any(_names_path(word, target) for word in words[1:])


def _names_path(word: str, target: str) -> bool:
    """True when `word` is `target`, a path inside it, or `--flag=` either (never a longer sibling's name)."""
    value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
    return value == target or value.startswith(target + os.sep)


def stop_pids(pids: Mapping[str, int], *, deadline: float, say: Say) -> dict[str, int]:
    """SIGTERM each pid, wait by pid until `deadline`, SIGKILL what is left and wait for it to be gone too.

    Returns those still alive after all of it (a process stuck in the kernel), which the caller reports.
    """
    import signal

    # A pid is signalled only while it is the same process (start time as when first seen): never a reused pid.
    started = {what: process_start(pid) for what, pid in pids.items()}

    def same(what: str) -> bool:
        pid = pids[what]
        return pid_alive(pid) and process_start(pid) == started[what]

    def signal_all(sig: int, *, note: str = "") -> None:
        for what, pid in pids.items():
            if same(what):
                if note:
                    say(f"{what} (pid {pid}) {note}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    signal_all(signal.SIGTERM)
    while any(same(what) for what in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_all(signal.SIGKILL, note="did not exit on SIGTERM; sending SIGKILL")
    # SIGKILL cannot be ignored: the wait after it is short and only covers the kernel tearing the process down.
    killed_by = time.monotonic() + 10
    while any(same(what) for what in pids) and time.monotonic() < killed_by:
        time.sleep(0.02)
    return {what: pid for what, pid in pids.items() if same(what)}


def machine_lock(filename: str) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock shared by every process on this machine (a file in the temp directory)."""
    return tools.locked(Path(tempfile.gettempdir()) / filename)
