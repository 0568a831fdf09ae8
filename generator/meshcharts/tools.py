"""The pinned toolchain: Go wrapper modules in data/toolchain built once into a cache keyed by version.

Each `Build` is one `go build` of one wrapper module and is the unit of caching: it lands in
`<cache>/toolchain/<key>-<version>/bin/` together with a `stamp.json`, by renaming a finished and
verified temporary directory into place, so an interrupted build never leaves a binary that looks
finished. A warm `install` only reads stamps and checks that files exist; it never runs `go`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meshcharts.errors import ToolError
from meshcharts.paths import package_data

STAMP = "stamp.json"
# GOGC for the toolchain's Go programs that meshcharts starts, unless the environment sets one: the local cluster's
# processes (cluster._common.go_gc_percent) and helm (helm.Helm). They run on a machine the tests keep busy, or for a
# second or two, and collecting garbage at 400 % heap growth instead of Go's 100 % spares most collections for a
# larger heap (bench/README.md: 18 % less API server CPU; 14 to 21 % less CPU per helm render).
GOGC = "400"
_HEARTBEAT_SECONDS = 30.0
_VERSION_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Binary:
    """One executable a build produces, and how to prove it is the pinned version."""

    name: str
    package: str
    version_args: tuple[str, ...]
    expect: str
    filename: str = ""

    @property
    def file(self) -> str:
        return self.filename or self.name


@dataclass(frozen=True)
class DataFile:
    """A file a tool reads at run time that ships in its Go module; copied into `<build>/share/`."""

    module: str
    path: str

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class Build:
    """One `go build` of one wrapper module under data/toolchain: the unit that is cached."""

    key: str
    version: str
    module: str
    binaries: tuple[Binary, ...]
    ldflags: tuple[str, ...] = ("-s", "-w")
    family: str = ""
    data: tuple[DataFile, ...] = ()

    @property
    def dirname(self) -> str:
        return f"{self.key}-{self.version}"

    def binary(self, name: str) -> Binary:
        for binary in self.binaries:
            if binary.name == name:
                return binary
        raise KeyError(name)


@dataclass(frozen=True)
class Progress:
    """A progress line: which build, which step, seconds since that build's step began."""

    tool: str
    step: str
    elapsed: float

    def __str__(self) -> str:
        return f"[{self.tool}] {self.step} ({self.elapsed:.1f}s)"


ProgressCallback = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    return None


# --- the registry: data only; adding a Kubernetes version is one entry in KUBERNETES_RELEASES ------

DEFAULT_KUBERNETES = "v1.36.3"
# Kubernetes version -> wrapper module directory under data/toolchain (its go.mod pins that release).
KUBERNETES_RELEASES: Mapping[str, str] = {
    "v1.36.3": "kubernetes",
    "v1.34.4": "kubernetes-1.34",
    "v1.30.4": "kubernetes-1.30",
}
KUBERNETES_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# What a local cluster runs (kwokctl's binary runtime on these), and what drives charts onto it.
LOCAL_CLUSTER_TOOLS = ("kwokctl", "kwok", "etcd", *KUBERNETES_COMPONENTS)


@dataclass(frozen=True)
class Job:
    """What one job needs built: `tools` for the first Kubernetes release (empty: every tool), and the
    Kubernetes components for each further release in `kubernetes`."""

    tools: tuple[str, ...]
    kubernetes: tuple[str, ...]


# The one list of what each job needs, read by .ci/setup, .ci/test, the local provider and the tests:
# `main` is ./run.sh (a local cluster, Helm 4 and the real istiod); `ci` is .ci/test (every tool, and the cluster
# layers once more on the oldest Kubernetes release the toolchain builds).
JOBS: Mapping[str, Job] = {
    "main": Job(tools=(*LOCAL_CLUSTER_TOOLS, "helm", "pilot-discovery"), kubernetes=(DEFAULT_KUBERNETES,)),
    "ci": Job(tools=(), kubernetes=(DEFAULT_KUBERNETES, "v1.30.4")),
}


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.gitCommit={'0' * 40}",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


def _kubernetes_build(version: str, module: str) -> Build:
    binaries = tuple(
        Binary(
            name=name,
            package=f"k8s.io/kubernetes/cmd/{name}",
            version_args=("version", "--client") if name == "kubectl" else ("--version",),
            expect=f"Client Version: {version}" if name == "kubectl" else f"Kubernetes {version}",
        )
        for name in KUBERNETES_COMPONENTS
    )
    return Build(
        key="kubernetes",
        version=version,
        module=module,
        binaries=binaries,
        ldflags=_kubernetes_ldflags(version),
        family="kubernetes",
    )


# Istio stamps its version by ldflags (common/scripts/report_build_info.sh); unset, it says "unknown". istioctl and
# pilot-discovery come from the same istio.io/istio module and carry the same stamp.
_ISTIO_LDFLAGS = (
    "-s",
    "-w",
    "-X istio.io/istio/pkg/version.buildVersion=0.0.0-20260827124520-eed52ebb66ad",
    "-X istio.io/istio/pkg/version.buildGitRevision=eed52ebb66ad",
    "-X istio.io/istio/pkg/version.buildStatus=Clean",
)

OTHER_BUILDS: tuple[Build, ...] = (
    Build(
        key="etcd",
        version="v3.6.16",
        module="etcd",
        binaries=(Binary("etcd", "go.etcd.io/etcd/server/v3", ("--version",), "etcd Version: 3.6.16"),),
    ),
    Build(
        key="kwok",
        version="v0.8.0",
        module="kwok",
        binaries=(
            Binary("kwok", "sigs.k8s.io/kwok/cmd/kwok", ("--version",), "v0.8.0"),
            Binary("kwokctl", "sigs.k8s.io/kwok/cmd/kwokctl", ("--version",), "v0.8.0"),
        ),
    ),
    Build(
        key="helm",
        version="v4.3.1",
        module="helm4",
        binaries=(Binary("helm", "helm.sh/helm/v4/cmd/helm", ("version",), 'Version:"v4.3.1"'),),
        ldflags=("-s", "-w", "-X helm.sh/helm/v4/internal/version.version=v4.3.1"),
    ),
    Build(
        key="helm",
        version="v3.22.0",
        module="helm3",
        binaries=(Binary("helm3", "helm.sh/helm/v3/cmd/helm", ("version",), 'Version:"v3.22.0"', filename="helm"),),
        # Helm 3 takes its default Kubernetes capabilities from ldflags (client-go v0.37 -> 1.37),
        # as its Makefile does; without them `helm template` assumes Kubernetes 1.20.
        ldflags=(
            "-s",
            "-w",
            "-X helm.sh/helm/v3/internal/version.version=v3.22.0",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
        ),
    ),
    Build(
        key="kind",
        version="v0.33.0",
        module="kind",
        binaries=(Binary("kind", "sigs.k8s.io/kind", ("version",), "kind v0.33.0 "),),
    ),
    Build(
        key="ct",
        version="v3.14.0",
        module="ct",
        binaries=(Binary("ct", "github.com/helm/chart-testing/v3/ct", ("version",), "v3.14.0"),),
        ldflags=("-s", "-w", "-X github.com/helm/chart-testing/v3/ct/cmd.Version=v3.14.0"),
        # `ct lint` validates Chart.yaml against this Yamale schema; it ships in the module, not the binary.
        data=(DataFile("github.com/helm/chart-testing/v3", "etc/chart_schema.yaml"),),
    ),
    Build(
        key="istioctl",
        version="v0.0.0-20260827124520-eed52ebb66ad",
        module="istioctl",
        binaries=(
            Binary(
                "istioctl",
                "istio.io/istio/istioctl/cmd/istioctl",
                ("version", "--remote=false"),
                "client version: 0.0.0-20260827124520-eed52ebb66ad",
            ),
        ),
        # Only the tests' oracle uses istioctl: `kube-inject` runs Istio's real injector offline.
        ldflags=_ISTIO_LDFLAGS,
    ),
    Build(
        key="pilot-discovery",
        version="v0.0.0-20260827124520-eed52ebb66ad",
        module="pilot-discovery",
        binaries=(
            Binary(
                "pilot-discovery",
                "istio.io/istio/pilot/cmd/pilot-discovery",
                ("version", "--short"),
                "0.0.0-20260827124520-eed52ebb66ad",
            ),
        ),
        # The real istiod the cluster layers run on the host of the local cluster, from the same istio.io/istio
        # module as istioctl (its own wrapper module, so each is cached and rebuilt on its own).
        ldflags=_ISTIO_LDFLAGS,
    ),
    Build(
        key="actionlint",
        version="v1.7.12",
        module="actionlint",
        binaries=(Binary("actionlint", "github.com/rhysd/actionlint/cmd/actionlint", ("-version",), "v1.7.12"),),
        ldflags=("-s", "-w", "-X github.com/rhysd/actionlint.version=v1.7.12"),
    ),
    Build(
        key="cosign",
        version="v2.6.5",
        module="cosign",
        binaries=(Binary("cosign", "github.com/sigstore/cosign/v2/cmd/cosign", ("version",), "v2.6.5"),),
        ldflags=("-s", "-w", "-X sigs.k8s.io/release-utils/version.gitVersion=v2.6.5"),
    ),
)


def builds(k8s_version: str = DEFAULT_KUBERNETES) -> tuple[Build, ...]:
    """Every build of the toolchain for one Kubernetes version."""
    if k8s_version not in KUBERNETES_RELEASES:
        known = ", ".join(sorted(KUBERNETES_RELEASES))
        raise ToolError(f"no toolchain for Kubernetes {k8s_version}; known versions: {known}")
    return (_kubernetes_build(k8s_version, KUBERNETES_RELEASES[k8s_version]), *OTHER_BUILDS)


def tool_names() -> tuple[str, ...]:
    return tuple(b.name for build in builds() for b in build.binaries)


def build_for(name: str, k8s_version: str = DEFAULT_KUBERNETES) -> Build:
    """The build that produces tool `name`."""
    for build in builds(k8s_version):
        if any(b.name == name for b in build.binaries):
            return build
    raise ToolError(f"unknown tool {name!r}; known tools: {', '.join(tool_names())}")


# --- cache layout -----------------------------------------------------------------------------------


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """MESHCHARTS_CACHE, else $XDG_CACHE_HOME/meshcharts, else ~/.cache/meshcharts."""
    env = os.environ if env is None else env
    if env.get("MESHCHARTS_CACHE"):
        return Path(env["MESHCHARTS_CACHE"]).expanduser().absolute()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "meshcharts").absolute()


@dataclass(frozen=True)
class Toolchain:
    """The toolchain cache rooted at `root` (built from the wrapper modules the package ships in data/toolchain)."""

    root: Path = field(default_factory=cache_root)
    k8s_version: str = DEFAULT_KUBERNETES

    @property
    def toolchain_dir(self) -> Path:
        return self.root / "toolchain"

    def build_dir(self, build: Build) -> Path:
        return self.toolchain_dir / build.dirname

    def bin_dir(self, build: Build) -> Path:
        return self.build_dir(build) / "bin"

    def kubernetes_bin_dir(self) -> Path:
        """The directory holding kubectl and the control plane; put it first on PATH for kwokctl."""
        return self.bin_dir(build_for("kubectl", self.k8s_version))

    def path(self, name: str) -> Path:
        """Path of a built tool, or ToolError saying how to build it."""
        build = build_for(name, self.k8s_version)
        target = self.bin_dir(build) / build.binary(name).file
        if not (self.build_dir(build) / STAMP).is_file() or not target.is_file():
            how = f"meshcharts tools install {name}"
            if self.k8s_version != DEFAULT_KUBERNETES:
                how += f" --k8s-version {self.k8s_version}"
            raise ToolError(f"{name} {build.version} is not built in {self.toolchain_dir}; run `{how}`")
        return target

    def data_path(self, name: str, filename: str) -> Path:
        """Path of a data file shipped with tool `name` (e.g. ct's chart_schema.yaml), or ToolError."""
        build = build_for(name, self.k8s_version)
        self.path(name)
        target = self.build_dir(build) / "share" / filename
        if not target.is_file():
            raise ToolError(f"{name} {build.version} has no data file {filename} in {target.parent}")
        return target

    def is_current(self, build: Build, fingerprint: str) -> bool:
        """True when the build's stamp matches `fingerprint` and every binary exists."""
        stamp = self.build_dir(build) / STAMP
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint:
            return False
        share = self.build_dir(build) / "share"
        return all((self.bin_dir(build) / b.file).is_file() for b in build.binaries) and all(
            (share / d.name).is_file() for d in build.data
        )


def fingerprint(build: Build, module_dir: Path) -> str:
    """What the binaries depend on besides the version: the module's go.mod/go.sum, the ldflags and the packages
    (not GO_BUILD_FLAGS, which do not change what the binaries do)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        try:
            digest.update((module_dir / name).read_bytes())
        except OSError as err:
            raise ToolError(f"wrapper module {module_dir} lacks {name}: {err}") from err
    digest.update("\0".join(build.ldflags).encode())
    digest.update("\0".join(b.package for b in build.binaries).encode())
    digest.update("\0".join(f"{d.module}/{d.path}" for d in build.data).encode())
    return digest.hexdigest()


# --- building ---------------------------------------------------------------------------------------

Builder = Callable[[Build, Path, Path, ProgressCallback], None]
"""Builds `build` from the module at arg 2 into the (empty) bin directory at arg 3."""


def _go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if not found:
        raise ToolError("the `go` command is not on PATH; install Go >= 1.26, it builds the pinned toolchain")
    return found


# How every toolchain build runs `go build`. Another build with the same flags and environment (ci/crdcheck)
# shares Go's build cache with the toolchain's: packages of the same module versions are compiled once.
# `-gcflags=all=-dwarf=false`: the compiler writes no debug information, which every build's `-ldflags -w` drops at
# link anyway; the binaries run the same, and a cold build takes less (bench/go_build_flags.py: helm 3 with an empty
# build cache, 80.7 s against 92.5 s; the whole toolchain 1144 s against 1222 s, bench/README.md). The fingerprint
# leaves these flags out on purpose: a binary built before this flag is the same program, so warm caches are kept.
GO_BUILD_FLAGS = ("-trimpath", "-mod=readonly", "-gcflags=all=-dwarf=false")


def go_build_env() -> dict[str, str]:
    """The environment of a toolchain `go build`: static binaries, the installed Go, no workspace."""
    return dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local", GOWORK="off")


def go_build_argv(go: str, build: Build, out: Path) -> list[str]:
    """The `go build` command line for one build; one output file, or a directory for several."""
    target = str(out / build.binaries[0].file) if len(build.binaries) == 1 else f"{out}{os.sep}"
    return [
        go,
        "build",
        *GO_BUILD_FLAGS,
        "-ldflags",
        " ".join(build.ldflags),
        "-o",
        target,
        *(b.package for b in build.binaries),
    ]


def go_build(build: Build, module_dir: Path, out: Path, progress: ProgressCallback) -> None:
    """Run `go build` for `build` with a heartbeat; its output goes to a log shown on failure."""
    argv = go_build_argv(_go(), build, out)
    env = go_build_env()
    log_path = out.parent / "go-build.log"
    start = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=module_dir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    progress(Progress(build.dirname, "go build still running", time.monotonic() - start))
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    if returncode != 0:
        tail = _tail(log_path, 40)
        raise ToolError(
            f"go build of {build.dirname} failed (exit {returncode}) in {module_dir}:\n  {' '.join(argv)}\n{tail}"
        )


def module_dir_argv(go: str, module: str) -> list[str]:
    """Where the wrapper module's dependency `module` lives in the module cache."""
    return [go, "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", module]


def copy_data(build: Build, module_dir: Path, share: Path) -> None:
    """Copy the build's data files out of the module cache (`go list -m` downloads the module if needed)."""
    if not build.data:
        return
    go = _go()
    env = dict(os.environ, GOTOOLCHAIN="local", GOWORK="off")
    share.mkdir(parents=True, exist_ok=True)
    for data in build.data:
        argv = module_dir_argv(go, data.module)
        done = subprocess.run(argv, cwd=module_dir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        source_dir = done.stdout.strip()
        if done.returncode != 0 or not source_dir:
            raise ToolError(
                f"`{' '.join(argv)}` in {module_dir} exited {done.returncode}:\n{(done.stderr or done.stdout).strip()}"
            )
        source = Path(source_dir) / data.path
        try:
            shutil.copyfile(source, share / data.name)
        except OSError as err:
            raise ToolError(f"cannot copy {data.path} of {data.module} from {source}: {err}") from err


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def verify(binary: Binary, path: Path) -> str:
    """Run the binary's version command; return its output, or ToolError if the pinned version is absent."""
    argv = [str(path), *binary.version_args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_VERSION_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ToolError(f"{binary.name}: cannot run `{' '.join(argv)}`: {err}") from err
    output = done.stdout + done.stderr
    if done.returncode != 0 or binary.expect not in output:
        raise ToolError(
            f"{binary.name}: `{' '.join(argv)}` exited {done.returncode} without {binary.expect!r}:\n{output.strip()}"
        )
    return output.strip().splitlines()[0] if output.strip() else ""


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed) for the block's duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(toolchain_dir: Path) -> None:
    """Temporary directories of interrupted builds; only called while holding the install lock."""
    for leftover in toolchain_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in toolchain_dir.glob(".old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def install(
    names: Sequence[str] = (),
    *,
    k8s_version: str = DEFAULT_KUBERNETES,
    cache: Path | None = None,
    modules: Path | None = None,
    progress: ProgressCallback = _ignore,
    builder: Builder = go_build,
) -> dict[str, Path]:
    """Build whatever of `names` (default: every tool) is missing or stale; return name -> path.

    `modules` is the directory holding the wrapper modules (default: the package's data/toolchain).
    """
    chain = Toolchain(cache or cache_root(), k8s_version)
    wanted = list(names) or [b.name for build in builds(k8s_version) for b in build.binaries]
    selected: list[Build] = []
    for name in wanted:
        build = build_for(name, k8s_version)
        if build not in selected:
            selected.append(build)
    modules_dir = modules or package_data("toolchain")

    for build in selected:
        module_dir = modules_dir / build.module
        start = time.monotonic()
        expected = fingerprint(build, module_dir)
        if chain.is_current(build, expected):
            progress(Progress(build.dirname, "cached", time.monotonic() - start))
            continue
        with locked(chain.toolchain_dir / ".lock"):
            if chain.is_current(build, expected):
                progress(Progress(build.dirname, "built by another process", time.monotonic() - start))
                continue
            _remove_leftovers(chain.toolchain_dir)
            _build_atomically(chain, build, module_dir, expected, progress, builder)
    return {name: chain.path(name) for name in wanted}


def _build_atomically(
    chain: Toolchain,
    build: Build,
    module_dir: Path,
    expected: str,
    progress: ProgressCallback,
    builder: Builder,
) -> None:
    start = time.monotonic()
    chain.toolchain_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{build.dirname}-", dir=chain.toolchain_dir))
    try:
        out = tmp / "bin"
        out.mkdir()
        progress(Progress(build.dirname, f"go build {' '.join(b.name for b in build.binaries)}", 0.0))
        builder(build, module_dir, out, progress)
        if build.data:
            progress(Progress(build.dirname, "copy data files", time.monotonic() - start))
            copy_data(build, module_dir, tmp / "share")
        versions: dict[str, str] = {}
        for binary in build.binaries:
            path = out / binary.file
            if not path.is_file():
                raise ToolError(f"go build of {build.dirname} produced no {binary.file} in {out}")
            progress(Progress(build.dirname, f"verify {binary.name}", time.monotonic() - start))
            versions[binary.name] = verify(binary, path)
        stamp = {
            "build": build.key,
            "version": build.version,
            "fingerprint": expected,
            "binaries": versions,
            "seconds": round(time.monotonic() - start, 1),
        }
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
        final = chain.build_dir(build)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{build.dirname}-", dir=chain.toolchain_dir))
            final.rename(old / "stale")
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        progress(Progress(build.dirname, "done", time.monotonic() - start))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def path(name: str, *, k8s_version: str = DEFAULT_KUBERNETES, cache: Path | None = None) -> Path:
    """Path of a built tool, or ToolError saying which command builds it."""
    return Toolchain(cache or cache_root(), k8s_version).path(name)


def data_path(name: str, filename: str, *, cache: Path | None = None) -> Path:
    """Path of a data file that ships with a built tool, or ToolError saying which command builds it."""
    return Toolchain(cache or cache_root()).data_path(name, filename)


"""The same as `path`; the name the render tests' fixtures look up."""
