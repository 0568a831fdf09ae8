"""Istio's own injector as the judge: an istiod chart's ConfigMaps run through `istioctl kube-inject`.

The istiod chart's injection templates are evaluated by istiod, not by Helm, so rendering the chart proves
little about the pods a mesh gets. Here Helm renders the chart's injector ConfigMap (`config`, `values`) and
mesh ConfigMap, and istioctl's offline kube-inject (Istio's real injector) injects workloads with them. The
same functions turn Istio 1.12.0's own chart into the expected pods (tests/data/istio-1.12-injection), so
both sides go through identical steps and only the charts differ.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshcharts._yaml import parse_all

# istioctl's injector has no `.EstimatedConcurrency` in its template data (istiod 1.12 had, for `--concurrency`):
# the name is replaced by a number in the templates' text, on both sides alike, before injecting (0 unless a
# variant sets `estimatedConcurrency`, which renders the template's `--concurrency` branch).
ESTIMATED_CONCURRENCY = ".EstimatedConcurrency"
_TIMEOUT_SECONDS = 180
# Settings of istiod's environment that injection reads: 1.12's and 1.13's templates through `env`
# (PILOT_ENABLE_INBOUND_PASSTHROUGH, ENABLE_LEGACY_FSGROUP_INJECTION), 1.31's injector itself from its own
# environment (ENABLE_NATIVE_SIDECARS, COMPLIANCE_POLICY). istioctl gets them only from a variant's `env`.
ISTIOD_SWITCHES = (
    "PILOT_ENABLE_INBOUND_PASSTHROUGH",
    "ENABLE_LEGACY_FSGROUP_INJECTION",
    "ENABLE_NATIVE_SIDECARS",
    "COMPLIANCE_POLICY",
)


class OracleError(Exception):
    """Rendering or injecting failed; says which step, with the tool's own message."""


@dataclass(frozen=True)
class Injector:
    """What istiod reads to inject: the injector ConfigMap's `config` and `values`, and the mesh config."""

    config: str
    values: str
    mesh: str
    revision: str

    @property
    def revision_flag(self) -> str:
        """kube-inject's `-r`: without it kube-inject asks a cluster for the default revision and never returns."""
        return self.revision or "default"


def _run(argv: Sequence[str], *, step: str, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OracleError(f"{step}: cannot run `{' '.join(argv)}`: {err}") from err
    if done.returncode != 0:
        raise OracleError(f"{step}: `{' '.join(argv)}` exited {done.returncode}:\n{done.stderr.strip()}")
    return done.stdout


def render_injector(
    helm: Path,
    chart: Path,
    values: Mapping[str, Any],
    *,
    namespace: str = "istio-system",
    release: str = "istiod",
    estimated_concurrency: int = 0,
) -> Injector:
    """`helm template` an istiod chart with `values` and take its injector and mesh ConfigMaps."""
    revision = str(values.get("revision") or "")
    suffix = f"-{revision}" if revision else ""
    with tempfile.TemporaryDirectory(prefix="meshcharts-oracle-values-") as scratch:
        values_file = Path(scratch) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values), sort_keys=True))
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(Path(scratch) / "cache"),
            "HELM_CONFIG_HOME": str(Path(scratch) / "config"),
            "HELM_DATA_HOME": str(Path(scratch) / "data"),
        }
        out = _run(
            [str(helm), "template", release, str(chart), "--namespace", namespace, "--values", str(values_file)],
            step=f"helm template {chart}",
            env=env,
        )
    config_maps = {
        doc["metadata"]["name"]: doc.get("data") or {}
        for doc in parse_all(out)
        if isinstance(doc, dict) and doc.get("kind") == "ConfigMap"
    }
    injector_name, mesh_name = f"istio-sidecar-injector{suffix}", f"istio{suffix}"
    for name in (injector_name, mesh_name):
        if name not in config_maps:
            raise OracleError(f"{chart} rendered no ConfigMap {name} (rendered: {sorted(config_maps)})")
    injector, mesh = config_maps[injector_name], config_maps[mesh_name]
    for key, data, name in (
        ("config", injector, injector_name),
        ("values", injector, injector_name),
        ("mesh", mesh, mesh_name),
    ):
        if key not in data:
            raise OracleError(f"ConfigMap {name} of {chart} has no key {key!r}")
    return Injector(
        config=injector["config"].replace(ESTIMATED_CONCURRENCY, str(int(estimated_concurrency))),
        values=injector["values"],
        mesh=mesh["mesh"],
        revision=revision,
    )


def inject(
    istioctl: Path, injector: Injector, workloads: str, *, env: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Run `istioctl kube-inject` over the multi-document `workloads`; the injected objects by metadata.name.

    `env` is added to istioctl's environment: the templates or the injector read istiod's ISTIOD_SWITCHES from it.
    """
    with tempfile.TemporaryDirectory(prefix="meshcharts-oracle-inject-") as scratch:
        files = {"config": injector.config, "values": injector.values, "mesh": injector.mesh, "workloads": workloads}
        for name, text in files.items():
            (Path(scratch) / name).write_text(text)
        # No cluster is wanted or asked: an unreadable kubeconfig makes any attempt fail fast instead of hang.
        # istiod's switches come only from `env`, never from whoever runs the tests.
        inherited = {key: value for key, value in os.environ.items() if key not in ISTIOD_SWITCHES}
        run_env = {**inherited, "KUBECONFIG": str(Path(scratch) / "no-kubeconfig"), "HOME": scratch, **(env or {})}
        out = _run(
            [
                str(istioctl),
                "kube-inject",
                "-r",
                injector.revision_flag,
                "--injectConfigFile",
                str(Path(scratch) / "config"),
                "--valuesFile",
                str(Path(scratch) / "values"),
                "--meshConfigFile",
                str(Path(scratch) / "mesh"),
                "-f",
                str(Path(scratch) / "workloads"),
            ],
            step="istioctl kube-inject",
            env=run_env,
        )
    injected: dict[str, dict[str, Any]] = {}
    for doc in parse_all(out):
        if isinstance(doc, dict):
            injected[doc["metadata"]["name"]] = doc
    return injected


# --- comparing ------------------------------------------------------------------------------------------


class _Absent:
    """The value of a field one side does not have; `<absent>` in deviations.yaml."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()
ABSENT_IN_YAML = "<absent>"

_NAMED_LISTS = {"containers", "initContainers", "env", "volumes", "volumeMounts", "imagePullSecrets"}
_GRPC_BOOTSTRAP_DIR = "/var/lib/grpc/data/"


def _json_or_none(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _env_for_script(env: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A container's env as a shell sees it; a fieldRef becomes a placeholder naming its field."""
    result: dict[str, str] = {}
    for entry in env:
        if "value" in entry:
            result[entry["name"]] = str(entry["value"])
        else:
            ref = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "unknown")
            result[entry["name"]] = f"<{ref}>"
    return result


def script_effect(script: str, env: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What an init script that writes gRPC's xDS bootstrap leaves behind, run by a real `sh`.

    The bootstrap scripts of Istio's grpc-simple template and this chart's are written differently and
    must do the same, so they compare by the files they write (parsed), not by their text.
    """
    with tempfile.TemporaryDirectory(prefix="meshcharts-oracle-sh-") as scratch:
        target = Path(scratch) / "data"
        target.mkdir()
        text = script.replace(_GRPC_BOOTSTRAP_DIR, f"{target}/")
        shell_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_env_for_script(env)}
        done = subprocess.run(
            ["sh", "-c", text], capture_output=True, text=True, env=shell_env, timeout=30, check=False
        )
        written: dict[str, Any] = {"exit": done.returncode}
        for path in sorted(target.iterdir()):
            content = path.read_text()
            try:
                written[path.name] = json.loads(content, strict=False)
            except ValueError:
                written[path.name] = content
        return written


def normalize(doc: Any) -> Any:
    """The same object with JSON held in strings parsed and bootstrap scripts replaced by their effect."""
    if isinstance(doc, dict):
        result = {key: normalize(value) for key, value in doc.items()}
        if isinstance(result.get("value"), str) and "name" in result:
            parsed = _json_or_none(result["value"])
            if parsed is not None:
                result["value"] = parsed
        command = doc.get("command")
        if (
            isinstance(command, list)
            and len(command) == 3
            and command[:2] == ["sh", "-c"]
            and _GRPC_BOOTSTRAP_DIR in str(command[2])
        ):
            result["command"] = [*command[:2], {"effect": script_effect(command[2], doc.get("env", []))}]
        return result
    if isinstance(doc, list):
        return [normalize(item) for item in doc]
    return doc


def _normalize_annotations(doc: Any) -> Any:
    annotations = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
    if isinstance(annotations, dict):
        for key, value in list(annotations.items()):
            if isinstance(value, str):
                parsed = _json_or_none(value)
                if parsed is not None:
                    annotations[key] = parsed
    return doc


def comparable(doc: Mapping[str, Any]) -> Any:
    """A document ready to compare: normalized, with JSON annotations of the pod template parsed."""
    return _normalize_annotations(normalize(dict(doc)))


@dataclass(frozen=True)
class Difference:
    """One field whose value differs; `istio` or `ours` is ABSENT where that side lacks the field."""

    path: str
    istio: Any
    ours: Any

    def __str__(self) -> str:
        return f"{self.path}: Istio 1.12 {_show(self.istio)}, this chart {_show(self.ours)}"


def _show(value: Any) -> str:
    if value is ABSENT:
        return "has none"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 300 else text[:297] + "..."


def _is_named_list(key: str, value: Any) -> bool:
    return (
        key in _NAMED_LISTS
        and isinstance(value, list)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def differences(istio: Any, ours: Any, path: str = "") -> Iterator[Difference]:
    """Every field that differs between two parsed documents, by dotted path; named lists keyed by name."""
    if isinstance(istio, dict) and isinstance(ours, dict):
        for key in sorted(set(istio) | set(ours)):
            sub = f"{path}.{key}" if path else key
            left, right = istio.get(key, ABSENT), ours.get(key, ABSENT)
            if _is_named_list(key, left) and _is_named_list(key, right):
                yield from _named_list_differences(left, right, sub)
            elif left is ABSENT or right is ABSENT:
                yield Difference(sub, left, right)
            else:
                yield from differences(left, right, sub)
        return
    if isinstance(istio, list) and isinstance(ours, list) and len(istio) == len(ours):
        for index, (left, right) in enumerate(zip(istio, ours, strict=True)):
            yield from differences(left, right, f"{path}[{index}]")
        return
    if istio != ours:
        yield Difference(path, istio, ours)


def _keyed(items: list[Any]) -> dict[str, Any]:
    """Items by name; a name that repeats (an env variable set twice) gets `#2`, `#3`, ... in order."""
    keyed: dict[str, Any] = {}
    for item in items:
        key, count = str(item["name"]), 1
        while key in keyed:
            count += 1
            key = f"{item['name']}#{count}"
        keyed[key] = item
    return keyed


def _named_list_differences(istio: list[Any], ours: list[Any], path: str) -> Iterator[Difference]:
    left, right = _keyed(istio), _keyed(ours)
    for name in sorted(set(left) | set(right)):
        yield from (
            differences(left[name], right[name], f"{path}[{name}]")
            if name in left and name in right
            else [Difference(f"{path}[{name}]", left.get(name, ABSENT), right.get(name, ABSENT))]
        )
    common = [n for n in left if n in right]
    if common != [n for n in right if n in left]:
        yield Difference(f"{path} (order)", common, [n for n in right if n in left])


# --- documented deviations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deviation:
    """A deliberate difference from Istio 1.12 (a fixed 1.12 defect), listed in the README's table.

    It accepts exactly one field (`path`; `*` matches any run of characters, brackets are literal) holding
    exactly `istio` in 1.12's pod and `ours` in this chart's, optionally only for some variants or workloads.
    """

    name: str
    path: str
    istio: Any
    ours: Any
    variants: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()

    def accepts(self, difference: Difference, *, variant: str, workload: str) -> bool:
        if self.variants and variant not in self.variants:
            return False
        if self.workloads and workload not in self.workloads:
            return False
        return (
            _path_pattern(self.path).fullmatch(difference.path) is not None
            and _same(self.istio, difference.istio)
            and _same(self.ours, difference.ours)
        )


def _path_pattern(path: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in path.split("*")))


def _same(wanted: Any, got: Any) -> bool:
    if wanted is ABSENT:
        return got is ABSENT
    return bool(got is not ABSENT and wanted == got)


def _from_yaml(value: Any) -> Any:
    return ABSENT if value == ABSENT_IN_YAML else value


def load_deviations(path: Path) -> list[Deviation]:
    """deviations.yaml: a list of entries with name, path, istio, ours and optional variants/workloads."""
    entries = yaml.safe_load(path.read_text()) or []
    deviations = []
    for index, entry in enumerate(entries):
        missing = [key for key in ("name", "path", "istio", "ours") if key not in entry]
        if missing:
            raise OracleError(f"{path}: entry {index} lacks {', '.join(missing)}")
        deviations.append(
            Deviation(
                name=entry["name"],
                path=entry["path"],
                istio=_from_yaml(entry["istio"]),
                ours=_from_yaml(entry["ours"]),
                variants=tuple(entry.get("variants", ())),
                workloads=tuple(entry.get("workloads", ())),
            )
        )
    return deviations


def unexplained(
    istio: Mapping[str, Any], ours: Mapping[str, Any], deviations: Sequence[Deviation], *, variant: str, workload: str
) -> tuple[list[Difference], set[int]]:
    """The differences no deviation accepts, and which entries of `deviations` (by index) accepted one.

    By entry, not by name: several entries share a name (one deviation, several fields or variants), and each
    must still be needed on its own."""
    left, used = [], set()
    for difference in differences(comparable(istio), comparable(ours)):
        accepting = [i for i, d in enumerate(deviations) if d.accepts(difference, variant=variant, workload=workload)]
        if accepting:
            used.update(accepting)
        else:
            left.append(difference)
    return left, used


def unneeded(deviations: Sequence[Deviation], used: set[int]) -> list[str]:
    """The entries no difference needed, each named by its name, path and position in the file."""
    return [f"entry {i} ({d.name}: {d.path})" for i, d in enumerate(deviations) if i not in used]


def _api_servers(volume: str) -> bool:
    """The ServiceAccount token volume the API server's ServiceAccount admission adds (before any webhook)."""
    return volume.startswith("kube-api-access-")


def injected_view(pod: dict[str, Any]) -> dict[str, Any]:
    """What an injector decides about a pod, in a form that API-server defaulting does not change: per container
    its image, arguments, environment (value, or where it comes from), ports and mounts; the pod's volumes and
    the labels and status annotation istiod adds."""

    def env(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for entry in entries or []:
            source = entry.get("valueFrom") or {}
            if "fieldRef" in source:
                found[entry["name"]] = ("fieldRef", source["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in source:
                found[entry["name"]] = ("resourceFieldRef", source["resourceFieldRef"]["resource"])
            else:
                found[entry["name"]] = entry.get("value", "")
        return found

    def container(spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "image": spec.get("image"),
            "args": spec.get("args") or [],
            "env": env(spec.get("env")),
            "ports": sorted(
                (p.get("name", ""), p["containerPort"], p.get("protocol", "TCP")) for p in spec.get("ports") or []
            ),
            "mounts": sorted(
                (m["name"], m["mountPath"]) for m in spec.get("volumeMounts") or [] if not _api_servers(m["name"])
            ),
        }

    spec, meta = pod["spec"], pod["metadata"]
    annotations = meta.get("annotations") or {}
    return {
        "containers": {c["name"]: container(c) for c in spec.get("containers") or []},
        "initContainers": {c["name"]: container(c) for c in spec.get("initContainers") or []},
        "volumes": sorted(v["name"] for v in spec.get("volumes") or [] if not _api_servers(v["name"])),
        "labels": dict(meta.get("labels") or {}),
        "status": json.loads(annotations.get("sidecar.istio.io/status", "null")),
    }
