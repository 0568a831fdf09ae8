"""The `meshcharts` command: the only place that prints for the user and picks exit codes."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshcharts.errors import MeshchartsError, UsageError

if TYPE_CHECKING:
    from meshcharts.paths import Layout
    from meshcharts.tools import Progress

Handler = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _show(text: str) -> None:
    """What the user asked to see (tables, listings) goes to stdout; progress goes to stderr."""
    print(text, flush=True)


def _line(layout: Layout, line: str | None) -> Layout:
    """The release line `line` of the tree (None: the base line, charts/); a usage error names the known ones."""
    if line is None:
        return layout
    if line not in layout.lines():
        known = ", ".join(layout.lines()) or "none"
        raise UsageError(f"no release line {line!r} (generator/lines/{line}/line.yaml); known lines: {known}")
    return layout.for_line(line)


def _cmd_generate(args: argparse.Namespace) -> int:
    from meshcharts import write
    from meshcharts.paths import find_root

    layout = find_root()
    trees = ", ".join(line.charts_label for line in layout.every_line())
    if args.check:
        drift = write.check_all(layout)
        if drift:
            sys.stdout.write(drift)
            _say(
                f"generated charts differ from what generator/specs (and generator/lines) render ({trees}); "
                "run `meshcharts generate` to update them"
            )
            return 1
        _say(f"{trees} match generator/specs and generator/lines")
        return 0
    for label, changed in write.generate_all(layout).items():
        _say(f"generated {label}: {len(changed)} file(s) changed" + "".join(f"\n  {p}" for p in changed))
    return 0


# Where `meshcharts lint` keeps renders of published archives (lint.archive_render_key names each), in the cache.
LINT_RENDERS = "lint-renders"


def _cmd_lint(args: argparse.Namespace) -> int:
    from meshcharts import lint, tools
    from meshcharts.errors import LintError
    from meshcharts.helm import Helm
    from meshcharts.paths import find_root
    from meshcharts.spec import CHART_NAMES

    charts = [args.chart] if args.chart else list(CHART_NAMES)
    cache = None if args.no_render_cache else tools.cache_root() / LINT_RENDERS
    report = lint.run(find_root(), charts=charts, helm=Helm(major=args.helm), render_cache=cache)
    for line in report.compared:
        _say(f"compared {line}")
    for note in report.notes:
        _say(f"note: {note}")
    if report.findings:
        raise LintError(report.findings)
    _say(f"lint: no findings in {', '.join(charts)}")
    return 0


def _progress_line(event: Progress) -> None:
    _say(f"  {event}")


def _cmd_tools_install(args: argparse.Namespace) -> int:
    from meshcharts import tools

    start = time.monotonic()
    events: list[Progress] = []

    def report(event: Progress) -> None:
        events.append(event)
        if event.step != "cached":
            _progress_line(event)

    if args.job:
        if args.names:
            raise UsageError(f"give tool names or --job {args.job}, not both")
        job = tools.JOBS[args.job]
        paths = tools.install(job.tools, k8s_version=job.kubernetes[0], progress=report)
        for version in job.kubernetes[1:]:
            extra = tools.install(tools.KUBERNETES_COMPONENTS, k8s_version=version, progress=report)
            paths.update({f"{name} ({version})": path for name, path in extra.items()})
    else:
        paths = tools.install(args.names, k8s_version=args.k8s_version, progress=report)
    built = any(e.step == "done" for e in events)
    where = tools.cache_root() / "toolchain"
    _say(f"toolchain {'built' if built else 'up to date'} in {where} ({time.monotonic() - start:.1f}s)")
    if built:
        for name, path in paths.items():
            _say(f"  {name:<24} {path}")
    return 0


def _cmd_tools_kubernetes(args: argparse.Namespace) -> int:
    from meshcharts import tools

    print("\n".join(tools.JOBS[args.job].kubernetes))
    return 0


def _cmd_tools_path(args: argparse.Namespace) -> int:
    from meshcharts import tools

    print(tools.path(args.name, k8s_version=args.k8s_version))
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    from pathlib import Path

    from meshcharts import cluster

    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    if args.cluster_command == "up":
        up = cluster.up(
            args.name,
            provider=args.provider,
            kubeconfig=kubeconfig,
            nodes=args.nodes,
            timeout=args.timeout,
            api_port=args.api_port,
            k8s_version=args.k8s_version,
            image=args.image,
            say=_say,
        )
        print(up.kubeconfig)
    elif args.cluster_command == "down":
        cluster.down(args.name, provider=args.provider, timeout=args.timeout, say=_say)
    elif args.cluster_command == "prune":
        pruned = cluster.prune(timeout=args.timeout, say=_say)
        _say(f"pruned {len(pruned)} local cluster(s){': ' + ', '.join(pruned) if pruned else ''}")
    else:
        print(cluster.kubeconfig_path(args.name, provider=args.provider, kubeconfig=kubeconfig))
    return 0


def _add_cluster_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from meshcharts import cluster, tools

    cmd = sub.add_parser("cluster", help="bring a cluster for tests or a demo up or down")
    actions = cmd.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    helps = {
        "up": "bring a cluster up; prints its kubeconfig path once nodes are Ready",
        "down": "take a cluster down, leaving no process or port behind",
        "kubeconfig": "print the kubeconfig path of a cluster",
        "prune": "take down local clusters whose owner (a test run) is gone or whose processes died",
    }
    for action, text in helps.items():
        p = actions.add_parser(action, help=text)
        if action == "prune":
            p.add_argument("--timeout", type=float, default=60.0, help="seconds per cluster (default: %(default)s)")
            p.set_defaults(handler=_cmd_cluster, kubeconfig=None)
            continue
        p.add_argument("--name", default=cluster.DEFAULT_NAME, help="cluster name (default: %(default)s)")
        p.add_argument("--provider", choices=list(cluster.PROVIDERS), default="local", help="default: %(default)s")
        if action != "down":
            p.add_argument("--kubeconfig", help="kubeconfig of the cluster (provider existing only)")
        else:
            p.set_defaults(kubeconfig=None)
        if action == "up":
            p.add_argument("--nodes", type=int, default=cluster.DEFAULT_NODES, help="default: %(default)s")
            p.add_argument("--api-port", type=int, help="kube-apiserver port (local; default: a free port)")
            p.add_argument(
                "--k8s-version",
                default=tools.DEFAULT_KUBERNETES,
                help="Kubernetes version: a toolchain release for local (built with `tools install --k8s-version`), "
                "a minor (1.N) for kind (default: %(default)s)",
            )
            p.add_argument(
                "--image", help="kindest/node image for every node (kind only; default: data/kind/node-images.yaml)"
            )
        if action != "kubeconfig":
            p.add_argument("--timeout", type=float, default=120.0, help="seconds (default: %(default)s)")
        p.set_defaults(handler=_cmd_cluster)


def _cmd_package(args: argparse.Namespace) -> int:
    from meshcharts import repo
    from meshcharts.paths import find_root

    layout = _line(find_root(), args.line)
    results = repo.package_all(layout)
    for result in results:
        _say(f"packaged {result.archive.relative_to(layout.root)}")
    if not results:
        _say(f"every chart version in {layout.charts_label} is already packaged with identical bytes")
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from meshcharts import index
    from meshcharts.paths import find_root

    layout = find_root()
    if args.verify:
        fetch = None
        if args.url:
            import urllib.request

            base = args.url.rstrip("/") + "/"

            def fetch(url: str) -> bytes:
                target = url if "://" in url else base + url
                with urllib.request.urlopen(target, timeout=30) as response:
                    return bytes(response.read())

        problems = index.verify(layout.root, layout.index, fetch)
        for problem in problems:
            _say(f"  {problem}")
        _say(
            f"index.yaml: {len(problems)} problem(s)"
            if problems
            else "index.yaml: every URL resolves and every digest matches"
        )
        return 1 if problems else 0
    result = index.merge(layout.root, sorted(layout.packages.glob("*.tgz")), index_path=layout.index, fmt=args.format)
    _say(f"index.yaml: added {', '.join(result.added)}" if result.added else "index.yaml: up to date, unchanged")
    return 0


def _sign_key(args: argparse.Namespace) -> str | None:
    import os

    return args.sign_key or os.environ.get("MESHCHARTS_SIGN_KEY") or None


def _cmd_release(args: argparse.Namespace) -> int:
    from pathlib import Path

    from meshcharts import repo
    from meshcharts.paths import find_root

    layout = _line(find_root(), args.line)
    report = repo.release(
        layout, sign_key=_sign_key(args), gnupg_home=Path(args.gnupg_home) if args.gnupg_home else None
    )
    for path in report.packaged:
        _say(f"packaged {path.relative_to(layout.root)}")
    for path in report.signed:
        _say(f"signed   {path.relative_to(layout.root)}")
    _say(f"indexed  {', '.join(report.indexed)}" if report.indexed else "index.yaml unchanged: nothing new to publish")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from meshcharts import repo
    from meshcharts.paths import find_root

    server = repo.serve(find_root().root, host=args.host, port=args.port)
    _say(f"serving the chart repository at {server.url} (helm repo add meshcharts {server.url}); Ctrl-C stops")
    try:
        server.httpd.serve_forever()
    finally:
        server.httpd.server_close()
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from meshcharts import repo
    from meshcharts.helm import Helm
    from meshcharts.paths import find_root

    key = args.cosign_key or os.environ.get("MESHCHARTS_COSIGN_KEY") or None
    if not (key or args.keyless or args.unsigned):
        raise UsageError(
            "push signs every chart with cosign: pass --cosign-key KEY (or set MESHCHARTS_COSIGN_KEY; "
            "COSIGN_PASSWORD unlocks it), --keyless in CI with an OIDC token, or --unsigned to push unsigned"
        )
    if sum((bool(key), args.keyless, args.unsigned)) > 1:
        raise UsageError("choose one of --cosign-key (or MESHCHARTS_COSIGN_KEY), --keyless and --unsigned")
    layout = find_root()
    signing = repo.Signing(key=key, keyless=args.keyless)
    pushed = repo.push(layout, args.ref, Helm(major=args.helm), signing=signing, plain_http=args.plain_http)
    for line in pushed:
        _say(f"pushed {line}")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from meshcharts import scan
    from meshcharts.errors import LintError
    from meshcharts.helm import Helm
    from meshcharts.paths import find_root
    from meshcharts.spec import CHART_NAMES

    charts = [args.chart] if args.chart else list(CHART_NAMES)
    report = scan.scan(find_root(), Helm(major=args.helm), charts=charts)
    for finding, suppression in report.suppressed if args.show_suppressed else []:
        _say(f"suppressed {finding} ({suppression.reason})")
    _say(report.summary())
    if report.unchecked_note():
        _say(report.unchecked_note())
    if report.findings or report.unused:
        raise LintError([*(f.problem() for f in report.findings), *report.unused])
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from meshcharts import repo
    from meshcharts.paths import find_root

    for line in repo.verify_oci(find_root(), args.ref, key=args.key, plain_http=args.plain_http):
        _say(f"verified {line}")
    return 0


def _cmd_adopt_crds(args: argparse.Namespace) -> int:
    from pathlib import Path

    from meshcharts import adopt, crds
    from meshcharts.kube import kube_for
    from meshcharts.paths import find_root

    kubeconfig = Path(args.kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    names = [t.name for t in crds.load_api_types(find_root().specs / "crds")]
    result = adopt.adopt_crds(kube_for(kubeconfig).ext, names, release=args.release, namespace=args.namespace)
    for name in result.adopted:
        _say(f"adopted {name} into release {args.namespace}/{args.release}")
    _say(
        f"{len(result.adopted)} adopted, {len(result.already)} already owned by the release, "
        f"{len(result.absent)} not in the cluster (the chart will create them)"
    )
    return 0


def _cmd_mapkubeapis(args: argparse.Namespace) -> int:
    from pathlib import Path

    from meshcharts import mapkubeapis
    from meshcharts.kube import api_client

    kubeconfig = Path(args.kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    result = mapkubeapis.map_release(api_client(kubeconfig), args.release, args.namespace, dry_run=args.dry_run)
    for line in (*result.mapped, *result.kept):
        _say(f"{args.namespace}/{args.release} revision {result.revision}: {line}")
    if result.new_revision is None:
        _say(f"dry run: {len(result.mapped)} object(s) would be rewritten; nothing changed")
    else:
        _say(
            f"stored revision {result.new_revision} of {args.namespace}/{args.release}; "
            f"revision {result.revision} is superseded"
        )
    return 0


def _istiod_runner(cluster_name: str | None) -> Any:
    """For `demo --cluster NAME`: the local provider's runner of the chart's istiod Deployment on this host for
    local cluster NAME; without it, the Deployment's own pod answers (kind, an existing cluster)."""
    from meshcharts import cluster

    if not cluster_name:
        return None
    local = cluster.get_provider("local")
    if not local.exists(cluster_name):
        from meshcharts.errors import UsageError

        raise UsageError(f"--cluster {cluster_name}: no local cluster of that name (see `meshcharts cluster up`)")
    return local.istiod_runner(cluster_name)


def _cmd_demo(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from meshcharts import demo
    from meshcharts.errors import UsageError
    from meshcharts.paths import find_root

    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG")
    if not kubeconfig:
        raise UsageError("no cluster: pass --kubeconfig or set KUBECONFIG (e.g. from `meshcharts cluster up`)")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meshcharts-demo-") as tmp:
        installed = demo.run(
            find_root(),
            Path(kubeconfig),
            Path(tmp),
            _say,
            out=_show,
            runner=_istiod_runner(args.cluster),
            keep=args.keep,
            helm_major=args.helm,
        )
    _say(
        f"demo: base, istiod and gateway {installed.version} installed from the served repository in "
        f"{time.monotonic() - start:.1f}s"
    )
    return 0


def _add_repo_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pkg = sub.add_parser("package", help="archive chart versions not yet published; never change a published one")
    pkg.add_argument("--line", help="package this line's lines/<LINE>/ (default: the base line, charts/)")
    pkg.set_defaults(handler=_cmd_package)
    idx = sub.add_parser("index", help="merge packages/ into index.yaml, keeping existing entries byte-stable")
    idx.add_argument("--verify", action="store_true", help="check every URL resolves and every digest matches")
    idx.add_argument("--url", help="with --verify: fetch through this repository URL instead of the files")
    idx.add_argument(
        "--format",
        choices=("json", "yaml"),
        default=None,
        help="how to write index.yaml (default: keep its format; a new index is JSON, which Helm "
        "reads as YAML and parses much faster)",
    )
    idx.set_defaults(handler=_cmd_index)
    rel = sub.add_parser("release", help="generate --check, package, sign and index in one step")
    rel.add_argument("--sign-key", help="GnuPG key to sign with (default: $MESHCHARTS_SIGN_KEY)")
    rel.add_argument("--gnupg-home", help="GnuPG home holding the key (default: gpg's own)")
    rel.add_argument("--line", help="release this line's lines/<LINE>/ (default: the base line, charts/)")
    rel.set_defaults(handler=_cmd_release)
    srv = sub.add_parser("serve", help="serve the repository over HTTP for helm repo add")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    srv.add_argument("--port", type=int, default=8879, help="port (default: 8879)")
    srv.set_defaults(handler=_cmd_serve)
    push = sub.add_parser("push", help="push every published archive (and its .prov) to an OCI registry")
    push.add_argument("ref", help="oci://HOST/PATH")
    push.add_argument("--plain-http", action="store_true", help="talk HTTP to the registry (loopback tests)")
    push.add_argument("--helm", type=int, choices=(4, 3), default=4, help="Helm major version (default 4)")
    push.add_argument(
        "--cosign-key", help="cosign private key to sign each pushed chart with (default: $MESHCHARTS_COSIGN_KEY)"
    )
    push.add_argument("--keyless", action="store_true", help="sign keyless with CI's OIDC token (Fulcio, Rekor)")
    push.add_argument("--unsigned", action="store_true", help="push without a cosign signature")
    push.set_defaults(handler=_cmd_push)
    scn = sub.add_parser("scan", help="checkov over every render of the charts (default values and ci/values)")
    scn.add_argument("--chart", choices=("base", "istiod", "gateway"), help="only this chart")
    scn.add_argument("--show-suppressed", action="store_true", help="also list the suppressed findings")
    scn.add_argument("--helm", type=int, choices=(4, 3), default=4, help="Helm major version (default 4)")
    scn.set_defaults(handler=_cmd_scan)
    ver = sub.add_parser("verify", help="check the cosign signature of charts in an OCI registry")
    ver.add_argument("ref", help="oci://HOST/PATH (every version index.yaml lists) or oci://HOST/PATH/CHART:VERSION")
    ver.add_argument("--key", required=True, help="the cosign public key (cosign.pub) the charts were signed with")
    ver.add_argument("--plain-http", action="store_true", help="talk HTTP to the registry (loopback tests)")
    ver.set_defaults(handler=_cmd_verify)
    dem = sub.add_parser(
        "demo",
        help="check the committed release, serve it on loopback and install base, istiod and gateway from it",
    )
    dem.add_argument("--kubeconfig", help="the cluster to install into (default: $KUBECONFIG)")
    dem.add_argument(
        "--cluster",
        metavar="NAME",
        help="the local (kwok) cluster NAME the kubeconfig belongs to: its pods do not run, so the chart's istiod "
        "Deployment runs on this host as a real istiod (pilot-discovery). Without it, istiod's own pod answers",
    )
    dem.add_argument("--keep", action="store_true", help="the cluster is kept: say what stops working with it")
    dem.add_argument("--helm", type=int, choices=(4, 3), default=4, help="Helm major version (default 4)")
    dem.set_defaults(handler=_cmd_demo)
    adopt = sub.add_parser("adopt-crds", help="hand Istio CRDs created outside Helm to a base release, once")
    adopt.add_argument("--release", default="istio-base", help="the base chart's release name (default istio-base)")
    adopt.add_argument("--namespace", default="istio-system", help="the release's namespace (default istio-system)")
    adopt.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, then ~/.kube/config)")
    adopt.set_defaults(handler=_cmd_adopt_crds)
    mapk = sub.add_parser(
        "mapkubeapis",
        help="rewrite removed API versions (v1beta1 PDBs, v2beta* HPAs) in a Helm release's stored manifest",
    )
    mapk.add_argument("release", help="the Helm release's name")
    mapk.add_argument("--namespace", required=True, help="the release's namespace")
    mapk.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    mapk.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, then ~/.kube/config)")
    mapk.set_defaults(handler=_cmd_mapkubeapis)


def _cmd_merge_results(args: argparse.Namespace) -> int:
    from meshcharts import shards

    merged = shards.merge([Path(d) for d in args.shards], Path(args.out))
    passed = sum(r.outcome == "passed" for r in merged.paths)
    print(
        f"merged {len(args.shards)} shards into {args.out}: {passed}/{len(merged.paths)} upgrade paths passed, "
        f"{merged.testcases} test cases"
    )
    for path in merged.written:
        print(f"  {path}")
    return 0


def package_version() -> str:
    """The version of the meshcharts distribution that runs (its metadata, whether from a wheel or a checkout)."""
    try:
        return importlib.metadata.version("meshcharts")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (meshcharts is imported from a tree that was never installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshcharts",
        description="Generate, publish and test the Istio 1.12 Helm charts (base, istiod, gateway).",
    )
    parser.add_argument(
        "--version", action="version", version=f"meshcharts {package_version()}", help="the installed package's version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mrg = sub.add_parser(
        "merge-results",
        help="merge the upgrade reports and JUnit XML of a suite run in shards (pytest --splits N --group K)",
    )
    mrg.add_argument("--out", required=True, metavar="DIR", help="where the merged report and junit.xml go")
    mrg.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="each shard's --upgrade-report directory")
    mrg.set_defaults(handler=_cmd_merge_results)

    gen = sub.add_parser("generate", help="render generator/specs into charts/")
    gen.add_argument("--check", action="store_true", help="only diff a fresh render against charts/")
    gen.set_defaults(handler=_cmd_generate)

    from meshcharts.spec import CHART_NAMES

    lint_cmd = sub.add_parser(
        "lint",
        help="static gate: value usage, charts/ against the specs, upgrade compatibility with every published version",
    )
    lint_cmd.add_argument("--chart", choices=CHART_NAMES, help="lint only this chart (default: all)")
    lint_cmd.add_argument("--helm", type=int, choices=(4, 3), default=4, help="Helm major version (default 4)")
    lint_cmd.add_argument(
        "--no-render-cache",
        action="store_true",
        help="render every published archive again instead of reading earlier renders from <cache>/lint-renders",
    )
    lint_cmd.set_defaults(handler=_cmd_lint)

    from meshcharts.tools import DEFAULT_KUBERNETES, JOBS, KUBERNETES_RELEASES

    tools_cmd = sub.add_parser("tools", help="build or find the pinned toolchain (helm, kubectl, kwok, ...)")
    tools_sub = tools_cmd.add_subparsers(dest="tools_command", required=True, metavar="ACTION")
    install = tools_sub.add_parser("install", help="build missing tools into the cache (default: all)")
    install.add_argument("names", nargs="*", metavar="NAME", help="tools to build (default: every tool)")
    install.add_argument(
        "--k8s-version",
        default=DEFAULT_KUBERNETES,
        choices=sorted(KUBERNETES_RELEASES),
        help="Kubernetes release to build (default: %(default)s)",
    )
    install.add_argument(
        "--job",
        choices=sorted(JOBS),
        help="build what a job needs: main (./run.sh) or ci (.ci/test), each Kubernetes release it runs on",
    )
    install.set_defaults(handler=_cmd_tools_install)
    job = tools_sub.add_parser("kubernetes", help="print the Kubernetes releases a job runs on, one per line")
    job.add_argument("job", choices=sorted(JOBS))
    job.set_defaults(handler=_cmd_tools_kubernetes)
    where = tools_sub.add_parser("path", help="print the path of a built tool")
    where.add_argument("name", metavar="NAME")
    where.add_argument(
        "--k8s-version", default=DEFAULT_KUBERNETES, choices=sorted(KUBERNETES_RELEASES), help="Kubernetes release"
    )
    where.set_defaults(handler=_cmd_tools_path)

    _add_cluster_parser(sub)

    _add_repo_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MeshchartsError as err:
        _say(f"meshcharts {args.command}: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
