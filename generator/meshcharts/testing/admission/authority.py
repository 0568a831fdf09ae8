"""The recorder's throwaway CA: a fresh one per recorder, signing a serving certificate per server name."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CERT_DAYS = 7


@dataclass(frozen=True)
class Credentials:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


class Authority:
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

    def issue(self, host: str) -> Credentials:
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
        return Credentials(
            ca_pem=self.ca_pem,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


def _server_context(credentials: Credentials) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads certificates only from files: a private directory that is gone once they are loaded.
    with tempfile.TemporaryDirectory(prefix="meshcharts-admission-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(credentials.cert_pem)
        key_file.write_bytes(credentials.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


# The attribute the SNI callback sets on each TLS socket it serves; `server_name` reads it.
_SERVER_NAME = "meshcharts_server_name"


def server_name(sock: Any) -> str:
    """The server name the client of `sock` asked for by SNI, "" when it asked for none."""
    return str(getattr(sock, _SERVER_NAME, ""))


class Identities:
    """TLS contexts by server name: the recorder's IP by default, and on demand the Service name a client
    asks for by SNI (`istiod.istio-system.svc`), each signed by the recorder's one CA."""

    def __init__(self, authority: Authority, host: str) -> None:
        self.authority = authority
        self._lock = threading.Lock()
        self._by_name: dict[str, ssl.SSLContext] = {}
        self.default = _server_context(authority.issue(host))
        self.default.sni_callback = self._select

    def _select(self, sock: Any, name: str | None, _: ssl.SSLContext) -> None:
        setattr(sock, _SERVER_NAME, name or "")
        if not name:
            return
        with self._lock:
            context = self._by_name.get(name)
            if context is None:
                context = _server_context(self.authority.issue(name))
                self._by_name[name] = context
        sock.context = context
