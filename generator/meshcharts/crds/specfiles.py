"""The spec files of generator/specs/crds: read, checked key by key, parsed into drafts of API types."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts._yaml import load_yaml
from meshcharts.crds.expressions import TYPE_NAME, Problems, parse_type
from meshcharts.crds.model import PRINTER_COLUMN_TYPES, SCALARS, SPEC_API_VERSION, PrinterColumn, TypeExpr, Version


def check_keys(node: Mapping[str, Any], where: str, allowed: Iterable[str], problems: Problems) -> None:
    allowed = list(allowed)
    for key in node:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            problems.add(
                _join(where, key),
                "unknown key" + (f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(allowed)}"),
            )


def _join(where: str, key: object) -> str:
    """`file:key` for a top-level key, `file:outer.key` below it."""
    return f"{where}.{key}" if ":" in where else f"{where}:{key}"


@dataclass
class SpecFile:
    where: str  # the file, as reported in problems
    stem: str
    data: dict[str, Any]
    types: dict[str, TypeExpr] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # declared, but the declaration was reported as invalid


def read_spec(path: Path, where: str, problems: Problems) -> dict[str, Any] | None:
    try:
        data = load_yaml(path)
    except yaml.YAMLError as exc:
        problems.add(where, f"not valid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        problems.add(where, "expected a mapping at the top")
        return None
    return data


def check_header(data: Mapping[str, Any], where: str, kind: str, problems: Problems) -> None:
    if data.get("apiVersion") != SPEC_API_VERSION:
        problems.add(f"{where}:apiVersion", f"must be {SPEC_API_VERSION} (found {data.get('apiVersion')!r})")
    if data.get("kind") != kind:
        problems.add(f"{where}:kind", f"must be {kind} in this file (found {data.get('kind')!r})")


def parse_types_block(file: SpecFile, problems: Problems) -> None:
    block = file.data.get("types", {})
    if not isinstance(block, dict):
        problems.add(f"{file.where}:types", "must be a mapping of type name to type")
        return
    for name, node in block.items():
        where = f"{file.where}:types.{name}"
        if not (isinstance(name, str) and TYPE_NAME.fullmatch(name)):
            problems.add(where, "a type name is CamelCase starting with a capital letter")
            continue
        if name in SCALARS:
            problems.add(where, "a type name cannot be a scalar name")
            continue
        expr = parse_type(node, where, problems)
        if expr is None:
            file.broken.add(name)
        else:
            file.types[name] = expr


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+")
_LOWER = re.compile(r"[a-z][a-z0-9]*")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]*")
_VERSION = re.compile(r"v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?")

_CRD_KEYS = (
    "group",
    "kind",
    "plural",
    "singular",
    "listKind",
    "scope",
    "shortNames",
    "categories",
    "printerColumns",
    "statusSubresource",
    "keep",
    "description",
    "specRequired",
)
_COLUMN_KEYS = ("name", "type", "jsonPath", "description", "format", "priority")
_VERSION_KEYS = ("name", "served", "storage", "printerColumns")
_FILE_KEYS = ("apiVersion", "kind", "crd", "versions", "types", "spec", "status", "example")


def _string(
    node: Mapping[str, Any], key: str, where: str, problems: Problems, pattern: re.Pattern[str] | None = None
) -> str | None:
    value = node.get(key)
    if value is None:
        problems.add(f"{where}.{key}", "required")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(f"{where}.{key}", "must be non-empty text")
        return None
    if pattern is not None and not pattern.fullmatch(value):
        problems.add(f"{where}.{key}", f"{value!r} does not match {pattern.pattern}")
        return None
    return value


def _bool(node: Mapping[str, Any], key: str, where: str, problems: Problems, default: bool | None) -> bool:
    value = node.get(key, default)
    if value is None:
        problems.add(f"{where}.{key}", "required (true or false)")
        return False
    if not isinstance(value, bool):
        problems.add(f"{where}.{key}", f"must be true or false, not {value!r}")
        return False
    return value


def _names(node: Mapping[str, Any], key: str, where: str, problems: Problems) -> tuple[str, ...]:
    value = node.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(f"{where}.{key}", "must be a list of names")
        return ()
    if len(set(value)) != len(value):
        problems.add(f"{where}.{key}", "lists a name twice")
    return tuple(value)


def _mappings(
    node: list[Any], where: str, allowed: Iterable[str], expected: str, problems: Problems
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each entry of the list `node` that is a mapping, with where it is, its keys checked against `allowed`; any
    other entry is reported: it must be `expected`."""
    for index, entry in enumerate(node):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            problems.add(at, f"must be {expected}")
            continue
        check_keys(entry, at, allowed, problems)
        yield at, entry


def _printer_columns(node: Any, where: str, problems: Problems) -> tuple[PrinterColumn, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        problems.add(where, "must be a list of columns")
        return ()
    columns = []
    for at, col in _mappings(node, where, _COLUMN_KEYS, "a mapping with name, type and jsonPath", problems):
        name = _string(col, "name", at, problems)
        ctype = _string(col, "type", at, problems)
        if ctype is not None and ctype not in PRINTER_COLUMN_TYPES:
            problems.add(f"{at}.type", f"must be one of {', '.join(PRINTER_COLUMN_TYPES)}")
        path = _string(col, "jsonPath", at, problems)
        if path is not None and not path.startswith("."):
            problems.add(f"{at}.jsonPath", "must start with '.', e.g. .spec.host")
        description = col.get("description")
        if description is not None and not isinstance(description, str):
            problems.add(f"{at}.description", "must be text")
        fmt = col.get("format")
        if fmt is not None and not isinstance(fmt, str):
            problems.add(f"{at}.format", "must be text")
        priority = col.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            problems.add(f"{at}.priority", "must be an integer")
        if name and ctype and path:
            columns.append(
                PrinterColumn(
                    name=name,
                    type=ctype,
                    json_path=path,
                    description=description if isinstance(description, str) else None,
                    format=fmt if isinstance(fmt, str) else None,
                    priority=priority if isinstance(priority, int) else None,
                )
            )
    return tuple(columns)


def _versions(
    node: Any, where: str, default_columns: tuple[PrinterColumn, ...], problems: Problems
) -> tuple[Version, ...]:
    if not isinstance(node, list) or not node:
        problems.add(where, "must list at least one version, e.g. [{name: v1alpha1, storage: true}]")
        return ()
    versions = []
    expected = "a mapping such as {name: v1beta1, served: true, storage: false}"
    for at, entry in _mappings(node, where, _VERSION_KEYS, expected, problems):
        name = _string(entry, "name", at, problems, _VERSION)
        served = _bool(entry, "served", at, problems, default=True)
        storage = _bool(entry, "storage", at, problems, default=False)
        if storage and not served:
            problems.add(f"{at}.served", "the storage version must be served")
        columns = (
            _printer_columns(entry["printerColumns"], f"{at}.printerColumns", problems)
            if "printerColumns" in entry
            else default_columns
        )
        if name:
            versions.append(Version(name=name, served=served, storage=storage, printer_columns=columns))
    names = [v.name for v in versions]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add(where, f"version {name} listed twice")
    storage_count = sum(v.storage for v in versions)
    if versions and storage_count != 1:
        problems.add(where, f"exactly one version must have storage: true (found {storage_count})")
    return tuple(versions)


@dataclass
class Draft:
    """An APIType file parsed far enough to resolve its types against the shared ones."""

    file: SpecFile
    crd: dict[str, Any]
    versions: tuple[Version, ...]
    spec: TypeExpr | None
    status: TypeExpr | None


def parse_api_file(file: SpecFile, problems: Problems) -> Draft | None:
    data, where = file.data, file.where
    check_header(data, where, "APIType", problems)
    check_keys(data, where, _FILE_KEYS, problems)
    parse_types_block(file, problems)
    crd = data.get("crd")
    if not isinstance(crd, dict):
        problems.add(f"{where}:crd", "required: a mapping with group, kind, plural, scope, ...")
        return None
    at = f"{where}:crd"
    check_keys(crd, at, _CRD_KEYS, problems)
    fields: dict[str, Any] = {
        "group": _string(crd, "group", at, problems, _DNS_SUBDOMAIN),
        "kind": _string(crd, "kind", at, problems, _KIND),
        "plural": _string(crd, "plural", at, problems, _LOWER),
        "scope": _string(crd, "scope", at, problems, re.compile("Namespaced|Cluster")),
        "description": _string(crd, "description", at, problems),
        "short_names": _names(crd, "shortNames", at, problems),
        "categories": _names(crd, "categories", at, problems),
        "status_subresource": _bool(crd, "statusSubresource", at, problems, default=None),
        "keep": _bool(crd, "keep", at, problems, default=None),
        "spec_required": _bool(crd, "specRequired", at, problems, default=False),
    }
    kind = fields["kind"]
    fields["singular"] = _string(crd, "singular", at, problems, _LOWER) if "singular" in crd else (kind or "").lower()
    fields["list_kind"] = _string(crd, "listKind", at, problems, _KIND) if "listKind" in crd else f"{kind}List"
    if kind and file.stem != kind.lower():
        problems.add(where, f"file of kind {kind} must be named {kind.lower()}.yaml")
    columns = _printer_columns(crd.get("printerColumns"), f"{at}.printerColumns", problems)
    versions = _versions(data.get("versions"), f"{where}:versions", columns, problems)
    spec = parse_type(data["spec"], f"{where}:spec", problems) if "spec" in data else None
    if "spec" not in data:
        problems.add(f"{where}:spec", "required: the type of the resource's spec")
    status = parse_type(data.get("status", "object"), f"{where}:status", problems)
    if "example" not in data:
        problems.add(f"{where}:example", "required: one valid object of this kind (for ArtifactHub)")
    return Draft(file=file, crd=fields, versions=versions, spec=spec, status=status)
