"""The spec files' examples, validated against the rendered schemas as the API server would."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from meshcharts.crds.expressions import compile_re2
from meshcharts.crds.model import APIType
from meshcharts.crds.render import sorted_keys, version_schema


def examples(api: APIType) -> dict[str, Any]:
    """The spec file's example as a complete object (apiVersion, kind, metadata, spec), for ArtifactHub."""
    body = dict(api.example)
    api_version = body.pop("apiVersion", f"{api.group}/{api.storage_version}")
    return sorted_keys({"apiVersion": api_version, "kind": api.kind, **body})  # type: ignore[no-any-return]


def check_example(api: APIType) -> list[str]:
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
    """What an API server would reject in `value` under a structural `schema`: types, enums, formats, bounds,
    lengths, patterns, sizes, required fields, list types, unknown fields, oneOf and CEL rules; one message per
    problem, each naming the field. Rules are evaluated only where everything below them is valid."""
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: must not be null"]
    expected: str = schema.get("type", "")
    if schema.get("x-kubernetes-int-or-string"):
        if not _CHECKS["string"](value) and not _CHECKS["integer"](value):
            return [f"{path}: must be an integer or a string, not {type(value).__name__}"]
    elif expected in _CHECKS and not _CHECKS[expected](value):
        return [f"{path}: must be of type {expected}, not {type(value).__name__}"]
    messages: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        messages.append(f"{path}: {value!r} is not one of {', '.join(map(str, schema['enum']))}")
    fmt: str = schema.get("format", "")
    if fmt == "int32" and not -(2**31) <= value < 2**31:
        messages.append(f"{path}: {value} does not fit in int32")
    if fmt in _FORMATS and isinstance(value, str) and not _FORMATS[fmt][0](value):
        messages.append(f"{path}: {value!r} is not {_FORMATS[fmt][1]}")
    messages += _bounds(schema, value, path)
    if expected == "array":
        for index, item in enumerate(value):
            messages += validate(schema["items"], item, f"{path}[{index}]")
        messages += _list_type(schema, value, path)
    if expected == "object":
        messages += _object(schema, value, path)
    if "oneOf" in schema:
        messages += _one_of(schema["oneOf"], value, path)
    for sub in schema.get("allOf", ()):
        messages += _one_of(sub["oneOf"], value, path)
    if "x-kubernetes-validations" in schema and not messages:
        from meshcharts.crds import cel  # here, not at the top: it imports celpy, for schemas with rules only

        messages += cel.evaluate(schema["x-kubernetes-validations"], schema, value, path)
    return messages


_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _is_date_time(text: str) -> bool:
    if not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    return True


_FORMATS: Mapping[str, tuple[Callable[[str], bool], str]] = {
    "date-time": (_is_date_time, "an RFC 3339 date and time, e.g. 2024-05-01T12:00:00Z"),
    "byte": (_is_base64, "base64-encoded bytes"),
}
# keyword -> what it counts (None: the value itself), whether it is a minimum
_BOUNDS: Mapping[str, tuple[str | None, bool]] = {
    "minimum": (None, True),
    "maximum": (None, False),
    "minLength": ("characters", True),
    "maxLength": ("characters", False),
    "minItems": ("items", True),
    "maxItems": ("items", False),
    "minProperties": ("entries", True),
    "maxProperties": ("entries", False),
}


def _bounds(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    messages = []
    for keyword, (unit, is_minimum) in _BOUNDS.items():
        if keyword not in schema:
            continue
        if (unit is None and not _CHECKS["number"](value)) or (unit == "characters" and not isinstance(value, str)):
            continue  # the other half of an int-or-string
        bound, got = schema[keyword], value if unit is None else len(value)
        if (got < bound) if is_minimum else (got > bound):
            limit = "the minimum" if is_minimum else "the maximum"
            if unit is None:
                messages.append(f"{path}: {got} is {'below' if is_minimum else 'above'} {limit}, {bound}")
            else:
                messages.append(f"{path}: {got} {unit}, {'fewer' if is_minimum else 'more'} than {limit} {bound}")
    if "pattern" in schema and isinstance(value, str) and not compile_re2(schema["pattern"]).search(value):
        messages.append(f"{path}: {value!r} does not match the pattern {schema['pattern']}")
    return messages


def _list_type(schema: Mapping[str, Any], value: list[Any], path: str) -> list[str]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        keys = [json.dumps(item, sort_keys=True) for item in value]
        what = "item"
    elif list_type == "map":
        names = schema["x-kubernetes-list-map-keys"]
        keys = [json.dumps([item.get(n) for n in names]) if isinstance(item, dict) else "" for item in value]
        what = "key " + ", ".join(names)
    else:
        return []
    return [
        f"{path}[{index}]: the same {what} as {path}[{keys.index(key)}] (x-kubernetes-list-type {list_type})"
        for index, key in enumerate(keys)
        if keys.index(key) != index
    ]


def _object(schema: Mapping[str, Any], value: dict[str, Any], path: str) -> list[str]:
    messages = [f"{path}.{name}: required" for name in schema.get("required", ()) if name not in value]
    if "additionalProperties" in schema:
        for key, item in value.items():
            messages += validate(schema["additionalProperties"], item, f"{path}.{key}")
    elif "properties" in schema:
        properties = schema["properties"]
        keep = schema.get("x-kubernetes-preserve-unknown-fields")
        for key, item in value.items():
            if key in properties:
                messages += validate(properties[key], item, f"{path}.{key}")
            elif not keep:
                messages.append(f"{path}.{key}: unknown field")
    elif not schema.get("x-kubernetes-preserve-unknown-fields"):
        messages += [f"{path}.{key}: unknown field" for key in value]
    return messages


def _one_of(alternatives: list[Mapping[str, Any]], value: Any, path: str) -> list[str]:
    if sum(_satisfies(sub, value) for sub in alternatives) == 1:
        return []
    names = sorted({n for sub in alternatives for n in sub.get("required", [])})
    return [f"{path}: at most one of {', '.join(names)} may be set"]


def _satisfies(schema: Mapping[str, Any], value: Any) -> bool:
    """The value-validation subset used inside oneOf: required, not, anyOf."""
    if "required" in schema and not (isinstance(value, dict) and all(k in value for k in schema["required"])):
        return False
    if "not" in schema and _satisfies(schema["not"], value):
        return False
    return not ("anyOf" in schema and not any(_satisfies(sub, value) for sub in schema["anyOf"]))
