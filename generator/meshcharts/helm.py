"""A small adapter over the pinned Helm binary (4 by default, 3 on request): argv lists, explicit KUBECONFIG.

Every failure is a HelmError carrying argv, exit code, stdout and stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

from meshcharts import tools
from meshcharts.errors import HelmError

HELM_TOOLS = {4: "helm", 3: "helm3"}


class DeployOptions(TypedDict, total=False):
    """The options install and upgrade share; each left out takes its default: no values files, no --set, the
    chart's latest version, no --wait, a 300 s timeout, no extra arguments."""

    values: Sequence[Path]
    set_values: Mapping[str, str] | None
    version: str | None
    wait: bool
    timeout: float
    extra: Sequence[str]


class Helm:
    """One Helm binary bound to one kubeconfig (or none, for offline commands such as template and lint)."""

    def __init__(
        self,
        *,
        major: int = 4,
        kubeconfig: Path | None = None,
        binary: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> None:
        if major not in HELM_TOOLS:
            raise HelmError(["helm"], 2, f"no Helm {major} in the toolchain; choose one of {sorted(HELM_TOOLS)}")
        self.major = major
        self.binary = binary or tools.path(HELM_TOOLS[major])
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        base = dict(os.environ if env is None else env)
        # A helm process lives a second or two: tools.GOGC spares it most collections (bench/go_gc_tools.py).
        base.setdefault("GOGC", tools.GOGC)
        if kubeconfig is not None:
            base["KUBECONFIG"] = str(kubeconfig)
        self.env = base

    def with_home(self, home: Path) -> Helm:
        """The same binary and kubeconfig with Helm's config, cache, data, repositories and registry
        logins under `home`, so repo add and pulls never touch the user's own Helm setup."""
        env = dict(self.env)
        env.update(
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_DATA_HOME=str(home / "data"),
            HELM_REPOSITORY_CONFIG=str(home / "config" / "repositories.yaml"),
            HELM_REPOSITORY_CACHE=str(home / "cache" / "repository"),
            HELM_REGISTRY_CONFIG=str(home / "config" / "registry" / "config.json"),
        )
        return Helm(major=self.major, kubeconfig=self.kubeconfig, binary=self.binary, env=env, timeout=self.timeout)

    def call(self, args: Sequence[str], *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run `helm ARGS` and return the finished process whatever its exit code, for a caller that
        expects a refusal and reads its stderr. HelmError only when helm did not run or ran out of time."""
        argv = [str(self.binary), *args]
        limit = self.timeout if timeout is None else timeout
        try:
            return subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as err:
            stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
            raise HelmError(argv, -1, f"timed out after {limit:g}s\n{stderr}") from err
        except OSError as err:
            raise HelmError(argv, -1, str(err)) from err

    def run(self, args: Sequence[str], *, timeout: float | None = None) -> str:
        """Run `helm ARGS`; return stdout, or raise HelmError with argv, exit code and stderr."""
        done = self.call(args, timeout=timeout)
        if done.returncode != 0:
            raise HelmError(done.args, done.returncode, done.stderr, done.stdout)
        return done.stdout

    def run_both(self, args: Sequence[str], *, timeout: float | None = None) -> tuple[str, str]:
        """`run`, returning stdout and stderr: what a command reports may go to either (`helm push`'s
        digest is on stderr in Helm 3, on stdout in Helm 4)."""
        done = self.call(args, timeout=timeout)
        if done.returncode != 0:
            raise HelmError(done.args, done.returncode, done.stderr, done.stdout)
        return done.stdout, done.stderr

    def version(self) -> str:
        """The semantic version the binary reports, e.g. `v4.3.1`."""
        return self.run(["version", "--template", "{{.Version}}"]).strip()

    @staticmethod
    def _values_args(values: Sequence[Path], set_values: Mapping[str, str] | None) -> list[str]:
        args: list[str] = []
        for path in values:
            args += ["--values", str(path)]
        for key, value in (set_values or {}).items():
            args += ["--set", f"{key}={value}"]
        return args

    def template(
        self,
        release: str,
        chart: str | Path,
        *,
        namespace: str | None = None,
        values: Sequence[Path] = (),
        set_values: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> str:
        """Rendered manifests as one YAML stream."""
        args = ["template", release, str(chart), *self._values_args(values, set_values), *extra]
        if namespace:
            args += ["--namespace", namespace]
        return self.run(args)

    def lint(self, chart: str | Path, *, values: Sequence[Path] = (), strict: bool = False) -> str:
        args = ["lint", str(chart), *self._values_args(values, None)]
        if strict:
            args.append("--strict")
        return self.run(args)

    def _deploy(
        self,
        verb: Sequence[str],
        release: str,
        chart: str | Path,
        *,
        namespace: str,
        values: Sequence[Path] = (),
        set_values: Mapping[str, str] | None = None,
        version: str | None = None,
        wait: bool = False,
        timeout: float = 300.0,
        extra: Sequence[str] = (),
    ) -> str:
        args = [*verb, release, str(chart), "--namespace", namespace, *self._values_args(values, set_values)]
        if version:
            args += ["--version", version]
        if wait:
            args += ["--wait", "--timeout", f"{int(timeout)}s"]
        return self.run([*args, *extra], timeout=timeout + 60)

    def install(
        self,
        release: str,
        chart: str | Path,
        *,
        namespace: str,
        create_namespace: bool = True,
        **options: Unpack[DeployOptions],
    ) -> str:
        verb = ["install", "--create-namespace"] if create_namespace else ["install"]
        return self._deploy(verb, release, chart, namespace=namespace, **options)

    def upgrade(
        self,
        release: str,
        chart: str | Path,
        *,
        namespace: str,
        install: bool = False,
        **options: Unpack[DeployOptions],
    ) -> str:
        verb = ["upgrade", "--install"] if install else ["upgrade"]
        return self._deploy(verb, release, chart, namespace=namespace, **options)

    def rollback(
        self,
        release: str,
        revision: int | None = None,
        *,
        namespace: str,
        wait: bool = False,
        timeout: float = 300.0,
        extra: Sequence[str] = (),
    ) -> str:
        args = [
            "rollback",
            release,
            *([str(revision)] if revision is not None else []),
            "--namespace",
            namespace,
            *extra,
        ]
        if wait:
            args += ["--wait", "--timeout", f"{int(timeout)}s"]
        return self.run(args, timeout=timeout + 60)

    def uninstall(
        self,
        release: str,
        *,
        namespace: str,
        wait: bool = False,
        timeout: float = 300.0,
        ignore_not_found: bool = False,
    ) -> str:
        args = ["uninstall", release, "--namespace", namespace, *(["--ignore-not-found"] if ignore_not_found else [])]
        if wait:
            args += ["--wait", "--timeout", f"{int(timeout)}s"]
        return self.run(args, timeout=timeout + 60)
