"""The main job's flow: check the committed release, serve it, and install base, istiod and gateway from it.

1. Release check, without the private key: `meshcharts release` runs on a scratch copy of the
   repository, for the base line (charts/) and every later line (lines/<line>/). Every version there
   is already published, so it must package, sign and index nothing (the archives are
   byte-reproducible); `index --verify` and `helm verify` with the published public key
   (meshcharts.asc) must pass. A chart changed without a version bump, or a new version nobody
   released, stops the flow here with the reason.
2. The scratch repository is served on 127.0.0.1 (a free port), added with `helm repo add` under a
   Helm home of its own, listed with `helm search repo --versions --devel` (without --devel Helm hides
   pre-releases, and a line's only release may be one: 1.31.0-rc.0), and base, istiod and gateway are
   installed from it with `--verify`, at the newest version of the newest line the served index.yaml
   publishes (`newest_published`), passed as `--version`: without it Helm would take the newest version
   that is not a pre-release, which need not be of the newest line.
3. A real istiod answers the charts' webhooks. Where pods run, that is the chart's istiod pod; on a local (kwok)
   cluster, where no pod really runs, the chart's istiod Deployment runs on this host as pilot-discovery
   (`meshcharts.cluster.local.istiod`), reached through the chart's Service. It injects the gateway's pods.

The flow prints nothing itself: progress goes to `say`, and what the user asked to see (the search
result, `helm list`, `kubectl get`) to `out`; the command line decides where each goes.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver
import yaml

from meshcharts import controlplane, repo, spec, tools
from meshcharts import index as index_mod
from meshcharts.controlplane import INJECTED, IstiodRunner
from meshcharts.errors import ClusterError, RepoError
from meshcharts.helm import Helm
from meshcharts.kube import kube_for
from meshcharts.paths import Layout

Say = Callable[[str], None]

REPO_NAME = "meshcharts"
ISTIO_NS = "istio-system"
GATEWAY_NS = "istio-ingress"
GATEWAY_RELEASE = "istio-ingressgateway"
# What the demo installs from the repository, all at one version.
CHARTS = ("base", "istiod", "gateway")
# How the demo lists the repository: every version, pre-releases too (Helm hides them without --devel).
SEARCH = ("search", "repo", f"{REPO_NAME}/", "--versions", "--devel")
# What a scratch copy of the repository needs: the generator inputs for `generate --check`, the
# charts, and everything the repository publishes.
REPOSITORY_PARTS = (
    "generator/specs",
    "generator/templates",
    "generator/lines",
    "charts",
    "lines",
    "packages",
    *repo.SERVED_TOP_LEVEL,
)


@dataclass(frozen=True)
class Pick:
    """The version the demo installs base, istiod and gateway at, and why."""

    version: str
    line: str  # major.minor
    reason: str


def _line(version: semver.Version) -> str:
    return f"{version.major}.{version.minor}"


def kubernetes_allows(constraint: str, kubernetes: str) -> bool:
    """Whether a chart's `kubeVersion` (comparisons joined by commas or spaces, `>=1.32.0-0`) admits a cluster
    running `kubernetes` (`v1.30.4`, `v1.30.4-gke.100`: only major.minor.patch counts, as the `-0` in the
    constraints is written for). A constraint this cannot read admits the cluster: Helm itself then decides."""
    found = semver.Version.parse(kubernetes.lstrip("v").split("+")[0].split("-")[0], optional_minor_and_patch=True)
    try:
        return all(found.match(part) for part in constraint.replace(",", " ").split())
    except ValueError:
        return True


def newest_published(
    index: Mapping[str, Any], charts: Sequence[str] = CHARTS, *, kubernetes: str | None = None
) -> Pick:
    """The newest version of the newest release line that `index` (a parsed index.yaml) publishes for every one of
    `charts`, by semver, pre-releases included: a line's only release may be a release candidate (1.31.0-rc.0),
    which `helm install` without --version passes over for the newest version that is not a pre-release.
    With `kubernetes` (the cluster's version), versions whose kubeVersion does not admit it are left out."""
    entries = index.get("entries") or {}
    common: set[semver.Version] | None = None
    refused: dict[str, str] = {}  # line -> the kubeVersion that left it out
    for chart in charts:
        versions = set()
        for entry in entries.get(chart) or []:
            try:
                version = semver.Version.parse(str(entry.get("version")))
            except ValueError:
                continue  # not semver: Helm cannot order it either
            constraint = str(entry.get("kubeVersion") or "")
            if kubernetes and constraint and not kubernetes_allows(constraint, kubernetes):
                refused[_line(version)] = constraint
                continue
            versions.add(version)
        common = versions if common is None else common & versions
    if not common:
        where = f" for Kubernetes {kubernetes}" if kubernetes else ""
        raise RepoError(f"index.yaml publishes no version of {', '.join(charts)} alike{where}: nothing to install")
    lines = sorted({(v.major, v.minor) for v in common})
    newest_line = lines[-1]
    chosen = max(v for v in common if (v.major, v.minor) == newest_line)
    named = f"{', '.join(charts[:-1])} and {charts[-1]}" if len(charts) > 1 else charts[0]
    reason = (
        f"the newest version of line {_line(chosen)}, the newest line in which the repository publishes {named} "
        f"(lines: {', '.join(f'{a}.{b}' for a, b in lines)})"
    )
    if chosen.prerelease:
        stable = [v for v in common if not v.prerelease]
        instead = f"Helm would install {max(stable)}" if stable else "Helm would find no version"
        reason += f"; a pre-release, so it is passed as --version: without it {instead}"
    else:
        reason += "; passed as --version, so every chart is installed at it"
    # Newer lines the cluster's Kubernetes is too old for: said, so that nobody wonders where they went.
    newer = sorted(
        (tuple(int(x) for x in line.split(".")), line)
        for line in refused
        if tuple(int(x) for x in line.split(".")) > (chosen.major, chosen.minor)
    )
    if newer:
        skipped = ", ".join(f"line {line} (kubeVersion {refused[line]})" for _, line in newer)
        reason += f"; left out, since the cluster runs Kubernetes {kubernetes}: {skipped}"
    return Pick(str(chosen), _line(chosen), reason)


def served_index(url: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """The index.yaml a repository serves at `url`, parsed and checked as Helm would load it."""
    where = f"{url.rstrip('/')}/index.yaml"
    try:
        with urllib.request.urlopen(where, timeout=timeout) as response:
            raw = response.read()
    except OSError as err:
        raise RepoError(f"cannot read {where}: {err}") from err
    return index_mod.parse(raw, where)


@dataclass
class Installed:
    """What the flow installed and saw."""

    repository_url: str
    search: str
    version: str = ""  # the version base, istiod and gateway were installed at
    version_reason: str = ""
    releases: list[tuple[str, str, str]] = field(default_factory=list)  # (release, chart, namespace)
    gateway_address: str = ""
    gateway_images: dict[str, dict[str, str]] = field(default_factory=dict)  # pod -> container -> image
    host_istiod: Any = None  # meshcharts.cluster.local.istiod.Started where istiod runs on this host


def copy_repository(source: Path, dest: Path) -> Layout:
    """A scratch copy of the parts of a meshcharts tree that `release` and `serve` read."""
    for part in REPOSITORY_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
        else:
            raise RepoError(f"{src} is missing: a published repository has {', '.join(REPOSITORY_PARTS)}")
    return Layout(dest)


def check_release(source: Layout, scratch: Path, helm: Helm, say: Say) -> tuple[Layout, Path]:
    """Re-run the release on a scratch copy (must be a no-op), verify the index and every provenance file.

    Returns the scratch repository and the binary keyring made from its meshcharts.asc.
    """
    layout = copy_repository(source.root, scratch / "repository")
    before = layout.index.read_bytes()
    for line in layout.every_line():
        if not spec.line_released(line):
            say(f"release: {line.charts_label} is line {line.line}, not released yet (release: false); left out")
            continue
        report = repo.release(line, sign_key=None)
        changed = [str(p.relative_to(layout.root)) for p in (*report.packaged, *report.signed)] + report.indexed
        if changed or layout.index.read_bytes() != before:
            raise RepoError(
                f"the committed release is not what {line.charts_label} packs to: `meshcharts release` would "
                "change " + (", ".join(changed) or "index.yaml")
            )
        say(
            f"release: the {len(repo.chart_dirs(line))} charts in {line.charts_label} pack to their published "
            "archives byte for byte; nothing to package, sign or index"
        )
    archives = sorted(layout.packages.glob("*.tgz"))
    say(f"release: {len(archives)} archives published, index.yaml unchanged")
    problems = index_mod.verify(layout.root, layout.index)
    if problems:
        raise RepoError("index.yaml does not match packages/:\n" + "\n".join(f"  {p}" for p in problems))
    say("release: index.yaml: every URL resolves and every digest matches")
    gnupg_home = scratch / "gnupg"
    gnupg_home.mkdir(mode=0o700)
    keyring = repo.public_keyring(layout.root / repo.PUBLIC_KEY, scratch / "pubring.gpg", gnupg_home)
    for archive in archives:
        out = helm.run(["verify", str(archive), "--keyring", str(keyring)])
        signer = next((line for line in out.splitlines() if line.startswith("Signed by")), "signed")
        say(f"release: helm verify {archive.name}: {signer}")
    return layout, keyring


def _values(path: Path, values: dict[str, Any]) -> list[Path]:
    path.write_text(yaml.safe_dump(values))
    return [path]


def install_from_repository(
    layout: Layout,
    keyring: Path,
    kubeconfig: Path,
    workdir: Path,
    say: Say,
    *,
    runner: IstiodRunner | None = None,
    helm_major: int = 4,
    timeout: float = 180.0,
) -> Installed:
    """Serve `layout` on loopback, helm repo add/search, install base, istiod and gateway with --verify.

    All three are installed at the newest version of the newest line the served index.yaml publishes
    (`newest_published`), given as --version. The charts get default values; istiod (`runner`: the chart's pod by
    default, a host process where pods do not run) must trust its webhooks before the gateway is installed, and
    must have injected the gateway's pods. base and istiod go through the one installer of the control plane,
    `meshcharts.controlplane`."""
    from meshcharts import waits

    runner = runner or controlplane.InClusterIstiod()
    helm = Helm(major=helm_major, kubeconfig=kubeconfig).with_home(workdir / "helm-home")
    kube = kube_for(kubeconfig)
    server = repo.serve(layout.root, port=0, background=True)
    try:
        say(f"serving the repository at {server.url}")
        helm.run(["repo", "add", REPO_NAME, server.url])
        search = helm.run(list(SEARCH))
        from kubernetes import client as kube_client

        cluster_version = str(kube_client.VersionApi(kube.api_client).get_code().git_version)
        pick = newest_published(served_index(server.url), kubernetes=cluster_version)
        say(f"version: installing {pick.version}: {pick.reason}")
        result = Installed(server.url, search, pick.version, pick.reason)
        verify = ("--verify", "--keyring", str(keyring))

        def install(release: str, chart: str, namespace: str) -> None:
            say(
                f"installing {REPO_NAME}/{chart} {pick.version} as {namespace}/{release} "
                f"(helm install --version {pick.version} --verify)"
            )
            helm.install(
                release,
                f"{REPO_NAME}/{chart}",
                namespace=namespace,
                values=_values(workdir / f"{chart}-values.yaml", {}),
                version=pick.version,
                wait=True,
                timeout=timeout,
                extra=verify,
            )
            result.releases.append((release, chart, namespace))

        say(
            f"installing {REPO_NAME}/base and {REPO_NAME}/istiod {pick.version} into {ISTIO_NS} "
            f"(helm upgrade --install --version {pick.version} --verify); istiod answers as {runner.where}"
        )
        plane = controlplane.install(
            helm,
            kube,
            charts=REPO_NAME,
            version=pick.version,
            values={},
            runner=runner,
            timeout=timeout,
            keyring=keyring,
        )
        result.releases += [
            (controlplane.BASE_RELEASE, "base", ISTIO_NS),
            (controlplane.ISTIOD_RELEASE, "istiod", ISTIO_NS),
        ]
        result.host_istiod = plane.host_istiod
        if result.host_istiod is not None:
            say(
                f"istiod: pods do not run on this cluster, so the chart's istiod Deployment runs on this host: "
                f"pilot-discovery pid {result.host_istiod.pid} on {result.host_istiod.address}, with a token of "
                "the chart's istiod ServiceAccount, behind the chart's istiod Service"
            )
        install(GATEWAY_RELEASE, "gateway", GATEWAY_NS)
        waits.deployment_available(kube.apps, GATEWAY_NS, GATEWAY_RELEASE, timeout=timeout)
        for pod in kube.core.list_namespaced_pod(GATEWAY_NS, label_selector=f"app={GATEWAY_RELEASE}").items:
            if INJECTED not in (pod.metadata.annotations or {}):
                raise ClusterError(f"the gateway's pod {GATEWAY_NS}/{pod.metadata.name} was not injected by istiod")
            result.gateway_images[pod.metadata.name] = {c.name: c.image for c in pod.spec.containers}
        result.gateway_address = waits.service_address(kube.core, GATEWAY_NS, GATEWAY_RELEASE, timeout=timeout)
        return result
    finally:
        server.stop()


def show(argv: Sequence[str], say: Say, out: Say, *, timeout: float = 60.0) -> None:
    """Run a read-only command for the user: its output to `out`, its stderr to `say` (or into the error)."""
    say("$ " + " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)))
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"{' '.join(argv)} did not finish within {timeout:g}s") from err
    except OSError as err:
        raise ClusterError(f"cannot run {argv[0]}: {err}") from err
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.strip()}")
    if done.stdout:
        out(done.stdout.rstrip("\n"))
    if done.stderr.strip():
        say(done.stderr.rstrip("\n"))


def run(
    source: Layout,
    kubeconfig: Path,
    workdir: Path,
    say: Say,
    *,
    out: Say | None = None,
    runner: IstiodRunner | None = None,
    keep: bool = False,
    helm_major: int = 4,
) -> Installed:
    """The whole flow for `./run.sh`: release check, serve, repo add, install, show what runs.

    `say` gets progress, `out` (default: `say`) what is shown: the search result and the tables."""
    out = out or say
    helm = Helm(major=helm_major)
    layout, keyring = check_release(source, workdir, helm.with_home(workdir / "helm-home"), say)
    installed = install_from_repository(layout, keyring, kubeconfig, workdir, say, runner=runner, helm_major=helm_major)
    say(f"helm {' '.join(SEARCH)} (served at {installed.repository_url}):")
    out(installed.search.rstrip("\n"))
    env_helm = Helm(major=helm_major, kubeconfig=kubeconfig)
    kubectl = str(tools.path("kubectl"))
    show([str(env_helm.binary), "list", "--all-namespaces", "--kubeconfig", str(kubeconfig)], say, out)
    for namespace in (ISTIO_NS, GATEWAY_NS):
        show(
            [kubectl, "--kubeconfig", str(kubeconfig), "--namespace", namespace, "get", "deploy,svc,pods", "-o",
             "wide"],
            say,
            out,
        )  # fmt: skip
    say(f"gateway {GATEWAY_NS}/{GATEWAY_RELEASE} LoadBalancer address: {installed.gateway_address}")
    for pod, images in sorted(installed.gateway_images.items()):
        shown = ", ".join(f"{name} {image}" for name, image in sorted(images.items()))
        say(f"webhooks: istiod injected the gateway's pod {GATEWAY_NS}/{pod}: {shown}")
    if installed.host_istiod is not None and keep:
        say(
            f"istiod: pilot-discovery (pid {installed.host_istiod.pid}) keeps serving the kept cluster's webhooks "
            "until `meshcharts cluster down`"
        )
    return installed
