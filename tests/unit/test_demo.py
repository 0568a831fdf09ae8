"""The main job's scratch copy of the repository: everything release and serve read, and a clear refusal."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import semver

from meshcharts import demo
from meshcharts.errors import ClusterError, RepoError
from tests.conftest import REPO


def test_the_scratch_copy_holds_what_release_and_serve_read(tmp_path: Path) -> None:
    layout = demo.copy_repository(REPO, tmp_path / "copy")
    for part in demo.REPOSITORY_PARTS:
        assert (layout.root / part).exists(), part
    assert layout.index.read_bytes() == (REPO / "index.yaml").read_bytes()
    assert sorted(p.name for p in layout.packages.iterdir()) == sorted(p.name for p in (REPO / "packages").iterdir())


def test_a_repository_without_its_public_key_is_refused_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for part in demo.REPOSITORY_PARTS:
        if part != "meshcharts.asc":
            src = REPO / part
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, source / part)
    with pytest.raises(RepoError, match=r"meshcharts\.asc is missing"):
        demo.copy_repository(source, tmp_path / "copy")


def test_show_hands_a_commands_output_to_out_and_its_stderr_to_say() -> None:
    said: list[str] = []
    shown: list[str] = []
    script = "import sys; print('NAME READY'); print('careful', file=sys.stderr)"
    demo.show([sys.executable, "-c", script], said.append, shown.append)
    assert shown == ["NAME READY"]
    assert said[0].startswith(f"$ {Path(sys.executable).name} -c ")
    assert said[1:] == ["careful"]


def test_show_of_a_failing_command_raises_with_its_stderr() -> None:
    script = "import sys; print('no such resource', file=sys.stderr); sys.exit(4)"
    with pytest.raises(ClusterError, match=r"exited 4:\nno such resource"):
        demo.show([sys.executable, "-c", script], lambda _: None, lambda _: None)


def _index(versions: dict[str, list[str]]) -> dict[str, object]:
    """An index.yaml's data with only what the demo's choice reads: each chart's published versions."""
    return {"apiVersion": "v1", "entries": {chart: [{"version": v} for v in vs] for chart, vs in versions.items()}}


PUBLISHED = ["1.12.0", "1.12.1", "1.12.2", "1.13.0"]


def test_the_demo_installs_a_release_candidate_when_it_is_the_newest_lines_only_release() -> None:
    pick = demo.newest_published(_index({c: [*PUBLISHED, "1.31.0-rc.0"] for c in demo.CHARTS}))
    assert (pick.version, pick.line) == ("1.31.0-rc.0", "1.31")
    assert "lines: 1.12, 1.13, 1.31" in pick.reason
    # Why --version is needed: Helm's own default would be the newest version that is not a pre-release.
    assert "a pre-release" in pick.reason and "Helm would install 1.13.0" in pick.reason


def test_the_demo_installs_the_newest_release_of_the_newest_line_when_it_is_no_pre_release() -> None:
    pick = demo.newest_published(_index({c: list(PUBLISHED) for c in demo.CHARTS}))
    assert (pick.version, pick.line) == ("1.13.0", "1.13")
    assert "pre-release" not in pick.reason and "lines: 1.12, 1.13" in pick.reason


def test_the_demo_orders_versions_as_semver_not_as_text_nor_by_publication() -> None:
    versions = ["1.31.0-rc.0", "1.9.9", "1.31.0-rc.10", "1.31.0-rc.2", "1.13.0", "1.30.5"]
    assert demo.newest_published(_index({c: versions for c in demo.CHARTS})).version == "1.31.0-rc.10"
    # The final release outranks its release candidates; a later line's candidate outranks an older line's patch.
    assert demo.newest_published(_index({c: [*versions, "1.31.0"] for c in demo.CHARTS})).version == "1.31.0"


def test_the_demo_installs_a_version_every_chart_publishes() -> None:
    # gateway's 1.31.0-rc.0 is not published yet: base, istiod and gateway are installed at one version.
    versions = {"base": [*PUBLISHED, "1.31.0-rc.0"], "istiod": [*PUBLISHED, "1.31.0-rc.0"], "gateway": PUBLISHED}
    assert demo.newest_published(_index(versions)).version == "1.13.0"
    with pytest.raises(RepoError, match=r"no version of base, istiod, gateway alike"):
        demo.newest_published(_index({"base": ["1.12.0"], "istiod": ["1.13.0"], "gateway": ["1.13.0"]}))


def test_the_demo_reads_its_choice_from_the_served_index(chart_repo: str) -> None:
    from meshcharts import index

    served = demo.served_index(chart_repo)
    assert served == index.load(REPO / "index.yaml")
    # The newest line's newest version is the greatest by semver, pre-releases included, of those all three publish.
    common = set.intersection(
        *({semver.Version.parse(str(e["version"])) for e in served["entries"][chart]} for chart in demo.CHARTS)
    )
    assert demo.newest_published(served).version == str(max(common))


def _index_with_kube(versions: dict[str, str]) -> dict[str, object]:
    """Each published version with its chart's kubeVersion, the same for base, istiod and gateway."""
    return {
        "apiVersion": "v1",
        "entries": {c: [{"version": v, "kubeVersion": k} for v, k in versions.items()] for c in demo.CHARTS},
    }


def test_on_a_cluster_older_than_the_newest_lines_kubeversion_the_demo_installs_the_newest_line_it_admits() -> None:
    index = _index_with_kube({"1.12.2": ">=1.19.0-0", "1.13.0": ">=1.25.0-0", "1.31.0-rc.0": ">=1.32.0-0"})
    old = demo.newest_published(index, kubernetes="v1.30.4")
    assert old.version == "1.13.0"
    assert "left out, since the cluster runs Kubernetes v1.30.4: line 1.31 (kubeVersion >=1.32.0-0)" in old.reason
    # A provider's build suffix does not make the cluster's version a pre-release below the `-0` bound.
    assert demo.newest_published(index, kubernetes="v1.32.0-gke.1200").version == "1.31.0-rc.0"
    assert demo.newest_published(index, kubernetes="v1.36.3").version == "1.31.0-rc.0"
    assert "left out" not in demo.newest_published(index, kubernetes="v1.36.3").reason
    with pytest.raises(RepoError, match=r"alike for Kubernetes v1\.18\.0: nothing to install"):
        demo.newest_published(index, kubernetes="v1.18.0")


@pytest.mark.parametrize(
    ("constraint", "kubernetes", "admitted"),
    [
        (">=1.32.0-0", "v1.32.0", True),
        (">=1.32.0-0", "v1.31.9", False),
        (">=1.25.0-0, <1.33.0-0", "v1.33.1", False),
        (">=1.25.0-0 <1.33.0-0", "v1.30.4+k3s1", True),
        ("~1.30", "v1.36.3", True),  # a form this does not read: Helm decides at install
    ],
)
def test_kubeversion_constraints_are_read_as_helm_writes_them(constraint: str, kubernetes: str, admitted: bool) -> None:
    assert demo.kubernetes_allows(constraint, kubernetes) is admitted
