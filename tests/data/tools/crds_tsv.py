"""Tabulate CustomResourceDefinitions' names and shape, one row per CRD:
crd, group, kind, plural, scope, versions (served; `*` marks storage), shortNames, categories,
printer columns of the first version (name:type:jsonPath;...), subresources, helm.sh/resource-policy keep.

Usage: python crds_tsv.py CRD_YAML [CRD_YAML ...] > crds.tsv

Reads CRD manifests (another project's, kept outside this repository) and writes facts only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HEADER = (
    "crd\tgroup\tkind\tplural\tscope\tversions(served,storage*)\tshortNames\tcategories\t"
    "printerColumns(first version)\tsubresources\tresource-policy keep"
)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(HEADER)
    for arg in argv:
        for doc in yaml.safe_load_all(Path(arg).read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            names = spec["names"]
            versions = [v for v in spec["versions"] if v.get("served")]
            first = spec["versions"][0]
            columns = ";".join(
                f"{c['name']}:{c['type']}:{c['jsonPath']}" for c in first.get("additionalPrinterColumns") or []
            )
            keep = (doc["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep"
            row = [
                doc["metadata"]["name"],
                spec["group"],
                names["kind"],
                names["plural"],
                spec["scope"],
                ",".join(v["name"] + ("*" if v.get("storage") else "") for v in versions),
                ",".join(names.get("shortNames") or []),
                ",".join(names.get("categories") or []),
                columns,
                ",".join(sorted(first.get("subresources") or {})),
                "yes" if keep else "no",
            ]
            print("\t".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
