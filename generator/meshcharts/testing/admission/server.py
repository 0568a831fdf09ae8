"""The recorder's HTTPS endpoint: it reads each AdmissionReview, asks for a verdict and answers the API server.

What to answer is not decided here: the server calls its `admit` with each request and reports failed TLS
handshakes to `tls_error`. The one change it makes to an allowed object is INJECTED_BY on a Pod created
through an `/inject` path.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from meshcharts.testing.admission.authority import server_name

_MAX_BODY = 16 * 1024 * 1024
_CONNECTION_TIMEOUT = 10.0

# Set on each Pod the recorder was asked to inject; its value is where it was asked (SNI host and path).
INJECTED_BY = "admission.meshcharts.github.io/injected-by"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str = ""
    code: int = 200


Admit = Callable[[str, str, Mapping[str, Any], str], Verdict]
"""Decides on one request: (URL path, AdmissionReview apiVersion, its `request`, SNI host) -> verdict."""


class Server(ThreadingHTTPServer):
    """Accepts in the serving thread, does the TLS handshake in the connection's thread.

    Connection threads are not daemons, so `server_close` joins them (each is bounded by a socket timeout).
    """

    daemon_threads = False
    block_on_close = True
    tls: ssl.SSLContext
    admit: Admit
    tls_error: Callable[[str], None]

    def __init__(
        self, address: tuple[str, int], tls: ssl.SSLContext, admit: Admit, tls_error: Callable[[str], None]
    ) -> None:
        super().__init__(address, _Handler)
        self.tls, self.admit, self.tls_error = tls, admit, tls_error

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_CONNECTION_TIMEOUT)
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.tls_error(f"{client_address[0]}:{client_address[1]}: {err}")
            return
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()


class _Handler(BaseHTTPRequestHandler):
    server: Server
    # HTTP/1.0: one request per connection, so stopping never waits on an idle keep-alive connection.
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY:
            self._reply(400, {"error": f"expected a JSON AdmissionReview body, got Content-Length {length}"})
            return
        try:
            review = json.loads(self.rfile.read(length))
            request = review["request"]
            uid = str(request["uid"])
        except (ValueError, KeyError, TypeError) as err:
            self._reply(400, {"error": f"not an AdmissionReview: {err}"})
            return
        path = self.path.split("?", 1)[0]
        host = server_name(self.request)
        response = self.server.admit(path, str(review.get("apiVersion", "")), request, host)
        answer: dict[str, Any] = {"uid": uid, "allowed": response.allowed}
        if not response.allowed:
            answer["status"] = {"code": response.code, "message": response.message}
        elif path.startswith("/inject") and request.get("operation") == "CREATE":
            patch = _mark_injected(request, f"{host}{path}" if host else path)
            if patch:
                answer["patchType"] = "JSONPatch"
                answer["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        self._reply(
            200,
            {
                "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                "kind": "AdmissionReview",
                "response": answer,
            },
        )

    def _reply(self, code: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _mark_injected(request: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The JSON patch adding INJECTED_BY to a Pod being created (none for other kinds)."""
    if (request.get("kind") or {}).get("kind") != "Pod":
        return []
    obj = request.get("object") or {}
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return []
    if isinstance(meta.get("annotations"), Mapping):
        return [{"op": "add", "path": "/metadata/annotations/" + INJECTED_BY.replace("/", "~1"), "value": where}]
    return [{"op": "add", "path": "/metadata/annotations", "value": {INJECTED_BY: where}}]
