"""An APIType rendered as an apiextensions.k8s.io/v1 CustomResourceDefinition with structural schemas."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from meshcharts.crds import model


def _schema(expr: model.TypeExpr, types: Mapping[str, model.TypeExpr]) -> dict[str, Any]:
    if isinstance(expr, model.Ref):
        return _schema(model.resolved(expr, types), types)
    node: dict[str, Any]
    match expr:
        case model.Scalar(name=name):
            node = copy.deepcopy(dict(model.SCALARS[name]))
        case model.Enum(values=values):
            node = {"type": "string", "enum": list(values)}
        case model.Array(item=item):
            node = {"type": "array", "items": _schema(item, types)}
        case model.Map(value=value):
            node = {"type": "object", "additionalProperties": _schema(value, types)}
        case model.Object(fields=fields, one_of=one_of, keep_unknown=keep_unknown):
            node = {"type": "object", "properties": {name: _schema(sub, types) for name, sub in fields}}
            if len(one_of) == 1:
                node["oneOf"] = _at_most_one(one_of[0])
            elif one_of:
                node["allOf"] = [{"oneOf": _at_most_one(group)} for group in one_of]
            if keep_unknown:
                node["x-kubernetes-preserve-unknown-fields"] = True
    if expr.nullable:
        node["nullable"] = True
    if expr.doc:
        node["description"] = expr.doc
    node.update(_constraints(expr))
    return node


def _at_most_one(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """None or exactly one of `names` set: the oneOf that structural schemas allow for a protobuf oneof."""
    required = [{"required": [name]} for name in names]
    return [{"not": {"anyOf": required}}, *required]


def _constraints(expr: model.TypeExpr) -> dict[str, Any]:
    """The validation keywords of `expr` (not a reference); none when it has no constraints. A range on a kind
    that takes none is left out (the loader reports it; examples are still checked, and rendered for that)."""
    found: dict[str, Any] = {}
    keywords = model.RANGE_KEYWORDS.get(model.kind(expr))
    if expr.range is not None and keywords is not None:
        low, high = keywords
        if expr.range.low is not None:
            found[low] = expr.range.low
        if expr.range.high is not None:
            found[high] = expr.range.high
    if expr.pattern is not None:
        found["pattern"] = expr.pattern
    if expr.required:
        found["required"] = list(expr.required)
    if expr.list_type is not None:
        found["x-kubernetes-list-type"] = expr.list_type
    if expr.list_map_keys:
        found["x-kubernetes-list-map-keys"] = list(expr.list_map_keys)
    if expr.rules:
        found["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in expr.rules]
    return found


def sorted_keys(value: Any) -> Any:
    """Keys sorted at every level (list order kept), so output is stable and reads like kubectl's."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def version_schema(api: model.APIType) -> dict[str, Any]:
    """The openAPIV3Schema that every version of `api` serves (versions share one schema)."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": api.description,
        "properties": {"spec": _schema(api.spec, api.types), "status": _schema(api.status, api.types)},
    }
    if api.spec_required:
        schema["required"] = ["spec"]
    return sorted_keys(schema)  # type: ignore[no-any-return]


def render_crd(api: model.APIType) -> dict[str, Any]:
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
        "apiVersion": model.CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {"name": api.name},
        "spec": {"group": api.group, "names": names, "scope": api.scope, "versions": versions},
    }
    return sorted_keys(crd)  # type: ignore[no-any-return]


def _column(column: model.PrinterColumn) -> dict[str, Any]:
    optional = {"description": column.description, "format": column.format, "priority": column.priority}
    required = {"name": column.name, "type": column.type, "jsonPath": column.json_path}
    return required | {key: value for key, value in optional.items() if value is not None}
