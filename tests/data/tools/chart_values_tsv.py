"""Tabulate the leaf values keys and defaults of Helm charts as `chart<TAB>key<TAB>default(json)`.

Usage: python chart_values_tsv.py NAME=CHART_DIR [NAME=CHART_DIR ...] > values.tsv

Reads only each chart's values.yaml (a checkout of another project's charts, kept outside this
repository) and writes facts: the dotted path of every leaf and its default. A leaf is a scalar, a
list, or an empty mapping; a non-empty mapping is descended into. Keys keep the values.yaml order.
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


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    print("chart\tkey\tdefault(json)")
    for arg in argv:
        name, directory = arg.split("=", 1)
        values = yaml.safe_load((Path(directory) / "values.yaml").read_text(encoding="utf-8")) or {}
        for key, default in leaves(values):
            print(f"{name}\t{key}\t{json.dumps(default, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
