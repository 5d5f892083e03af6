"""Authentication and TLS for the local broker: SCRAM users, a throwaway CA and server
certificate, and the listener properties that use them.

The client listener becomes ``SASL_PLAINTEXT`` (SCRAM users), ``SSL`` (TLS) or ``SASL_SSL``
(both); the broker's own listeners (inter-broker and controller) stay PLAINTEXT on loopback
ports of their own. SCRAM users are written into the KRaft metadata when the run directory is
formatted, as salted hashes computed here, so no password is ever on a command line.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from streams.errors import BrokerError, ToolMissingError

__all__ = ["BrokerSecurity", "SCRAM_ITERATIONS"]

#: PBKDF2 rounds of the stored SCRAM credentials (Kafka accepts 4096 and more).
SCRAM_ITERATIONS = 8192
_SCRAM_HASHES = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}
_USERNAME = re.compile(r"[A-Za-z0-9._-]+")
_CERT_DAYS = 825


@dataclass(frozen=True)
class BrokerSecurity:
    """How the local broker's client listener authenticates and encrypts.

    ``scram_users`` maps user names to passwords (each gets SCRAM-SHA-512 and SCRAM-SHA-256
    credentials); ``tls`` makes the listener TLS with a certificate for 127.0.0.1 and
    localhost, signed by a CA generated in the run directory (``<run dir>/tls/ca.pem``).
    """

    scram_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: bool = False

    def __post_init__(self) -> None:
        for name, password in self.scram_users.items():
            if not _USERNAME.fullmatch(name):
                raise BrokerError(f"SCRAM user name {name!r} must be letters, digits, '.', '_' or '-'")
            if not password:
                raise BrokerError(f"SCRAM user {name!r} needs a non-empty password")

    @property
    def protocol(self) -> str:
        """The client listener's security protocol, as clients set ``security_protocol``."""
        if self.scram_users:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create the SCRAM users, pre-salted."""
        arguments = []
        for name, password in sorted(self.scram_users.items()):
            for mechanism, hash_name in _SCRAM_HASHES.items():
                salt = os.urandom(24)
                salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, SCRAM_ITERATIONS)
                arguments += ["--add-scram",
                              f"{mechanism}=[name={name},iterations={SCRAM_ITERATIONS},"
                              f'salt="{_b64(salt)}",saltedpassword="{_b64(salted)}"]']
        return arguments

    def listener_properties(self, port: int, internal_port: int, controller_port: int,
                            run_dir: Path) -> dict[str, str]:
        """server.properties entries for the listeners (replacing the PLAINTEXT ones)."""
        name = self.protocol
        prefix = f"listener.name.{name.lower()}"
        props = {
            "listeners": f"{name}://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port},"
                         f"CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"{name}://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port}",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map":
                f"{name}:{name},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
        if self.scram_users:
            props["sasl.enabled.mechanisms"] = ",".join(_SCRAM_HASHES)
            for mechanism in _SCRAM_HASHES:
                props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;")
        if self.tls:
            props[f"{prefix}.ssl.keystore.type"] = "PEM"
            props[f"{prefix}.ssl.keystore.location"] = str(tls_dir(run_dir) / "server-keystore.pem")
            props[f"{prefix}.ssl.client.auth"] = "none"
        return props

    def prepare(self, run_dir: Path) -> None:
        """Create what the listener needs in ``run_dir`` before the broker starts."""
        if self.tls:
            ensure_certificates(tls_dir(run_dir))


def tls_dir(run_dir: Path) -> Path:
    return run_dir / "tls"


def ensure_certificates(directory: Path) -> None:
    """A CA (``ca.pem``) and a server certificate for 127.0.0.1/localhost signed by it, with
    the unencrypted server key and chain in ``server-keystore.pem``; kept once made."""
    keystore = directory / "server-keystore.pem"
    if keystore.exists() and (directory / "ca.pem").exists():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ToolMissingError("`openssl` is not on the PATH: the local broker's TLS listener needs "
                               "it to make its certificates (Debian: apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid,issuer\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", str(_CERT_DAYS), "-subj", "/CN=callslo local broker CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", str(_CERT_DAYS),
         "-extfile", "server.ext"],
    ]
    for step in steps:
        done = subprocess.run([openssl, *step], cwd=directory, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerError(f"openssl {step[0]} failed making the broker's certificates in "
                              f"{directory}:\n{done.stderr.strip()[-2000:]}")
    keystore.write_text((directory / "server.key").read_text() + (directory / "server.crt").read_text()
                        + (directory / "ca.pem").read_text())
    os.chmod(keystore, 0o600)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
