"""YAML for hand-edited specs: PyYAML's safe loader, where a repeated key is an error, not an overwrite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A mapping repeats a key; the message names file:line of the repeat."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool | None):
                continue  # unhashable or odd keys: left to SafeLoader, which reports them
            if key in seen:
                raise DuplicateKeyError(
                    f"{key_node.start_mark.name}:{line}: duplicate key {key!r} (first at line {seen[key]})"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node),  # type: ignore[arg-type]
)


def load_yaml(path: Path) -> Any:
    """Parse the one YAML document in `path`; YAMLError with file:line on bad syntax or a repeated key."""
    with path.open(encoding="utf-8") as stream:
        loader = _StrictLoader(stream)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
