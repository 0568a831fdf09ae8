"""Cluster argument handling and the checks that need no cluster: names, providers, engines, ports, pids."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import meshcharts
from meshcharts import cli, cluster, tools
from meshcharts.cluster import local as local_provider
from meshcharts.cluster._common import (
    listener_pids,
    listening_ports,
    names_directory,
    pid_alive,
    wait_ready,
)
from meshcharts.cluster.kind import KIND_ENGINE_SKIP, container_engine_socket
from meshcharts.cluster.local import LOCAL_COMPONENTS, Local, local_stages, ports_still_held
from meshcharts.errors import ClusterError
from meshcharts.waits import wait_for


@pytest.mark.parametrize("name", ["meshcharts", "e2e-1", "a", "x" * 42])
def test_valid_cluster_names_are_accepted(name: str) -> None:
    assert cluster.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "Upper", "under_score", "-lead", "trail-", "x" * 43, "a/b"])
def test_cluster_names_that_cannot_be_directories_or_kind_names_are_refused(name: str) -> None:
    with pytest.raises(ClusterError, match="invalid cluster name"):
        cluster.validate_name(name)


def test_unknown_provider_is_refused_with_the_choices() -> None:
    with pytest.raises(ClusterError, match="choose one of: local, kind, existing"):
        cluster.up("x", provider="minikube")


def test_kubeconfig_is_only_accepted_for_the_existing_provider(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="--kubeconfig is for --provider existing"):
        cluster.up("x", provider="local", kubeconfig=tmp_path / "k", cache=tmp_path)


def test_local_up_without_the_toolchain_names_the_missing_binary_and_the_install_command(
    tmp_path: Path,
) -> None:
    with pytest.raises(ClusterError, match=r"kwokctl v0\.8\.0 is not built .*`meshcharts tools install kwokctl`"):
        cluster.up("x", cache=tmp_path)


def test_local_kubeconfig_of_a_cluster_that_is_not_up_says_how_to_bring_it_up(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="fix: `meshcharts cluster up --name nope --provider local`"):
        cluster.kubeconfig_path("nope", cache=tmp_path)


def test_down_of_a_local_cluster_that_does_not_exist_is_a_no_op(tmp_path: Path) -> None:
    said: list[str] = []
    cluster.down("nope", cache=tmp_path, say=said.append)
    assert said == ["no local cluster nope"]


def test_existing_provider_with_a_missing_kubeconfig_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does not exist; fix: pass --kubeconfig PATH"):
        cluster.up("x", provider="existing", kubeconfig=tmp_path / "missing")


def _kubeconfig_for(server: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def _closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_existing_provider_that_does_not_answer_fails_within_its_deadline(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig_for(f"http://127.0.0.1:{_closed_loopback_port()}", tmp_path / "kubeconfig")
    with pytest.raises(ClusterError, match=r"did not answer /readyz within 1s"):
        cluster.up("x", provider="existing", kubeconfig=kubeconfig, timeout=1)


def test_a_condition_not_met_in_time_is_named_with_the_tail_of_its_components_log(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig_for(f"http://127.0.0.1:{_closed_loopback_port()}", tmp_path / "kubeconfig")
    asked: list[str] = []

    def logs(component: str) -> str:
        asked.append(component)
        return "E1125 listen tcp 127.0.0.1:6443: bind: address already in use"

    with pytest.raises(ClusterError) as err:
        wait_ready(kubeconfig, nodes=2, timeout=0.5, logs=logs)
    assert asked == ["kube-apiserver"]
    assert "waiting for: API server answers /readyz" in str(err.value)
    assert "last lines of kube-apiserver's log:\nE1125 listen tcp" in str(err.value)


def test_existing_provider_down_leaves_the_cluster_alone(tmp_path: Path) -> None:
    said: list[str] = []
    cluster.down("x", provider="existing", cache=tmp_path, say=said.append)
    assert "not ours to take down" in said[0]


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[Path]:
    """A unix socket answering like a container engine's /_ping."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    server.close()


def test_an_answering_engine_socket_from_docker_host_is_found(fake_engine: Path) -> None:
    assert container_engine_socket({"DOCKER_HOST": f"unix://{fake_engine}"}) == str(fake_engine)


def test_a_socket_file_nobody_answers_on_is_not_an_engine(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(dead))
    sock.close()
    found = container_engine_socket({"DOCKER_HOST": f"unix://{dead}"})
    assert found != str(dead)


def test_kind_without_a_container_engine_fails_at_once_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    if container_engine_socket() is not None:
        pytest.skip("requires a machine without a running Docker or Podman engine")
    with pytest.raises(ClusterError) as caught:
        cluster.up("x", provider="kind", cache=tmp_path)
    message = str(caught.value)
    print(f"cluster up --provider kind here: {message}")
    assert message.startswith(KIND_ENGINE_SKIP)
    assert "/var/run/docker.sock, /run/podman/podman.sock" in message
    assert not (tmp_path / "kind").exists(), "nothing may be written before the engine answers"


def test_listening_ports_sees_a_listener_and_forgets_it_once_closed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert port in listening_ports()
    server.close()
    assert port not in listening_ports()


def test_listener_pids_names_the_process_holding_a_port_and_nothing_once_it_is_closed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    other = socket.socket()
    other.bind(("127.0.0.1", 0))  # bound, not listening: not a listener
    try:
        owners = listener_pids([port, other.getsockname()[1]])
        assert owners == {port: {os.getpid()}}
    finally:
        server.close()
        other.close()
    assert listener_pids([port]) == {}


def test_pid_alive_is_false_for_a_reaped_child_and_true_for_this_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert pid_alive(os.getpid())
    assert not pid_alive(child.pid)


def test_cli_cluster_error_exits_2_with_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESHCHARTS_CACHE", str(tmp_path))
    assert cli.main(["cluster", "kubeconfig", "--name", "absent"]) == 2
    assert "no local cluster absent" in capsys.readouterr().err


def test_cli_refuses_an_unknown_provider_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["cluster", "up", "--provider", "docker"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'docker'" in capsys.readouterr().err


def test_cli_tools_path_of_an_unbuilt_tool_exits_2_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESHCHARTS_CACHE", str(tmp_path))
    assert cli.main(["tools", "path", "helm3"]) == 2
    assert "run `meshcharts tools install helm3`" in capsys.readouterr().err


def test_local_stages_of_this_tree_are_the_loadbalancer_and_uninjected_pod_stages() -> None:
    files = {path.name: yaml.safe_load(path.read_text()) for path in local_stages()}
    assert sorted(files) == ["loadbalancer-stage.yaml", "uninjected-pod-stage.yaml"]
    assert {name: stage["kind"] for name, stage in files.items()} == dict.fromkeys(files, "Stage")
    assert files["loadbalancer-stage.yaml"]["spec"]["resourceRef"] == {"apiGroup": "v1", "kind": "Service"}
    pods = files["uninjected-pod-stage.yaml"]["spec"]
    assert pods["resourceRef"] == {"apiGroup": "v1", "kind": "Pod"}
    # A weight makes kwok prefer it over its own pod-ready stage, which has none.
    assert pods["weight"] > 0


def test_local_stages_come_from_the_package_not_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package finds its kwok stages wherever it runs: no meshcharts tree at or above the directory."""
    monkeypatch.delenv("MESHCHARTS_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    stages = local_stages()
    assert [path.parent for path in stages] == [Path(meshcharts.__file__).parent / "data" / "kwok"] * 2


def test_a_package_without_its_kwok_stages_fails_naming_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_provider, "LOCAL_STAGES", ("loadbalancer-stage.yaml", "no-such-stage.yaml"))
    with pytest.raises(ClusterError, match=r"cannot find the kwok stages .*lacks data/kwok/no-such-stage\.yaml"):
        local_stages()


def test_extra_stages_reach_kwok_controller_through_a_components_patch_not_kwokctls_own_stages(
    tmp_path: Path,
) -> None:
    """A Stage in kwokctl's --config would replace kwok's default node and pod stages; a patch adds to them."""
    stage = tmp_path / "stage.yaml"
    local = Local(tmp_path, stages=(stage,))
    binaries = {name: tmp_path / name for name in ("kwokctl", "kwok", "etcd", *cluster.tools.KUBERNETES_COMPONENTS)}
    argv = local.create_argv("x", binaries, api_port=None)
    assert argv[-2:] == ["--config", "-"]
    config = yaml.safe_load(local.kwokctl_config("x"))
    patches = {patch["name"]: patch.get("extraArgs") for patch in config["componentsPatches"]}
    assert patches["kwok-controller"] == [{"key": "config", "value": str(stage)}]


def test_every_local_cluster_api_server_gets_its_own_egress_selector_config(tmp_path: Path) -> None:
    """Without extra stages too: the egress selector is what keeps the API server's dials on loopback."""
    local = Local(tmp_path)
    binaries = {name: tmp_path / name for name in ("kwokctl", "kwok", "etcd", *cluster.tools.KUBERNETES_COMPONENTS)}
    argv = local.create_argv("x", binaries, api_port=None)
    assert argv[-2:] == ["--config", "-"]
    config = yaml.safe_load(local.kwokctl_config("x"))
    assert config["kind"] == "KwokctlConfiguration"
    patches = {patch["name"]: patch for patch in config["componentsPatches"]}
    assert patches["kube-apiserver"]["extraArgs"] == [
        {"key": "egress-selector-config-file", "value": str(local.egress("x").config)}
    ]
    assert "extraArgs" not in patches["kwok-controller"]
    assert local.egress("x").config != local.egress("y").config


def test_every_local_cluster_component_gets_the_gc_target_and_the_environments_own_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = Local(tmp_path)
    monkeypatch.delenv("GOGC", raising=False)
    text = local.kwokctl_config("x")
    assert "&id" not in text, "one environment list shared by components became a YAML anchor"
    patches = yaml.safe_load(text)["componentsPatches"]
    assert {patch["name"] for patch in patches} == set(LOCAL_COMPONENTS)
    assert all(patch["extraEnvs"] == [{"name": "GOGC", "value": tools.GOGC}] for patch in patches), patches
    monkeypatch.setenv("GOGC", "100")
    patches = yaml.safe_load(local.kwokctl_config("x"))["componentsPatches"]
    assert all(patch["extraEnvs"] == [{"name": "GOGC", "value": "100"}] for patch in patches), patches


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_cluster_whose_owner_process_is_gone_is_orphaned(tmp_path: Path) -> None:
    local = Local(tmp_path)
    local.claim("run", _dead_pid())
    assert local.orphaned("run") is not None and "owner process" in (local.orphaned("run") or "")
    assert local.names() == ["run"]


def test_a_cluster_owned_by_a_live_process_is_not_orphaned(tmp_path: Path) -> None:
    local = Local(tmp_path)
    local.claim("run", os.getpid())
    assert local.orphaned("run") is None


def test_a_reused_pid_does_not_pass_for_the_owner(tmp_path: Path) -> None:
    """The owner record holds the process start time too: another process under the same pid is not it."""
    local = Local(tmp_path)
    local.claim("run", os.getpid())
    record = json.loads(local.owner_path("run").read_text())
    record["started"] -= 1
    local.owner_path("run").write_text(json.dumps(record))
    assert "owner process" in (local.orphaned("run") or "")


def test_a_kept_cluster_lives_on_after_its_creator_while_its_processes_run(tmp_path: Path) -> None:
    local = Local(tmp_path)
    local.claim("kept", None)
    local.release_creation("kept")
    pids = local.cluster_dir("kept") / "pids"
    pids.mkdir(parents=True)
    (pids / "etcd.pid").write_text(f"{os.getpid()}\n")
    assert local.orphaned("kept") is None
    (pids / "etcd.pid").write_text(f"{_dead_pid()}\n")
    assert local.orphaned("kept") == "none of its processes runs"


def _orphan_never_finished(cache: Path, name: str) -> Path:
    """A local cluster as a test run killed during `up` leaves it: kwokctl's directory without kwok.yaml, and an
    owner record naming a process that has exited."""
    local = Local(cache)
    directory = local.cluster_dir(name)
    (directory / "pids").mkdir(parents=True)
    (directory / "kubeconfig.yaml").write_text("apiVersion: v1\nkind: Config\n")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    local.owner_path(name).parent.mkdir(parents=True, exist_ok=True)
    local.owner_path(name).write_text(json.dumps({"pid": int(gone.stdout), "started": None, "kept": False}) + "\n")
    return directory


def test_prune_removes_a_cluster_killed_before_kwokctl_wrote_its_configuration(tmp_path: Path) -> None:
    """kwokctl cannot delete such a cluster (it reads kwok.yaml first), and a test run's prune failed on it."""
    directory = _orphan_never_finished(tmp_path, "killed-early")
    said: list[str] = []
    assert cluster.prune(cache=tmp_path, say=said.append) == ["killed-early"]
    assert not directory.exists()
    assert not Local(tmp_path).owner_path("killed-early").exists()
    assert any("was never finished (no kwok.yaml)" in line for line in said), said


def test_concurrent_prunes_take_each_orphan_down_once(tmp_path: Path) -> None:
    """pytest-xdist workers prune at once; each orphan is taken down by one of them, the others find it gone."""
    names = [f"orphan-{n}" for n in range(4)]
    for name in names:
        _orphan_never_finished(tmp_path, name)
    errors: list[BaseException] = []
    pruned: list[list[str]] = []

    def prune() -> None:
        try:
            pruned.append(cluster.prune(cache=tmp_path))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=prune) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(Local(tmp_path).cluster_dir(name).exists() for name in names)
    assert {n for run in pruned for n in run} == set(names)


def test_a_cluster_port_taken_again_by_another_process_is_not_left_behind_by_the_cluster() -> None:
    ports = {"kube-apiserver/https": 32746, "etcd/http": 32747, "kwok-controller/http": 32745, "etcd/peer": 32748}
    owners = {32746: {10}, 32747: {20}, 32745: set()}  # 32748: nobody listens any more
    held = ports_still_held(ports, owners, lambda pid: pid == 10)  # 20 is another cluster's, since
    # The one /proc cannot name a holder of counts as still held: nothing says it is someone else's.
    assert held == {"kube-apiserver/https": 32746, "kwok-controller/http": 32745}
    assert ports_still_held(ports, {32747: {20, 30}}, lambda pid: pid == 30) == {"etcd/http": 32747}


def test_a_process_names_a_clusters_directory_by_an_argument_inside_it_never_by_a_longer_siblings_name(
    tmp_path: Path,
) -> None:
    mine, sibling = tmp_path / "clusters" / "mine", tmp_path / "clusters" / "mine2"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--cert={sibling}/pki/ca.crt"])
    try:
        wait_for(lambda: names_directory(child.pid, sibling), what="the child's arguments in /proc", timeout=10)
        assert not names_directory(child.pid, mine)
        assert not names_directory(child.pid, tmp_path / "clusters" / "min")
    finally:
        child.kill()
        child.wait()
    assert not names_directory(child.pid, sibling)  # gone: nothing names anything
