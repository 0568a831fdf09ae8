"""The loopback OCI registry helper: its own config (loopback, no auth), readiness, failures that say why,
and a stop that leaves no process and no listening port."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from meshcharts.testing.registry import MISSING, OciRegistry, RegistryError, config_text, registry_binary


def test_config_listens_on_loopback_stores_in_the_given_directory_and_has_no_auth(tmp_path: Path) -> None:
    config = json.loads(config_text(tmp_path / "storage", "127.0.0.1", 5123))
    assert config["http"]["addr"] == "127.0.0.1:5123"
    assert config["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "storage")}
    assert "auth" not in config


def test_a_binary_that_exits_at_once_is_reported_with_its_exit_code_and_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-registry"
    fake.write_text("#!/bin/sh\necho 'configuration error: something is wrong' >&2\nexit 3\n")
    fake.chmod(0o755)
    registry = OciRegistry(tmp_path / "work", binary=fake)
    with pytest.raises(RegistryError, match=r"exited 3 before http://127\.0\.0\.1:\d+/v2/ answered") as err:
        registry.start(timeout=10)
    assert "configuration error: something is wrong" in str(err.value)
    assert registry.process is None


def test_a_missing_binary_names_the_debian_package(tmp_path: Path) -> None:
    registry = OciRegistry(tmp_path)
    registry.binary = None
    with pytest.raises(RegistryError, match="Debian package docker-registry"):
        registry.start()
    assert MISSING == "requires docker-registry (Debian package docker-registry)"


def test_the_real_registry_answers_v2_and_leaves_nothing_behind(tmp_path: Path) -> None:
    if registry_binary() is None:
        pytest.skip(MISSING)
    with OciRegistry(tmp_path) as registry:
        process = registry.process
        assert process is not None and process.poll() is None
        port = registry.port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=5) as answer:
            assert answer.status == 200
    assert process.poll() is not None, f"docker-registry pid {process.pid} still runs"
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0
