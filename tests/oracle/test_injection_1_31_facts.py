"""Istio 1.31's injection facts (tests/data/istio-1.31-injection) are complete and well-formed.

test_injection_1_31.py compares the 1.31 line's istiod chart with them; this holds the files to what their
README says: every workload under every variant the README lists has its injected object, written
as the README says, and each object has the containers its injection template adds.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from meshcharts._yaml import SafeDumper, parse
from tests import REPO
from tests.oracle import cases

DATA = REPO / "tests" / "data" / "istio-1.31-injection"
VARIANTS = cases.variants(DATA)
WORKLOADS = cases.workloads()
PROXY = "istio-proxy"
TEMPLATES_ANNOTATION = "inject.istio.io/templates"
STATUS_ANNOTATION = "sidecar.istio.io/status"
HOW = {"unchanged", "mapped", "new", "left out"}


def _readme_variants() -> dict[str, str]:
    """The README's variants table: each variant and how it came from 1.12 (unchanged, mapped, new, left out)."""
    text = (DATA / "README.md").read_text()
    body = text.split("\n## Variants\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z0-9-]+)` \| ([a-z ]+?) \|", body, flags=re.MULTILINE))


def _pod(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod's metadata and spec: a Pod's own, or its owner's pod template's."""
    if doc["kind"] == "Pod":
        return doc["metadata"], doc["spec"]
    template = doc["spec"]["template"]
    return template["metadata"], template["spec"]


def _templates(workload: dict[str, Any]) -> list[str]:
    annotations = _pod(workload)[0].get("annotations") or {}
    return [name.strip() for name in str(annotations.get(TEMPLATES_ANNOTATION, "sidecar")).split(",")]


def _written_as_documented(text: str, doc: Any) -> bool:
    """`text` is `yaml.safe_dump(doc, sort_keys=True)`."""
    # libyaml's dumper first, for speed; the pure-Python one the files were written with alone decides.
    return text == yaml.dump(doc, Dumper=SafeDumper, sort_keys=True) or text == yaml.safe_dump(doc, sort_keys=True)


def test_readme_lists_every_variant_and_each_1_12_variant() -> None:
    table = _readme_variants()
    assert set(table.values()) <= HOW, f"unknown kinds in the README's variants table: {set(table.values()) - HOW}"
    listed = {name for name, how in table.items() if how != "left out"}
    assert listed == {v.name for v in VARIANTS}, "the README's variants differ from variants.yaml/more-variants.yaml"
    from_1_12 = {v.name for v in cases.variants()}
    assert from_1_12 <= set(table), f"1.12 variants neither mapped nor left out: {sorted(from_1_12 - set(table))}"
    assert {name for name, how in table.items() if how == "new"}.isdisjoint(from_1_12)
    text = " ".join((DATA / "README.md").read_text().split())
    count = f"{len(VARIANTS) * len(WORKLOADS)} files: {len(VARIANTS)} variants x {len(WORKLOADS)} workloads"
    assert count in text, f"the README does not say {count!r}"


def test_every_variant_and_workload_has_its_object_and_no_other() -> None:
    missing = [
        f"{v.name}/{w}" for v in VARIANTS for w in WORKLOADS if not cases.expected_path(v.name, w, DATA).is_file()
    ]
    assert not missing, f"no Istio 1.31 injected object for {missing}"
    names = {v.name for v in VARIANTS}
    stale = sorted(
        str(path.relative_to(DATA))
        for path in (DATA / "expected").rglob("*")
        if path.is_file() and (path.suffix != ".yaml" or path.parent.name not in names or path.stem not in WORKLOADS)
    )
    assert not stale, f"files for no variant or workload: {stale}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_injected_objects_are_well_formed(variant: cases.Variant) -> None:
    native = variant.env.get("ENABLE_NATIVE_SIDECARS") == "true"
    problems: list[str] = []
    for name, workload in WORKLOADS.items():
        path = cases.expected_path(variant.name, name, DATA)
        text = path.read_text()
        doc = parse(text)
        if not _written_as_documented(text, doc):
            problems.append(f"{name}: not written as yaml.safe_dump(doc, sort_keys=True)")
        for key in ("apiVersion", "kind"):
            if doc.get(key) != workload[key]:
                problems.append(f"{name}: {key} {doc.get(key)!r}, the workload's is {workload[key]!r}")
        if {k: doc["metadata"].get(k) for k in ("name", "namespace")} != {
            k: workload["metadata"].get(k) for k in ("name", "namespace")
        }:
            problems.append(f"{name}: metadata names another object: {doc['metadata']}")
        meta, spec = _pod(doc)
        init = {c["name"]: c for c in spec.get("initContainers") or []}
        regular = {c["name"]: c for c in spec.get("containers") or []}
        own = [c["name"] for c in _pod(workload)[1]["containers"] if c["name"] != PROXY]
        lost = [c for c in own if c not in regular]
        if lost:
            problems.append(f"{name}: the workload's containers {lost} are gone")
        templates = _templates(workload)
        if "sidecar" in templates and native:
            if init.get(PROXY, {}).get("restartPolicy") != "Always":
                problems.append(f"{name}: no {PROXY} init container with restartPolicy Always (native sidecar)")
        elif "sidecar" in templates and (PROXY not in regular or PROXY in init):
            problems.append(f"{name}: the sidecar template's {PROXY} is not a regular container")
        if {"gateway", "grpc-agent"} & set(templates) and PROXY not in regular:
            problems.append(f"{name}: no {PROXY} container from the {templates} template")
        if templates == ["grpc-simple"] and (PROXY in regular or PROXY in init or "grpc-bootstrap-init" not in init):
            problems.append(f"{name}: grpc-simple adds grpc-bootstrap-init and no proxy")
        status = json.loads((meta.get("annotations") or {}).get(STATUS_ANNOTATION, "null") or "null")
        if not isinstance(status, dict):
            problems.append(f"{name}: no {STATUS_ANNOTATION} annotation")
            continue
        for key, present in (("initContainers", init), ("containers", regular)):
            absent = [c for c in status.get(key) or [] if c not in present]
            if absent:
                problems.append(f"{name}: {STATUS_ANNOTATION} names {key} {absent} the pod lacks")
    assert not problems, f"variant {variant.name}:\n" + "\n".join(f"  {p}" for p in problems)
