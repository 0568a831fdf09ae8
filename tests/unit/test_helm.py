"""The Helm adapter's argv, environment and errors, against a stand-in binary that records its calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshcharts.errors import HelmError
from meshcharts.helm import Helm

RECORDER = """#!/usr/bin/env python3
import json, os, sys, time
with open(os.environ["RECORD"], "a") as out:
    call = {"argv": sys.argv[1:], "kubeconfig": os.environ.get("KUBECONFIG"), "gogc": os.environ.get("GOGC")}
    out.write(json.dumps(call) + "\\n")
if os.environ.get("SLEEP"):
    time.sleep(float(os.environ["SLEEP"]))
if os.environ.get("FAIL"):
    sys.stderr.write("Error: INSTALLATION FAILED: cannot re-use a name that is still in use\\n")
    sys.exit(int(os.environ["FAIL"]))
print("v4.3.1")
"""


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


def _helm(tmp_path: Path, record: Path, **env: str) -> Helm:
    binary = tmp_path / "helm"
    binary.write_text(RECORDER)
    binary.chmod(0o755)
    return Helm(
        binary=binary, kubeconfig=tmp_path / "kubeconfig", env={"PATH": "/usr/bin:/bin", "RECORD": str(record), **env}
    )


def _calls(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_install_passes_an_argv_list_and_kubeconfig_explicitly(tmp_path: Path, record: Path) -> None:
    helm = _helm(tmp_path, record)
    values = tmp_path / "values.yaml"
    helm.install(
        "gw",
        "charts/gateway",
        namespace="istio ingress",
        values=[values],
        set_values={"service.type": "ClusterIP"},
        wait=True,
        timeout=90,
    )
    [call] = _calls(record)
    assert call["argv"] == [
        "install",
        "--create-namespace",
        "gw",
        "charts/gateway",
        "--namespace",
        "istio ingress",
        "--values",
        str(values),
        "--set",
        "service.type=ClusterIP",
        "--wait",
        "--timeout",
        "90s",
    ]
    assert call["kubeconfig"] == str(tmp_path / "kubeconfig")


def test_upgrade_install_rollback_and_uninstall_argv(tmp_path: Path, record: Path) -> None:
    helm = _helm(tmp_path, record)
    helm.upgrade("gw", "charts/gateway", namespace="ns", install=True, version="1.12.0")
    helm.rollback("gw", 1, namespace="ns")
    helm.uninstall("gw", namespace="ns", wait=True, timeout=30)
    assert [c["argv"] for c in _calls(record)] == [
        ["upgrade", "--install", "gw", "charts/gateway", "--namespace", "ns", "--version", "1.12.0"],
        ["rollback", "gw", "1", "--namespace", "ns"],
        ["uninstall", "gw", "--namespace", "ns", "--wait", "--timeout", "30s"],
    ]


def test_version_asks_helm_for_the_version_field_only(tmp_path: Path, record: Path) -> None:
    assert _helm(tmp_path, record).version() == "v4.3.1"
    assert _calls(record)[0]["argv"] == ["version", "--template", "{{.Version}}"]


def test_a_failing_helm_raises_helm_error_with_argv_exit_code_and_stderr(tmp_path: Path, record: Path) -> None:
    helm = _helm(tmp_path, record, FAIL="3")
    with pytest.raises(HelmError) as caught:
        helm.install("gw", "charts/gateway", namespace="ns")
    err = caught.value
    assert err.argv[1:] == ["install", "--create-namespace", "gw", "charts/gateway", "--namespace", "ns"]
    assert err.returncode == 3
    assert "cannot re-use a name" in err.stderr
    assert "helm exited 3" in str(err) and "cannot re-use a name" in str(err)


def test_call_returns_a_refusal_with_its_exit_code_and_stderr_instead_of_raising(tmp_path: Path, record: Path) -> None:
    helm = _helm(tmp_path, record, FAIL="1")
    done = helm.call(["template", "gw", "charts/gateway"])
    assert done.returncode == 1
    assert "cannot re-use a name" in done.stderr
    assert done.args[1:] == ["template", "gw", "charts/gateway"]


def test_a_helm_that_outlives_its_timeout_is_a_helm_error_naming_the_limit(tmp_path: Path, record: Path) -> None:
    helm = _helm(tmp_path, record, SLEEP="30")
    with pytest.raises(HelmError, match=r"timed out after 0\.5s") as caught:
        helm.call(["lint", "charts/gateway"], timeout=0.5)
    assert caught.value.argv[1:] == ["lint", "charts/gateway"]


def test_only_helm_4_and_3_can_be_selected() -> None:
    with pytest.raises(HelmError, match=r"no Helm 2 in the toolchain; choose one of \[3, 4\]"):
        Helm(major=2)


def test_with_home_moves_every_helm_location_under_it_and_keeps_binary_and_kubeconfig(
    tmp_path: Path, record: Path
) -> None:
    helm = _helm(tmp_path, record)
    home = tmp_path / "home"
    isolated = helm.with_home(home)
    assert (isolated.binary, isolated.kubeconfig, isolated.major) == (helm.binary, helm.kubeconfig, helm.major)
    keys = ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME", "HELM_REPOSITORY_CONFIG",
            "HELM_REPOSITORY_CACHE", "HELM_REGISTRY_CONFIG")  # fmt: skip
    for key in keys:
        assert Path(isolated.env[key]).is_relative_to(home), key
        assert key not in helm.env, key
    assert isolated.env["KUBECONFIG"] == str(tmp_path / "kubeconfig")


def test_helm_runs_with_gogc_400_unless_its_environment_sets_gogc(tmp_path: Path, record: Path) -> None:
    """What the helm process receives: GOGC=400 by default (short-lived, it spares most collections), and a GOGC the
    caller's environment sets wins, through with_home too."""
    _helm(tmp_path, record).run(["version"])
    _helm(tmp_path, record, GOGC="100").run(["version"])
    _helm(tmp_path, record, GOGC="off").with_home(tmp_path / "home").run(["version"])
    assert [call["gogc"] for call in _calls(record)] == ["400", "100", "off"]
