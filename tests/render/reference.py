"""Istio 1.12's default objects of a chart, from the project's test data, as rows to compare renders with."""

from __future__ import annotations

from tests.conftest import data_table


def reference_rows(name: str, chart: str) -> list[dict[str, str]]:
    """The rows of the Istio 1.12 table tests/data/NAME about one chart."""
    return [row for row in data_table(name) if row["chart"] == chart]
