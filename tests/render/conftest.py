"""Render tests: the real Helm (4, and 3 where marked) renders charts/ and the objects are asserted."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"


def _helm_binary(major: int) -> Path:
    from meshcharts import tools
    from meshcharts.errors import ToolError

    try:
        return tools.path("helm" if major == 4 else "helm3")
    except ToolError as err:
        pytest.skip(f"requires Helm {major}: {err}")


@dataclass
class Helm:
    """Runs one real helm binary on charts/ and parses what it prints."""

    binary: Path
    major: int

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/meshcharts-helm-cache",
            "HELM_CONFIG_HOME": "/tmp/meshcharts-helm-config",
        }
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def template(
        self,
        chart: str,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "release",
        namespace: str = "istio-system",
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        args = ["template", release, str(CHARTS / chart), "--namespace", namespace, *extra]
        if values:
            path = Path(f"/tmp/meshcharts-values-{os.getpid()}.yaml")
            path.write_text(yaml.safe_dump(dict(values)))
            args += ["--values", str(path)]
        out = self.run(*args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def template_error(self, chart: str, values: Mapping[str, Any], *, release: str = "release") -> str:
        path = Path(f"/tmp/meshcharts-values-{os.getpid()}.yaml")
        path.write_text(yaml.safe_dump(dict(values)))
        proc = self.run("template", release, str(CHARTS / chart), "--values", str(path), check=False)
        assert proc.returncode != 0, f"helm accepted values it should reject: {dict(values)}"
        return proc.stderr


@pytest.fixture(scope="session", params=[4, pytest.param(3, marks=pytest.mark.helm3)], ids=["helm4", "helm3"])
def helm(request: pytest.FixtureRequest) -> Iterator[Helm]:
    yield Helm(_helm_binary(request.param), request.param)


@pytest.fixture(scope="session")
def helm4() -> Helm:
    return Helm(_helm_binary(4), 4)


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def kinds(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}
