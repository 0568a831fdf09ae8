"""The one place checkov findings are accepted, ci/checkov-suppressions.yaml: every entry says why and names the
objects it covers, a malformed entry is reported at its `file:key`, and an object named that no finding matches
is stale. The checkov pin is the same in pyproject and in scan.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts import scan
from meshcharts.errors import SpecError
from tests import REPO


def test_the_committed_suppressions_load_and_each_says_why() -> None:
    suppressions = scan.load_suppressions(REPO / scan.SUPPRESSIONS)
    assert suppressions, "the scan accepts at least one finding; an empty file would need no loader"
    for suppression in suppressions:
        assert suppression.resources, f"{suppression.check_id}: names no object"
        assert suppression.check_id.startswith(("CKV_K8S_", "CKV2_K8S_")), suppression
        assert len(suppression.reason.split()) >= 8, f"{suppression.check_id}: say why in a sentence"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CKV_K8S_8:\n  reason: fine\n  resources: [Deployment.ns.istiod]\n",
            "x.yaml:CKV_K8S_8.reason: must say, in a sentence, why the finding",
        ),
        ("CKV_K8S_8: because\n", "x.yaml:CKV_K8S_8: must be a mapping with reason and resources"),
        (
            "CKV_K8S_8:\n  reason: istiod has no liveness endpoint here\n  resources: [istiod]\n",
            "x.yaml:CKV_K8S_8.resources: must be a non-empty list of Kind.namespace.name",
        ),
        (
            "CKV_K8S_8:\n  reason: istiod has no liveness endpoint here\n",
            "x.yaml:CKV_K8S_8: must be a mapping with reason and resources",
        ),
        (
            "CKV_K8S_8:\n  reason: istiod has no liveness endpoint here\n  resources: []\n",
            "x.yaml:CKV_K8S_8.resources: must be a non-empty list of Kind.namespace.name",
        ),
        (
            "CKV_K8S_8:\n  reason: istiod has no liveness endpoint here\n  resources: [Deployment.ns.istiod]\n"
            "CKV_K8S_8:\n  reason: the gateway has no liveness endpoint\n  resources: [Deployment.ns.gw]\n",
            "x.yaml:4: duplicate key 'CKV_K8S_8'",
        ),
        ("- CKV_K8S_8\n", "x.yaml: must be a mapping of check ids to {reason, resources}"),
        ("CKV_K8S_8: [\n", "x.yaml:2: not valid YAML"),
    ],
)
def test_a_malformed_suppression_is_refused_at_its_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as refused:
        scan.load_suppressions(path, "x.yaml")
    assert str(refused.value.problems[0]).startswith(expected), refused.value.problems


def test_the_checkov_pin_of_pyprojects_scan_extra_is_the_version_the_scan_names() -> None:
    assert scan.pinned_requirement(REPO / "pyproject.toml") == f"checkov=={scan.CHECKOV_VERSION}"


def _finding(check: str, resource: str) -> scan.Finding:
    return scan.Finding(check, "a check", resource, "istiod (default values)")


def test_a_suppression_covers_only_the_objects_it_names_and_each_named_object_must_still_fail() -> None:
    suppression = scan.Suppression(
        "CKV_K8S_43", "images are pinned by tag", ("Deployment.ns.istiod", "Deployment.ns.gone")
    )
    findings = [_finding("CKV_K8S_43", "Deployment.ns.istiod"), _finding("CKV_K8S_43", "Deployment.ns.other")]
    unsuppressed, suppressed, stale = scan.sort_findings(findings, [suppression])
    assert unsuppressed == [findings[1]]  # an object the entry does not name stays a finding
    assert suppressed == [(findings[0], suppression)]
    # The check still fails on istiod, but no longer on "gone": that name is stale though the entry is in use.
    assert [str(p) for p in stale] == [
        f"{scan.SUPPRESSIONS}:CKV_K8S_43.resources: Deployment.ns.gone: no finding any more; remove it"
    ]
