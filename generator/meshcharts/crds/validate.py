"""The spec files' examples, validated against the rendered schemas as the API server would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
