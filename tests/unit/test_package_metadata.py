"""The package says which version runs, and the changelog says what that version changed."""

from __future__ import annotations

import re
import tomllib

import pytest

from meshcharts import cli
from tests import REPO


def project_version() -> str:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


def test_meshcharts_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"meshcharts {project_version()}"


def test_the_changelog_opens_with_the_packages_version_and_lists_each_version_once() -> None:
    versions = re.findall(r"^## (\S+)$", (REPO / "CHANGELOG.md").read_text(), flags=re.M)
    assert versions, "CHANGELOG.md has no `## <version>` sections"
    assert versions[0] == project_version(), f"CHANGELOG.md opens with {versions[0]}, not {project_version()}"
    assert len(versions) == len(set(versions)), versions
