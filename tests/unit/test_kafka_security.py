"""Kafka security without a broker: client options from the settings, Faust credentials,
the TLS context, and the local broker's SCRAM and listener configuration."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
import subprocess

import faust
import pytest

from streams import clients
from streams.errors import BrokerError, ConfigError
from streams.localkafka_security import SCRAM_ITERATIONS, BrokerSecurity, ensure_certificates
from streams.settings import KafkaSettings
from streams.secret import Secret


def test_plaintext_sets_only_the_protocol():
    kafka = KafkaSettings()
    assert clients.security_options(kafka) == {"security_protocol": "PLAINTEXT"}
    assert clients.faust_credentials(kafka) is None


def test_sasl_plaintext_passes_user_and_password_to_every_client():
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                          sasl_username="svc", sasl_password=Secret("pw-1"))
    assert clients.security_options(kafka) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc", "sasl_plain_password": "pw-1"}

    async def built() -> tuple[str, str, str]:
        # Not started: nothing connects, the factories' arguments are what is checked.
        producer, consumer = clients.producer(kafka, "unit"), clients.consumer(kafka, "unit")
        admin = clients.admin(kafka)
        seen = (producer.client._sasl_plain_password, consumer._client._sasl_mechanism,
                admin._client._security_protocol)
        await producer.stop()
        await consumer.stop()
        await admin.close()
        return seen

    assert asyncio.run(built()) == ("pw-1", "SCRAM-SHA-256", "SASL_PLAINTEXT")
    credentials = clients.faust_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value, credentials.username,
            credentials.password) == ("SASL_PLAINTEXT", "SCRAM-SHA-256", "svc", "pw-1")
    assert "pw-1" not in repr(credentials)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ensure_certificates(directory)
    return directory


def test_tls_context_verifies_the_broker(certificates):
    kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_username="svc",
                          sasl_password=Secret("pw"), ssl_cafile=str(certificates / "ca.pem"))
    options = clients.security_options(kafka)
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = clients.faust_credentials(kafka)
    assert credentials.protocol.value == "SASL_SSL" and credentials.ssl_context is not None
    relaxed = KafkaSettings(security_protocol="SSL", ssl_cafile=str(certificates / "ca.pem"),
                            ssl_check_hostname=False)
    context = clients.ssl_context(relaxed)
    # Without the host-name check the certificate chain is still verified.
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
    assert isinstance(clients.faust_credentials(relaxed), faust.SSLCredentials)


def test_client_certificate_and_unreadable_tls_files(certificates, tmp_path):
    mutual = KafkaSettings(security_protocol="SSL", ssl_cafile=str(certificates / "ca.pem"),
                           ssl_certfile=str(certificates / "server.crt"),
                           ssl_keyfile=str(certificates / "server.key"))
    assert clients.ssl_context(mutual).verify_mode == ssl.CERT_REQUIRED
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="kafka.ssl_cafile: cannot load the TLS files"):
        clients.ssl_context(KafkaSettings(security_protocol="SSL", ssl_cafile=str(not_pem)))
    with pytest.raises(ConfigError, match="kafka.ssl_certfile: cannot load the TLS files"):
        clients.ssl_context(KafkaSettings(security_protocol="SSL", ssl_certfile=str(not_pem)))


def test_server_certificate_is_signed_by_the_ca_for_loopback(certificates):
    checked = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "server.crt"],
                             cwd=certificates, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    text = subprocess.run(["openssl", "x509", "-in", "server.crt", "-noout", "-text"],
                          cwd=certificates, capture_output=True, text=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    keystore = (certificates / "server-keystore.pem").read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")
    assert (certificates / "server-keystore.pem").stat().st_mode & 0o077 == 0


def test_scram_users_are_formatted_as_salted_hashes():
    security = BrokerSecurity({"callslo": "pw-for-format"})
    arguments = security.format_arguments()
    assert "pw-for-format" not in " ".join(arguments)
    assert arguments[0::2] == ["--add-scram"] * 2
    found = {}
    for value in arguments[1::2]:
        match = re.fullmatch(r'(SCRAM-SHA-\d+)=\[name=callslo,iterations=(\d+),'
                             r'salt="([^"]+)",saltedpassword="([^"]+)"\]', value)
        assert match, value
        found[match.group(1)] = match.groups()[1:]
    assert set(found) == {"SCRAM-SHA-512", "SCRAM-SHA-256"}
    for mechanism, (iterations, salt, salted) in found.items():
        hash_name = "sha512" if mechanism.endswith("512") else "sha256"
        assert int(iterations) == SCRAM_ITERATIONS
        assert base64.b64decode(salted) == hashlib.pbkdf2_hmac(
            hash_name, b"pw-for-format", base64.b64decode(salt), SCRAM_ITERATIONS)


def test_listener_properties_keep_the_broker_listeners_plaintext(tmp_path):
    props = BrokerSecurity({"u": "p"}, tls=True).listener_properties(9093, 9094, 9095, tmp_path)
    assert props["listeners"] == ("SASL_SSL://127.0.0.1:9093,INTERNAL://127.0.0.1:9094,"
                                  "CONTROLLER://127.0.0.1:9095")
    assert props["listener.security.protocol.map"] == (
        "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT")
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config" in props
    assert "p" not in props.values()
    assert BrokerSecurity(tls=True).protocol == "SSL"
    assert BrokerSecurity({"u": "p"}).protocol == "SASL_PLAINTEXT"


@pytest.mark.parametrize("users, message", [
    ({"bad name": "x"}, "SCRAM user name"),
    ({"ok": ""}, "needs a non-empty password"),
])
def test_bad_scram_users_are_refused(users, message):
    with pytest.raises(BrokerError, match=message):
        BrokerSecurity(users)
