"""The committed charts/ are exactly what the specs render, and the CLI says so with its exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshcharts import cli, write
from meshcharts.paths import Layout


def test_committed_charts_match_the_specs(layout: Layout) -> None:
    drift = write.check(layout)
    assert drift == "", f"charts/ is stale; run `meshcharts generate`:\n{drift[:3000]}"


@pytest.fixture
def tree_copy(tmp_path: Path, layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Path:
    for part in ("generator/specs", "generator/templates", "charts"):
        shutil.copytree(layout.root / part, tmp_path / part)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MESHCHARTS_ROOT", raising=False)
    return tmp_path


def test_generate_check_exits_0_clean_1_drift_2_bad_spec(tree_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "--check"]) == 0
    values = tree_copy / "charts" / "gateway" / "values.yaml"
    values.write_text(values.read_text() + "extra: 1\n")
    assert cli.main(["generate", "--check"]) == 1
    out, err = capsys.readouterr()
    assert "+++ b/charts/gateway/values.yaml" in out and "meshcharts generate" in err
    spec_file = tree_copy / "generator" / "specs" / "gateway.yaml"
    spec_file.write_text(spec_file.read_text().replace("apiVersion: meshcharts/v1alpha1", "apiVersion: v0"))
    assert cli.main(["generate", "--check"]) == 2
    assert "generator/specs/gateway.yaml:apiVersion" in capsys.readouterr().err
    assert values.read_text().endswith("extra: 1\n")  # a failed run wrote nothing


def test_published_versions_are_exactly_what_charts_pack_to(layout: Layout) -> None:
    """A chart changed under an already published version would be refused at release; catch it here first."""
    from meshcharts import package, repo

    for line in layout.every_line():
        for chart in repo.chart_dirs(line):
            archive = layout.packages / package.archive_name(package.load_metadata(chart))
            if archive.exists():
                assert package.archive_bytes(chart) == archive.read_bytes(), (
                    f"{line.charts_label}{chart.name} changed but {archive.name} is published: bump the version in "
                    + (f"generator/lines/{line.line}/line.yaml" if line.line else "generator/specs/suite.yaml")
                )
