"""Packaging and indexing as data: same bytes every time, published archives never change, strict index."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from meshcharts import index, package, repo
from meshcharts.errors import RepoError
from meshcharts.paths import Layout
from tests import REPO

VERSION = str(yaml.safe_load((REPO / "generator" / "specs" / "suite.yaml").read_text())["version"])


def clock(stamp: str = "2026-01-02T03:04:05.000006Z"):  # type: ignore[no-untyped-def]
    return lambda: stamp


@pytest.fixture
def tree(tmp_path: Path) -> Layout:
    """A copy of the repository's generated charts with empty packages/ and no index."""
    shutil.copytree(REPO / "generator" / "specs", tmp_path / "generator" / "specs")
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    (tmp_path / "packages").mkdir()
    return Layout(tmp_path)


def test_archive_is_byte_identical_whatever_the_mtimes_umask_and_directory(tree: Layout, tmp_path: Path) -> None:
    chart = tree.charts / "gateway"
    first = package.archive_bytes(chart)
    copy = tmp_path / "elsewhere" / "gateway"
    shutil.copytree(chart, copy)
    for path in copy.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
        if path.is_file():
            path.chmod(0o600)
    assert package.archive_bytes(copy) == first


def test_archive_has_helms_layout(tree: Layout) -> None:
    result = package.package(tree.charts / "gateway", tree.packages)
    with tarfile.open(result.archive) as tar:
        members = tar.getmembers()
    assert all(m.isfile() and m.mode == 0o644 and m.name.startswith("gateway/") for m in members)
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert "gateway/Chart.yaml" in {m.name for m in members}
    assert {m.mtime for m in members} == {package.FIXED_MTIME}


def test_packaging_the_same_bytes_again_is_a_no_op(tree: Layout) -> None:
    first = repo.package_all(tree)
    assert {p.archive.name for p in first} == {
        f"{d.name}-{package.load_metadata(d)['version']}.tgz" for d in repo.chart_dirs(tree)
    }
    stat = {p.archive: p.archive.stat().st_mtime_ns for p in first}
    assert repo.package_all(tree) == []
    assert {p: p.stat().st_mtime_ns for p in stat} == stat


def test_a_changed_chart_under_a_published_version_is_refused_and_nothing_is_written(tree: Layout) -> None:
    repo.package_all(tree)
    before = {p.name: p.read_bytes() for p in tree.packages.iterdir()}
    values = tree.charts / "gateway" / "values.yaml"
    values.write_text(values.read_text().replace("replicaCount: 1", "replicaCount: 2"))
    with pytest.raises(
        RepoError, match=rf"(?s)gateway-{re.escape(VERSION)}\.tgz is published with sha256 .*Bump `version`"
    ):
        repo.package_all(tree)
    assert {p.name: p.read_bytes() for p in tree.packages.iterdir()} == before


def test_index_adds_new_archives_newest_first_with_relative_urls(tree: Layout) -> None:
    repo.package_all(tree)
    result = index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock())
    assert result.written and f"gateway-{VERSION}" in result.added
    data = yaml.safe_load(tree.index.read_text())
    entry = data["entries"]["gateway"][0]
    assert entry["urls"] == [f"packages/gateway-{VERSION}.tgz"]
    assert entry["digest"] == hashlib.sha256((tree.packages / f"gateway-{VERSION}.tgz").read_bytes()).hexdigest()
    assert entry["created"] == "2026-01-02T03:04:05.000006Z" == data["generated"]


def _fake_newer(tree: Layout, version: str) -> Path:
    """A newer gateway version packed from a copy of the chart with another version."""
    copy = tree.root / "work" / "gateway"
    shutil.copytree(tree.charts / "gateway", copy, dirs_exist_ok=True)
    chart = copy / "Chart.yaml"
    chart.write_text(chart.read_text().replace(f"version: {VERSION}\n", f"version: {version}\n", 1))
    return package.package(copy, tree.packages).archive


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    it = iter(new)
    return all(line in it for line in old)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_merge_keeps_existing_entries_byte_for_byte_and_is_idempotent(tree: Layout, fmt: str) -> None:
    repo.package_all(tree)
    index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock("2026-01-01T00:00:00.000000Z"), fmt=fmt)
    first = tree.index.read_text()
    assert first.lstrip().startswith("{") == (fmt == "json")
    assert not index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock("2027-01-01T00:00:00Z")).written
    assert tree.index.read_text() == first
    _fake_newer(tree, "1.12.5")
    _fake_newer(tree, "1.12.10")
    index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock("2026-02-02T00:00:00.000000Z"))
    text = tree.index.read_text()
    data = yaml.safe_load(text)
    versions = [e["version"] for e in data["entries"]["gateway"]]
    assert versions == ["1.12.10", "1.12.5", VERSION]
    old = data["entries"]["gateway"][-1]
    assert old["created"] == "2026-01-01T00:00:00.000000Z"
    assert data["generated"] == "2026-02-02T00:00:00.000000Z"
    unchanged = [line for line in first.splitlines() if "generated" not in line and line.strip() not in ("}", "},")]
    assert _is_subsequence(unchanged, text.splitlines()), "an existing entry's bytes changed"


BAD_INDEXES = {
    "corrupt yaml": "apiVersion: v1\nentries: {gateway: [\n",
    "unknown top-level key": "apiVersion: v1\nentries: {}\nowner: me\n",
    "unknown entry key": "apiVersion: v1\nentries:\n  x:\n  - {name: x, version: 1.0.0, urls: [a.tgz], digest: '%s', "
    "created: '2020-01-01T00:00:00Z', license: MIT}\n" % ("0" * 64),
    "wrong apiVersion": "apiVersion: v2\nentries: {}\n",
    "entries not a mapping": "apiVersion: v1\nentries: [1, 2]\n",
    "duplicate version": "apiVersion: v1\nentries:\n  x:\n"
    + "  - {name: x, version: 1.0.0, urls: [a.tgz], digest: '%s', created: '2020-01-01T00:00:00Z'}\n" % ("0" * 64) * 2,
    "missing digest": "apiVersion: v1\nentries:\n  x:\n  - {name: x, version: 1.0.0, urls: [a.tgz], "
    "created: '2020-01-01T00:00:00Z'}\n",
    "version not semver": "apiVersion: v1\nentries:\n  x:\n  - {name: x, version: one, urls: [a.tgz], digest: '%s', "
    "created: '2020-01-01T00:00:00Z'}\n" % ("0" * 64),
    "unknown maintainer key": "apiVersion: v1\nentries:\n  x:\n  - {name: x, version: 1.0.0, urls: [a.tgz], digest: "
    "'%s', created: '2020-01-01T00:00:00Z', maintainers: [{name: a, phone: 1}]}\n" % ("0" * 64),
}


@pytest.mark.parametrize("text", BAD_INDEXES.values(), ids=BAD_INDEXES.keys())
def test_a_bad_index_stops_the_merge_and_nothing_is_written(tree: Layout, text: str) -> None:
    repo.package_all(tree)
    tree.index.write_text(text)
    listing = sorted(p.name for p in tree.root.iterdir())
    with pytest.raises(RepoError, match="nothing was written"):
        index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock())
    assert tree.index.read_text() == text
    assert sorted(p.name for p in tree.root.iterdir()) == listing


def test_an_archive_whose_digest_differs_from_its_published_entry_is_refused(tree: Layout) -> None:
    repo.package_all(tree)
    index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock())
    before = tree.index.read_text()
    moved = tree.packages / f"gateway-{VERSION}-copy.tgz"
    values = tree.charts / "gateway" / "values.yaml"
    values.write_text(values.read_text() + "# changed\n")
    moved.write_bytes(package.archive_bytes(tree.charts / "gateway"))
    with pytest.raises(RepoError, match="already published with digest"):
        index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock())
    assert tree.index.read_text() == before


def test_verify_finds_missing_archives_and_changed_bytes(tree: Layout) -> None:
    repo.package_all(tree)
    index.merge(tree.root, sorted(tree.packages.glob("*.tgz")), clock=clock())
    assert index.verify(tree.root) == []
    (tree.packages / f"gateway-{VERSION}.tgz").write_bytes(b"tampered")
    base = next(tree.packages.glob("base-*.tgz"), None)
    if base is not None:
        base.unlink()
    problems = [str(p) for p in index.verify(tree.root)]
    assert any("gateway" in p and "has sha256" in p for p in problems), problems
    if base is not None:
        assert any("base" in p and "does not resolve" in p for p in problems), problems


def test_release_without_a_key_for_new_versions_writes_nothing(tree: Layout) -> None:
    shutil.copytree(REPO / "generator" / "templates", tree.root / "generator" / "templates")
    with pytest.raises(RepoError, match="no signing key"):
        repo.release(tree, sign_key=None)
    assert list(tree.packages.iterdir()) == [] and not tree.index.exists()
