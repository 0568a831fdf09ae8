"""The oracle's inputs and facts: workloads, istiod values variants and Istio 1.12's injected pods.

All of it lives in tests/data/istio-1.12-injection (its README says where each part came from); the
variants of variants.yaml (plain values) and more-variants.yaml (values plus istioctl's environment) are
read into one shape here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts._yaml import parse, parse_all

DATA = Path(__file__).resolve().parents[1] / "data" / "istio-1.12-injection"
DEVIATIONS = Path(__file__).resolve().parent / "deviations.yaml"
WORKLOAD_FILES = ("workloads.yaml", "more-workloads.yaml")
# Both charts render with the images of the reference data.
PINNED = {"global": {"hub": "docker.io/istio", "tag": "1.12.0"}}


@dataclass(frozen=True)
class Variant:
    """istiod chart values under which every workload is injected, and istioctl's extra environment."""

    name: str
    values: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    # What istiod 1.12 would estimate for `--concurrency` where proxy.concurrency is unset (its template data's
    # `.EstimatedConcurrency`; istioctl's has none, so the number is written into both templates' text).
    estimated_concurrency: int = 0

    def chart_values(self, pinned: dict[str, Any] = PINNED) -> dict[str, Any]:
        """The variant's values with the images pinned (a later release line pins its own tag)."""
        return _merge(self.values, pinned)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def variants(data: Path = DATA) -> list[Variant]:
    found = [
        Variant(name, values or {}) for name, values in yaml.safe_load((data / "variants.yaml").read_text()).items()
    ]
    more = yaml.safe_load((data / "more-variants.yaml").read_text()) or {}
    found += [
        Variant(name, spec.get("values") or {}, dict(spec.get("env") or {}), int(spec.get("estimatedConcurrency", 0)))
        for name, spec in more.items()
    ]
    return found


def workloads(data: Path = DATA) -> dict[str, dict[str, Any]]:
    """Every workload by metadata.name, in file order; names are unique across the files."""
    found: dict[str, dict[str, Any]] = {}
    for filename in WORKLOAD_FILES:
        for doc in parse_all((data / filename).read_text()):
            if not isinstance(doc, dict):
                continue
            name = doc["metadata"]["name"]
            if name in found:
                raise ValueError(f"{data / filename}: workload {name} is defined twice")
            found[name] = doc
    return found


def workloads_text(data: Path = DATA) -> str:
    """All workloads as one multi-document YAML stream for a single kube-inject run."""
    return "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in workloads(data).values())


def expected_path(variant: str, workload: str, data: Path = DATA) -> Path:
    return data / "expected" / variant / f"{workload}.yaml"


def expected(variant: str, workload: str, data: Path = DATA) -> dict[str, Any]:
    doc = parse(expected_path(variant, workload, data).read_text())
    assert isinstance(doc, dict)
    return doc
