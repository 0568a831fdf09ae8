"""A recording admission webhook server: it stands in for istiod's webhook endpoints in tests.

Pods do not run on the local cluster, so istiod cannot answer `/inject` or `/validate`. The API
server runs on this host and can call a webhook URL on loopback, so tests point the charts'
webhooks at an `AdmissionRecorder` and assert which objects the real API server sends to which
path. It allows everything unless a test adds a deny rule. It is not istiod and does not imitate its
answers: the one change it makes is to mark a Pod it is asked to inject with INJECTED_BY (where it was
asked), which the local cluster's kwok stage (data/kwok/uninjected-pod-stage.yaml) requires before a pod
with an `image: auto` container may become Ready, as an injected pod's image would be pullable.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshcharts.egress import Egress
from meshcharts.errors import MeshchartsError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

HOST = "127.0.0.1"
_MAX_BODY = 16 * 1024 * 1024
_CERT_DAYS = 7
_CONNECTION_TIMEOUT = 10.0


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


def where(
    *,
    path: str | None = None,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    operation: str | None = None,
    host: str | None = None,
) -> Predicate:
    """A predicate matching requests on every given field (None matches anything)."""
    wanted = {"path": path, "kind": kind, "namespace": namespace, "name": name, "operation": operation, "host": host}
    given = {key: value for key, value in wanted.items() if value is not None}

    def matches(request: AdmissionRequest) -> bool:
        return all(getattr(request, key) == value for key, value in given.items())

    return matches


@dataclass(frozen=True)
class _DenyRule:
    predicate: Predicate
    message: str
    code: int


@dataclass(frozen=True)
class _Credentials:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


class _Authority:
    """A fresh CA (EC P-256, valid for a week) that signs serving certificates for an IP or a DNS name."""

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.not_before, self.not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=_CERT_DAYS)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshcharts admission recorder CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, host: str) -> _Credentials:
        """A serving certificate for `host`: an IP SAN for an address, a DNS SAN for a name (a Service's)."""
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(self.not_after)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _Credentials(
            ca_pem=self.ca_pem,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


def _server_context(credentials: _Credentials) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads certificates only from files: a private directory that is gone once they are loaded.
    with tempfile.TemporaryDirectory(prefix="meshcharts-admission-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(credentials.cert_pem)
        key_file.write_bytes(credentials.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


class _Identities:
    """TLS contexts by server name: the recorder's IP by default, and on demand the Service name a client
    asks for by SNI (`istiod.istio-system.svc`), each signed by the recorder's one CA."""

    def __init__(self, authority: _Authority, host: str) -> None:
        self.authority = authority
        self._lock = threading.Lock()
        self._by_name: dict[str, ssl.SSLContext] = {}
        self.default = _server_context(authority.issue(host))
        self.default.sni_callback = self._select

    def _select(self, sock: Any, server_name: str | None, _: ssl.SSLContext) -> None:
        sock.meshcharts_server_name = server_name or ""
        if not server_name:
            return
        with self._lock:
            context = self._by_name.get(server_name)
            if context is None:
                context = _server_context(self.authority.issue(server_name))
                self._by_name[server_name] = context
        sock.context = context


class _Server(ThreadingHTTPServer):
    """Accepts in the serving thread, does the TLS handshake in the connection's thread.

    Connection threads are not daemons, so `server_close` joins them (each is bounded by a socket timeout).
    """

    daemon_threads = False
    block_on_close = True
    recorder: AdmissionRecorder
    tls: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_CONNECTION_TIMEOUT)
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.recorder._tls_error(f"{client_address[0]}:{client_address[1]}: {err}")
            return
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
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
        host = str(getattr(self.request, "meshcharts_server_name", ""))
        response = self.server.recorder._admit(path, str(review.get("apiVersion", "")), request, host=host)
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


@dataclass(frozen=True)
class _Verdict:
    allowed: bool
    message: str = ""
    code: int = 200


# Set on each Pod the recorder was asked to inject; its value is where it was asked (SNI host and path).
INJECTED_BY = "admission.meshcharts.github.io/injected-by"


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


def _object_meta(request: Mapping[str, Any]) -> Mapping[str, Any]:
    obj = request.get("object") or request.get("oldObject") or {}
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


class AdmissionRecorder:
    """An HTTPS admission webhook endpoint on 127.0.0.1 that records every AdmissionReview and allows it.

    Use as a context manager; `url("/inject")` is what a webhook's `clientConfig.url` should be, and
    `ca_bundle` what its `caBundle` must hold (see `patch_ca_bundle`). Deny rules make it refuse
    matching objects with a message, to show that a webhook is really consulted.
    """

    def __init__(self) -> None:
        self._host = HOST
        self._authority = _Authority()
        self._identities: _Identities | None = None
        self._records: list[AdmissionRequest] = []
        self._tls_errors: list[str] = []
        self._rules: list[_DenyRule] = []
        self._changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._services: set[tuple[str, str]] = set()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free port of `host` and serve in a background thread."""
        if self._server is not None:
            raise RecorderError(f"the admission recorder already listens on {self.base_url}")
        try:
            server = _Server((self._host, 0), _Handler)
        except OSError as err:
            raise RecorderError(f"the admission recorder cannot listen on {self._host}: {err}") from err
        server.recorder = self
        self._identities = self._identities or _Identities(self._authority, self._host)
        server.tls = self._identities.default
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

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

    def requests(
        self,
        *,
        path: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        operation: str | None = None,
        host: str | None = None,
    ) -> list[AdmissionRequest]:
        """Recorded requests in arrival order, filtered on every given field."""
        matches = where(path=path, kind=kind, namespace=namespace, name=name, operation=operation, host=host)
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

    def _admit(self, path: str, api_version: str, request: Mapping[str, Any], *, host: str = "") -> _Verdict:
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
                verdict = _Verdict(True) if rule is None else _Verdict(False, rule.message, rule.code)
            except Exception as err:  # a test's predicate is at fault: refuse loudly rather than kill the thread
                verdict = _Verdict(False, f"a deny rule of the admission recorder raised {err!r}", 500)
            if not verdict.allowed:
                record = replace(record, allowed=False, message=verdict.message)
            self._records.append(record)
            self._changed.notify_all()
        return verdict

    def _tls_error(self, message: str) -> None:
        with self._changed:
            self._tls_errors.append(message)
            self._changed.notify_all()


# --- trusting the recorder: what istiod does for its own webhooks at runtime -------------------------

_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def patch_ca_bundle(api: ApiClient, kind: str, name: str, recorder: AdmissionRecorder) -> list[str]:
    """Set `caBundle` to the recorder's CA on the webhooks of `kind` `name` that reach the recorder: by a URL
    pointing at it, or by a Service it stands in for (`AdmissionRecorder.stand_in_for`).

    Returns the names of the webhooks patched; RecorderError if none reaches the recorder (the
    configuration would never reach it). Each change is guarded by a JSON patch `test` of the URL or
    Service name, so a concurrent edit of that webhook fails instead of being overwritten.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    admission = client.AdmissionregistrationV1Api(api)
    webhooks: list[tuple[str, Any]]
    try:
        if kind == "MutatingWebhookConfiguration":
            mutating = admission.read_mutating_webhook_configuration(name)
            webhooks = [(w.name, w.client_config) for w in mutating.webhooks or []]
        elif kind == "ValidatingWebhookConfiguration":
            validating = admission.read_validating_webhook_configuration(name)
            webhooks = [(w.name, w.client_config) for w in validating.webhooks or []]
        else:
            raise RecorderError(f"cannot patch caBundle of kind {kind!r}; choose one of: {', '.join(_KINDS)}")
    except ApiException as err:
        raise RecorderError(f"cannot read {kind} {name}: {err.status} {err.reason}") from err

    ops: list[dict[str, Any]] = []
    patched: list[str] = []
    services = recorder.services
    for index, (webhook, client_config) in enumerate(webhooks):
        url, service = client_config.url, client_config.service
        if url is not None and _points_at(url, recorder):
            ops.append({"op": "test", "path": f"/webhooks/{index}/clientConfig/url", "value": url})
        elif service is not None and (service.namespace, service.name) in services:
            ops.append({"op": "test", "path": f"/webhooks/{index}/clientConfig/service/name", "value": service.name})
        else:
            continue
        ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": recorder.ca_bundle})
        patched.append(webhook)
    if not patched:
        calls = [c.url or f"service {c.service.namespace}/{c.service.name}" for _, c in webhooks]
        stands_in = ", ".join(f"{ns}/{svc}" for ns, svc in sorted(services)) or "no Service"
        raise RecorderError(
            f"no webhook of {kind} {name} reaches the admission recorder ({recorder.base_url}, standing in for "
            f"{stands_in}); its webhooks call {calls}; fix: recorder.stand_in_for(egress, NAMESPACE, SERVICE), "
            "or set their clientConfig.url to recorder.url(PATH)"
        )
    try:
        if kind == "MutatingWebhookConfiguration":
            admission.patch_mutating_webhook_configuration(name, ops)
        else:
            admission.patch_validating_webhook_configuration(name, ops)
    except ApiException as err:
        raise RecorderError(f"cannot patch caBundle of {kind} {name}: {err.status} {err.reason}: {err.body}") from err
    return patched


def adopt_stale_webhooks(api: ApiClient, recorder: AdmissionRecorder) -> list[str]:
    """Re-point webhooks left by an earlier recorder (a kept cluster's earlier test run) at this one.

    A webhook whose URL is `https://127.0.0.1:PORT/...` on a port where nothing listens calls a recorder that is gone,
    with that recorder's CA in its caBundle: every object it selects would be refused, including the
    objects of the `helm upgrade` meant to repair it. Its URL moves to this recorder (same path) and its
    caBundle to this recorder's CA, each guarded by a JSON patch `test` of the old URL. Returns
    `KIND/NAME/WEBHOOK` of each webhook re-pointed.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    admission = client.AdmissionregistrationV1Api(api)
    prefix = f"https://{recorder._host}:"
    adopted: list[str] = []
    lists: tuple[tuple[str, Any, Any], ...] = (
        (
            "MutatingWebhookConfiguration",
            admission.list_mutating_webhook_configuration,
            admission.patch_mutating_webhook_configuration,
        ),
        (
            "ValidatingWebhookConfiguration",
            admission.list_validating_webhook_configuration,
            admission.patch_validating_webhook_configuration,
        ),
    )
    for kind, list_them, patch in lists:
        try:
            configurations: list[Any] = list_them().items
        except ApiException as err:
            raise RecorderError(f"cannot list {kind}s: {err.status} {err.reason}") from err
        for configuration in configurations:
            ops: list[dict[str, Any]] = []
            for index, webhook in enumerate(configuration.webhooks or []):
                url = webhook.client_config.url
                if url is None or not url.startswith(prefix) or _points_at(url, recorder):
                    continue
                rest = url[len(prefix) :]
                port = rest.split("/", 1)[0]
                if not port.isdigit() or _listening(recorder._host, int(port)):
                    continue  # another live server (another run's recorder): not ours to take
                path = rest[rest.index("/") :] if "/" in rest else ""
                ops += [
                    {"op": "test", "path": f"/webhooks/{index}/clientConfig/url", "value": url},
                    {"op": "replace", "path": f"/webhooks/{index}/clientConfig/url", "value": recorder.base_url + path},
                    {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": recorder.ca_bundle},
                ]
                adopted.append(f"{kind}/{configuration.metadata.name}/{webhook.name}")
            if ops:
                try:
                    patch(configuration.metadata.name, ops)
                except ApiException as err:
                    raise RecorderError(
                        f"cannot re-point {kind} {configuration.metadata.name}: {err.status} {err.reason}: {err.body}"
                    ) from err
    return adopted


def _listening(host: str, port: int) -> bool:
    """True when something accepts connections on loopback `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _points_at(url: str, recorder: AdmissionRecorder) -> bool:
    base = recorder.base_url
    return url == base or url.startswith(base + "/") or url.startswith(base + "?")
