"""The 1.31 line's API types (generator/lines/1.31/specs/crds, a whole API set of its own) against Istio 1.31's CRDs,
as tabulated in tests/data/istio-1.31-*.tsv: every field path of every version with its type and constraints
(bounds, lengths, patterns, sizes, required, list types, and how many CEL rules sit at each path), and each
CRD's names, versions, columns and keep policy. One test per CRD, so each kind's drift is listed on its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshcharts.crds import APIType, examples, load_api_types, render_crd
from tests import REPO as ROOT
from tests.conftest import DATA, data_table
from tests.data.tools.cel_verdicts_tsv import load_probes, verdicts
from tests.unit.crd_rows import crd_facts, differences, generated_rows
from tests.unit.crdcheck import check

LINE_CRDS = ROOT / "generator" / "lines" / "1.31" / "specs" / "crds"
FIELDS = "istio-1.31-crd-fields.tsv"
CRDS = "istio-1.31-crds.tsv"
CEL_PROBES = "istio-1.31-cel-probes.yaml"
CEL_VERDICTS = "istio-1.31-cel-verdicts.tsv"


def _reference_crds() -> list[str]:
    return sorted(row["crd"] for row in data_table(CRDS))


@pytest.fixture(scope="module")
def apis() -> dict[str, APIType]:
    return {api.name: api for api in load_api_types(LINE_CRDS)}


@pytest.fixture(scope="module")
def fields() -> dict[tuple[str, str, str], tuple[str, str]]:
    return {(r["crd"], r["version"], r["path"]): (r["type"], r["constraints"]) for r in data_table(FIELDS)}


def test_the_line_declares_exactly_istio_1_31s_crds(apis: dict[str, APIType]) -> None:
    reference = _reference_crds()
    assert len(reference) == 15
    assert sorted(apis) == reference, (
        f"missing {sorted(set(reference) - set(apis))}, extra {sorted(set(apis) - set(reference))}"
    )


@pytest.mark.parametrize("crd", _reference_crds())
def test_every_field_path_matches_istio_1_31(
    crd: str, apis: dict[str, APIType], fields: dict[tuple[str, str, str], tuple[str, str]]
) -> None:
    if crd not in apis:
        pytest.fail(f"{crd}: no API type declares it in {LINE_CRDS.relative_to(ROOT)}")
    reference = {key: value for key, value in fields.items() if key[0] == crd}
    generated = generated_rows({crd: render_crd(apis[crd])})
    drift = differences(reference, generated)
    assert not drift, f"{len(drift)} difference(s) from Istio 1.31.0-rc.0:\n" + "\n".join(drift)
    print(f"\n{crd}: {len(reference)} of {len(reference)} Istio 1.31 field paths match")


@pytest.mark.parametrize("crd", _reference_crds())
def test_names_versions_columns_and_keep_match_istio_1_31(crd: str, apis: dict[str, APIType]) -> None:
    if crd not in apis:
        pytest.fail(f"{crd}: no API type declares it in {LINE_CRDS.relative_to(ROOT)}")
    reference: dict[str, Any] = next(row for row in data_table(CRDS) if row["crd"] == crd)
    generated = crd_facts(render_crd(apis[crd]), apis[crd].keep)
    drift = [
        f"{column}: reference {value!r}, generated {generated[column]!r}"
        for column, value in reference.items()
        if generated[column] != value
    ]
    assert not drift, "\n".join(drift)


@pytest.mark.slow
def test_the_api_server_accepts_every_1_31_crd_its_rules_cost_and_every_example_in_every_version(
    crdcheck: Path, apis: dict[str, APIType]
) -> None:
    """kube-apiserver's own CRD validation (ci/crdcheck): structural schemas, and the CEL rules compiled within the
    API server's cost budget (the loader's estimate is only an approximation: a rule run once per list item can
    pass it and still be refused here); then each example, in each served version, validated and not pruned."""
    objects = [
        {**examples(api), "apiVersion": f"{api.group}/{version.name}"}
        for api in apis.values()
        for version in api.versions
        if version.served
    ]
    report = check(crdcheck, [render_crd(api) for api in apis.values()], objects)
    assert report["crds"] == {name: [] for name in apis}
    rejected = [o for o in report["objects"] if o["errors"] or o["pruned"]]
    assert not rejected, json.dumps(rejected, indent=2)
    assert len(report["objects"]) == sum(len([v for v in api.versions if v.served]) for api in apis.values())


@pytest.mark.slow
def test_every_cel_probe_gets_istio_1_31s_verdict_and_error_paths(crdcheck: Path, apis: dict[str, APIType]) -> None:
    """The probe corpus (objects of ours, each meant to satisfy or break one CEL rule at one place) through
    kube-apiserver's validation of an object on create (ci/crdcheck: schema, list maps, then the CEL rules) with
    the 1.31 line's CRDs: each probe must be accepted or rejected as Istio 1.31.0-rc.0's CRDs do, with errors at
    the same field paths. Our rules are our own expressions; this is what says they mean the same as Istio's."""
    probes = load_probes(DATA / CEL_PROBES)
    facts = {row["id"]: (row["verdict"], row["paths"]) for row in data_table(CEL_VERDICTS)}
    assert [p.id for p in probes] == list(facts), f"{CEL_PROBES} and {CEL_VERDICTS} list different probes"
    report = check(crdcheck, [render_crd(api) for api in apis.values()], [p.object for p in probes])
    assert report["crds"] == {name: [] for name in apis}
    ours = verdicts(probes, report["objects"])
    drift = [
        f"{probe.id}: Istio {facts[probe.id][0]} [{facts[probe.id][1]}], ours {ours[probe.id][0]} [{ours[probe.id][1]}]"
        for probe in probes
        if ours[probe.id] != facts[probe.id]
    ]
    assert not drift, f"{len(drift)} of {len(probes)} probes differ from Istio 1.31.0-rc.0's verdicts:\n" + "\n".join(
        drift
    )
    print(f"\n{len(probes)} of {len(probes)} CEL probes get Istio 1.31's verdict and error paths")
