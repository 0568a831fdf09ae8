"""The upgrade-compatibility rules `meshcharts lint` applies: pure functions over parsed objects.

A published version and the working tree, rendered under the same values, are compared for what breaks
`helm upgrade` or the users' values: a workload or Service selector, a Service port, a CRD version or schema
field, a values key. No I/O here; `meshcharts.lint` renders, snapshots and reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshcharts.errors import HelmError, Problem

WORKING_TREE = "working tree"
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
DEFAULT_SCENARIO = "default values"

Obj = Mapping[str, Any]
_Key = tuple[str, str, str]  # kind, namespace, name


# ---------------------------------------------------------------------------------------------
# Formatting: objects and values named the way a maintainer would look them up


def flow(value: Any) -> str:
    """A compact YAML-like spelling for messages: `{app: istiod, istio: pilot}`, `[a, b]`."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    return str(value)


def _key(obj: Obj) -> _Key:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def object_name(obj: Obj) -> str:
    """`Deployment istio-system/istiod`, or `CustomResourceDefinition gateways.networking.istio.io`."""
    kind, namespace, name = _key(obj)
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _by_key(objects: Iterable[Obj], kinds: Sequence[str]) -> dict[_Key, Obj]:
    return {_key(o): o for o in objects if o.get("kind") in kinds}


def _pairs(old: Iterable[Obj], new: Iterable[Obj], kinds: Sequence[str]) -> list[tuple[Obj, Obj]]:
    """Objects of `kinds` present in both renders, in a stable order."""
    olds, news = _by_key(old, kinds), _by_key(new, kinds)
    return [(olds[k], news[k]) for k in sorted(olds.keys() & news.keys())]


# ---------------------------------------------------------------------------------------------
# Selectors


def compare_selectors(old: Iterable[Obj], new: Iterable[Obj]) -> list[str]:
    """A workload's spec.selector is immutable; a Service's must keep selecting the running pods."""
    old, new = list(old), list(new)
    findings: list[str] = []
    for before, after in _pairs(old, new, WORKLOAD_KINDS):
        sel_old = (before.get("spec") or {}).get("selector") or {}
        sel_new = (after.get("spec") or {}).get("selector") or {}
        for part in sorted(set(sel_old) | set(sel_new)):
            if sel_old.get(part) != sel_new.get(part):
                findings.append(
                    f"{object_name(after)} spec.selector.{part} changed: {flow(sel_old.get(part))} -> "
                    f'{flow(sel_new.get(part))} (immutable: helm upgrade fails with "field is immutable")'
                )
    for before, after in _pairs(old, new, ("Service",)):
        sel_old = (before.get("spec") or {}).get("selector")
        sel_new = (after.get("spec") or {}).get("selector")
        if sel_old != sel_new:
            findings.append(
                f"{object_name(after)} spec.selector changed: {flow(sel_old)} -> {flow(sel_new)} "
                "(the Service must keep selecting the pods of the running release, or traffic stops mid-upgrade)"
            )
    return findings


# ---------------------------------------------------------------------------------------------
# Service ports


def _port_label(port: Mapping[str, Any]) -> str:
    return f"{port.get('port')}/{port.get('protocol', 'TCP')}"


def compare_service_ports(old: Iterable[Obj], new: Iterable[Obj]) -> list[str]:
    """Ports of a Service present in both renders keep their name and number.

    Clients, Gateway servers and Istio's protocol selection refer to ports by name; load balancers and
    firewalls by number.
    """
    findings: list[str] = []
    for before, after in _pairs(old, new, ("Service",)):
        where = f"{object_name(after)} spec.ports"
        ports_old = list((before.get("spec") or {}).get("ports") or [])
        ports_new = list((after.get("spec") or {}).get("ports") or [])
        by_name = {p.get("name"): p for p in ports_new if p.get("name")}
        by_number = {(p.get("port"), p.get("protocol", "TCP")): p for p in ports_new}
        for port in ports_old:
            name = port.get("name")
            if name and name in by_name:
                if by_name[name].get("port") != port.get("port"):
                    findings.append(
                        f"{where}[name={name}].port changed: {port.get('port')} -> {by_name[name].get('port')} "
                        "(load balancers, firewalls and clients address the port by number)"
                    )
                continue
            same_number = by_number.get((port.get("port"), port.get("protocol", "TCP")))
            if same_number is not None:
                if same_number.get("name") != name:
                    findings.append(
                        f"{where}[port={port.get('port')}].name renamed: {flow(name)} -> "
                        f"{flow(same_number.get('name'))} (Istio picks the protocol from the port name, and "
                        "Gateways, probes and clients refer to it by name)"
                    )
                continue
            label = f"name={name}" if name else f"port={port.get('port')}"
            findings.append(
                f"{where}[{label}] removed (was {flow(name)} {_port_label(port)}; "
                f"the Service now has {flow([p.get('name') or _port_label(p) for p in ports_new])})"
            )
    return findings


# ---------------------------------------------------------------------------------------------
# CRDs


def _types(node: Mapping[str, Any]) -> frozenset[str] | None:
    """The JSON types a schema node accepts; None when it accepts any."""
    if node.get("x-kubernetes-int-or-string"):
        kinds = {"integer", "string"}
    elif "type" in node:
        raw = node["type"]
        kinds = {raw} if isinstance(raw, str) else set(raw)
    else:
        return None
    if node.get("nullable"):
        kinds.add("null")
    return frozenset(kinds)


def _accepts(kinds: frozenset[str] | None, kind: str) -> bool:
    return kinds is None or kind in kinds or (kind == "integer" and "number" in kinds)


def _spell_types(kinds: frozenset[str] | None) -> str:
    return "any" if kinds is None else flow(sorted(kinds))


def _is_open(node: Mapping[str, Any]) -> bool:
    extra = node.get("additionalProperties")
    return bool(node.get("x-kubernetes-preserve-unknown-fields")) or (extra is not None and extra is not False)


def compare_schema(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[str]:
    """Structural schemas path by path: a removed property or a narrowed type, enum, nullability or
    openness is returned as `<path> <what changed>`; anything added is fine."""
    here = path or "(root)"
    findings: list[str] = []
    types_old, types_new = _types(old), _types(new)
    lost = sorted(k for k in (types_old or ()) if not _accepts(types_new, k))
    if (types_old is None and types_new is not None) or lost:
        findings.append(f"{here} type narrowed: {_spell_types(types_old)} -> {_spell_types(types_new)}")
    enum_old, enum_new = old.get("enum"), new.get("enum")
    if enum_new is not None:
        if enum_old is None:
            findings.append(f"{here} enum added where any value was accepted: {flow(enum_new)}")
        else:
            gone = [e for e in enum_old if e not in enum_new]
            if gone:
                findings.append(f"{here} enum narrowed: {flow(gone)} no longer accepted")
    newly_required = sorted(set(new.get("required") or ()) - set(old.get("required") or ()))
    if newly_required:
        findings.append(f"{here} now requires {flow(newly_required)} (stored objects without it fail validation)")
    if old.get("x-kubernetes-preserve-unknown-fields") and not new.get("x-kubernetes-preserve-unknown-fields"):
        findings.append(f"{here} no longer preserves unknown fields (the API server prunes them from stored objects)")
    props_old: Mapping[str, Any] = old.get("properties") or {}
    props_new: Mapping[str, Any] = new.get("properties") or {}
    for name in props_old:
        child = f"{path}.{name}" if path else name
        if name not in props_new:
            if not _is_open(new):
                findings.append(
                    f"{child} removed from the schema (the API server prunes it from stored objects "
                    "and rejects it in new ones)"
                )
            continue
        findings.extend(compare_schema(props_old[name], props_new[name], child))
    extra_old, extra_new = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(extra_old, Mapping):
        if isinstance(extra_new, Mapping):
            findings.extend(compare_schema(extra_old, extra_new, f"{path}.*" if path else "*"))
        elif not _is_open(new):
            findings.append(f"{here} no longer accepts arbitrary keys (additionalProperties removed)")
    elif extra_old is True and not _is_open(new):
        findings.append(f"{here} no longer accepts arbitrary keys (additionalProperties removed)")
    items_old, items_new = old.get("items"), new.get("items")
    if isinstance(items_old, Mapping) and isinstance(items_new, Mapping):
        findings.extend(compare_schema(items_old, items_new, f"{path}[]"))
    return findings


def compare_crds(old: Iterable[Obj], new: Iterable[Obj]) -> list[str]:
    """Every CRD, served version and schema field that was published is still there and no narrower."""
    kinds = ("CustomResourceDefinition",)
    olds, news = _by_key(old, kinds), _by_key(new, kinds)
    findings: list[str] = []
    for key in sorted(olds):
        before = olds[key]
        if key not in news:
            findings.append(
                f"{object_name(before)} removed from the chart (helm.sh/resource-policy: keep leaves it in "
                "the cluster, never upgraded again, and a fresh install lacks it)"
            )
            continue
        after = news[key]
        name = object_name(after)
        versions_old = {v.get("name"): v for v in (before.get("spec") or {}).get("versions") or []}
        versions_new = {v.get("name"): v for v in (after.get("spec") or {}).get("versions") or []}
        for version, v_old in versions_old.items():
            v_new = versions_new.get(version)
            if v_new is None:
                findings.append(
                    f"{name} spec.versions[name={version}] removed (objects stored as {version} become "
                    "unreadable and clients using it fail)"
                )
                continue
            if v_old.get("served", True) and not v_new.get("served", True):
                findings.append(f"{name} spec.versions[name={version}].served changed: true -> false")
            schema_old = (v_old.get("schema") or {}).get("openAPIV3Schema") or {}
            schema_new = (v_new.get("schema") or {}).get("openAPIV3Schema") or {}
            findings.extend(f"{name} {version} {f}" for f in compare_schema(schema_old, schema_new))
    return findings


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class ValuesSurface:
    """The values keys a chart version accepts: dotted paths, and the paths below which any key goes."""

    keys: frozenset[str]
    open: frozenset[str] = frozenset()

    def accepts(self, path: str) -> bool:
        if path in self.keys or any(k.startswith(path + ".") for k in self.keys):
            return True
        parts = path.split(".")
        return any(".".join(parts[:i]) in self.open for i in range(0, len(parts)))


def values_surface(values: Mapping[str, Any] | None, schema: Mapping[str, Any] | None) -> ValuesSurface:
    """Flatten values.yaml (leaves) and values.schema.json (every property) into dotted keys.

    Open schema nodes (a free-form object or map) accept any key below them; without a schema, a
    non-empty mapping default is taken as a group of keys.
    """
    keys: set[str] = set()
    open_paths: set[str] = set()

    def walk_values(node: Mapping[str, Any], prefix: str) -> None:
        for key, child in node.items():
            path = f"{prefix}{key}"
            if isinstance(child, Mapping) and child:
                walk_values(child, f"{path}.")
            else:
                keys.add(path)

    def walk_schema(node: Mapping[str, Any], path: str) -> None:
        kinds = _types(node)
        if (kinds is None or "object" in kinds) and node.get("additionalProperties", True) is not False:
            open_paths.add(path)  # JSON schema accepts undeclared keys unless additionalProperties is false
        for key, child in (node.get("properties") or {}).items():
            child_path = f"{path}.{key}" if path else str(key)
            keys.add(child_path)
            if isinstance(child, Mapping):
                walk_schema(child, child_path)

    if values:
        walk_values(values, "")
    if schema:
        walk_schema(schema, "")
    return ValuesSurface(frozenset(keys), frozenset(open_paths))


def compare_values(
    old: ValuesSurface, new: ValuesSurface, deprecated: Mapping[str, str], *, source: str = "the chart's spec"
) -> list[str]:
    """Keys the published version accepted and the working tree does not, unless the spec still
    declares them as deprecated (with what to use instead)."""
    findings: list[str] = []
    for path in sorted(old.keys):
        parts = path.split(".")
        prefixes = [".".join(parts[:i]) for i in range(1, len(parts))]
        if any(p in old.open for p in prefixes):
            continue  # a key inside a published free-form map is the user's; the map itself is checked
        if new.accepts(path) or any(p in deprecated for p in (*prefixes, path)):
            continue
        findings.append(
            f"values key {path} removed or renamed without a declared deprecation (users' values files "
            f"and --reuse-values still carry it: the strict schema rejects it, or no template reads it); keep it "
            f"declared in {source} with `deprecated:` saying what replaces it"
        )
    return findings


# ---------------------------------------------------------------------------------------------
# One chart version as lint sees it, and the comparison of two


@dataclass(frozen=True)
class Snapshot:
    """A chart version: its renders per values scenario (objects, or Helm's error) and its values surface."""

    chart: str
    label: str  # a published version, or WORKING_TREE
    renders: Mapping[str, Sequence[Obj] | HelmError]
    values: ValuesSurface


def compare(
    old: Snapshot, new: Snapshot, deprecated: Mapping[str, str], *, source: str = "the chart's spec"
) -> tuple[list[Problem], list[str]]:
    """Findings from `old` to `new` (each message once, under the first scenario that shows it), and notes
    on scenarios that could not be compared."""
    where = f"{old.chart} {old.label} -> {new.label}"
    problems: list[Problem] = []
    notes: list[str] = []
    seen: set[str] = set()

    def add(scenario: str, message: str) -> None:
        if message in seen:
            return
        seen.add(message)
        suffix = "" if scenario == DEFAULT_SCENARIO else f" [{scenario}]"
        problems.append(Problem(where + suffix, message))

    for message in compare_values(old.values, new.values, deprecated, source=source):
        add(DEFAULT_SCENARIO, message)
    for scenario, before in old.renders.items():
        after = new.renders.get(scenario)
        if isinstance(before, HelmError):
            notes.append(f"{where} [{scenario}]: not compared, {old.label} does not render with these values")
            continue
        if after is None:
            notes.append(f"{where} [{scenario}]: not compared, no render of {new.label} with these values")
            continue
        if isinstance(after, HelmError):
            add(
                scenario,
                f"helm template fails with values {old.label} rendered, so helm upgrade with them fails too: "
                f"{after.stderr.strip()}",
            )
            continue
        for message in (
            *compare_selectors(before, after),
            *compare_service_ports(before, after),
            *compare_crds(before, after),
        ):
            add(scenario, message)
    return problems, notes
