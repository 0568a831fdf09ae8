"""`meshcharts serve` answers only the repository's files: every bad request is a 404 that discloses nothing.

The server runs on 127.0.0.1 over a scratch copy of the published repository, with a secret beside it
(outside the served root) and files inside the root that the index does not name. Requests go through
http.client so the path reaches the server exactly as written, `..` and percent-escapes included.
"""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshcharts import index, repo
from tests import REPO

SECRET = "meshcharts-serve-test-secret-7f3a"


@dataclass
class Served:
    root: Path
    outside: Path
    server: repo.Server

    def get(self, path: str) -> tuple[int, bytes]:
        host, port = self.server.httpd.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("serve")
    root = base / "repository"
    root.mkdir()
    for name in repo.SERVED_TOP_LEVEL:
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "packages", root / "packages")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    # Inside the root but not the repository's to serve.
    (root / "pyproject.toml").write_text(SECRET)
    (root / "packages" / "notes.txt").write_text(SECRET)
    (root / "packages" / "unindexed-9.9.9.tgz").write_text(SECRET)
    # A symlink whose name the index does not know, and one it does (an indexed archive's .prov).
    (root / "packages" / "leak.tgz").symlink_to(outside / "secret.txt")
    prov = root / f"{_first_archive(root)}.prov"
    prov.unlink()
    prov.symlink_to(outside / "secret.txt")
    server = repo.serve(root, host="127.0.0.1", port=0, background=True)
    try:
        yield Served(root, outside, server)
    finally:
        server.stop()


def _first_archive(root: Path) -> str:
    entries = index.load(root / "index.yaml")["entries"]
    return str(sorted(url for versions in entries.values() for e in versions for url in e["urls"])[0])


def test_the_index_and_every_archive_it_names_are_served_byte_for_byte(served: Served) -> None:
    status, body = served.get("/index.yaml")
    assert (status, body) == (200, (served.root / "index.yaml").read_bytes())
    entries = index.load(served.root / "index.yaml")["entries"]
    urls = [url for versions in entries.values() for e in versions for url in e["urls"]]
    assert urls
    for url in urls:
        assert served.get(f"/{url}") == (200, (served.root / url).read_bytes()), url


def test_a_percent_encoded_name_of_a_served_file_is_decoded_like_any_http_server_does(served: Served) -> None:
    url = _first_archive(served.root)
    encoded = "/" + url.replace(".", "%2E").replace("/", "%2F")
    assert served.get(encoded) == (200, (served.root / url).read_bytes())


BAD_REQUESTS = {
    "dot-dot out of the root": "/../outside/secret.txt",
    "dot-dot from packages to the root": "/packages/../pyproject.toml",
    "dot-dot from packages out of the root": "/packages/../../outside/secret.txt",
    "dot-dot after a served name": "/index.yaml/../pyproject.toml",
    "encoded dot-dot out of the root": "/%2e%2e/outside/secret.txt",
    "encoded dot-dot upper case": "/packages/%2E%2E/pyproject.toml",
    "encoded dot-dot and slash": "/packages%2f%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    "double-encoded dot-dot": "/packages/%252e%252e/pyproject.toml",
    "absolute path": "//" + "etc/passwd",
    "symlink out of the repository, named by no index entry": "/packages/leak.tgz",
    "symlink out of the repository, in place of an indexed .prov": "",  # filled in by the test
    "file in packages/ the index does not name": "/packages/notes.txt",
    "archive the index does not name": "/packages/unindexed-9.9.9.tgz",
    "file at the root that is not the repository's": "/pyproject.toml",
    "directory listing of packages/": "/packages/",
    "directory listing of the root": "/",
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_request_is_404_and_discloses_nothing_outside_the_repository(served: Served, case: str) -> None:
    path = BAD_REQUESTS[case] or f"/{_first_archive(served.root)}.prov"
    status, body = served.get(path)
    assert status == 404, (path, status, body[:200])
    text = body.decode(errors="replace")
    assert SECRET not in text
    assert str(served.root) not in text and str(served.outside) not in text
    assert "notes.txt" not in text and "unindexed" not in text, "a 404 must not list the directory"


def test_the_server_keeps_what_it_answered_for_a_failing_tests_report(served: Served) -> None:
    """`Server.requests` (shown under a failing test that used the served repository) names each request's status
    and, for a file sent, which one and its size; a refused request names no file."""
    size = (served.root / "index.yaml").stat().st_size
    served.get("/index.yaml")
    served.get("/pyproject.toml")
    last = served.server.requests[-2:]
    assert last[0].endswith(f"'GET /index.yaml HTTP/1.1' -> 200 index.yaml ({size} bytes)"), last
    assert last[1].endswith("'GET /pyproject.toml HTTP/1.1' -> 404"), last
