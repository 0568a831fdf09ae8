"""Render tests: the real Helm (4, and 3 where marked) renders charts/ and the objects are asserted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import helm as helm_mod
from meshcharts._yaml import parse_all
from meshcharts.errors import HelmError, ToolError
from tests import REPO

CHARTS = REPO / "charts"
# One helm template or lint of a local chart takes about a second; this bounds a hung one, not a slow machine.
TIMEOUT = 120.0


@dataclass(frozen=True)
class Helm:
    """The project's Helm adapter (its argv lists and timeouts) as render tests use it: argv in, the
    finished process or the parsed objects out. Helm's homes and the values files live in `workdir`,
    a temp directory of the test session."""

    adapter: helm_mod.Helm
    workdir: Path

    @classmethod
    def pinned(cls, major: int, workdir: Path) -> Helm:
        """The pinned Helm `major`, with a Helm home of its own under `workdir`; skips naming a missing build."""
        try:
            adapter = helm_mod.Helm(major=major, timeout=TIMEOUT)
        except ToolError as err:
            pytest.skip(f"requires Helm {major}: {err}")
        return cls(adapter.with_home(workdir / "helm-home"), workdir)

    @property
    def major(self) -> int:
        return self.adapter.major

    @property
    def binary(self) -> Path:
        return self.adapter.binary

    def with_home(self, home: Path) -> Helm:
        """The same binary with repositories, cache and registry logins under `home` (a test's own)."""
        return Helm(self.adapter.with_home(home), self.workdir)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`helm ARGS`; HelmError (argv, exit code, stderr) when it fails and `check` is set."""
        done = self.adapter.call(args)
        if check and done.returncode != 0:
            raise HelmError(done.args, done.returncode, done.stderr, done.stdout)
        return done

    def _with_values(self, values: Mapping[str, Any] | None, *args: str) -> subprocess.CompletedProcess[str]:
        if not values:
            return self.adapter.call(args)
        with tempfile.NamedTemporaryFile("w", prefix="values-", suffix=".yaml", dir=self.workdir) as handle:
            yaml.safe_dump(dict(values), handle)
            handle.flush()
            return self.adapter.call([*args, "--values", handle.name])

    def template(
        self,
        chart: str,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "release",
        namespace: str = "istio-system",
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        args = ("template", release, str(CHARTS / chart), "--namespace", namespace, *extra)
        done = self._with_values(values, *args)
        if done.returncode != 0:
            raise HelmError(done.args, done.returncode, done.stderr, done.stdout)
        return [doc for doc in parse_all(done.stdout) if doc]

    def template_error(self, chart: str, values: Mapping[str, Any], *, release: str = "release") -> str:
        """The stderr of a render that must be refused."""
        done = self._with_values(values, "template", release, str(CHARTS / chart))
        assert done.returncode != 0, f"helm accepted values it should reject: {dict(values)}"
        return done.stderr


@pytest.fixture(scope="session", params=[4, pytest.param(3, marks=pytest.mark.helm3)], ids=["helm4", "helm3"])
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm.pinned(request.param, tmp_path_factory.mktemp(f"helm{request.param}"))


@pytest.fixture(scope="session")
def helm4(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm.pinned(4, tmp_path_factory.mktemp("helm4"))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in matches]}"
    return matches[0]


def kinds(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


# A scratch copy of the repository: what `meshcharts generate`, `lint` and `release` read and write, so a test
# can break or rotate something and run the real CLI on it without touching the working tree.
SCRATCH_COPIED = (
    "charts",
    "lines",
    "generator",
    "packages",
    "ci",
    "index.yaml",
    "meshcharts.asc",
    "artifacthub-repo.yml",
)


def scratch_copy(root: Path) -> Path:
    """Copy the repository's generator, trees, published packages and repository files into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in SCRATCH_COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return root


def meshcharts(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI of this checkout's generator, run on the repository at `root`."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "generator"), "MESHCHARTS_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "meshcharts.cli", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old`, which must occur exactly once, so a test's edit fails loudly once the text moves."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: expected {old!r} once; the test's edit no longer applies"
    path.write_text(text.replace(old, new), encoding="utf-8")
