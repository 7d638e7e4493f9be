"""A local certificate authority for the emulators' HTTPS endpoints.

The app trusts it only through configuration (`LOCAL_CA_BUNDLE`, passed explicitly as `connection_verify` /
`verify`), never by turning TLS verification off. trustme issues real X.509 certificates from a throw-away CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LocalCA:
    """Files of a fresh CA and one server certificate for 127.0.0.1/localhost, written to `directory`."""

    ca_bundle: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="dataverse-sync local cloud")
        server = ca.issue_cert(*SERVER_NAMES)
        ca_bundle = directory / "ca.pem"
        server_cert = directory / "server-chain.pem"
        server_key = directory / "server-key.pem"
        ca.cert_pem.write_to_path(str(ca_bundle))
        server.private_key_pem.write_to_path(str(server_key))
        with server_cert.open("wb") as out:
            for blob in server.cert_chain_pems:
                out.write(blob.bytes())
        server_key.chmod(0o600)
        return cls(ca_bundle=ca_bundle, server_cert=server_cert, server_key=server_key)
