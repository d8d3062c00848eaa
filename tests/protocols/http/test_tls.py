# HTTPS with client certificates, from outside with curl: an ASGI app sees
# the verified certificate in its scope's TLS extension (client_cert_name,
# client_cert_chain, tls_version), a native route as request.peer_certificate;
# a client without a certificate is served when they are optional.
from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import trustme

from tests.serveprocess import Certificates, ServeProcess

CERTS = ["--client-certs", "optional"]


def curl(url: str, server: Certificates, client: trustme.LeafCert | None) -> str:
    command = ["curl", "--silent", "--show-error", "--cacert", str(server.cafile), url]
    if client is not None:
        folder = server.certfile.parent
        client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
        client.private_key_pem.write_to_path(str(folder / "client-key.pem"))
        command += ["--cert", str(folder / "client.pem"), "--key", str(folder / "client-key.pem")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout


def serve(app: str, server: Certificates) -> ServeProcess:
    args = ["--protocol", "http", "--port", "0", "--app", app, *server.args]
    return ServeProcess([*args, "--ca-certs", str(server.cafile), *CERTS])


def test_an_asgi_app_sees_the_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = Certificates.issue(ca, tmp_path)
    alice = ca.issue_cert("alice@example.org", common_name="alice")
    with serve("tests.protocols.http.apps:tls_scope", server) as process:
        url = process.urls[0] + "/"
        assert url.startswith("https://")
        tls = json.loads(curl(url, server, alice))
        assert tls["client_cert_name"].startswith("CN=alice,OU=Testing cert #")
        (chain,) = tls["client_cert_chain"]
        assert ssl.PEM_cert_to_DER_cert(chain) == ssl.PEM_cert_to_DER_cert(
            alice.cert_chain_pems[0].bytes().decode()
        )
        assert tls["tls_version"] in (0x0303, 0x0304)
        assert tls["client_cert_error"] is None
        anonymous = json.loads(curl(url, server, None))
        assert anonymous["client_cert_name"] is None
        assert anonymous["client_cert_chain"] == []


def test_a_native_route_sees_the_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = Certificates.issue(ca, tmp_path)
    alice = ca.issue_cert("alice@example.org", common_name="alice")
    with serve("tests.protocols.http.apps:native", server) as process:
        url = process.urls[0] + "/whoami"
        assert json.loads(curl(url, server, alice)) == {"common_name": "alice"}
        assert json.loads(curl(url, server, None)) == {"common_name": None}
