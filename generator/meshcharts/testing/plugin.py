"""The meshcharts pytest plugin (entry point `pytest11: meshcharts`).

Cluster fixtures, waits and failure diagnostics land here with the test harness; until then the
module exists so pytest can load the entry point declared in pyproject.toml.
"""
