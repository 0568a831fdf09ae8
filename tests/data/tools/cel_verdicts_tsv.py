"""Tabulate what CRDs' validation, CEL rules included, makes of a probe corpus, one row per probe:
id, verdict (accepted or rejected, as kube-apiserver validates the object on create; unknown fields refused, as
kubectl's strict field validation does) and the sorted field paths of its errors, one per error, comma-separated:
`(object)` for an error about the whole object, `unknown:PATH` for a field the schema does not know. The errors'
messages are left out: they are the CRDs' own text.

Usage: python cel_verdicts_tsv.py [--crdcheck BINARY] CRD_YAML PROBES_YAML > verdicts.tsv

CRD_YAML holds CustomResourceDefinitions (another project's, kept outside this repository); PROBES_YAML is a
corpus such as ../istio-1.31-cel-probes.yaml: a list of {id, expect, object}. The objects are validated by
ci/crdcheck (the API server's own code), built with `go build` unless --crdcheck names a binary. A probe whose
verdict is not its `expect` is listed on stderr and the exit status is 1 (the table is written all the same).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CRDCHECK_SOURCE = Path(__file__).resolve().parents[3] / "ci" / "crdcheck"
HEADER = "id\tverdict\tpaths"


@dataclass(frozen=True)
class Probe:
    id: str
    expect: str
    object: dict[str, Any]


def load_probes(path: Path) -> list[Probe]:
    """The corpus's probes, each object named after its probe's id."""
    probes = []
    for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
        obj = dict(entry["object"])
        obj["metadata"] = {"name": entry["id"], "namespace": "probes"}
        probes.append(Probe(id=entry["id"], expect=entry["expect"], object=obj))
    ids = [p.id for p in probes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate probe ids {duplicates}")
    return probes


def verdicts(probes: Iterable[Probe], objects: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """{id: (verdict, paths)} from crdcheck's object reports, given in the probes' order."""
    rows = {}
    for probe, report in zip(probes, objects, strict=True):
        errors = [path or "(object)" for path in report["paths"]]
        paths = sorted([*errors, *(f"unknown:{p}" for p in report["pruned"])])
        rows[probe.id] = ("rejected" if paths else "accepted", ",".join(paths))
    return rows


def build_crdcheck(directory: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("cel_verdicts_tsv: needs the go toolchain on PATH to build ci/crdcheck (or --crdcheck)")
    binary = directory / "crdcheck"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=CRDCHECK_SOURCE, check=True)
    return binary


def crdcheck_report(binary: Path, crds: list[dict[str, Any]], objects: list[dict[str, Any]]) -> dict[str, Any]:
    payload = json.dumps({"crds": crds, "objects": objects})
    result = subprocess.run([str(binary)], input=payload, capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crdcheck", type=Path, help="a built ci/crdcheck (default: go build it)")
    parser.add_argument("crds", type=Path)
    parser.add_argument("probes", type=Path)
    args = parser.parse_args(argv)
    crds = [
        doc
        for doc in yaml.safe_load_all(args.crds.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    probes = load_probes(args.probes)
    with tempfile.TemporaryDirectory() as scratch:
        binary = args.crdcheck or build_crdcheck(Path(scratch))
        report = crdcheck_report(binary, crds, [p.object for p in probes])
    refused = {name: errors for name, errors in report["crds"].items() if errors}
    if refused:
        print(f"cel_verdicts_tsv: CRDs refused: {json.dumps(refused, indent=2)}", file=sys.stderr)
        return 1
    rows = verdicts(probes, report["objects"])
    print(HEADER)
    for probe in probes:
        print("\t".join([probe.id, *rows[probe.id]]))
    unexpected = [p for p in probes if rows[p.id][0] != p.expect]
    for probe in unexpected:
        print(f"unexpected: {probe.id} is {rows[probe.id][0]}, written to be {probe.expect}", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
