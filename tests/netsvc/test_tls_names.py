# A client certificate's subject as an RFC 4514 string (what the ASGI TLS
# extension's client_cert_name and the logs show): real certificates made with
# `cryptography` (trustme's own dependency), decoded by OpenSSL as a handshake
# decodes them, and compared with cryptography's RFC 4514 writer: every
# attribute RFC 4514 names, and the characters it says to escape.
from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netsvc import PeerCertificate


def certificate(tmp_path: Path, name: x509.Name) -> PeerCertificate:
    """A self-signed certificate for `name`, decoded as ssl's getpeercert()."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    subject = tuple(pair for rdn in decoded["subject"] for pair in rdn)
    return PeerCertificate(der=cert.public_bytes(serialization.Encoding.DER), subject=subject)


NAMES = [
    [(NameOID.COMMON_NAME, "alice")],
    [
        (NameOID.COUNTRY_NAME, "FR"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Ile-de-France"),
        (NameOID.LOCALITY_NAME, "Paris"),
        (NameOID.ORGANIZATION_NAME, "Example"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        (NameOID.COMMON_NAME, "alice"),
    ],
    [(NameOID.DOMAIN_COMPONENT, "org"), (NameOID.DOMAIN_COMPONENT, "example")],
    [(NameOID.STREET_ADDRESS, "1 Main Street"), (NameOID.USER_ID, "alice")],
    [(NameOID.ORGANIZATION_NAME, 'Example, Inc. <"x"> a+b;c=d \\ e')],  # each escaped
    [(NameOID.COMMON_NAME, "#hash")],  # a leading # is escaped
    [(NameOID.COMMON_NAME, " lead")],  # a leading space
    [(NameOID.COMMON_NAME, "trail ")],  # a trailing space
    [(NameOID.COMMON_NAME, "in # the middle")],  # not escaped there
]


# ids of letters, digits and a few signs only: mutmut runs tests by id on a command line
@pytest.mark.parametrize(
    "attributes", NAMES, ids=lambda a: re.sub(r"[^\w.,+=-]+", "_", ",".join(v for _, v in a))[:30]
)
def test_rfc4514_name_is_what_cryptography_writes(
    tmp_path: Path, attributes: list[tuple[x509.ObjectIdentifier, str]]
) -> None:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    assert certificate(tmp_path, name).rfc4514_name() == name.rfc4514_string()


def test_attributes_without_a_short_name_keep_openssl_s_names(tmp_path: Path) -> None:
    # RFC 4514 has no short name for these; cryptography writes the dotted
    # OID and a hex value, OpenSSL and the ASGI servers "emailAddress=..."
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "alice@example.org"),
            x509.NameAttribute(NameOID.GIVEN_NAME, "Alice"),
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
        ]
    )
    assert (
        certificate(tmp_path, name).rfc4514_name()
        == "CN=alice,givenName=Alice,emailAddress=alice@example.org"
    )


def test_a_subject_with_two_common_names_has_none(tmp_path: Path) -> None:
    # which one a login by certificate should believe would be a guess
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
        ]
    )
    assert certificate(tmp_path, name).common_name is None
    one = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    assert certificate(tmp_path, one).common_name == "alice"
