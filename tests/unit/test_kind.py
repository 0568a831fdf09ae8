"""The kind provider without a container engine: its config (meshcharts/data/kind), command lines, arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import cli, cluster, tools
from meshcharts.cluster import kind as kind_provider
from meshcharts.errors import ClusterError


def _base() -> dict[str, Any]:
    base, _ = kind_provider.kind_files()
    loaded = yaml.safe_load(base.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _images() -> dict[str, Any]:
    _, images = kind_provider.kind_files()
    loaded = yaml.safe_load(images.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize(
    ("given", "minor"), [("v1.34.4", "1.34"), ("1.30", "1.30"), ("v1.36", "1.36"), ("1.37.0", "1.37")]
)
def test_any_spelling_of_a_version_selects_its_minor(given: str, minor: str) -> None:
    assert kind_provider.kind_minor(given) == minor


@pytest.mark.parametrize("given", ["", "1", "latest", "v1.x", "1.30.1.2"])
def test_a_version_that_is_not_one_is_refused_with_the_accepted_forms(given: str) -> None:
    with pytest.raises(ClusterError, match=r"write it as 1\.N, v1\.N or v1\.N\.P"):
        kind_provider.kind_minor(given)


def test_the_node_image_table_covers_the_test_matrix_and_the_local_toolchain_releases() -> None:
    images = _images()
    wanted = {"1.30", "1.33", "1.36"} | {kind_provider.kind_minor(v) for v in tools.KUBERNETES_RELEASES}
    assert wanted <= set(images)
    for minor, image in images.items():
        assert str(image).startswith(f"kindest/node:v{minor}."), (minor, image)


def test_the_image_of_a_patch_release_is_the_one_of_its_minor() -> None:
    assert kind_provider.kind_node_image("v1.34.4", _images()) == _images()["1.34"]


def test_a_minor_without_an_image_names_the_known_minors_and_the_override() -> None:
    with pytest.raises(ClusterError, match=r"no kindest/node image for Kubernetes 1\.9 .*known minors: 1\.30, 1\.31"):
        kind_provider.kind_node_image("1.9", _images())


def test_config_has_one_control_plane_and_workers_all_on_the_image_and_keeps_the_base() -> None:
    config = kind_provider.kind_config(_base(), nodes=3, image="kindest/node:v1.33.4")
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert config["nodes"] == [
        {"role": "control-plane", "image": "kindest/node:v1.33.4"},
        {"role": "worker", "image": "kindest/node:v1.33.4"},
        {"role": "worker", "image": "kindest/node:v1.33.4"},
    ]
    assert "nodes" not in _base(), "the base config must not be changed by generating from it"


def test_config_generation_refuses_zero_nodes_and_a_base_that_lists_nodes_or_is_no_kind_config() -> None:
    with pytest.raises(ClusterError, match="at least 1 node"):
        kind_provider.kind_config(_base(), nodes=0, image="i")
    with pytest.raises(ClusterError, match="must not list nodes"):
        kind_provider.kind_config({**_base(), "nodes": []}, nodes=1, image="i")
    with pytest.raises(ClusterError, match="must be a kind Cluster"):
        kind_provider.kind_config({"kind": "Config"}, nodes=1, image="i")


def test_create_and_delete_command_lines_name_the_cluster_its_kubeconfig_config_and_wait(tmp_path: Path) -> None:
    kind = tmp_path / "kind"
    argv = kind_provider.kind_create_argv(
        kind, "ci", kubeconfig=tmp_path / "ci.kubeconfig", config=tmp_path / "ci.yaml", timeout=180
    )
    assert argv == [
        str(kind),
        "create",
        "cluster",
        "--name",
        "ci",
        "--kubeconfig",
        str(tmp_path / "ci.kubeconfig"),
        "--config",
        str(tmp_path / "ci.yaml"),
        "--wait",
        "180s",
    ]
    assert kind_provider.kind_delete_argv(kind, "ci", kubeconfig=tmp_path / "k") == [
        str(kind),
        "delete",
        "cluster",
        "--name",
        "ci",
        "--kubeconfig",
        str(tmp_path / "k"),
    ]


def test_the_cli_passes_version_and_image_through_to_cluster_up(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_up(name: str, **kwargs: Any) -> cluster.Cluster:
        seen.update(kwargs, name=name)
        return cluster.Cluster(name, kwargs["provider"], Path("/k"))

    monkeypatch.setattr(cluster, "up", fake_up)
    argv = ["cluster", "up", "--provider", "kind", "--k8s-version", "1.30", "--image", "kindest/node:v1.30.13"]
    assert cli.main(argv) == 0
    assert (seen["name"], seen["provider"], seen["k8s_version"], seen["image"]) == (
        "meshcharts",
        "kind",
        "1.30",
        "kindest/node:v1.30.13",
    )


def test_the_image_override_is_refused_for_a_provider_without_node_images(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="--image is for --provider kind"):
        cluster.up("x", provider="local", image="kindest/node:v1.30.13", cache=tmp_path)


def test_a_bad_kind_version_is_reported_before_the_engine_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(kind_provider, "require_engine", lambda env=None: asked.append("engine") or "")
    with pytest.raises(ClusterError, match=r"no kindest/node image for Kubernetes 1\.2 "):
        cluster.up("x", provider="kind", k8s_version="1.2", cache=tmp_path)
    assert asked == []


def test_no_engine_error_names_every_socket_tried_and_the_fix(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    if kind_provider.container_engine_socket(env) is not None:
        pytest.skip("requires a machine without a running Docker or Podman engine")
    with pytest.raises(ClusterError) as caught:
        kind_provider.require_engine(env)
    message = str(caught.value)
    assert message.startswith(kind_provider.KIND_ENGINE_SKIP)
    for path in (f"{tmp_path}/docker.sock", f"{tmp_path}/run/docker.sock", f"{tmp_path}/run/podman/podman.sock"):
        assert path in message
    assert "use --provider local" in message


def test_kind_config_is_written_beside_the_kubeconfig_when_an_engine_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a stand-in engine and kind binary, `up` writes the generated config and runs kind with it."""
    monkeypatch.setattr(kind_provider, "require_engine", lambda env=None: "/fake.sock")
    monkeypatch.setattr(cluster.tools, "path", lambda name, **_: tmp_path / "bin" / name)
    ran: list[list[str]] = []

    def fake_run(argv: list[str], **_: Any) -> str:
        ran.append(list(argv))
        raise ClusterError("stop after the command line")

    monkeypatch.setattr(kind_provider, "run_tool", fake_run)
    with pytest.raises(ClusterError, match="stop after"):
        cluster.up("ci", provider="kind", k8s_version="v1.34.4", nodes=2, cache=tmp_path)
    written = yaml.safe_load((tmp_path / "kind" / "ci.cluster.yaml").read_text())
    assert [n["image"] for n in written["nodes"]] == [_images()["1.34"]] * 2
    assert ran[0][:5] == [str(tmp_path / "bin" / "kind"), "create", "cluster", "--name", "ci"]
    assert ran[0][ran[0].index("--config") + 1] == str(tmp_path / "kind" / "ci.cluster.yaml")
