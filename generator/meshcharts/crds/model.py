"""The type model of Istio's API types: scalars, enums, arrays, maps, references and objects, and an APIType's
versions and printer columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
}
PRINTER_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


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
