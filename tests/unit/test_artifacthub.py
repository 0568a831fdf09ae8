"""ArtifactHub's rules on `artifacthub.io/*` annotations and artifacthub-repo.yml, as `ah lint` applies them.

The committed charts and repository metadata pass; each bad annotation is reported at its `file:key`;
the generator refuses a spec whose annotations ArtifactHub would reject, naming the spec entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshcharts import artifacthub, render, spec, write
from meshcharts.errors import SpecError
from meshcharts.paths import Layout
from tests import REPO
from tests.unit.trees import GOOD_CHART, make_tree

WHERE = "charts/x/Chart.yaml"


def check(annotations: dict[str, object]) -> list[str]:
    return [str(p) for p in artifacthub.check_annotations(annotations, artifacthub.in_file(WHERE))]


@pytest.mark.parametrize("chart", ["base", "istiod", "gateway"])
def test_the_committed_charts_annotations_pass_and_carry_what_artifacthub_shows(chart: str) -> None:
    path = REPO / "charts" / chart / "Chart.yaml"
    assert artifacthub.check_chart_file(path, f"charts/{chart}/Chart.yaml") == []
    annotations = yaml.safe_load(path.read_text())["annotations"]
    assert {"artifacthub.io/category", "artifacthub.io/license", "artifacthub.io/signKey"} <= set(annotations)


def test_the_committed_artifacthub_repo_yml_passes() -> None:
    assert artifacthub.check_repository_file(REPO / "artifacthub-repo.yml") == []


GOOD = {
    "artifacthub.io/category": "networking",
    "artifacthub.io/license": "Apache-2.0",
    "artifacthub.io/changes": "- kind: Added\n  description: a new value\n  links:\n  - {name: PR, url: https://x.test/1}\n",
    "artifacthub.io/images": "- {name: pilot, image: 'docker.io/istio/pilot:1.12.1'}\n- {name: p, image: 'busybox'}\n",
    "artifacthub.io/signKey": "fingerprint: C2BF2DAB675122AA99FB0F45F65A6209FAE0A292\nurl: https://x.test/key.asc\n",
    "artifacthub.io/prerelease": "False",
    "artifacthub.io/links": "- {name: source, url: https://x.test}\n",
    "artifacthub.io/crds": "- {kind: A, version: v1, name: as.x.test}\n",
    "helm.sh/unrelated": "not ArtifactHub's",
}


def test_well_formed_annotations_of_every_kind_pass() -> None:
    assert check(GOOD) == []
    assert check({"artifacthub.io/changes": "- A plain description\n- Another one\n"}) == []


BAD = {
    "category not in ArtifactHub's list": (
        {"artifacthub.io/category": "service-mesh"},
        "annotations.artifacthub.io/category: 'service-mesh' is not one of ai-machine-learning",
    ),
    "change kind unknown": (
        {"artifacthub.io/changes": "- {kind: improved, description: faster}\n"},
        "annotations.artifacthub.io/changes[0].kind: 'improved' is not one of added, changed, deprecated",
    ),
    "change without description": (
        {"artifacthub.io/changes": "- {kind: fixed, description: ''}\n"},
        "annotations.artifacthub.io/changes[0].description: must be a non-empty string",
    ),
    "change link without url": (
        {"artifacthub.io/changes": "- {kind: fixed, description: x, links: [{name: PR}]}\n"},
        "annotations.artifacthub.io/changes[0].links[0].url: must be a non-empty string",
    ),
    "changes as a mapping": (
        {"artifacthub.io/changes": "kind: fixed\ndescription: x\n"},
        "annotations.artifacthub.io/changes: must be a YAML list, found dict",
    ),
    "changes not YAML": (
        {"artifacthub.io/changes": "- kind: fixed\n description: [x\n"},
        "annotations.artifacthub.io/changes: is not valid YAML",
    ),
    "image with an upper-case repository": (
        {"artifacthub.io/images": "- {name: pilot, image: docker.io/Istio/pilot:1.12.1}\n"},
        "annotations.artifacthub.io/images[0].image: 'docker.io/Istio/pilot:1.12.1' is not an image reference: "
        "invalid reference format: repository name (Istio/pilot) must be lowercase",
    ),
    "image with an empty tag": (
        {"artifacthub.io/images": "- {name: pilot, image: 'docker.io/istio/pilot:'}\n"},
        "annotations.artifacthub.io/images[0].image: 'docker.io/istio/pilot:' is not an image reference",
    ),
    "image without a reference": (
        {"artifacthub.io/images": "- {name: pilot}\n"},
        "annotations.artifacthub.io/images[0].image: None is not an image reference: must be a string",
    ),
    "license not SPDX": (
        {"artifacthub.io/license": "Apache 2"},
        "annotations.artifacthub.io/license: 'Apache 2' is not an SPDX license identifier",
    ),
    "license not spelled as SPDX does": (
        {"artifacthub.io/license": "apache-2.0"},
        "annotations.artifacthub.io/license: 'apache-2.0' is not an SPDX license identifier: write it as SPDX "
        "spells it: Apache-2.0",
    ),
    "signKey without url": (
        {"artifacthub.io/signKey": "fingerprint: C2BF2DAB675122AA99FB0F45F65A6209FAE0A292\n"},
        "annotations.artifacthub.io/signKey.url: must be the http(s) URL of the public key, found None",
    ),
    "signKey with a short fingerprint": (
        {"artifacthub.io/signKey": "fingerprint: fae0a292\nurl: https://x.test/key.asc\n"},
        "annotations.artifacthub.io/signKey.fingerprint: must be 40 upper-case hex digits, found 'fae0a292'",
    ),
    "prerelease not a boolean": (
        {"artifacthub.io/prerelease": "yes"},
        "annotations.artifacthub.io/prerelease: 'yes' is not a boolean",
    ),
    "operator capabilities unknown": (
        {"artifacthub.io/operatorCapabilities": "magic"},
        "annotations.artifacthub.io/operatorCapabilities: 'magic' is not one of basic install",
    ),
    "a misspelt key": (
        {"artifacthub.io/change": "- x\n"},
        "annotations.artifacthub.io/change: is not an ArtifactHub annotation",
    ),
    "a value that is not a string": (
        {"artifacthub.io/links": [{"name": "x", "url": "https://x.test"}]},
        "annotations.artifacthub.io/links: must be a string",
    ),
    "crds not a list": (
        {"artifacthub.io/crds": "kind: A\n"},
        "annotations.artifacthub.io/crds: must be a YAML list, found dict",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_annotation_is_reported_at_its_file_and_key(case: str) -> None:
    annotations, expected = BAD[case]
    found = check({**GOOD, **annotations})
    assert len(found) == 1, found
    assert found[0].startswith(f"{WHERE}:{expected}"), found


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"repositoryID": "not-a-uuid"}, "artifacthub-repo.yml:repositoryID: must be a UUID, found 'not-a-uuid'"),
        ({"owners": [{"name": "x"}]}, "artifacthub-repo.yml:owners[0].email: must be a non-empty string"),
        ({"ignore": [{"name": "base", "version": "(1.12"}]}, "artifacthub-repo.yml:ignore[0].version: is not a"),
        ({"repositoryId": "a5d0a8a6-dbf3-52e3-a75e-c153681844c6"}, "artifacthub-repo.yml:repositoryId: is not an"),
        (["a list"], "artifacthub-repo.yml: must be a mapping"),
    ],
)
def test_bad_repository_metadata_is_reported_at_its_key(metadata: object, expected: str) -> None:
    found = [str(p) for p in artifacthub.check_repository_metadata(metadata, "artifacthub-repo.yml")]
    assert len(found) == 1 and found[0].startswith(expected), found


def _problems(layout: Layout) -> list[str]:
    with pytest.raises(SpecError) as caught:
        render.render_all(spec.load(layout))
    return [str(p) for p in caught.value.problems]


def test_generate_refuses_annotations_artifacthub_would_reject_and_names_the_spec_entry(tmp_path: Path) -> None:
    chart = GOOD_CHART.replace(
        "chart: {name: gateway, description: A test chart}",
        "chart:\n  name: gateway\n  description: A test chart\n"
        "  changes: [{kind: fixed, description: ''}]\n"
        "  images: [{name: proxy, repository: Proxyv2}]",
    )
    layout = make_tree(tmp_path, chart=chart)
    suite = (tmp_path / "generator" / "specs" / "suite.yaml").read_text()
    (tmp_path / "generator" / "specs" / "suite.yaml").write_text(suite.replace("license: Apache-2.0", "license: ASL2"))
    problems = _problems(layout)
    assert "generator/specs/gateway.yaml:chart.changes[0].description: must be a non-empty string" in problems
    assert any(
        p.startswith("generator/specs/gateway.yaml:chart.images[0].image: 'docker.io/istio/Proxyv2:") for p in problems
    ), problems
    assert any(p.startswith("generator/specs/suite.yaml:license: 'ASL2' is not an SPDX") for p in problems), problems
    assert len(problems) == 3, problems
    with pytest.raises(SpecError):
        write.generate(layout)
    assert not (tmp_path / "charts").exists(), "a refused generate writes nothing"
