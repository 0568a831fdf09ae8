"""What tests use: the recorder, the requests it recorded, predicates over them, deny rules and waits."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack

from meshcharts.errors import MeshchartsError
from meshcharts.testing.admission.authority import Authority, Identities
from meshcharts.testing.admission.server import Server, Verdict
from meshcharts.testing.registry import StartStop

if TYPE_CHECKING:
    from meshcharts.cluster.local.egress import Egress

HOST = "127.0.0.1"


class RecorderError(MeshchartsError):
    """The recorder could not start, a wait ran out, or a webhook configuration does not point at it."""


@dataclass(frozen=True)
class AdmissionRequest:
    """One AdmissionReview the API server sent, as recorded before it was answered."""

    path: str
    api_version: str
    uid: str
    operation: str
    group: str
    version: str
    kind: str
    resource: str
    namespace: str
    name: str
    generate_name: str
    labels: Mapping[str, str]
    dry_run: bool
    user: str
    allowed: bool
    message: str
    obj: Mapping[str, Any] = field(repr=False)
    host: str = ""
    """The server name the API server asked for by SNI: `istiod.istio-system.svc` for a Service webhook."""

    def describe(self) -> str:
        """One line for failure messages: `istiod.istio-system.svc/inject CREATE Pod ns/name allowed`."""
        who = f"{self.namespace}/{self.name or self.generate_name + '*'}" if self.namespace else self.name
        verdict = "allowed" if self.allowed else f"denied ({self.message})"
        dry = " dryRun" if self.dry_run else ""
        return f"{self.host}{self.path} {self.operation} {self.kind} {who}{dry} {verdict}"


Predicate = Callable[[AdmissionRequest], bool]


class RequestFields(TypedDict, total=False):
    """The fields of an AdmissionRequest that `where` and `AdmissionRecorder.requests` match on."""

    path: str
    kind: str
    namespace: str
    name: str
    operation: str
    host: str


def where(**fields: Unpack[RequestFields]) -> Predicate:
    """A predicate matching requests on every given field: path, kind, namespace, name, operation, host (a field
    not given, or given as None, matches anything)."""
    given = {key: value for key, value in fields.items() if value is not None}

    def matches(request: AdmissionRequest) -> bool:
        return all(getattr(request, key) == value for key, value in given.items())

    return matches


@dataclass(frozen=True)
class _DenyRule:
    predicate: Predicate
    message: str
    code: int


def _object_meta(request: Mapping[str, Any]) -> Mapping[str, Any]:
    obj = request.get("object") or request.get("oldObject") or {}
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


class AdmissionRecorder(StartStop):
    """An HTTPS admission webhook endpoint on 127.0.0.1 that records every AdmissionReview and allows it.

    Use as a context manager; `url("/inject")` is what a webhook's `clientConfig.url` should be, and
    `ca_bundle` what its `caBundle` must hold (see `patch_ca_bundle`). Deny rules make it refuse
    matching objects with a message, to show that a webhook is really consulted.
    """

    def __init__(self) -> None:
        self._host = HOST
        self._authority = Authority()
        self._identities: Identities | None = None
        self._records: list[AdmissionRequest] = []
        self._tls_errors: list[str] = []
        self._rules: list[_DenyRule] = []
        self._changed = threading.Condition()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._services: set[tuple[str, str]] = set()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free port of `host` and serve in a background thread."""
        if self._server is not None:
            raise RecorderError(f"the admission recorder already listens on {self.base_url}")
        self._identities = self._identities or Identities(self._authority, self._host)
        try:
            server = Server((self._host, 0), self._identities.default, self._admit, self._tls_error)
        except OSError as err:
            raise RecorderError(f"the admission recorder cannot listen on {self._host}: {err}") from err
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"admission-recorder-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and join every thread it started."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()

    # --- where it is and whom to trust ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RecorderError("the admission recorder is not started; use it as a context manager or call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self.port}"

    def url(self, path: str) -> str:
        """The webhook URL for `path`, e.g. `url("/inject")` -> `https://127.0.0.1:PORT/inject`."""
        if not path.startswith("/"):
            raise RecorderError(f"webhook path {path!r} must start with '/'")
        return self.base_url + path

    @property
    def ca_pem(self) -> bytes:
        """The PEM of the CA that signed the serving certificate."""
        return self._authority.ca_pem

    @property
    def ca_bundle(self) -> str:
        """`ca_pem` base64-encoded, as a webhook's `clientConfig.caBundle` holds it."""
        return base64.b64encode(self._authority.ca_pem).decode()

    # --- answering a Service's webhooks -------------------------------------------------------------

    def stand_in_for(self, egress: Egress, namespace: str, name: str, *, port: int = 443) -> None:
        """Answer the webhooks of Service `namespace/name` (as istiod answers its own): the local cluster's
        egress proxy sends the API server's connections for that Service port here, and `patch_ca_bundle`
        then trusts this recorder on the webhooks that call the Service. No URL override is needed."""
        egress.route(namespace, name, port, f"{self._host}:{self.port}")
        with self._changed:
            self._services.add((namespace, name))

    @property
    def services(self) -> frozenset[tuple[str, str]]:
        """The Services (namespace, name) this recorder stands in for."""
        with self._changed:
            return frozenset(self._services)

    # --- what tests configure ------------------------------------------------------------------------

    def deny(self, predicate: Predicate, message: str, *, code: int = 403) -> None:
        """Refuse requests matching `predicate` with `message` from now on (the first matching rule wins)."""
        with self._changed:
            self._rules.append(_DenyRule(predicate, message, code))

    def allow_all(self) -> None:
        """Drop every deny rule."""
        with self._changed:
            self._rules.clear()

    def clear(self) -> None:
        """Forget what was recorded so far (the deny rules stay)."""
        with self._changed:
            self._records.clear()
            self._tls_errors.clear()

    # --- what tests read -----------------------------------------------------------------------------

    def requests(self, **fields: Unpack[RequestFields]) -> list[AdmissionRequest]:
        """Recorded requests in arrival order, filtered on every given field (as `where` matches them)."""
        matches = where(**fields)
        with self._changed:
            return [r for r in self._records if matches(r)]

    @property
    def tls_errors(self) -> list[str]:
        """Failed TLS handshakes, e.g. an API server that does not trust the CA (no caBundle yet)."""
        with self._changed:
            return list(self._tls_errors)

    def wait_for(self, predicate: Predicate, *, timeout: float, condition: str) -> AdmissionRequest:
        """The first recorded request matching `predicate`, waiting up to `timeout` seconds of wall clock.

        On timeout, RecorderError names `condition` and lists what was recorded instead.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for record in self._records:
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RecorderError(self._timeout_message(condition, timeout))
                self._changed.wait(remaining)

    def _timeout_message(self, condition: str, timeout: float) -> str:
        seen = "\n".join(f"  {r.describe()}" for r in self._records[-20:]) or "  (nothing)"
        errors = "".join(f"\n  TLS handshake failed: {e}" for e in self._tls_errors[-5:])
        return (
            f"timed out after {timeout:g}s waiting for: {condition}\n"
            f"the admission recorder at {self.base_url} received {len(self._records)} request(s); last ones:\n"
            f"{seen}{errors}"
        )

    # --- called by the server threads ----------------------------------------------------------------

    def _admit(self, path: str, api_version: str, request: Mapping[str, Any], host: str) -> Verdict:
        meta = _object_meta(request)
        kind = request.get("kind") or {}
        user = request.get("userInfo") or {}
        record = AdmissionRequest(
            path=path,
            api_version=api_version,
            uid=str(request.get("uid", "")),
            operation=str(request.get("operation", "")),
            group=str(kind.get("group", "")),
            version=str(kind.get("version", "")),
            kind=str(kind.get("kind", "")),
            resource=str((request.get("resource") or {}).get("resource", "")),
            namespace=str(request.get("namespace") or meta.get("namespace") or ""),
            name=str(request.get("name") or meta.get("name") or ""),
            generate_name=str(meta.get("generateName") or ""),
            labels=dict(meta.get("labels") or {}),
            dry_run=bool(request.get("dryRun", False)),
            user=str(user.get("username", "")),
            allowed=True,
            message="",
            obj=dict(request.get("object") or request.get("oldObject") or {}),
            host=host,
        )
        with self._changed:
            try:
                rule = next((r for r in self._rules if r.predicate(record)), None)
                verdict = Verdict(True) if rule is None else Verdict(False, rule.message, rule.code)
            except Exception as err:  # a test's predicate is at fault: refuse loudly rather than kill the thread
                verdict = Verdict(False, f"a deny rule of the admission recorder raised {err!r}", 500)
            if not verdict.allowed:
                record = replace(record, allowed=False, message=verdict.message)
            self._records.append(record)
            self._changed.notify_all()
        return verdict

    def _tls_error(self, message: str) -> None:
        with self._changed:
            self._tls_errors.append(message)
            self._changed.notify_all()
