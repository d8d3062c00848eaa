# TLS for every listener: the server's SSLContext made from certificate files
# (TLS 1.2 at least; client certificates none, optional or required, checked
# against a CA bundle), made anew from the same files on SIGHUP so a renewed
# certificate needs no restart, and the verified client certificate as a
# plugin sees it (PeerCertificate). No sockets here: the server wraps them.
from __future__ import annotations

import dataclasses
import ssl
from typing import Any

__all__ = ["CLIENT_CERTS", "PeerCertificate", "TlsConfig", "TlsError"]

# --client-certs: what a TLS listener asks of its clients
CLIENT_CERTS = {
    "none": ssl.CERT_NONE,  # not asked for
    "optional": ssl.CERT_OPTIONAL,  # asked for; one that is sent must verify
    "required": ssl.CERT_REQUIRED,  # a client without a verified certificate is refused
}


class TlsError(ValueError):
    """Certificate files that cannot be used; says which and why."""


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """Where the server's certificate and the client CA bundle are."""

    certfile: str
    keyfile: str | None = None
    ca_certs: str | None = None  # PEM bundle of the CAs client certificates must chain to
    client_certs: str = "none"  # a key of CLIENT_CERTS

    def __post_init__(self) -> None:
        if self.client_certs not in CLIENT_CERTS:
            raise TlsError(
                f"client certificates {self.client_certs!r}: choose one of "
                + ", ".join(CLIENT_CERTS)
            )
        if self.client_certs != "none" and self.ca_certs is None:
            raise TlsError(
                f"client certificates {self.client_certs}: give the CA bundle they are "
                "checked against (--ca-certs)"
            )

    def context(self) -> ssl.SSLContext:
        """A new server-side context from the files as they are now; raises
        TlsError. To reload (SIGHUP), make a new one and hand it to
        Server.replace_ssl_context(): a failed load into a context in use can
        leave it half-changed (a new certificate without its key)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load certificate {self.certfile}: {exc}") from None
        if self.ca_certs is not None:
            try:
                context.load_verify_locations(cafile=self.ca_certs)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(f"cannot load CA certificates {self.ca_certs}: {exc}") from None
        context.verify_mode = CLIENT_CERTS[self.client_certs]
        return context


@dataclasses.dataclass(frozen=True)
class PeerCertificate:
    """A client's certificate, verified against the listener's CA bundle."""

    der: bytes  # as sent (DER)
    subject: tuple[tuple[str, str], ...]  # (field, value), most significant first
    alt_names: tuple[tuple[str, str], ...] = ()  # subjectAltName: ("email", "a@b"), ("DNS", ...)

    @classmethod
    def of(cls, ssl_object: Any) -> PeerCertificate | None:
        """The verified certificate of a handshake's peer (an SSLObject or
        trio.SSLStream), or None if it sent none."""
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return None
        decoded = ssl_object.getpeercert() or {}
        subject = tuple(pair for rdn in decoded.get("subject", ()) for pair in rdn)
        alt_names = tuple(tuple(pair) for pair in decoded.get("subjectAltName", ()))
        return cls(der=der, subject=subject, alt_names=alt_names)

    @property
    def common_name(self) -> str | None:
        """The subject's CN; None if it has none, or more than one (which to
        believe is then a guess, and a login by certificate must not guess)."""
        names = [value for field, value in self.subject if field == "commonName"]
        return names[0] if len(names) == 1 else None

    @property
    def emails(self) -> list[str]:
        """The subjectAltName email addresses (rfc822Name)."""
        return [value for kind, value in self.alt_names if kind == "email"]

    @property
    def pem(self) -> str:
        return ssl.DER_cert_to_PEM_cert(self.der)

    def rfc4514_name(self) -> str:
        """The subject as an RFC 4514 string, least significant first (as
        the ASGI TLS extension's client_cert_name): "CN=alice,O=Example"."""
        # RFC 4514's table of short names; the others keep OpenSSL's names
        # ("emailAddress=..."), as OpenSSL and the ASGI servers write them
        short = {
            "commonName": "CN",
            "localityName": "L",
            "stateOrProvinceName": "ST",
            "organizationName": "O",
            "organizationalUnitName": "OU",
            "countryName": "C",
            "streetAddress": "STREET",
            "domainComponent": "DC",
            "userId": "UID",
        }
        parts = [
            f"{short.get(field, field)}={_escape_rfc4514(value)}"
            for field, value in reversed(self.subject)
        ]
        return ",".join(parts)


def _escape_rfc4514(value: str) -> str:
    """RFC 4514 2.4's escapes (as cryptography's writer: "=" is left alone)."""
    escaped = "".join("\\" + ch if ch in ',+"\\<>;' else ch for ch in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped
