"""Kafka with SCRAM-SHA-512, in clear and over TLS: the worker connects with its credentials
and publishes interval records, a client without them or with a wrong password is refused
quickly with a clear error, and the password never reaches a log.

Each security protocol gets its own broker (own port, own run directory), stopped at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from streams.contract import event_key
from streams.errors import CallsloError
from streams.localkafka import Broker, BrokerSecurity, free_port
from streams.replay import record_sort_key, replay_lines
from tests.eventgen import call_events
from tests.integration.kafka_helpers import now_ms, produce, read_all, topic_exists

pytestmark = pytest.mark.timeout(420)

USER = "callslo-worker"
PASSWORD_VAR = "CALLSLO_TEST_KAFKA_PASSWORD"


@pytest.fixture(scope="module", params=["SASL_PLAINTEXT", "SASL_SSL"])
def secure_broker(request, tmp_path_factory):
    """``(broker, password)``: a broker whose client port takes only SCRAM user ``USER``."""
    # Unique per run, so finding it in a log can only mean callslo wrote it there.
    password = f"pw-{uuid.uuid4().hex}"
    security = BrokerSecurity({USER: password}, tls=request.param == "SASL_SSL")
    broker = Broker(free_port(), tmp_path_factory.mktemp("kafka-secure"), security)
    try:
        broker.start(fresh=True)
    except CallsloError as exc:
        pytest.fail(f"the secured Kafka broker did not start: {exc}", pytrace=False)
    try:
        yield broker, password
    finally:
        broker.stop()


def _kafka_keys(broker: Broker, **password_source: str) -> dict[str, str]:
    keys = {"bootstrap": broker.bootstrap, "security_protocol": broker.security.protocol,
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": USER, **password_source}
    if broker.security.tls:
        keys["ssl_cafile"] = str(broker.ca_path)
    return keys


def _toml(settings, kafka: dict[str, str], data_dir: Path) -> str:
    # Every topic name of the test's settings, so the worker touches no other test's topics.
    topic_names = [f'{f.name} = "{getattr(settings.topics, f.name)}"'
                   for f in dataclasses.fields(settings.topics)
                   if isinstance(getattr(settings.topics, f.name), str)]
    lines = ["[kafka]", *(f'{key} = "{value}"' for key, value in kafka.items()),
             "[topics]", *topic_names, f"partitions = {settings.topics.partitions}",
             "[ingest]", f'group_id = "{settings.ingest.group_id}"',
             "[worker]", f'app_id = "{settings.worker.app_id}"', f'data_dir = "{data_dir}"']
    return "\n".join(lines) + "\n"


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without callslo's own variables (a CALLSLO_BOOTSTRAP set for
    the session's broker would point the worker elsewhere), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSLO_")}
    return {**env, "CALLSLO_WEB_PORT": str(free_port()), **extra}


def _callslo(*args: str, env: dict[str, str], timeout_s: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def test_worker_with_credentials_publishes_interval_records(secure_broker, make_settings, tmp_path):
    broker, password = secure_broker
    password_file = tmp_path / "kafka-password"
    password_file.write_text(password + "\n")
    # The test's own clients read the password from a file, the worker from its environment.
    settings = make_settings(kafka=_kafka_keys(broker, sasl_password_file=str(password_file)))
    config = tmp_path / "callslo.toml"
    config.write_text(_toml(settings, _kafka_keys(broker, sasl_password_env=PASSWORD_VAR),
                            tmp_path / "data"))
    start = (now_ms() - 3 * 3_600_000) // 900_000 * 900_000
    events = call_events(start, 600, queues=2, gap_ms=12_000, duplicates=0.02)
    expected = {record_sort_key(r): r
                for r in replay_lines((orjson.dumps(e) for e in events), settings).records}
    assert len(expected) >= 20

    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        # Debug level: the password must stay out of even the most talkative log.
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--config", str(config),
             "--loglevel", "debug"],
            env=_clean_env(**{PASSWORD_VAR: password}), stdout=log, stderr=subprocess.STDOUT)

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:].replace(password, "<PASSWORD>")

    try:
        t = settings.topics
        deadline = time.monotonic() + 90
        while not all(asyncio.run(topic_exists(settings.kafka, name))
                      for name in (t.events, t.batches, t.intervals)):
            assert worker.poll() is None, f"worker exited:\n{log_tail()}"
            assert time.monotonic() < deadline, f"the worker did not create its topics:\n{log_tail()}"
            time.sleep(0.5)
        messages = [(event_key(e).encode(), orjson.dumps(e)) for e in events]
        asyncio.run(produce(settings.kafka, t.events, messages))
        deadline = time.monotonic() + 180
        while True:
            assert worker.poll() is None, f"worker exited:\n{log_tail()}"
            final = {record_sort_key(v): v for v in (
                orjson.loads(r.value) for r in asyncio.run(read_all(settings.kafka, t.intervals)))}
            if len(final) >= len(expected):
                break
            assert time.monotonic() < deadline, (
                f"{len(final)} of {len(expected)} interval records:\n{log_tail()}")
            time.sleep(1)
        assert final == expected
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise AssertionError(f"worker ignored SIGTERM:\n{log_tail()}")
    assert code == 0, log_tail()
    log_text = log_path.read_text(errors="replace")
    assert f"ingest: consuming {settings.topics.events}" in log_text  # the log is the worker's
    assert password not in log_text


@pytest.mark.parametrize("case", ["no credentials", "wrong password", "unknown user"])
def test_clients_without_the_right_credentials_are_refused(secure_broker, make_settings,
                                                           tmp_path, case):
    broker, password = secure_broker
    wrong = f"wrong-{uuid.uuid4().hex}"
    if case == "no credentials":
        # TLS alone on the TLS listener, so what is missing is the SASL login, not encryption.
        kafka = {"bootstrap": broker.bootstrap,
                 "security_protocol": "SSL" if broker.security.tls else "PLAINTEXT"}
        if broker.security.tls:
            kafka["ssl_cafile"] = str(broker.ca_path)
        env = _clean_env()
    else:
        kafka = _kafka_keys(broker, sasl_password_env=PASSWORD_VAR)
        if case == "unknown user":
            kafka["sasl_username"] = "intruder"
        env = _clean_env(**{PASSWORD_VAR: wrong if case == "wrong password" else password})
    settings = make_settings(broker.bootstrap)
    config = tmp_path / "callslo.toml"
    config.write_text(_toml(settings, kafka, tmp_path / "data"))

    started = time.monotonic()
    done = _callslo("worker", "--config", str(config), env=env, timeout_s=90)
    elapsed_s = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert elapsed_s < 60, f"refusal took {elapsed_s:.0f} s"
    assert f"cannot create topics on {broker.bootstrap}" in output, output
    assert "check kafka.bootstrap, kafka.security_protocol and the SASL user" in output, output
    if case != "no credentials":
        assert "Authentication failed" in output, output
    assert password not in output and wrong not in output

    # Nothing was created by the refused client.
    checker = make_settings(kafka=_kafka_keys(broker, sasl_password_file=str(
        _password_file(tmp_path, password))))
    assert not asyncio.run(topic_exists(checker.kafka, settings.topics.events))


def _password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "good-password"
    path.write_text(password)
    return path
