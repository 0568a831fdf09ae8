"""The type model of Istio's API types: scalars, enums, arrays, maps, references and objects, each with the
constraints written on it (bounds, pattern, required fields, list type, CEL rules), and an APIType's versions and
printer columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

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
    "timestamp": {"type": "string", "format": "date-time"},
    "bytes": {"type": "string", "format": "byte"},
    "intOrString": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
}
# What a range `T(low..high)` bounds, by the kind of T (see `kind`); a kind not listed takes no range.
RANGE_KEYWORDS: Mapping[str, tuple[str, str]] = {
    "integer": ("minimum", "maximum"),
    "number": ("minimum", "maximum"),
    "string": ("minLength", "maxLength"),
    "array": ("minItems", "maxItems"),
    "map": ("minProperties", "maxProperties"),
    "object": ("minProperties", "maxProperties"),
}
LIST_TYPES = ("atomic", "set", "map")
PRINTER_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


@dataclass(frozen=True)
class Range:
    """Inclusive bounds, either may be open: of the value (numbers), the length (strings), the number of items
    (arrays) or of entries (maps, objects)."""

    low: int | float | None
    high: int | float | None


@dataclass(frozen=True)
class Rule:
    """A CEL validation rule (x-kubernetes-validations) and the message shown when it is false."""

    rule: str
    message: str


@dataclass(frozen=True, kw_only=True)
class _Node:
    """What every type expression may carry. On a Ref the constraints are added where the name is used, to
    those of the named type."""

    nullable: bool = False
    doc: str | None = None
    range: Range | None = None
    pattern: str | None = None
    required: tuple[str, ...] = ()
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    where: str = field(default="", compare=False)  # where the expression is written, for problems


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
    """A named type."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Object(_Node):
    """An object with `fields`: at most one field of each group in `one_of` may be set; other fields are pruned,
    unless `keep_unknown`."""

    fields: tuple[tuple[str, TypeExpr], ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    keep_unknown: bool = False


TypeExpr = Scalar | Enum | Array | Map | Ref | Object


def kind(expr: TypeExpr) -> str:
    """What a non-reference expression is, as far as constraints go: integer, number, string, boolean, timestamp,
    intOrString, enum, array, map or object (free-form or with fields)."""
    match expr:
        case Scalar(name=name):
            if name in ("integer", "int32", "int64"):
                return "integer"
            if name in ("number", "double"):
                return "number"
            return "string" if name == "bytes" else name
        case Enum():
            return "enum"
        case Array():
            return "array"
        case Map():
            return "map"
        case Object():
            return "object"
        case Ref():
            raise ValueError(f"the kind of a reference ({expr.name}) depends on the type it names")


def resolved(expr: TypeExpr, types: Mapping[str, TypeExpr]) -> TypeExpr:
    """`expr` with references followed: the named type, with what the reference adds (its doc replaces the named
    type's; nullable, a range, pattern or list type are added, `constraints` refuses them twice; rules and
    required fields are appended)."""
    if not isinstance(expr, Ref):
        return expr
    base = resolved(types[expr.name], types)
    return replace(
        base,
        nullable=base.nullable or expr.nullable,
        doc=expr.doc or base.doc,
        range=expr.range or base.range,
        pattern=expr.pattern or base.pattern,
        required=base.required + tuple(name for name in expr.required if name not in base.required),
        list_type=expr.list_type or base.list_type,
        list_map_keys=expr.list_map_keys or base.list_map_keys,
        rules=base.rules + expr.rules,
    )


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
    spec_required: bool = False

    @property
    def name(self) -> str:
        """The CRD's metadata.name, `<plural>.<group>`."""
        return f"{self.plural}.{self.group}"

    @property
    def storage_version(self) -> str:
        return next(v.name for v in self.versions if v.storage)
