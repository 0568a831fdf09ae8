"""The toolchain registry, cache layout and atomic builds, with fake builders instead of `go build`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meshcharts import tools
from meshcharts.errors import ToolError
from meshcharts.waits import wait_for
from tests import REPO

MODULES = REPO / "generator" / "meshcharts" / "data" / "toolchain"


# --- registry ---------------------------------------------------------------------------------------


def test_every_build_names_a_committed_wrapper_module_whose_go_mod_declares_its_packages() -> None:
    for build in tools.builds():
        go_mod = (MODULES / build.module / "go.mod").read_text()
        assert (MODULES / build.module / "go.sum").is_file(), build.module
        for binary in build.binaries:
            assert re.search(rf"^\s*(tool\s+)?{re.escape(binary.package)}\s*$", go_mod, re.M), (
                f"{build.module}/go.mod has no tool line for {binary.package}"
            )


def test_tool_names_are_unique_and_cover_the_toolchain() -> None:
    names = tools.tool_names()
    assert len(names) == len(set(names))
    assert set(names) == {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "etcd",
        "kwok",
        "kwokctl",
        "helm",
        "helm3",
        "kind",
        "ct",
        "actionlint",
        "istioctl",
        "pilot-discovery",
        "cosign",
    }


def test_builds_of_several_binaries_name_each_after_its_package_as_go_build_o_dir_does() -> None:
    for build in tools.builds():
        if len(build.binaries) > 1:
            for binary in build.binaries:
                assert binary.file == binary.package.rsplit("/", 1)[1]


def test_kubernetes_is_stamped_for_server_and_client_version() -> None:
    flags = " ".join(tools.build_for("kube-apiserver").ldflags)
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {pkg}.gitVersion=v1.36.3" in flags
        assert f"-X {pkg}.gitMajor=1" in flags
        assert f"-X {pkg}.gitMinor=36" in flags


def test_helm_versions_are_stamped_into_their_internal_version_package() -> None:
    assert "-X helm.sh/helm/v4/internal/version.version=v4.3.1" in tools.build_for("helm").ldflags
    assert "-X helm.sh/helm/v3/internal/version.version=v3.22.0" in tools.build_for("helm3").ldflags


def test_a_second_kubernetes_release_is_added_by_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "KUBERNETES_RELEASES", {**tools.KUBERNETES_RELEASES, "v1.34.6": "kubernetes-1.34"})
    build = tools.build_for("kube-scheduler", "v1.34.6")
    assert (build.dirname, build.module) == ("kubernetes-v1.34.6", "kubernetes-1.34")
    assert "-X k8s.io/component-base/version.gitMinor=34" in build.ldflags
    assert build.binary("kubectl").expect == "Client Version: v1.34.6"
    assert tools.build_for("helm", "v1.34.6") == tools.build_for("helm")


def test_kubernetes_1_34_is_a_second_release_with_its_own_module_and_stamp() -> None:
    build = tools.build_for("kube-apiserver", "v1.34.4")
    assert (build.dirname, build.module) == ("kubernetes-v1.34.4", "kubernetes-1.34")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in build.ldflags
    go_mod = (MODULES / "kubernetes-1.34" / "go.mod").read_text()
    assert re.search(r"^\s*k8s\.io/kubernetes v1\.34\.4\b", go_mod, re.M)
    staging = re.findall(r"^\s*(k8s\.io/[\w-]+) => \1 (v\S+)$", go_mod, re.M)
    assert len(staging) == 31
    assert {version for _, version in staging} == {"v0.34.4"}
    assert tools.build_for("helm", "v1.34.4") == tools.build_for("helm"), "only Kubernetes differs per release"


def test_outside_linters_are_pinned_and_ct_carries_its_chart_schema() -> None:
    ct = tools.build_for("ct")
    assert (ct.version, ct.module) == ("v3.14.0", "ct")
    assert "-X github.com/helm/chart-testing/v3/ct/cmd.Version=v3.14.0" in ct.ldflags
    assert [(d.module, d.path) for d in ct.data] == [("github.com/helm/chart-testing/v3", "etc/chart_schema.yaml")]
    actionlint = tools.build_for("actionlint")
    assert actionlint.version == "v1.7.12"
    assert "-X github.com/rhysd/actionlint.version=v1.7.12" in actionlint.ldflags
    cosign = tools.build_for("cosign")
    assert cosign.version == "v2.6.5"
    assert "-X sigs.k8s.io/release-utils/version.gitVersion=v2.6.5" in cosign.ldflags


def test_istioctl_is_the_istio_module_the_proxy_serves_stamped_with_that_version() -> None:
    build = tools.build_for("istioctl")
    version = "v0.0.0-20260827124520-eed52ebb66ad"
    assert (build.version, build.module) == (version, "istioctl")
    assert f"-X istio.io/istio/pkg/version.buildVersion={version.removeprefix('v')}" in build.ldflags
    assert build.binary("istioctl").version_args == ("version", "--remote=false")
    go_mod = (MODULES / "istioctl" / "go.mod").read_text()
    assert re.search(rf"^\s*istio\.io/istio {re.escape(version)}\b", go_mod, re.M)
    assert "replace" not in go_mod


def test_pilot_discovery_is_built_from_the_same_istio_module_as_istioctl() -> None:
    """The real istiod the tests run and the injection oracle's istioctl are one Istio, so no skew between them."""
    pilot, istioctl = tools.build_for("pilot-discovery"), tools.build_for("istioctl")
    assert (pilot.version, pilot.module) == (istioctl.version, "pilot-discovery")
    assert pilot.ldflags == istioctl.ldflags
    assert pilot.binary("pilot-discovery").package == "istio.io/istio/pilot/cmd/pilot-discovery"
    requirement = re.compile(rf"^\s*istio\.io/istio {re.escape(istioctl.version)}\b", re.M)
    for module in ("pilot-discovery", "istioctl"):
        assert requirement.search((MODULES / module / "go.mod").read_text()), module
    assert "tool istio.io/istio/pilot/cmd/pilot-discovery" in (MODULES / "pilot-discovery" / "go.mod").read_text()


def test_unknown_kubernetes_release_and_unknown_tool_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ToolError, match=r"Kubernetes v1\.99\.0; known versions: v1\.30\.4, v1\.34\.4, v1\.36\.3"):
        tools.builds("v1.99.0")
    with pytest.raises(ToolError, match="unknown tool 'kubelet'; known tools: kube-apiserver"):
        tools.build_for("kubelet")


def test_go_build_argv_is_trimmed_readonly_without_debug_info_and_names_one_file_or_a_directory(tmp_path: Path) -> None:
    single = tools.go_build_argv("go", tools.build_for("helm3"), tmp_path)
    assert single[:5] == ["go", "build", "-trimpath", "-mod=readonly", "-gcflags=all=-dwarf=false"]
    assert single[single.index("-o") + 1] == str(tmp_path / "helm")
    assert single[-1] == "helm.sh/helm/v3/cmd/helm"
    multi = tools.go_build_argv("go", tools.build_for("kwok"), tmp_path)
    assert multi[multi.index("-o") + 1] == f"{tmp_path}{os.sep}"
    assert multi[-2:] == ["sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok/cmd/kwokctl"]


# --- cache layout -----------------------------------------------------------------------------------


def test_cache_root_prefers_meshcharts_cache_then_xdg_then_home(tmp_path: Path) -> None:
    assert tools.cache_root({"MESHCHARTS_CACHE": str(tmp_path / "m"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "m"
    assert tools.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "meshcharts"
    assert tools.cache_root({}) == Path.home() / ".cache" / "meshcharts"


def test_binaries_live_under_a_directory_keyed_by_build_and_version(tmp_path: Path) -> None:
    chain = tools.Toolchain(tmp_path)
    kubectl = tools.build_for("kubectl")
    assert chain.bin_dir(kubectl) == tmp_path / "toolchain" / "kubernetes-v1.36.3" / "bin"
    assert chain.bin_dir(tools.build_for("helm3")) == tmp_path / "toolchain" / "helm-v3.22.0" / "bin"
    assert chain.bin_dir(tools.build_for("helm")) == tmp_path / "toolchain" / "helm-v4.3.1" / "bin"
    assert chain.kubernetes_bin_dir() == chain.bin_dir(kubectl)


def test_path_of_a_missing_tool_says_which_command_builds_it(tmp_path: Path) -> None:
    with pytest.raises(
        ToolError, match=r"kubectl v1\.36\.3 is not built in .*; run `meshcharts tools install kubectl`"
    ):
        tools.path("kubectl", cache=tmp_path)


def test_path_for_another_kubernetes_release_names_it_in_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "KUBERNETES_RELEASES", {**tools.KUBERNETES_RELEASES, "v1.34.6": "kubernetes-1.34"})
    with pytest.raises(ToolError, match=r"install kubectl --k8s-version v1\.34\.6`"):
        tools.path("kubectl", k8s_version="v1.34.6", cache=tmp_path)


# --- atomic builds with fake builders ---------------------------------------------------------------


def _fake_binary(path: Path, output: str) -> None:
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def _honest_builder(calls: list[str]) -> tools.Builder:
    def build(build: tools.Build, module_dir: Path, out: Path, progress: tools.ProgressCallback) -> None:
        calls.append(build.dirname)
        for binary in build.binaries:
            _fake_binary(out / binary.file, f"{binary.name} {binary.expect}")

    return build


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    """A private copy of the wrapper modules' go.mod/go.sum, so a test may edit them."""
    copy = tmp_path / "modules"
    for build in tools.builds():
        (copy / build.module).mkdir(parents=True, exist_ok=True)
        for name in ("go.mod", "go.sum"):
            shutil.copy(MODULES / build.module / name, copy / build.module / name)
    return copy


def test_install_builds_once_then_reads_only_stamps(tmp_path: Path, modules: Path) -> None:
    cache = tmp_path / "cache"
    calls: list[str] = []
    events: list[tools.Progress] = []
    paths = tools.install(
        ["helm", "kwokctl"],
        cache=cache,
        modules=modules,
        builder=_honest_builder(calls),
        progress=events.append,
    )
    assert calls == ["helm-v4.3.1", "kwok-v0.8.0"]
    assert paths == {
        "helm": cache / "toolchain" / "helm-v4.3.1" / "bin" / "helm",
        "kwokctl": cache / "toolchain" / "kwok-v0.8.0" / "bin" / "kwokctl",
    }
    assert (cache / "toolchain" / "helm-v4.3.1" / tools.STAMP).is_file()
    assert [e.step for e in events if e.tool == "helm-v4.3.1"][-1] == "done"

    events.clear()
    tools.install(
        ["helm", "kwokctl"],
        cache=cache,
        modules=modules,
        builder=_honest_builder(calls),
        progress=events.append,
    )
    assert calls == ["helm-v4.3.1", "kwok-v0.8.0"], "a warm install must not build again"
    assert {e.step for e in events} == {"cached"}


def test_a_build_with_data_files_is_finished_only_with_them(
    tmp_path: Path, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[str] = []

    def fake_copy(build: tools.Build, module_dir: Path, share: Path) -> None:
        share.mkdir(parents=True)
        for data in build.data:
            copied.append(data.path)
            (share / data.name).write_text("schema\n")

    monkeypatch.setattr(tools, "copy_data", fake_copy)
    calls: list[str] = []
    tools.install(["ct"], cache=tmp_path, modules=modules, builder=_honest_builder(calls))
    schema = tools.data_path("ct", "chart_schema.yaml", cache=tmp_path)
    assert schema == tmp_path / "toolchain" / "ct-v3.14.0" / "share" / "chart_schema.yaml"
    assert copied == ["etc/chart_schema.yaml"]
    schema.unlink()
    tools.install(["ct"], cache=tmp_path, modules=modules, builder=_honest_builder(calls))
    assert calls == ["ct-v3.14.0", "ct-v3.14.0"], "a build missing its data file is rebuilt"


def test_a_changed_go_sum_makes_the_cached_build_stale(tmp_path: Path, modules: Path) -> None:
    calls: list[str] = []
    tools.install(["kind"], cache=tmp_path, modules=modules, builder=_honest_builder(calls))
    with (modules / "kind" / "go.sum").open("a") as go_sum:
        go_sum.write("example.com/changed v1.0.0 h1:AAAA=\n")
    tools.install(["kind"], cache=tmp_path, modules=modules, builder=_honest_builder(calls))
    assert calls == ["kind-v0.33.0", "kind-v0.33.0"]
    assert sorted(p.name for p in (tmp_path / "toolchain").iterdir()) == [".lock", "kind-v0.33.0"]


def test_a_build_that_fails_midway_leaves_nothing_that_looks_finished(tmp_path: Path, modules: Path) -> None:
    def half_then_fail(build: tools.Build, module_dir: Path, out: Path, progress: tools.ProgressCallback) -> None:
        _fake_binary(out / "kube-apiserver", "Kubernetes v1.36.3")
        raise ToolError("linker killed")

    with pytest.raises(ToolError, match="linker killed"):
        tools.install(["kube-apiserver"], cache=tmp_path, modules=modules, builder=half_then_fail)
    with pytest.raises(ToolError, match="not built"):
        tools.path("kube-apiserver", cache=tmp_path)
    assert [p.name for p in (tmp_path / "toolchain").iterdir()] == [".lock"]


def test_a_binary_reporting_another_version_is_rejected_and_not_installed(tmp_path: Path, modules: Path) -> None:
    def wrong_version(build: tools.Build, module_dir: Path, out: Path, progress: tools.ProgressCallback) -> None:
        _fake_binary(out / "helm", 'version.BuildInfo{Version:"v4.3"}')

    with pytest.raises(ToolError, match=r"without 'Version:\"v4\.3\.1\"'"):
        tools.install(["helm"], cache=tmp_path, modules=modules, builder=wrong_version)
    assert not (tmp_path / "toolchain" / "helm-v4.3.1").exists()


def test_a_build_killed_mid_write_is_not_taken_as_finished_and_is_cleaned_next_time(
    tmp_path: Path, modules: Path
) -> None:
    """SIGKILL an installer while its builder is writing a binary: no finished-looking binary survives."""
    started = tmp_path / "started"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from meshcharts import tools

        def slow(build, module_dir, out, progress):
            (out / "etcd").write_text("#!/bin/sh\\necho half")
            Path({str(started)!r}).touch()
            time.sleep(60)

        tools.install(["etcd"], cache=Path({str(tmp_path)!r}), modules=Path({str(modules)!r}), builder=slow)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:

        def building() -> bool:
            assert proc.poll() is None, "the installer exited early"
            return started.exists()

        wait_for(building, what="the installer to start its build", timeout=30, interval=0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert list((tmp_path / "toolchain").glob(".tmp-etcd-*")), "the interrupted build's temp dir should remain"
    with pytest.raises(ToolError, match="not built"):
        tools.path("etcd", cache=tmp_path)

    calls: list[str] = []
    tools.install(["etcd"], cache=tmp_path, modules=modules, builder=_honest_builder(calls))
    assert calls == ["etcd-v3.6.16"]
    assert not list((tmp_path / "toolchain").glob(".tmp-*"))


def test_verify_runs_the_version_command_and_returns_its_first_line(tmp_path: Path) -> None:
    binary = tools.build_for("etcd").binary("etcd")
    _fake_binary(tmp_path / "etcd", "etcd Version: 3.6.16")
    assert tools.verify(binary, tmp_path / "etcd") == "etcd Version: 3.6.16"
    _fake_binary(tmp_path / "etcd", "etcd Version: 3.4.23")
    with pytest.raises(ToolError, match=r"etcd Version: 3\.4\.23"):
        tools.verify(binary, tmp_path / "etcd")


def test_each_job_names_tools_and_kubernetes_releases_the_toolchain_builds() -> None:
    """tools.JOBS is the one list of what a job needs; .ci/setup and .ci/test read it instead of naming tools or
    Kubernetes releases themselves."""
    names = {b.name for build in tools.builds(tools.DEFAULT_KUBERNETES) for b in build.binaries}
    for name, job in tools.JOBS.items():
        assert set(job.tools) <= names, (name, set(job.tools) - names)
        assert job.kubernetes[0] == tools.DEFAULT_KUBERNETES, name
        assert set(job.kubernetes) <= set(tools.KUBERNETES_RELEASES), name
    assert set(tools.LOCAL_CLUSTER_TOOLS) <= set(tools.JOBS["main"].tools)
    for script in (".ci/setup", ".ci/test"):
        text = (REPO / script).read_text()
        assert "--job" in text or "tools kubernetes ci" in text, script
        for version in tools.KUBERNETES_RELEASES:
            assert version not in text, f"{script} names Kubernetes {version}; read it from tools.JOBS"
