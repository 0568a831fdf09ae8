"""Shared helpers for every test layer: the repository layout under test."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcharts.paths import Layout

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout(REPO)
