"""Tabulate the leaf values keys and defaults of Helm charts as `chart<TAB>key<TAB>default(json)`.

Usage: python chart_values_tsv.py [--unwrap=KEY] NAME=CHART_DIR [NAME=CHART_DIR ...] > values.tsv

Reads only each chart's values.yaml (a checkout of another project's charts, kept outside this
repository) and writes facts: the dotted path of every leaf and its default. A leaf is a scalar, a
list, or an empty mapping; a non-empty mapping is descended into. Keys keep the values.yaml order.

--unwrap=KEY: where a values.yaml has KEY at its top level (a wrapper the chart's own templates merge
away: Istio's charts have `_internal_defaults_do_not_set` from 1.24 on, `defaults` in 1.21 to 1.23),
tabulate the keys below it as top-level keys (the keys users set), in its place; a values.yaml
without KEY is tabulated as without the option.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        out: list[tuple[str, Any]] = []
        for key, child in node.items():
            out.extend(leaves(child, f"{prefix}{key}."))
        return out
    return [(prefix[:-1], node)]


def unwrap(values: Any, wrapper: str | None) -> Any:
    if wrapper is None or not isinstance(values, dict) or wrapper not in values:
        return values
    inner = values[wrapper] if isinstance(values[wrapper], dict) else {}
    both = set(inner) & set(values)
    if both:
        raise SystemExit(f"keys {sorted(both)!r} are both below {wrapper!r} and beside it")
    out: dict[Any, Any] = {}
    for key, child in values.items():
        out.update(inner if key == wrapper else {key: child})
    return out


def main(argv: list[str]) -> int:
    wrapper = None
    if argv and argv[0].startswith("--unwrap="):
        wrapper = argv[0].split("=", 1)[1]
        argv = argv[1:]
    if not argv or wrapper == "" or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    print("chart\tkey\tdefault(json)")
    for arg in argv:
        name, directory = arg.split("=", 1)
        values = yaml.safe_load((Path(directory) / "values.yaml").read_text(encoding="utf-8")) or {}
        for key, default in leaves(unwrap(values, wrapper)):
            print(f"{name}\t{key}\t{json.dumps(default, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
