"""Fixtures shared by the unit tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit import crdcheck as crdcheck_tool


@pytest.fixture(scope="session")
def crdcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ci/crdcheck binary, built once per session (the test is skipped where it cannot be built)."""
    return crdcheck_tool.build(tmp_path_factory.mktemp("crdcheck"))
