"""Shared helpers for every test layer: the repository layout under test and the facts in tests/data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from meshcharts.paths import Layout

# The cluster layers' shared installs, registered once for every layer (see that module).
pytest_plugins = ["tests.cluster_fixtures"]

REPO = Path(__file__).resolve().parents[1]
# Istio 1.12 facts the tests compare against, copied into the clone (tests/data/README.md says from where).
DATA = REPO / "tests" / "data"


def data_table(name: str) -> list[dict[str, str]]:
    """The rows of tests/data/NAME, a tab-separated table with a header row."""
    with (DATA / name).open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout(REPO)
