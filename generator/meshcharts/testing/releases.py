"""A release factory for tests: install, upgrade, rollback, uninstall and template through the real Helm,
recording every release it made so the test's teardown removes them, and collecting what a failed test
needs to be understood (events, pods, Helm status and history, control-plane log tails)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import yaml

from meshcharts._yaml import parse, parse_all
from meshcharts.errors import HelmError
from meshcharts.helm import Helm


@dataclass
class Release:
    name: str
    namespace: str
    chart: str
    values: Mapping[str, Any] = field(default_factory=dict)


class ReleaseOptions(TypedDict, total=False):
    """The options ReleaseFactory's install and upgrade take; each left out takes its default: the factory's
    namespace, no values, the chart's latest version, --wait, a 180 s timeout, no extra Helm arguments."""

    namespace: str | None
    values: Mapping[str, Any] | None
    version: str | None
    wait: bool
    timeout: float
    extra: tuple[str, ...]


class ReleaseFactory:
    """Helm operations bound to one cluster; everything installed through it is uninstalled at cleanup."""

    def __init__(self, helm: Helm, *, namespace: str, workdir: Path) -> None:
        self.helm = helm
        self.namespace = namespace
        self.workdir = workdir
        self.releases: dict[tuple[str, str], Release] = {}
        self._files = 0

    def _values_file(self, values: Mapping[str, Any] | None) -> list[Path]:
        if not values:
            return []
        self._files += 1
        path = self.workdir / f"values-{self._files}.yaml"
        path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        return [path]

    def install(self, name: str, chart: str | Path, **options: Unpack[ReleaseOptions]) -> Release:
        return self._deploy(self.helm.install, name, chart, record_first=True, **options)

    def upgrade(self, name: str, chart: str | Path, **options: Unpack[ReleaseOptions]) -> Release:
        return self._deploy(self.helm.upgrade, name, chart, record_first=False, **options)

    def _deploy(
        self,
        deploy: Callable[..., str],
        name: str,
        chart: str | Path,
        *,
        record_first: bool,
        namespace: str | None = None,
        values: Mapping[str, Any] | None = None,
        version: str | None = None,
        wait: bool = True,
        timeout: float = 180.0,
        extra: tuple[str, ...] = (),
    ) -> Release:
        """`deploy` (Helm's install or upgrade) with these options; the release is recorded once `deploy` succeeds,
        or before it with `record_first` (an install: a failed one still gets cleaned up)."""
        ns = namespace or self.namespace
        release = Release(name, ns, str(chart), dict(values or {}))
        if record_first:
            self.releases[(ns, name)] = release
        deploy(
            name,
            chart,
            namespace=ns,
            values=self._values_file(values),
            version=version,
            wait=wait,
            timeout=timeout,
            extra=extra,
        )
        self.releases[(ns, name)] = release
        return release

    def rollback(
        self,
        name: str,
        revision: int | None = None,
        *,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float = 180.0,
    ) -> None:
        self.helm.rollback(name, revision, namespace=namespace or self.namespace, wait=wait, timeout=timeout)

    def uninstall(self, name: str, *, namespace: str | None = None, wait: bool = True, timeout: float = 120.0) -> None:
        ns = namespace or self.namespace
        self.helm.uninstall(name, namespace=ns, wait=wait, timeout=timeout)
        self.releases.pop((ns, name), None)

    def template(
        self,
        name: str,
        chart: str | Path,
        *,
        namespace: str | None = None,
        values: Mapping[str, Any] | None = None,
        version: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        args = [*extra, *(["--version", version] if version else [])]
        out = self.helm.template(
            name, chart, namespace=namespace or self.namespace, values=self._values_file(values), extra=args
        )
        return [doc for doc in parse_all(out) if doc]

    def history(self, name: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        out = self.helm.run(["history", name, "--namespace", namespace or self.namespace, "--output", "yaml"])
        return list(parse(out) or [])

    def cleanup(self) -> list[str]:
        """Uninstall what is still installed, newest first; returns the problems instead of raising."""
        problems = []
        for ns, name in reversed(list(self.releases)):
            try:
                self.helm.uninstall(name, namespace=ns, wait=True, timeout=120)
            except HelmError as err:
                if "not found" not in err.stderr:
                    problems.append(f"uninstall {ns}/{name}: {err.stderr.strip()}")
        self.releases.clear()
        return problems

    def diagnostics(self, core: Any, log_tails: Callable[[], str] | None = None) -> str:
        """Events, pods, Helm status and history of every recorded release, and control-plane log tails."""
        parts = []
        namespaces = sorted({ns for ns, _ in self.releases} | {self.namespace})
        for ns in namespaces:
            with contextlib.suppress(Exception):
                events = core.list_namespaced_event(ns).items
                events.sort(key=lambda e: str(e.last_timestamp or e.event_time or ""))
                lines = [
                    f"{e.type} {e.reason} {e.involved_object.kind}/{e.involved_object.name}: {e.message}"
                    for e in events[-40:]
                ]
                parts.append(f"--- events in {ns}\n" + "\n".join(lines))
            with contextlib.suppress(Exception):
                pods = core.list_namespaced_pod(ns).items
                lines = [f"{p.metadata.name} {p.status.phase} node={p.spec.node_name}" for p in pods]
                parts.append(f"--- pods in {ns}\n" + "\n".join(lines))
        for ns, name in self.releases:
            for args in (["status", name, "--namespace", ns], ["history", name, "--namespace", ns]):
                try:
                    parts.append(f"--- helm {' '.join(args)}\n" + self.helm.run(args))
                except HelmError as err:
                    parts.append(f"--- helm {' '.join(args)}\n{err}")
        if log_tails is not None:
            parts.append(log_tails())
        return "\n".join(parts)
