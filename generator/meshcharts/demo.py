"""The main job's flow: check the committed release, serve it, and install base, istiod and gateway from it.

1. Release check, without the private key: `meshcharts release` runs on a scratch copy of the
   repository, for the base line (charts/) and every later line (lines/<line>/). Every version there
   is already published, so it must package, sign and index nothing (the archives are
   byte-reproducible); `index --verify` and `helm verify` with the published public key
   (meshcharts.asc) must pass. A chart changed without a version bump, or a new version nobody
   released, stops the flow here with the reason.
2. The scratch repository is served on 127.0.0.1 (a free port), added with `helm repo add` under a
   Helm home of its own, listed with `helm search repo --versions`, and base, istiod and gateway
   are installed from it with `--verify`.
3. On a local (kwok) cluster pods do not really run, so istiod cannot answer its own admission
   webhooks. The charts' webhook URLs then point at the admission recorder, which stands in for
   istiod's webhook server on loopback; this is said in the output. On a cluster whose pods run
   (`recorder=False`), istiod answers its webhooks itself.

The flow prints nothing itself: progress goes to `say`, and what the user asked to see (the search
result, `helm list`, `kubectl get`) to `out`; the command line decides where each goes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import index as index_mod
from meshcharts import repo, tools
from meshcharts.errors import ClusterError, RepoError
from meshcharts.helm import Helm
from meshcharts.kube import kube_for
from meshcharts.paths import Layout

Say = Callable[[str], None]

REPO_NAME = "meshcharts"
ISTIO_NS = "istio-system"
GATEWAY_NS = "istio-ingress"
GATEWAY_RELEASE = "istio-ingressgateway"
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


@dataclass
class Installed:
    """What the flow installed and saw."""

    repository_url: str
    search: str
    releases: list[tuple[str, str, str]] = field(default_factory=list)  # (release, chart, namespace)
    gateway_address: str = ""


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


@contextmanager
def webhook_recorder(enabled: bool, say: Say) -> Iterator[Any]:
    """The admission recorder on loopback while the flow runs (None when istiod answers its own webhooks)."""
    if not enabled:
        yield None
        return
    from meshcharts.testing.admission import AdmissionRecorder

    with AdmissionRecorder() as recorder:
        say(
            f"webhooks: pods do not run on this cluster, so istiod's injection and validation webhooks are "
            f"answered by the meshcharts admission recorder at {recorder.base_url} (it allows every request)"
        )
        yield recorder


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
    recorder: Any = None,
    helm_major: int = 4,
    timeout: float = 180.0,
) -> Installed:
    """Serve `layout` on loopback, helm repo add/search, install base, istiod and gateway with --verify."""
    from meshcharts.testing import waits
    from meshcharts.testing.admission import patch_ca_bundle

    helm = Helm(major=helm_major, kubeconfig=kubeconfig).with_home(workdir / "helm-home")
    kube = kube_for(kubeconfig)
    server = repo.serve(layout.root, port=0, background=True)
    try:
        say(f"serving the repository at {server.url}")
        helm.run(["repo", "add", REPO_NAME, server.url])
        search = helm.run(["search", "repo", f"{REPO_NAME}/", "--versions"])
        result = Installed(server.url, search)
        verify = ("--verify", "--keyring", str(keyring))

        def install(release: str, chart: str, namespace: str, values: dict[str, Any]) -> None:
            say(f"installing {REPO_NAME}/{chart} as {namespace}/{release} (helm install --verify)")
            helm.install(
                release,
                f"{REPO_NAME}/{chart}",
                namespace=namespace,
                values=_values(workdir / f"{chart}-values.yaml", values),
                wait=True,
                timeout=timeout,
                extra=verify,
            )
            result.releases.append((release, chart, namespace))

        base: dict[str, Any] = {}
        istiod: dict[str, Any] = {}
        if recorder is not None:
            base = {"base": {"validationURL": recorder.url("/validate/default")}}
            istiod = {
                "istiodRemote": {"injectionURL": recorder.url("/inject/default")},
                "base": {"validationURL": recorder.url("/validate/default")},
            }
        install("istio-base", "base", ISTIO_NS, base)
        if recorder is not None:
            patch_ca_bundle(kube.api_client, "ValidatingWebhookConfiguration", "istiod-default-validator", recorder)
        install("istiod", "istiod", ISTIO_NS, istiod)
        if recorder is not None:
            patch_ca_bundle(kube.api_client, "MutatingWebhookConfiguration", "istio-sidecar-injector", recorder)
            patch_ca_bundle(kube.api_client, "ValidatingWebhookConfiguration", f"istio-validator-{ISTIO_NS}", recorder)
        waits.deployment_available(kube.apps, ISTIO_NS, "istiod", timeout=timeout)
        install(GATEWAY_RELEASE, "gateway", GATEWAY_NS, {})
        waits.deployment_available(kube.apps, GATEWAY_NS, GATEWAY_RELEASE, timeout=timeout)
        if recorder is not None and not recorder.requests(path="/inject/default", kind="Pod", namespace=GATEWAY_NS):
            raise ClusterError(f"the gateway's pods in {GATEWAY_NS} never reached the injection webhook")
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
    recorder: bool = True,
    keep: bool = False,
    helm_major: int = 4,
) -> Installed:
    """The whole flow for `./run.sh`: release check, serve, repo add, install, show what runs.

    `say` gets progress, `out` (default: `say`) what is shown: the search result and the tables."""
    out = out or say
    helm = Helm(major=helm_major)
    layout, keyring = check_release(source, workdir, helm.with_home(workdir / "helm-home"), say)
    with ExitStack() as stack:
        rec = stack.enter_context(webhook_recorder(recorder, say))
        installed = install_from_repository(
            layout, keyring, kubeconfig, workdir, say, recorder=rec, helm_major=helm_major
        )
        say(f"helm search repo {REPO_NAME}/ --versions (served at {installed.repository_url}):")
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
        if rec is not None:
            injected = rec.requests(path="/inject/default", kind="Pod")
            say(
                f"webhooks: the recorder answered {len(injected)} pod injection request(s) standing in for istiod; "
                "it marks each such pod and does not inject, so the gateway's image stays `auto` (istiod would inject "
                "proxyv2); the local cluster runs an `auto` pod only with that mark"
            )
            if keep:
                say(
                    "webhooks: the recorder stops with this command. The injection webhook has failurePolicy "
                    "Fail, so on the kept cluster new gateway pods (and pods in injection-enabled namespaces) "
                    "are refused until istiod answers there; uninstall with "
                    f"`helm uninstall {GATEWAY_RELEASE} -n {GATEWAY_NS}` or take the cluster down."
                )
    return installed
