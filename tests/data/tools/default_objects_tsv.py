"""Tabulate the objects of rendered manifests as `chart<TAB>kind<TAB>name<TAB>namespace`.

Usage: helm template RELEASE CHART_DIR -n istio-system | python default_objects_tsv.py CHART >> objects.tsv

Reads YAML documents on stdin (another project's chart rendered outside this repository) and writes
facts: what objects a default install creates, in render order. The header row is the caller's.
"""

from __future__ import annotations

import sys

import yaml


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for doc in yaml.safe_load_all(sys.stdin):
        if doc:
            meta = doc.get("metadata") or {}
            print(f"{argv[0]}\t{doc['kind']}\t{meta['name']}\t{meta.get('namespace', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
