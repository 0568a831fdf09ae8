"""`meshcharts lint`: the one static gate, no cluster.

It holds the working tree to what was published: every version listed in index.yaml is rendered from
its archive and compared with charts/ under the same values, for the changes that break `helm upgrade`
or the users' values (a workload or Service selector, a CRD version or schema field, a values key, a
Service port). It also reports values declared but unread or read but undeclared, and charts/ that
no longer matches generator/specs.

The comparisons are pure functions over parsed objects; `snapshot_*` and `run` are the only I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import artifacthub, index, package, render, spec, write
from meshcharts.errors import HelmError, Problem, RepoError
from meshcharts.helm import Helm
from meshcharts.paths import Layout

WORKING_TREE = "working tree"
NAMESPACE = "istio-system"
# The release names users of Istio 1.12 install these charts under; the gateway's name feeds its selector.
RELEASES = {"base": "istio-base", "istiod": "istiod", "gateway": "istio-ingressgateway"}
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
DEFAULT_SCENARIO = "default values"

Obj = Mapping[str, Any]
_Key = tuple[str, str, str]  # kind, namespace, name

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


# ---------------------------------------------------------------------------------------------
# Gathering (the only I/O): helm template of archives and charts/, values files, the specs


@dataclass(frozen=True)
class Report:
    findings: list[Problem]
    compared: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def scenarios(layout: Layout, chart: str) -> dict[str, Path | None]:
    """Default values, then each `ci/values/<chart>/*.yaml`, keyed by how messages name them."""
    found: dict[str, Path | None] = {DEFAULT_SCENARIO: None}
    for path in sorted((layout.ci / "values" / chart).glob("*.yaml")):
        found[f"values {path.relative_to(layout.root).as_posix()}"] = path
    return found


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a `helm template` stream, empty documents dropped."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if isinstance(doc, dict)]


def _render(helm: Helm, chart: str, source: Path, values: Path | None) -> list[dict[str, Any]] | HelmError:
    try:
        text = helm.template(RELEASES.get(chart, chart), source, namespace=NAMESPACE, values=[values] if values else [])
    except HelmError as err:
        if err.returncode < 0:
            raise  # helm did not run at all: not a property of the chart
        return err
    return parse_manifests(text)


def _load_json(data: bytes | None, where: str) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as err:
        raise RepoError(f"{where}: not valid JSON: {err}") from err


def _load_yaml(data: bytes | None, where: str) -> Any:
    if data is None:
        return None
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as err:
        raise RepoError(f"{where}: not valid YAML: {err}") from err


def snapshot_archive(layout: Layout, helm: Helm, archive: Path, chart: str, version: str) -> Snapshot:
    renders = {name: _render(helm, chart, archive, path) for name, path in scenarios(layout, chart).items()}
    surface = values_surface(
        _load_yaml(package.archive_file(archive, "values.yaml"), f"{archive}:values.yaml"),
        _load_json(package.archive_file(archive, "values.schema.json"), f"{archive}:values.schema.json"),
    )
    return Snapshot(chart, version, renders, surface)


def snapshot_tree(layout: Layout, helm: Helm, chart: str) -> Snapshot:
    directory = layout.charts / chart
    renders = {name: _render(helm, chart, directory, path) for name, path in scenarios(layout, chart).items()}
    values_path, schema_path = directory / "values.yaml", directory / "values.schema.json"
    surface = values_surface(
        _load_yaml(values_path.read_bytes() if values_path.is_file() else None, str(values_path)),
        _load_json(schema_path.read_bytes() if schema_path.is_file() else None, str(schema_path)),
    )
    return Snapshot(chart, WORKING_TREE, renders, surface)


def published(layout: Layout, chart: str) -> list[tuple[str, Path]]:
    """(version, archive) of every published version of `chart`, as index.yaml lists them."""
    entries = index.load(layout.index)["entries"].get(chart, [])
    found = []
    for entry in entries:
        urls = entry.get("urls") or []
        local = [u for u in urls if "://" not in u]
        if not local:
            raise RepoError(
                f"index.yaml: {chart} {entry.get('version')} has no archive inside the repository ({urls}); "
                "lint reads published archives from packages/"
            )
        path = layout.root / local[0]
        if not path.is_file():
            raise RepoError(f"index.yaml: {chart} {entry.get('version')} lists {local[0]}, which does not exist")
        found.append((str(entry.get("version")), path))
    return found


def _in_charts(rel: str, charts: Sequence[str]) -> bool:
    """A path below charts/ belongs to a selected chart, or to the whole tree (the manifest)."""
    top, _, rest = rel.partition("/")
    return top in charts or not rest


def check_tree(layout: Layout, model: spec.Model, charts: Sequence[str]) -> list[Problem]:
    """Value usage (declared but unread, read but undeclared) and charts/ against a fresh render."""
    files, usage = render.render_tree(model)
    sources = {model.chart(name).source for name in charts}
    problems = [p for p in usage if p.where.split(":", 1)[0] in sources]
    drift = write.diff(layout, files)
    changed = sorted(
        {
            line[len("+++ b/") :]
            for line in drift.splitlines()
            if line.startswith("+++ b/charts/") and _in_charts(line[len("+++ b/charts/") :], charts)
        }
    )
    if changed:
        problems.append(
            Problem(
                "charts/",
                "differs from what generator/specs renders in "
                + ", ".join(changed)
                + " (`meshcharts generate --check` shows the diff, `meshcharts generate` fixes it)",
            )
        )
    return problems


def run(layout: Layout, *, charts: Sequence[str] = spec.CHART_NAMES, helm: Helm | None = None) -> Report:
    """Every check for `charts`; SpecError, RepoError and a helm that does not run are raised, not findings."""
    model = spec.load(layout)
    findings = check_tree(layout, model, charts)
    findings.extend(artifacthub.check_repository_file(layout.root / "artifacthub-repo.yml"))
    helm = helm or Helm(major=4)
    compared: list[str] = []
    notes: list[str] = []
    lines = {line.line: line for line in layout.every_line()[1:]}
    line_models: dict[str, spec.Model] = {}
    for chart in charts:
        source = model.chart(chart).source
        deprecated = {v.path: v.deprecated for v in model.chart(chart).values if v.deprecated}
        current = snapshot_tree(layout, helm, chart)
        line_trees: dict[str, Snapshot] = {}
        for version, archive in published(layout, chart):
            # A version of a later line is held to that line's tree (its patch releases come from there);
            # any other, of the base line or an older one, to charts/.
            minor = ".".join(version.split(".")[:2])
            target, label = current, WORKING_TREE
            chart_source, chart_deprecated = source, deprecated
            line = lines.get(minor) if minor != model.suite.line else None
            if line is not None:
                if minor not in line_models:
                    line_models[minor] = spec.load(line)
                if minor not in line_trees:
                    tree = snapshot_tree(line, helm, chart)
                    line_trees[minor] = Snapshot(chart, line.charts_label, tree.renders, tree.values)
                target, label = line_trees[minor], line.charts_label
                line_chart = line_models[minor].chart(chart)
                chart_source = line.overlay.relative_to(line.root).as_posix() if line.overlay else source
                chart_deprecated = {v.path: v.deprecated for v in line_chart.values if v.deprecated}
            old = snapshot_archive(layout, helm, archive, chart, version)
            problems, more_notes = compare(old, target, chart_deprecated, source=chart_source)
            findings.extend(problems)
            notes.extend(more_notes)
            compared.append(f"{chart} {version} -> {label} ({', '.join(old.renders)})")
    previous = layout
    for line in layout.every_line()[1:]:
        # A problem of the shared specs shows in every line; it is reported once.
        seen = {(p.where, p.message) for p in findings}
        more = check_line(previous, line, charts, helm, compared, notes)
        findings.extend(p for p in more if (p.where, p.message) not in seen)
        previous = line
    return Report(findings, compared, notes)


def check_line(
    previous: Layout,
    line: Layout,
    charts: Sequence[str],
    helm: Helm,
    compared: list[str],
    notes: list[str],
) -> list[Problem]:
    """A release line after `previous`: its specs load, its tree matches them, its values are all read, and
    upgrading each chart from the previous line's tree to this one breaks nothing `compare` checks
    (selectors, Service ports, CRD versions and fields, values keys), as `helm upgrade` across minors needs."""
    model = spec.load(line)
    files, usage = render.render_tree(model)
    sources = {model.chart(name).source for name in charts}
    findings = [p for p in usage if p.where.split(":", 1)[0] in sources]
    overlay = line.overlay.relative_to(line.root).as_posix() if line.overlay else "the line's overlay"
    marker = f"+++ b/{line.charts_label}"
    changed = sorted(
        {
            text[len("+++ b/") :]
            for text in write.diff(line, files).splitlines()
            if text.startswith(marker) and _in_charts(text[len(marker) :], charts)
        }
    )
    if changed:
        findings.append(
            Problem(
                line.charts_label,
                f"differs from what generator/specs with {overlay} renders in "
                + ", ".join(changed)
                + " (`meshcharts generate --check` shows the diff, `meshcharts generate` fixes it)",
            )
        )
    for chart in charts:
        deprecated = {v.path: v.deprecated for v in model.chart(chart).values if v.deprecated}
        old = snapshot_tree(previous, helm, chart)
        new = snapshot_tree(line, helm, chart)
        old = Snapshot(chart, previous.charts_label, old.renders, old.values)
        new = Snapshot(chart, line.charts_label, new.renders, new.values)
        problems, more_notes = compare(old, new, deprecated, source=overlay)
        findings.extend(problems)
        notes.extend(more_notes)
        compared.append(f"{chart} {previous.charts_label} -> {line.charts_label} ({', '.join(old.renders)})")
    return findings
