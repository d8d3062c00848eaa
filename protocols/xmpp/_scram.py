# SCRAM (RFC 5802, RFC 7677), the server's side, sans-IO: the keys an account
# stores instead of its password (salt, iterations, StoredKey, ServerKey per
# hash), a PLAIN password checked against them, and one SCRAM-SHA-1 or
# SCRAM-SHA-256 exchange as a small state machine of messages in and out.
# Channel binding (-PLUS) is not offered.
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets

__all__ = [
    "HASHES",
    "MECHANISMS",
    "ScramCredentials",
    "ScramError",
    "ScramServer",
    "check_password",
    "derive",
]

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}
MECHANISMS = tuple(HASHES)  # strongest first, the order they are offered in
ITERATIONS = 4096  # RFC 7677's minimum, as Prosody's default


class ScramError(ValueError):
    """The exchange failed; `condition` is the SASL failure to answer with."""

    def __init__(self, condition: str, detail: str) -> None:
        super().__init__(detail)
        self.condition = condition


@dataclasses.dataclass(frozen=True)
class ScramCredentials:
    """What is stored for one hash: enough to check a proof, not to make one."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def derive(password: str, hash_name: str, salt: bytes, iterations: int) -> ScramCredentials:
    """The credentials of `password` (RFC 5802 section 3)."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    return ScramCredentials(
        salt, iterations, hashlib.new(hash_name, client_key).digest(), server_key
    )


def check_password(password: str, hash_name: str, credentials: ScramCredentials) -> bool:
    """PLAIN against the stored keys: derive them again and compare."""
    derived = derive(password, hash_name, credentials.salt, credentials.iterations)
    return hmac.compare_digest(derived.stored_key, credentials.stored_key)


def _attributes(message: str) -> list[tuple[str, str]]:
    pairs = []
    for part in message.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1 or not name.isalpha():
            raise ScramError("malformed-request", f"not a SCRAM attribute: {part!r}")
        pairs.append((name, value))
    return pairs


def _username(value: str) -> str:
    """saslname (RFC 5802 5.1): "=2C" is a comma and "=3D" an equals sign."""
    rest = value.replace("=2C", "").replace("=3D", "")
    if "=" in rest:
        raise ScramError("malformed-request", "a bad escape in the user name")
    return value.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """One exchange. `first(client_first)` returns the user name it names;
    the caller looks up that user's credentials (None if there is no such
    user: the exchange then goes on with made-up ones and fails at the end,
    so that nobody learns which names exist) and calls `challenge()`, then
    `final(client_final)`, which returns the server's last message or raises
    ScramError("not-authorized")."""

    def __init__(self, mechanism: str, *, nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self.hash_name = HASHES[mechanism]
        self._server_nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._gs2_header = ""
        self._client_first_bare = ""
        self._nonce = ""
        self._server_first = ""
        self._credentials: ScramCredentials | None = None
        self._real = False
        self.authzid = ""
        self.user = ""

    def first(self, client_first: bytes) -> str:
        try:
            text = client_first.decode()
        except UnicodeDecodeError:
            raise ScramError("malformed-request", "the message is not UTF-8") from None
        cbind, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not (sep and sep2):
            raise ScramError("malformed-request", "no GS2 header")
        if cbind.startswith("p="):
            raise ScramError("malformed-request", "channel binding is not offered here")
        if cbind not in ("n", "y"):
            raise ScramError("malformed-request", f"bad channel binding flag {cbind!r}")
        if authzid and not authzid.startswith("a="):
            raise ScramError("malformed-request", "bad authorization identity")
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r":
            if attributes and attributes[0][0] == "m":  # mandatory extensions: none known
                raise ScramError("malformed-request", "unknown mandatory extension")
            raise ScramError("malformed-request", "expected n=user,r=nonce")
        self.user = _username(attributes[0][1])
        client_nonce = attributes[1][1]
        if not client_nonce or not client_nonce.isprintable() or "," in client_nonce:
            raise ScramError("malformed-request", "bad client nonce")
        self.authzid = _username(authzid[2:]) if authzid else ""
        self._gs2_header = f"{cbind},{authzid},"
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        return self.user

    def challenge(self, credentials: ScramCredentials | None, *, secret: bytes) -> bytes:
        """server-first-message. Without credentials (no such user), a salt
        made from `secret` and the name, the same each time it is asked."""
        self._real = credentials is not None
        if credentials is None:
            salt = hmac.digest(secret, self.user.encode(), "sha256")[:16]
            credentials = ScramCredentials(salt, ITERATIONS, secrets.token_bytes(32), b"")
        self._credentials = credentials
        encoded_salt = base64.b64encode(credentials.salt).decode()
        self._server_first = f"r={self._nonce},s={encoded_salt},i={credentials.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        assert self._credentials is not None, "challenge() first"
        try:
            text = client_final.decode()
        except UnicodeDecodeError:
            raise ScramError("malformed-request", "the message is not UTF-8") from None
        without_proof, sep, proof_part = text.rpartition(",p=")
        if not sep:
            raise ScramError("malformed-request", "no proof")
        attributes = dict(_attributes(without_proof))
        expected_binding = base64.b64encode(self._gs2_header.encode()).decode()
        if attributes.get("c") != expected_binding:
            raise ScramError("not-authorized", "channel binding does not match")
        if attributes.get("r") != self._nonce:
            raise ScramError("not-authorized", "the nonce does not match")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            raise ScramError("malformed-request", "the proof is not base64") from None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        credentials = self._credentials
        signature = hmac.digest(credentials.stored_key, auth_message, self.hash_name)
        if len(proof) != len(signature):
            raise ScramError("not-authorized", "wrong proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        stored_key = hashlib.new(self.hash_name, client_key).digest()
        if not (hmac.compare_digest(stored_key, credentials.stored_key) and self._real):
            raise ScramError("not-authorized", "wrong proof")
        server_signature = hmac.digest(credentials.server_key, auth_message, self.hash_name)
        return b"v=" + base64.b64encode(server_signature)
