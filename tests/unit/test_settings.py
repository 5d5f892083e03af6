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
