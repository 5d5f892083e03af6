"""Settings: defaults, TOML, environment overrides, and errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest

from streams.errors import ConfigError
from streams.settings import Settings


def test_defaults_bind_loopback_and_use_the_documented_topics():
    s = Settings.load(env={})
    assert s.web.host == "127.0.0.1" and s.web.port == 6066
    assert s.topics.events == "callcenter.events.v1"
    assert s.topics.dlq == "callcenter.events.dlq.v1"
    assert s.worker.broker_session_timeout_s < 60


def test_toml_file_and_environment(tmp_path):
    path = tmp_path / "callslo.toml"
    path.write_text('[kafka]\nbootstrap = "k1:9092"\n[topics]\npartitions = 12\n'
                    '[ingest]\nbatch_max_ms = 50\n')
    s = Settings.load(path, env={"CALLSLO_WEB_PORT": "7000"})
    assert (s.kafka.bootstrap, s.topics.partitions, s.ingest.batch_max_ms, s.web.port) == (
        "k1:9092", 12, 50, 7000)
    s = Settings.load(path, env={"CALLSLO_BOOTSTRAP": "k2:9092"})
    assert s.kafka.bootstrap == "k2:9092"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.load(env={}).web.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("table, message", [
    ({"kafak": {}}, "unknown settings section"),
    ({"web": {"prot": 1}}, "unknown key(s) ['prot'] in [web]"),
    ({"web": {"port": "80"}}, "web.port must be int"),
    ({"web": {"port": 70000}}, "web.port"),
    ({"topics": {"partitions": 0}}, "topics.partitions"),
    ({"topics": {"create_missing": 1}}, "topics.create_missing must be bool"),
    ({"ingest": {"batch_max_events": True}}, "must be int"),
    ({"ingest": {"max_message_bytes": 10}}, "ingest.max_message_bytes"),
    ({"worker": {"broker_session_timeout_s": 3, "broker_heartbeat_interval_s": 3}},
     "worker.broker_session_timeout_s"),
    ({"worker": {"fetch_max_wait_ms": 5000}}, "worker.fetch_max_wait_ms must be 10..1500"),
    ({"web": 5}, "[web] must be a table"),
])
def test_bad_settings_name_the_key(table, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping(table, env={})
    assert message in str(info.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="CALLSLO_WEB_PORT"):
        Settings.load(env={"CALLSLO_WEB_PORT": "eighty"})


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[web\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad, env={})


def test_the_test_settings_isolate_every_topic(make_settings):
    # Tests share one broker: a topic left at its default name would mix two tests' records.
    from dataclasses import fields

    first, second = make_settings(), make_settings()
    defaults = Settings.load(env={}).topics
    for f in fields(first.topics):
        if isinstance(getattr(defaults, f.name), str):
            assert getattr(first.topics, f.name) != getattr(defaults, f.name), f.name
            assert getattr(first.topics, f.name) != getattr(second.topics, f.name), f.name


# --- Kafka security: SASL and TLS keys, the password's sources, and that it never shows ---

def _kafka(env=None, **keys):
    return Settings.from_mapping({"kafka": keys}, env={} if env is None else env).kafka


def test_sasl_password_comes_from_the_named_environment_variable():
    kafka = _kafka({"CALLSLO_TEST_PW": "pw-from-env"}, security_protocol="SASL_SSL",
                   sasl_username="callslo", sasl_password_env="CALLSLO_TEST_PW")
    assert (kafka.uses_sasl, kafka.uses_tls, kafka.sasl_mechanism) == (True, True, "SCRAM-SHA-512")
    assert kafka.sasl_password.reveal() == "pw-from-env"


def test_sasl_password_comes_from_the_first_line_of_a_file(tmp_path):
    path = tmp_path / "kafka-password"
    path.write_text("pw-from-file\n")
    kafka = _kafka(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                   sasl_username="callslo", sasl_password_file=str(path))
    assert kafka.sasl_password.reveal() == "pw-from-file"
    assert not kafka.uses_tls


def test_security_keys_come_from_the_environment(tmp_path):
    path = tmp_path / "pw"
    path.write_text("pw-via-env-keys")
    s = Settings.load(env={"CALLSLO_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                           "CALLSLO_KAFKA_SASL_USERNAME": "svc",
                           "CALLSLO_KAFKA_SASL_PASSWORD_FILE": str(path)})
    assert (s.kafka.sasl_username, s.kafka.sasl_password.reveal()) == ("svc", "pw-via-env-keys")
    s = Settings.load(env={"CALLSLO_KAFKA_SECURITY_PROTOCOL": "SSL",
                           "CALLSLO_KAFKA_SSL_CHECK_HOSTNAME": "false"})
    assert s.kafka.ssl_check_hostname is False
    with pytest.raises(ConfigError, match="CALLSLO_KAFKA_SSL_CHECK_HOSTNAME"):
        Settings.load(env={"CALLSLO_KAFKA_SSL_CHECK_HOSTNAME": "maybe"})


def test_the_password_never_shows_in_repr_or_str():
    s = Settings.from_mapping(
        {"kafka": {"security_protocol": "SASL_SSL", "sasl_username": "callslo",
                   "sasl_password_env": "PW"}}, env={"PW": "do-not-print-me"})
    for text in (repr(s), str(s), repr(s.kafka), str(s.kafka.sasl_password),
                 repr(s.kafka.sasl_password), f"{s.kafka.sasl_password}"):
        assert "do-not-print-me" not in text
    assert "PW" in repr(s.kafka)  # where it comes from is shown, so operators can check


def test_a_password_in_the_settings_file_is_refused(tmp_path):
    path = tmp_path / "callslo.toml"
    path.write_text('[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_username = "u"\n'
                    'sasl_password = "plain-in-toml"\n')
    with pytest.raises(ConfigError, match="kafka.sasl_password cannot be written") as info:
        Settings.load(path, env={})
    assert "plain-in-toml" not in str(info.value)


@pytest.mark.parametrize("keys, env, message", [
    ({"security_protocol": "TLS"}, {}, "kafka.security_protocol must be one of"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "sasl_username": "u",
      "sasl_password_env": "PW"}, {"PW": "x"}, "kafka.sasl_mechanism must be one of"),
    ({"security_protocol": "SASL_SSL", "sasl_password_env": "PW"}, {"PW": "x"},
     "kafka.sasl_username is required with security_protocol SASL_SSL"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"}, {},
     "kafka.sasl_password_env or kafka.sasl_password_file is required"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password_env": "PW"},
     {}, "kafka.sasl_password_env names the environment variable PW, which is not set"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password_env": "PW",
      "sasl_password_file": "/nonexistent"}, {"PW": "x"},
     "kafka.sasl_password_env and kafka.sasl_password_file are both set"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u",
      "sasl_password_file": "/nonexistent/callslo-pw"}, {}, "kafka.sasl_password_file"),
    ({"sasl_username": "u"}, {}, "kafka.sasl_username is set but kafka.security_protocol is PLAINTEXT"),
    ({"security_protocol": "SSL", "sasl_password_env": "PW"}, {"PW": "x"},
     "kafka.sasl_password_env is set but kafka.security_protocol is SSL"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password_env": "PW",
      "ssl_cafile": "/etc/hostname"}, {"PW": "x"},
     "kafka.ssl_cafile is set but kafka.security_protocol is SASL_PLAINTEXT"),
    ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, {},
     "kafka.ssl_cafile = '/nonexistent/ca.pem': no such file"),
    ({"security_protocol": "SSL", "ssl_keyfile": "/etc/hostname"}, {},
     "kafka.ssl_keyfile needs kafka.ssl_certfile"),
    ({"security_protocol": "SSL", "ssl_check_hostname": "no"}, {},
     "kafka.ssl_check_hostname must be bool"),
])
def test_bad_security_settings_name_the_key(keys, env, message):
    with pytest.raises(ConfigError) as info:
        _kafka(env, **keys)
    assert message in str(info.value)


def test_an_empty_password_file_is_an_error(tmp_path):
    path = tmp_path / "pw"
    path.write_text("\n")
    with pytest.raises(ConfigError, match="is empty; its first line must be the password"):
        _kafka(security_protocol="SASL_SSL", sasl_username="u", sasl_password_file=str(path))
