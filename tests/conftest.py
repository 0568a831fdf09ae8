"""Shared helpers for every test layer: the repository layout under test and the facts in tests/data."""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshcharts import gnupg, repo
from meshcharts.paths import Layout
from tests import REPO

# The cluster layers' shared installs, registered once for every layer (see that module).
pytest_plugins = ["tests.cluster_fixtures"]

# Istio 1.12 facts the tests compare against, copied into the clone (tests/data/README.md says from where).
DATA = REPO / "tests" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("meshcharts").addoption(
        "--matrix",
        choices=("full", "each-choice"),
        default="full",
        help="upgrade paths to run: every case (full), or of each upgrade test a subset in which each chart's "
        "lines, start versions and values scenarios and each upgrade mode appear at least once (each-choice)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "any_kubernetes(why): what the test checks does not depend on the session cluster's Kubernetes version "
        "(no cluster, one of its own at the default version, or nothing that API servers of the supported releases "
        "do differently: `why` says which); .ci/test runs it on the first Kubernetes only",
    )


def data_table(name: str) -> list[dict[str, str]]:
    """The rows of tests/data/NAME, a tab-separated table with a header row."""
    with (DATA / name).open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout(REPO)


@pytest.fixture(scope="session")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """Makes new GnuPG homes (mode 0700) for a test's own keys; the gpg-agent that gpg starts for any of them
    is stopped, and waited for by pid, when the test run ends: nothing a run starts outlives it."""
    homes: list[Path] = []

    def new(name: str) -> Path:
        home = tmp_path_factory.mktemp(name)
        home.chmod(0o700)
        homes.append(home)
        return home

    yield new
    for home in homes:
        gnupg.stop_agent(home)


@pytest.fixture(scope="session")
def chart_repo_server() -> Iterator[repo.Server]:
    """The repository served over HTTP on loopback from a thread of this test process."""
    server = repo.serve(REPO, port=0, background=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chart_repo(chart_repo_server: repo.Server) -> str:
    """The served repository's URL, as `helm repo add` users see it."""
    return chart_repo_server.url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test that used the served repository gets the server's last requests in its report (what each
    request got: status and file), so a failed `helm repo add` says what was answered."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "chart_repo_server" in funcargs:
        server: repo.Server = funcargs["chart_repo_server"]
        report.sections.append((f"{server.url} answered", "\n".join(server.requests) or "no request"))
