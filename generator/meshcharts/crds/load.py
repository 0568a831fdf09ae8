"""`load_api_types`: every spec file read, checked, patched for a release line and resolved, all problems
reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshcharts.crds.constraints import check_constraints
from meshcharts.crds.expressions import Problems, refs
from meshcharts.crds.model import APIType, TypeExpr
from meshcharts.crds.render import render_crd
from meshcharts.crds.resolve import resolve_types
from meshcharts.crds.specfiles import (
    Draft,
    SpecFile,
    check_header,
    check_keys,
    parse_api_file,
    parse_types_block,
    read_spec,
)
from meshcharts.crds.validate import check_example
from meshcharts.errors import SpecError


def _expandable(expr: TypeExpr, types: Mapping[str, TypeExpr], stack: tuple[str, ...] = ()) -> bool:
    """Whether `expr` expands to a finite schema: every reachable name declared, no cycle (both reported)."""
    for ref in refs(expr):
        if ref.name not in types or ref.name in stack:
            return False
        if not _expandable(types[ref.name], types, (*stack, ref.name)):
            return False
    return True


@dataclass(frozen=True)
class LinePatch:
    """What a release line changes in the API types: the `crds:` section of generator/lines/<line>/line.yaml.

    Fields are only added and versions only replaced, never a field removed: a CRD losing a field would
    drop it from stored objects on upgrade (`meshcharts lint` refuses that across published versions).
    """

    where: str  # the overlay's `crds` key, as reported in problems
    files: tuple[Path, ...] = ()  # new API kinds, generator/lines/<line>/crds/*.yaml
    versions: Mapping[str, Any] = field(default_factory=dict)  # file stem -> the kind's whole versions list
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # file stem -> {path below spec: type}


def _add_field(spec: Any, path: str, expr: Any, where: str, problems: Problems) -> None:
    """Add `expr` at `path` below a kind's raw spec; `x[]` steps into the item of the list field x."""
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        name, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        child = node.get(name) if isinstance(node, dict) else None
        if is_list:
            child = child[0] if isinstance(child, list) and len(child) == 1 else None
        if not isinstance(child, dict):
            problems.add(where, f"{path}: {part!r} is not an inline object field of the base spec")
            return
        node = child
    if last in node:
        problems.add(where, f"{path}: already a field of the base spec")
        return
    node[last] = expr


def _patch(data: dict[str, Any], stem: str, patch: LinePatch, problems: Problems) -> dict[str, Any]:
    if stem in patch.versions:
        data = {**data, "versions": patch.versions[stem]}
    for path, expr in (patch.fields.get(stem) or {}).items():
        _add_field(data.get("spec"), str(path), expr, f"{patch.where}.fields.{stem}", problems)
    return data


def load_api_types(crds_dir: Path, patch: LinePatch | None = None) -> list[APIType]:
    """Every APIType under `crds_dir`, with a release line's `patch`, sorted by CRD name; SpecError lists
    every problem found."""
    problems = Problems()
    base = crds_dir.parent
    shared: dict[str, tuple[SpecFile, TypeExpr]] = {}
    drafts: list[Draft] = []
    shared_files: list[SpecFile] = []
    paths = sorted(crds_dir.glob("*.yaml"))
    if not paths:
        problems.add(str(crds_dir), "no type specs (*.yaml) found")
    if patch is not None:
        stems = {p.stem for p in paths}
        for extra in patch.files:
            if extra.stem in stems:
                problems.add(str(extra), f"{extra.name} is also in {crds_dir}: a line adds API kinds, patches others")
        for stem in sorted({*patch.versions, *patch.fields} - stems):
            problems.add(patch.where, f"{stem!r} is not an API kind file of {crds_dir.name}/")
        paths += [p for p in patch.files if p.stem not in stems]
    for path in paths:
        where = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        data = read_spec(path, where, problems)
        if data is None:
            continue
        if patch is not None and not path.name.startswith("_"):
            data = _patch(data, path.stem, patch, problems)
        file = SpecFile(where=where, stem=path.stem, data=data)
        if path.name.startswith("_"):
            check_header(data, where, "APITypes", problems)
            check_keys(data, where, ("apiVersion", "kind", "types"), problems)
            parse_types_block(file, problems)
            shared_files.append(file)
            for name, expr in file.types.items():
                if name in shared:
                    problems.add(f"{where}:types.{name}", f"also declared in {shared[name][0].where}")
                else:
                    shared[name] = (file, expr)
        else:
            draft = parse_api_file(file, problems)
            if draft is not None:
                drafts.append(draft)

    broken = set().union(*(f.broken for f in shared_files))
    resolve_types(shared, broken, drafts, problems)
    shared_scope = {name: expr for name, (_, expr) in shared.items()}
    apis: list[APIType] = []
    for draft in drafts:
        c = draft.crd
        if draft.spec is None or draft.status is None or not draft.versions or None in c.values():
            continue
        apis.append(
            APIType(
                source=draft.file.where,
                group=c["group"],
                kind=c["kind"],
                plural=c["plural"],
                singular=c["singular"],
                list_kind=c["list_kind"],
                scope=c["scope"],
                short_names=c["short_names"],
                categories=c["categories"],
                status_subresource=c["status_subresource"],
                keep=c["keep"],
                spec_required=c["spec_required"],
                description=c["description"],
                versions=draft.versions,
                spec=draft.spec,
                status=draft.status,
                types={**shared_scope, **draft.file.types},
                example=draft.file.data.get("example") or {},
            )
        )
    seen: dict[str, str] = {}
    for api in apis:
        for key in (api.name, f"{api.group}/{api.kind}"):
            if key in seen:
                problems.add(api.source, f"{key} is also declared in {seen[key]}")
            seen[key] = api.source
    checkable = {name: expr for name, expr in shared_scope.items() if _expandable(expr, shared_scope)}
    check_constraints(checkable.values(), shared_scope, problems)
    for draft in drafts:
        scope = {**shared_scope, **draft.file.types}
        roots = [expr for expr in (draft.spec, draft.status, *draft.file.types.values()) if expr is not None]
        check_constraints([expr for expr in roots if _expandable(expr, scope)], scope, problems)
    for api in apis:
        if _expandable(api.spec, api.types) and _expandable(api.status, api.types):
            for message in check_example(api):
                problems.add(f"{api.source}:example", message)
    if problems.items:
        raise SpecError(problems.items)
    return sorted(apis, key=lambda a: a.name)


def render_all(crds_dir: Path) -> list[dict[str, Any]]:
    """Every CRD under `crds_dir`, sorted by name."""
    return [render_crd(api) for api in load_api_types(crds_dir)]
