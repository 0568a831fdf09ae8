"""YAML in and out: loading refuses duplicate keys; dumping has one deterministic style."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshcharts.errors import Problem

# PyYAML's safe loader and dumper, libyaml's where PyYAML was built with it (the same documents, read and written in
# C): every loader and dumper of this package derives from these two.
SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _StrictLoader(SafeLoader):  # type: ignore[misc]
    """SafeLoader that records duplicate mapping keys instead of silently keeping the last one."""

    duplicates: list[tuple[str, int]]


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            loader.duplicates.append((str(key), key_node.start_mark.line + 1))
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_text(text: str, where: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; problems (syntax, duplicate keys) are returned, not raised."""
    loader = _StrictLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        return None, [Problem(f"{where}{line}", f"not valid YAML: {getattr(err, 'problem', err)}")]
    finally:
        loader.dispose()
    problems = [Problem(f"{where}:{line}", f"duplicate key {key!r}") for key, line in loader.duplicates]
    return data, problems


def load_file(path: Path, where: str | None = None) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return None, [Problem(where or str(path), f"cannot read: {err.strerror}")]
    return load_text(text, where or str(path))


class _Dumper(SafeDumper):  # type: ignore[misc]
    """Block style, no aliases, long strings not folded, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def dump(data: Any) -> str:
    """Deterministic block YAML; mapping order is the caller's (insertion order)."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1_000_000, allow_unicode=True
    )


class DuplicateKeyError(yaml.YAMLError):
    """A mapping repeats a key; the message names file:line of the repeat."""


def load_yaml(path: Path) -> Any:
    """Parse the one YAML document in `path`; raise YAMLError naming file:line on bad syntax or a repeated key."""
    data, problems = load_file(path)
    if problems:
        if data is None:
            raise yaml.YAMLError("; ".join(str(p) for p in problems))
        raise DuplicateKeyError("; ".join(str(p) for p in problems))
    return data


def parse(text: str | bytes) -> Any:
    """The one YAML document in `text` as `yaml.safe_load` reads it, with libyaml's parser where present: the
    renders, manifests and injected pods the test layers read are large, and the pure-Python parser was most of
    the static layers' time (bench/README.md, issue 25)."""
    return yaml.load(text, Loader=SafeLoader)


def parse_all(text: str) -> list[Any]:
    """Every document of the YAML stream `text` as `yaml.safe_load_all` reads them (an empty one as None), with
    libyaml's parser where present."""
    return list(yaml.load_all(text, Loader=SafeLoader))
