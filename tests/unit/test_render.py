"""Rendering as data: deterministic bytes, values.yaml and the schema derived from the same declarations."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from meshcharts import render, spec
from meshcharts.paths import Layout


@pytest.fixture(scope="module")
def model(layout: Layout) -> spec.Model:
    return spec.load(layout)


@pytest.fixture(scope="module")
def files(model: spec.Model) -> dict[str, str]:
    return render.render_all(model)


def test_two_renders_give_the_same_bytes(layout: Layout, files: dict[str, str]) -> None:
    again = render.render_all(spec.load(layout))
    assert again == files


def test_generated_files_say_so_and_carry_no_timestamp_or_host(files: dict[str, str]) -> None:
    for path, text in files.items():
        first = text.splitlines()[0]
        if path.endswith(".json"):
            assert json.loads(text)["$comment"] == render.GENERATED
        else:
            assert render.GENERATED in first, path
        assert not re.search(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d", text), path
        assert text.endswith("\n") and not text.endswith("\n\n"), path


def _defaults(chart: spec.ChartSpec) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for value in chart.values:
        node = tree
        for part in value.parts[:-1]:
            node = node.setdefault(part, {})
        node[value.parts[-1]] = value.default
    return tree


def test_values_yaml_holds_exactly_the_declared_defaults(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        assert yaml.safe_load(files[f"{chart.name}/values.yaml"]) == _defaults(chart), chart.name


def _uncommented_keys(lines: list[str], tree: dict[str, Any]) -> list[str]:
    """Declared leaves whose line in values.yaml has no comment right above it, found in tree order."""
    missing: list[str] = []
    cursor = 0

    def walk(node: dict[str, Any], depth: int) -> None:
        nonlocal cursor
        for key, child in node.items():
            wanted = f"{'  ' * depth}{key}:"
            while not (lines[cursor] == wanted or lines[cursor].startswith(wanted + " ")):
                cursor += 1
            if isinstance(child, spec.Value):
                if not lines[cursor - 1].strip().startswith("#"):
                    missing.append(child.path)
            else:
                walk(child, depth + 1)

    walk(tree, 0)
    return missing


def test_values_yaml_has_a_comment_above_every_key(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        lines = files[f"{chart.name}/values.yaml"].splitlines()
        assert _uncommented_keys(lines, render._tree(chart)) == [], chart.name


def test_defaults_validate_against_the_schema(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        schema = json.loads(files[f"{chart.name}/values.schema.json"])
        jsonschema.Draft7Validator.check_schema(schema)
        jsonschema.validate(_defaults(chart), schema)


def test_schema_is_strict_but_accepts_global_and_enabled(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        schema = json.loads(files[f"{chart.name}/values.schema.json"])
        validator = jsonschema.Draft7Validator(schema)
        assert not list(validator.iter_errors({"global": {"anything": 1}, "enabled": True}))
        errors = list(validator.iter_errors({"notAValue": 1}))
        assert errors and "notAValue" in errors[0].message


def test_every_declared_value_has_a_type_in_the_schema(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        schema = json.loads(files[f"{chart.name}/values.schema.json"])
        for value in chart.values:
            node = schema
            for part in value.parts:
                node = node["properties"][part]
            assert "type" in node and node["description"], (chart.name, value.path)


def test_readme_lists_every_value(model: spec.Model, files: dict[str, str]) -> None:
    for chart in model.charts:
        readme = files[f"{chart.name}/README.md"]
        for value in chart.values:
            assert f"| `{value.path}` |" in readme, (chart.name, value.path)


def test_type_syntax_parses_and_checks_defaults() -> None:
    t = spec.parse_type("map[string]string|integer?")
    assert t.accepts({"a": "x", "b": 1}) and t.accepts(None) and not t.accepts({"a": [1]})
    assert spec.parse_type("list[object]").accepts([{"a": 1}])
    assert not spec.parse_type("integer").accepts(True)
    with pytest.raises(ValueError, match="unknown type 'strng'"):
        spec.parse_type("list[strng]")
