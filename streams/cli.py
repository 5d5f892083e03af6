"""The ``callslo`` command line: one subcommand per job, each a thin call into the package."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from streams import __version__
from streams.errors import CallsloError
from streams.adapters import ingest_cmd
from streams import demo
from streams.settings import Settings
from streams.simulate import cmd as simulate_cmd
from streams.slo import staffing_cmd
from streams.slo.report import cmd as report_cmd  # callslo report
from streams.slo import plan_cmd

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callslo",
        description="Contact-center call events in, live service-level objectives out.")
    parser.add_argument("--version", action="version", version=f"callslo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = sub.add_parser("kafka", help="run a local Apache Kafka broker (development, demo, tests)",
                           description="Start, stop or inspect a single-node KRaft broker on "
                                       "127.0.0.1, downloaded once from Maven Central.")
    kafka.add_argument("action", choices=["start", "stop", "status", "kill"])
    kafka.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    kafka.add_argument("--dir", type=Path, default=None,
                       help="run directory (default ~/.cache/callslo/brokers/PORT)")
    kafka.add_argument("--fresh", action="store_true", help="start: wipe earlier data first")
    # Kafka security for the local broker (docs/security.md)
    kafka.add_argument("--scram-user", default=None, metavar="NAME",
                       help="start: the client port takes only this SCRAM-SHA-512/256 user "
                            "(set when the run dir is formatted: use with --fresh)")
    kafka.add_argument("--scram-password-file", type=Path, default=None, metavar="FILE",
                       help="start: the file whose first line is that user's password")
    kafka.add_argument("--tls", action="store_true",
                       help="start: TLS on the client port, with a CA made in the run dir")
    kafka.set_defaults(func=_cmd_kafka)

    topics = sub.add_parser("topics", help="create the engine's topics when missing")
    topics.add_argument("action", choices=["create", "list"])
    _add_config(topics)
    topics.set_defaults(func=_cmd_topics)

    worker = sub.add_parser("worker", help="run the stream-processing worker (stage 1 and 2)")
    _add_config(worker)
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=_cmd_worker)

    validate = sub.add_parser(
        "validate", help="check a JSON-lines file of events against contract v1",
        description="Prints one line per rejected event (line number, reason, detail) and a "
                    "summary. Exit code 1 when any line is rejected. Message keys are not "
                    "checked (a file has none).")
    validate.add_argument("file", type=Path, help="events, one JSON object per line; - for stdin")
    _add_config(validate)
    validate.set_defaults(func=_cmd_validate)

    replay = sub.add_parser(
        "replay", help="run the engine over a JSON-lines file of events, without Kafka",
        description="Reads events in file order as arrival order, applies them exactly as the "
                    "worker does and writes every final interval record (JSON lines, sorted by "
                    "tenant, queue, interval start). Rejected and late events are summarised "
                    "on stderr.")
    replay.add_argument("events", help="events file, - for stdin")
    replay.add_argument("--out", default="-", help="interval records file (default - = stdout)")
    replay.add_argument("--fcr-out", default=None,
                        help="also write the first-contact-resolution records (slo.queue-fcr.v1)")
    _add_config(replay)
    replay.set_defaults(func=_cmd_replay)

    records = sub.add_parser("records", help="print the final interval records (slo.queue-intervals.v1)")
    records.add_argument("--follow", action="store_true", help="keep printing new records")
    records.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    _add_config(records)
    records.set_defaults(func=_cmd_records)

    staffing_cmd.add_parser(sub)
    report_cmd.add_parser(sub)  # callslo report (streams/slo/report/)
    plan_cmd.add_parser(sub)  # docs/slo.md
    simulate_cmd.add_parser(sub)
    ingest_cmd.add_parser(sub)
    demo.add_parser(sub)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (TOML); environment variables override it")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(getattr(args, "config", None))


def _cmd_kafka(args: argparse.Namespace) -> int:
    from streams.localkafka import Broker

    broker = Broker(args.port, args.dir, _broker_security(args))
    if args.action == "start":
        status = broker.start(fresh=args.fresh)
        print(f"kafka running: pid {status.pid}, bootstrap {status.bootstrap}, "
              f"log {broker.log_path}")
        if broker.security.protocol != "PLAINTEXT":
            print(f"kafka security: {broker.security.protocol}"
                  + (f", CA certificate {broker.ca_path}" if broker.security.tls else ""))
    elif args.action in ("stop", "kill"):
        stopped = broker.stop() if args.action == "stop" else broker.kill()
        print(f"kafka on port {args.port}: {'stopped' if stopped else 'no broker of ours was running'}")
    else:
        status = broker.status()
        state = f"running (pid {status.pid})" if status.running else "not running"
        print(f"kafka on port {args.port}: {state}; run dir {status.run_dir}")
        return 0 if status.running else 3
    return 0


def _broker_security(args: argparse.Namespace):
    """The local broker's security from ``--scram-user``/``--scram-password-file``/``--tls``."""
    from streams.localkafka import BrokerSecurity
    from streams.secret import secret_from_file

    if (args.scram_user is None) != (args.scram_password_file is None):
        raise CallsloError("--scram-user and --scram-password-file go together")
    users = {}
    if args.scram_user is not None:
        password = secret_from_file(str(args.scram_password_file), "--scram-password-file")
        users[args.scram_user] = password.reveal()
    return BrokerSecurity(users, tls=args.tls)


def _cmd_topics(args: argparse.Namespace) -> int:
    from streams.topics import ensure_topics, topic_specs

    settings = _settings(args)
    if args.action == "create":
        created = asyncio.run(ensure_topics(settings))
        print(f"created: {', '.join(created) if created else 'none (all present)'}")
    for spec in topic_specs(settings):
        print(f"{spec.name}\tpartitions={spec.partitions}\treplication={spec.replication}")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from streams.app import run_worker

    run_worker(_settings(args), loglevel=args.loglevel)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from streams.contract import Decoder

    settings = _settings(args)
    decoder = Decoder.from_settings(settings.ingest, check_key=False)
    try:
        stream = sys.stdin.buffer if str(args.file) == "-" else open(args.file, "rb")
    except OSError as exc:
        raise CallsloError(f"cannot read {args.file}: {exc.strerror}") from exc
    reasons: Counter[str] = Counter()
    total = 0
    now_ms = int(time.time() * 1000)
    with stream:
        for number, line in enumerate(stream, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            total += 1
            outcome = decoder.decode(line, None, now_ms)
            if type(outcome) is not dict:
                reasons[outcome.reason] += 1
                print(f"line {number}: {outcome.reason}: {outcome.detail}")
    rejected = sum(reasons.values())
    print(f"{total} events, {total - rejected} valid, {rejected} rejected"
          + (f" {dict(reasons)}" if reasons else ""))
    return 1 if rejected else 0


def _cmd_records(args: argparse.Namespace) -> int:
    from streams.peek import print_interval_records

    asyncio.run(print_interval_records(_settings(args), follow=args.follow, as_json=args.json))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from streams.replay import replay_lines, write_records

    settings = _settings(args)
    try:
        source = sys.stdin.buffer if args.events == "-" else open(args.events, "rb")
    except OSError as exc:
        raise CallsloError(f"cannot read {args.events}: {exc.strerror}") from exc
    with source:
        result = replay_lines(source, settings)
    try:
        sink = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    except OSError as exc:
        raise CallsloError(f"cannot write {args.out}: {exc.strerror}") from exc
    with sink:
        write_records(result.records, sink)
    if args.fcr_out is not None:
        try:
            with open(args.fcr_out, "wb") as fcr_sink:
                write_records(result.fcr_records, fcr_sink)
        except OSError as exc:
            raise CallsloError(f"cannot write {args.fcr_out}: {exc.strerror}") from exc
    reasons = Counter(letter.rejection.reason for letter in result.dead_letters)
    c = result.counts
    print(f"replay: {c['lines']} lines, {c['applied']} applied, {c['duplicates']} duplicates, "
          f"{c['late']} late, {len(result.dead_letters)} rejected {dict(reasons) or ''}, "
          f"{c['agent_events']} agent state events; {len(result.records)} interval records, "
          f"{len(result.fcr_records)} first-contact-resolution records", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("streams").setLevel(logging.INFO)  # callslo's own progress, not libraries'
    try:
        return args.func(args)
    except CallsloError as exc:
        print(f"callslo: error: {exc}", file=sys.stderr)
        if _connection_refused(exc):
            print("callslo: hint: the broker closed the connection or refused the login; check "
                  "kafka.bootstrap, kafka.security_protocol and the SASL user and password "
                  "(docs/security.md)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `callslo records | head`): not an error of ours.
        sys.stderr.close()
        return 0


def _connection_refused(exc: BaseException) -> bool:
    """Whether a Kafka connection failure is behind ``exc`` (wrong address, protocol or login)."""
    from aiokafka.errors import KafkaConnectionError

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KafkaConnectionError):
            return True
        cause = cause.__cause__
    return False


if __name__ == "__main__":
    sys.exit(main())
