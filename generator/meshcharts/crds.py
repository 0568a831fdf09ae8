"""Istio's API types: compact type specs (generator/specs/crds) -> CustomResourceDefinitions as data.

`load_api_types` reads and validates every spec file, reporting all problems at once; `render_crd` expands one
APIType into an apiextensions.k8s.io/v1 CustomResourceDefinition whose schemas are structural, so the API
server prunes and validates with them. The format is described in generator/specs/crds/README.md.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from meshcharts._yaml import load_yaml
from meshcharts.errors import Problem, SpecError

SPEC_API_VERSION = "meshcharts/v1alpha1"
CRD_API_VERSION = "apiextensions.k8s.io/v1"

# Scalar type names and the OpenAPI schema each stands for.
SCALARS: Mapping[str, Mapping[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "number": {"type": "number"},
    "double": {"type": "number", "format": "double"},
    "object": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}
PRINTER_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


# ---------------------------------------------------------------------------------------------- type model


@dataclass(frozen=True, kw_only=True)
class _Node:
    nullable: bool = False
    doc: str | None = None


@dataclass(frozen=True, kw_only=True)
class Scalar(_Node):
    """One of SCALARS."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Enum(_Node):
    """A string restricted to `values`; `numbers` are their protobuf numbers (0, 1, ... unless written `A=N`)."""

    values: tuple[str, ...]
    numbers: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Array(_Node):
    item: TypeExpr


@dataclass(frozen=True, kw_only=True)
class Map(_Node):
    """An object with arbitrary string keys, every value of type `value`."""

    value: TypeExpr


@dataclass(frozen=True, kw_only=True)
class Ref(_Node):
    """A named type; `where` locates the reference for error messages."""

    name: str
    where: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True)
class Object(_Node):
    """An object with exactly `fields`; at most one of `one_of` may be set."""

    fields: tuple[tuple[str, TypeExpr], ...]
    one_of: tuple[str, ...] = ()


TypeExpr = Scalar | Enum | Array | Map | Ref | Object


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str | None = None
    format: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class Version:
    name: str
    served: bool
    storage: bool
    printer_columns: tuple[PrinterColumn, ...]


@dataclass(frozen=True, eq=False)
class APIType:
    """One Istio API kind: its CRD's names and versions, its spec type, and an example object."""

    source: str
    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    scope: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    status_subresource: bool
    keep: bool
    description: str
    versions: tuple[Version, ...]
    spec: TypeExpr
    status: TypeExpr
    types: Mapping[str, TypeExpr]
    example: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The CRD's metadata.name, `<plural>.<group>`."""
        return f"{self.plural}.{self.group}"

    @property
    def storage_version(self) -> str:
        return next(v.name for v in self.versions if v.storage)


# -------------------------------------------------------------------------------------- type expressions


class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(Problem(where, message))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENUM_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\s*=\s*-?[0-9]+)?")


class _SyntaxProblem(Exception):
    pass


class _ExprParser:
    """Recursive descent over one type expression string, e.g. `{string: [StringMatch]}?`."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.pos = 0
        self.where = where

    def parse(self) -> TypeExpr:
        expr = self._expr(self.where)
        self._skip()
        if self.pos != len(self.text):
            raise _SyntaxProblem(f"unexpected {self.text[self.pos :]!r} after the type")
        return expr

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, char: str, context: str) -> None:
        if self._peek() != char:
            found = repr(self.text[self.pos :]) if self.pos < len(self.text) else "the end"
            raise _SyntaxProblem(f"expected {char!r} {context}, found {found}")
        self.pos += 1

    def _ident(self) -> str:
        self._skip()
        match = _IDENT.match(self.text, self.pos)
        if not match:
            found = repr(self.text[self.pos :]) if self.pos < len(self.text) else "the end"
            raise _SyntaxProblem(f"expected a type name, found {found}")
        self.pos = match.end()
        return match.group()

    def _expr(self, where: str) -> TypeExpr:
        char = self._peek()
        expr: TypeExpr
        if char == "[":
            self.pos += 1
            item = self._expr(where + "[]")
            self._expect("]", "to close the array type")
            expr = Array(item=item)
        elif char == "{":
            self.pos += 1
            key = self._ident()
            if key != "string":
                raise _SyntaxProblem(f"map keys are always strings: write {{string: T}}, not {{{key}: T}}")
            self._expect(":", "after {string")
            value = self._expr(where + "{}")
            self._expect("}", "to close the map type")
            expr = Map(value=value)
        else:
            name = self._ident()
            if name == "enum":
                values, numbers = self._enum_values()
                expr = Enum(values=values, numbers=numbers)
            else:
                expr = Scalar(name=name) if name in SCALARS else Ref(name=name, where=where)
        if self._peek() == "?":
            self.pos += 1
            expr = replace(expr, nullable=True)
        return expr

    def _enum_values(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        if self._peek() != "(":
            raise _SyntaxProblem("bad enum syntax: write enum(A, B, ...)")
        close = self.text.find(")", self.pos)
        if close < 0:
            raise _SyntaxProblem("bad enum syntax: missing ')'")
        inner = self.text[self.pos + 1 : close]
        self.pos = close + 1
        items = tuple(v.strip() for v in inner.split(","))
        if items == ("",):
            raise _SyntaxProblem("bad enum syntax: enum() lists no values")
        bad = [v for v in items if not _ENUM_ITEM.fullmatch(v)]
        if bad:
            names = ", ".join(map(repr, bad))
            raise _SyntaxProblem(f"bad enum syntax: {names} is not a plain value name (or NAME=number)")
        values: list[str] = []
        numbers: list[int] = []
        for item in items:
            name, _, number = (part.strip() for part in item.partition("="))
            values.append(name)
            numbers.append(int(number) if number else (numbers[-1] + 1 if numbers else 0))
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise _SyntaxProblem(f"bad enum syntax: {', '.join(repeated)} listed twice")
        return tuple(values), tuple(numbers)


def _parse_type(node: Any, where: str, problems: _Problems) -> TypeExpr | None:
    """A type from its YAML form: an expression string, a one-item list, or a mapping (object, map, $type)."""
    if isinstance(node, str):
        try:
            return _ExprParser(node, where).parse()
        except _SyntaxProblem as exc:
            problems.add(where, f"{exc} in type {node!r}")
            return None
    if isinstance(node, list):
        if len(node) != 1:
            problems.add(
                where,
                f"an array type names one item type, e.g. [string]; this one has {len(node)} "
                '(to put enum(...) in an array, quote it: "[enum(A, B)]")',
            )
            return None
        item = _parse_type(node[0], where + "[]", problems)
        return Array(item=item) if item is not None else None
    if isinstance(node, dict):
        return _parse_mapping_type(node, where, problems)
    if node is None:
        problems.add(where, "missing type")
    else:
        problems.add(where, f"expected a type, found {type(node).__name__} {node!r}")
    return None


def _parse_doc(node: Mapping[str, Any], where: str, problems: _Problems) -> str | None:
    doc = node.get("$doc")
    if doc is not None and not (isinstance(doc, str) and doc.strip()):
        problems.add(f"{where}.$doc", "must be non-empty text")
        return None
    return doc.strip() if isinstance(doc, str) else None


def _parse_mapping_type(node: Mapping[str, Any], where: str, problems: _Problems) -> TypeExpr | None:
    meta = {k for k in node if isinstance(k, str) and k.startswith("$")}
    fields = [k for k in node if k not in meta]
    doc = _parse_doc(node, where, problems)
    parsed: TypeExpr | None
    if "$type" in node:
        for key in sorted(meta - {"$type", "$doc"}):
            problems.add(f"{where}.{key}", "unknown key; beside $type only $doc is allowed")
        for key in fields:
            problems.add(f"{where}.{key}", "a type given with $type has no fields; nest them under $type")
        parsed = _parse_type(node["$type"], where, problems)
    elif fields == ["string"]:
        for key in sorted(meta - {"$doc"}):
            problems.add(f"{where}.{key}", "unknown key; a map type {string: T} allows only $doc")
        value = _parse_type(node["string"], where + "{}", problems)
        parsed = Map(value=value) if value is not None else None
    else:
        parsed = _parse_object(node, fields, meta, where, problems)
    if parsed is not None and doc is not None:
        parsed = replace(parsed, doc=doc)
    return parsed


def _parse_object(
    node: Mapping[str, Any], fields: list[Any], meta: set[str], where: str, problems: _Problems
) -> Object | None:
    for key in sorted(meta - {"$doc", "$oneOf"}):
        problems.add(f"{where}.{key}", "unknown key; an object type allows $doc and $oneOf beside its fields")
    ok = True
    parsed_fields: list[tuple[str, TypeExpr]] = []
    for name in fields:
        if not (isinstance(name, str) and _FIELD_NAME.fullmatch(name)):
            problems.add(f"{where}.{name}", "a field name is letters, digits and '_', not starting with a digit")
            ok = False
            continue
        expr = _parse_type(node[name], f"{where}.{name}", problems)
        if expr is None:
            ok = False
        else:
            parsed_fields.append((name, expr))
    one_of: tuple[str, ...] = ()
    if "$oneOf" in node:
        raw = node["$oneOf"]
        if not (isinstance(raw, list) and raw and all(isinstance(f, str) for f in raw)):
            problems.add(f"{where}.$oneOf", "must be a non-empty list of field names")
            ok = False
        else:
            for name in raw:
                if name not in fields:
                    problems.add(f"{where}.$oneOf", f"{name!r} is not a field of this object")
                    ok = False
                elif raw.count(name) > 1:
                    problems.add(f"{where}.$oneOf", f"{name!r} listed twice")
                    ok = False
            one_of = tuple(raw)
    if not ok:
        return None
    return Object(fields=tuple(parsed_fields), one_of=one_of)


def _refs(expr: TypeExpr) -> Iterable[Ref]:
    match expr:
        case Ref():
            yield expr
        case Array(item=inner) | Map(value=inner):
            yield from _refs(inner)
        case Object(fields=fields):
            for _, sub in fields:
                yield from _refs(sub)
        case _:
            pass


# ---------------------------------------------------------------------------------------- spec files


def _check_keys(node: Mapping[str, Any], where: str, allowed: Iterable[str], problems: _Problems) -> None:
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
class _File:
    where: str  # the file, as reported in problems
    stem: str
    data: dict[str, Any]
    types: dict[str, TypeExpr] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # declared, but the declaration was reported as invalid


def _read(path: Path, where: str, problems: _Problems) -> dict[str, Any] | None:
    try:
        data = load_yaml(path)
    except yaml.YAMLError as exc:
        problems.add(where, f"not valid YAML: {exc}")
        return None
    if not isinstance(data, dict):
        problems.add(where, "expected a mapping at the top")
        return None
    return data


def _check_header(data: Mapping[str, Any], where: str, kind: str, problems: _Problems) -> None:
    if data.get("apiVersion") != SPEC_API_VERSION:
        problems.add(f"{where}:apiVersion", f"must be {SPEC_API_VERSION} (found {data.get('apiVersion')!r})")
    if data.get("kind") != kind:
        problems.add(f"{where}:kind", f"must be {kind} in this file (found {data.get('kind')!r})")


def _parse_types_block(file: _File, problems: _Problems) -> None:
    block = file.data.get("types", {})
    if not isinstance(block, dict):
        problems.add(f"{file.where}:types", "must be a mapping of type name to type")
        return
    for name, node in block.items():
        where = f"{file.where}:types.{name}"
        if not (isinstance(name, str) and _TYPE_NAME.fullmatch(name)):
            problems.add(where, "a type name is CamelCase starting with a capital letter")
            continue
        if name in SCALARS:
            problems.add(where, "a type name cannot be a scalar name")
            continue
        expr = _parse_type(node, where, problems)
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
)
_COLUMN_KEYS = ("name", "type", "jsonPath", "description", "format", "priority")
_VERSION_KEYS = ("name", "served", "storage", "printerColumns")
_FILE_KEYS = ("apiVersion", "kind", "crd", "versions", "types", "spec", "status", "example")


def _string(
    node: Mapping[str, Any], key: str, where: str, problems: _Problems, pattern: re.Pattern[str] | None = None
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


def _bool(node: Mapping[str, Any], key: str, where: str, problems: _Problems, default: bool | None) -> bool:
    value = node.get(key, default)
    if value is None:
        problems.add(f"{where}.{key}", "required (true or false)")
        return False
    if not isinstance(value, bool):
        problems.add(f"{where}.{key}", f"must be true or false, not {value!r}")
        return False
    return value


def _names(node: Mapping[str, Any], key: str, where: str, problems: _Problems) -> tuple[str, ...]:
    value = node.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(f"{where}.{key}", "must be a list of names")
        return ()
    if len(set(value)) != len(value):
        problems.add(f"{where}.{key}", "lists a name twice")
    return tuple(value)


def _printer_columns(node: Any, where: str, problems: _Problems) -> tuple[PrinterColumn, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        problems.add(where, "must be a list of columns")
        return ()
    columns = []
    for index, col in enumerate(node):
        at = f"{where}[{index}]"
        if not isinstance(col, dict):
            problems.add(at, "must be a mapping with name, type and jsonPath")
            continue
        _check_keys(col, at, _COLUMN_KEYS, problems)
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
    node: Any, where: str, default_columns: tuple[PrinterColumn, ...], problems: _Problems
) -> tuple[Version, ...]:
    if not isinstance(node, list) or not node:
        problems.add(where, "must list at least one version, e.g. [{name: v1alpha1, storage: true}]")
        return ()
    versions = []
    for index, entry in enumerate(node):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            problems.add(at, "must be a mapping such as {name: v1beta1, served: true, storage: false}")
            continue
        _check_keys(entry, at, _VERSION_KEYS, problems)
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
class _Draft:
    """An APIType file parsed far enough to resolve its types against the shared ones."""

    file: _File
    crd: dict[str, Any]
    versions: tuple[Version, ...]
    spec: TypeExpr | None
    status: TypeExpr | None


def _parse_api_file(file: _File, problems: _Problems) -> _Draft | None:
    data, where = file.data, file.where
    _check_header(data, where, "APIType", problems)
    _check_keys(data, where, _FILE_KEYS, problems)
    _parse_types_block(file, problems)
    crd = data.get("crd")
    if not isinstance(crd, dict):
        problems.add(f"{where}:crd", "required: a mapping with group, kind, plural, scope, ...")
        return None
    at = f"{where}:crd"
    _check_keys(crd, at, _CRD_KEYS, problems)
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
    }
    kind = fields["kind"]
    fields["singular"] = _string(crd, "singular", at, problems, _LOWER) if "singular" in crd else (kind or "").lower()
    fields["list_kind"] = _string(crd, "listKind", at, problems, _KIND) if "listKind" in crd else f"{kind}List"
    if kind and file.stem != kind.lower():
        problems.add(where, f"file of kind {kind} must be named {kind.lower()}.yaml")
    columns = _printer_columns(crd.get("printerColumns"), f"{at}.printerColumns", problems)
    versions = _versions(data.get("versions"), f"{where}:versions", columns, problems)
    spec = _parse_type(data["spec"], f"{where}:spec", problems) if "spec" in data else None
    if "spec" not in data:
        problems.add(f"{where}:spec", "required: the type of the resource's spec")
    status = _parse_type(data.get("status", "object"), f"{where}:status", problems)
    if "example" not in data:
        problems.add(f"{where}:example", "required: one valid object of this kind (for ArtifactHub)")
    return _Draft(file=file, crd=fields, versions=versions, spec=spec, status=status)


# ------------------------------------------------------------------------------------------ resolution


def _resolve(
    shared: Mapping[str, tuple[_File, TypeExpr]], broken: set[str], drafts: list[_Draft], problems: _Problems
) -> None:
    """Report unknown references (not those to types reported broken), shadowing, unused and cyclic types."""
    used: set[str] = set()

    def check(expr: TypeExpr, scope: Mapping[str, TypeExpr], seen_in: set[str], known_bad: set[str]) -> None:
        for ref in _refs(expr):
            seen_in.add(ref.name)
            if ref.name not in scope and ref.name not in known_bad:
                if not _TYPE_NAME.fullmatch(ref.name):
                    problems.add(ref.where, f"unknown type {ref.name!r}; scalars are {', '.join(SCALARS)}")
                else:
                    hint = difflib.get_close_matches(ref.name, list(scope), n=1)
                    problems.add(
                        ref.where,
                        f"unknown type {ref.name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                    )

    shared_scope = {name: expr for name, (_, expr) in shared.items()}
    for _, expr in shared.values():
        check(expr, shared_scope, used, broken)
    for draft in drafts:
        for name in draft.file.types:
            if name in shared:
                problems.add(
                    f"{draft.file.where}:types.{name}",
                    f"shadows the shared type of that name in {shared[name][0].where}; rename one",
                )
        scope = {**shared_scope, **draft.file.types}
        local_used: set[str] = set()
        for local_expr in (draft.spec, draft.status, *draft.file.types.values()):
            if local_expr is not None:
                check(local_expr, scope, local_used, broken | draft.file.broken)
        for name in draft.file.types:
            if name not in local_used:
                problems.add(f"{draft.file.where}:types.{name}", "declared but never used")
        used |= local_used
    for name, (file, _) in shared.items():
        if name not in used:
            problems.add(f"{file.where}:types.{name}", "declared but used by no API type")

    _find_cycles({name: (f"{file.where}:types.{name}", expr) for name, (file, expr) in shared.items()}, problems)
    for draft in drafts:
        local = {name: (f"{draft.file.where}:types.{name}", expr) for name, expr in draft.file.types.items()}
        _find_cycles(local, problems)


def _find_cycles(types: Mapping[str, tuple[str, TypeExpr]], problems: _Problems) -> None:
    """Report each cycle among `types` once; structural schemas cannot express recursion."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    found: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for ref in _refs(types[name][1]):
            if ref.name not in types:
                continue
            if state.get(ref.name) == 1:
                cycle = [*stack[stack.index(ref.name) :], ref.name]
                key = frozenset(cycle)
                if key not in found:
                    found.add(key)
                    problems.add(types[cycle[0]][0], f"cycle between types: {' -> '.join(cycle)}")
            elif ref.name not in state:
                visit(ref.name, stack)
        stack.pop()
        state[name] = 2

    for name in types:
        if name not in state:
            visit(name, [])


# ------------------------------------------------------------------------------------------- loading


def _expandable(expr: TypeExpr, types: Mapping[str, TypeExpr], stack: tuple[str, ...] = ()) -> bool:
    """Whether `expr` expands to a finite schema: every reachable name declared, no cycle (both reported)."""
    for ref in _refs(expr):
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


def _add_field(spec: Any, path: str, expr: Any, where: str, problems: _Problems) -> None:
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


def _patch(data: dict[str, Any], stem: str, patch: LinePatch, problems: _Problems) -> dict[str, Any]:
    if stem in patch.versions:
        data = {**data, "versions": patch.versions[stem]}
    for path, expr in (patch.fields.get(stem) or {}).items():
        _add_field(data.get("spec"), str(path), expr, f"{patch.where}.fields.{stem}", problems)
    return data


def load_api_types(crds_dir: Path, patch: LinePatch | None = None) -> list[APIType]:
    """Every APIType under `crds_dir`, with a release line's `patch`, sorted by CRD name; SpecError lists
    every problem found."""
    problems = _Problems()
    base = crds_dir.parent
    shared: dict[str, tuple[_File, TypeExpr]] = {}
    drafts: list[_Draft] = []
    shared_files: list[_File] = []
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
        data = _read(path, where, problems)
        if data is None:
            continue
        if patch is not None and not path.name.startswith("_"):
            data = _patch(data, path.stem, patch, problems)
        file = _File(where=where, stem=path.stem, data=data)
        if path.name.startswith("_"):
            _check_header(data, where, "APITypes", problems)
            _check_keys(data, where, ("apiVersion", "kind", "types"), problems)
            _parse_types_block(file, problems)
            shared_files.append(file)
            for name, expr in file.types.items():
                if name in shared:
                    problems.add(f"{where}:types.{name}", f"also declared in {shared[name][0].where}")
                else:
                    shared[name] = (file, expr)
        else:
            draft = _parse_api_file(file, problems)
            if draft is not None:
                drafts.append(draft)

    broken = set().union(*(f.broken for f in shared_files))
    _resolve(shared, broken, drafts, problems)
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
    for api in apis:
        if _expandable(api.spec, api.types):
            for message in _check_example(api):
                problems.add(f"{api.source}:example", message)
    if problems.items:
        raise SpecError(problems.items)
    return sorted(apis, key=lambda a: a.name)


# ------------------------------------------------------------------------------------------- rendering


def _schema(expr: TypeExpr, types: Mapping[str, TypeExpr]) -> dict[str, Any]:
    node: dict[str, Any]
    match expr:
        case Scalar(name=name):
            node = dict(SCALARS[name])
        case Enum(values=values):
            node = {"type": "string", "enum": list(values)}
        case Array(item=item):
            node = {"type": "array", "items": _schema(item, types)}
        case Map(value=value):
            node = {"type": "object", "additionalProperties": _schema(value, types)}
        case Ref(name=name):
            node = _schema(types[name], types)
        case Object(fields=fields, one_of=one_of):
            node = {"type": "object", "properties": {name: _schema(sub, types) for name, sub in fields}}
            if one_of:
                required = [{"required": [name]} for name in one_of]
                node["oneOf"] = [{"not": {"anyOf": required}}, *required]
    if expr.nullable:
        node["nullable"] = True
    if expr.doc:
        node["description"] = expr.doc
    return node


def _sorted(value: Any) -> Any:
    """Keys sorted at every level (list order kept), so output is stable and reads like kubectl's."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def version_schema(api: APIType) -> dict[str, Any]:
    """The openAPIV3Schema that every version of `api` serves (versions share one schema)."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": api.description,
        "properties": {"spec": _schema(api.spec, api.types), "status": _schema(api.status, api.types)},
    }
    return _sorted(schema)  # type: ignore[no-any-return]


def render_crd(api: APIType) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of `api`, without labels or annotations."""
    schema = version_schema(api)
    names: dict[str, Any] = {
        "kind": api.kind,
        "listKind": api.list_kind,
        "plural": api.plural,
        "singular": api.singular,
    }
    if api.short_names:
        names["shortNames"] = list(api.short_names)
    if api.categories:
        names["categories"] = list(api.categories)
    versions = []
    for version in api.versions:
        entry: dict[str, Any] = {
            "name": version.name,
            "served": version.served,
            "storage": version.storage,
            "schema": {"openAPIV3Schema": schema},
        }
        if version.printer_columns:
            entry["additionalPrinterColumns"] = [_column(c) for c in version.printer_columns]
        if api.status_subresource:
            entry["subresources"] = {"status": {}}
        versions.append(entry)
    crd = {
        "apiVersion": CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {"name": api.name},
        "spec": {"group": api.group, "names": names, "scope": api.scope, "versions": versions},
    }
    return _sorted(crd)  # type: ignore[no-any-return]


def _column(column: PrinterColumn) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
    if column.description is not None:
        out["description"] = column.description
    if column.format is not None:
        out["format"] = column.format
    if column.priority is not None:
        out["priority"] = column.priority
    return out


def render_all(crds_dir: Path) -> list[dict[str, Any]]:
    """Every CRD under `crds_dir`, sorted by name."""
    return [render_crd(api) for api in load_api_types(crds_dir)]


# -------------------------------------------------------------------------------------------- examples


def examples(api: APIType) -> dict[str, Any]:
    """The spec file's example as a complete object (apiVersion, kind, metadata, spec), for ArtifactHub."""
    body = dict(api.example)
    api_version = body.pop("apiVersion", f"{api.group}/{api.storage_version}")
    return _sorted({"apiVersion": api_version, "kind": api.kind, **body})  # type: ignore[no-any-return]


def _check_example(api: APIType) -> list[str]:
    example = api.example
    if not isinstance(example, dict):
        return ["must be a mapping with metadata and spec"]
    messages = [
        f"{key}: unknown key; an example has apiVersion, metadata, spec"
        for key in example
        if key not in ("apiVersion", "metadata", "spec")
    ]
    api_version = example.get("apiVersion", f"{api.group}/{api.storage_version}")
    served = [f"{api.group}/{v.name}" for v in api.versions if v.served]
    if api_version not in served:
        messages.append(f"apiVersion: {api_version!r} is not served; use one of {', '.join(served)}")
    metadata = example.get("metadata")
    if not (isinstance(metadata, dict) and isinstance(metadata.get("name"), str)):
        messages.append("metadata: must give at least a name")
    if "spec" not in example:
        messages.append("spec: required")
    else:
        messages += validate(version_schema(api)["properties"]["spec"], example["spec"], "spec")
    return messages


def validate(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """What an API server would reject in `value` under a structural `schema`: types, enums, formats,
    unknown fields and oneOf; one message per problem, each naming the field."""
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: must not be null"]
    expected = schema.get("type")
    checks = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if expected in checks and not checks[expected](value):
        return [f"{path}: must be of type {expected}, not {type(value).__name__}"]
    messages: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        messages.append(f"{path}: {value!r} is not one of {', '.join(map(str, schema['enum']))}")
    if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
        messages.append(f"{path}: {value} does not fit in int32")
    if expected == "array":
        for index, item in enumerate(value):
            messages += validate(schema["items"], item, f"{path}[{index}]")
    if expected == "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        if "additionalProperties" in schema:
            for key, item in value.items():
                messages += validate(schema["additionalProperties"], item, f"{path}.{key}")
        else:
            properties = schema.get("properties", {})
            for key, item in value.items():
                if key in properties:
                    messages += validate(properties[key], item, f"{path}.{key}")
                else:
                    messages.append(f"{path}.{key}: unknown field")
    if "oneOf" in schema:
        matched = sum(_satisfies(sub, value) for sub in schema["oneOf"])
        if matched != 1:
            names = sorted({n for sub in schema["oneOf"] for n in sub.get("required", [])})
            messages.append(f"{path}: at most one of {', '.join(names)} may be set")
    return messages


def _satisfies(schema: Mapping[str, Any], value: Any) -> bool:
    """The value-validation subset used inside oneOf: required, not, anyOf."""
    if "required" in schema and not (isinstance(value, dict) and all(k in value for k in schema["required"])):
        return False
    if "not" in schema and _satisfies(schema["not"], value):
        return False
    return not ("anyOf" in schema and not any(_satisfies(sub, value) for sub in schema["anyOf"]))
