"""``callslo ingest asterisk``: an Asterisk ``queue_log`` onto the events topic, once or live.

Examples::

    callslo ingest asterisk --from /var/log/asterisk/queue_log.1 --tenant acme
    CALLSLO_CALLER_SALT=... callslo ingest asterisk --follow /var/log/asterisk/queue_log --tenant acme

Every line is mapped by :mod:`streams.adapters.asterisk`, every event checked by the contract
decoder callslo itself runs, then produced with the key the contract asks for. A line that
cannot be mapped, or whose event the decoder refuses, goes to the dead-letter topic with the
original bytes and its line number (``docs/adapters.md``). Produces are batched and awaited:
``--follow`` saves its position (and the agents' queue membership) only after a batch is
acknowledged, so a restart neither skips nor repeats a line.

Exit code 0 when the input was read and produced (dead letters are counted in the summary),
2 on a settings, file or Kafka error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson
from aiokafka.errors import KafkaError

from streams.adapters.asterisk import AgentRoster, QueueLogMapper, Skipped
from streams import clients
from streams.adapters.tail import FileFollower, Position, load_state, save_state
from streams.contract import Decoder, Rejection, event_key
from streams.errors import CallsloError
from streams.ingest import DeadLetter, dead_letter_headers
from streams.settings import Settings

__all__ = ["add_parser", "run", "IngestCounts", "QueueLogPublisher", "import_file",
           "FollowQueueLog", "CALLER_SALT_ENV", "default_state_path"]

log = logging.getLogger(__name__)

#: Environment variable holding the per-deployment secret that pseudonymises caller ids.
CALLER_SALT_ENV = "CALLSLO_CALLER_SALT"
DEFAULT_STATE_DIR = "~/.cache/callslo/asterisk"


@dataclass
class IngestCounts:
    """What happened to the lines read: every line is an event, a skip, a blank or a dead letter."""

    lines: int = 0
    blank: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return (f"{self.lines} lines ({self.blank} blank): "
                f"{sum(self.events.values())} events {_fmt(self.events)}, "
                f"{sum(self.skipped.values())} skipped {_fmt(self.skipped)}, "
                f"{sum(self.dead_lettered.values())} dead-lettered {_fmt(self.dead_lettered)}")


def _fmt(counter: Counter[str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) + "}"


class QueueLogPublisher:
    """Lines in, events and dead letters on Kafka out; :meth:`publish` returns once every
    produce of the batch is acknowledged (``acks=all``, idempotent producer)."""

    def __init__(self, settings: Settings, mapper: QueueLogMapper, *,
                 decoder: Decoder | None = None, producer: Any = None) -> None:
        self.settings = settings
        self.mapper = mapper
        self.decoder = decoder or Decoder.from_settings(settings.ingest)
        self.counts = IngestCounts()
        self._given_producer = producer  # tests pass a stand-in with send/start/stop
        self._producer: Any = None

    async def start(self) -> None:
        s = self.settings
        self._producer = self._given_producer or clients.producer(s.kafka, "asterisk")
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            self._producer = None
            raise CallsloError(f"cannot reach Kafka at {s.kafka.bootstrap}: {exc}") from exc

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, lines: Iterable[tuple[str, int, bytes]]) -> None:
        """Map, check and produce ``(file path, line number, line bytes)`` in order."""
        assert self._producer is not None, "call start() first"
        now_ms = int(time.time() * 1000)
        pending = []
        try:
            for path, number, data in lines:
                record = self._record(path, number, data, now_ms)
                if record is None:
                    continue
                topic, key, value, headers = record
                pending.append(await self._producer.send(
                    topic, value, key=key, headers=headers))
            await asyncio.gather(*pending)
        except KafkaError as exc:
            raise CallsloError(f"producing to {self.settings.kafka.bootstrap} failed ({exc}); "
                               "the batch is not acknowledged and will be read again") from exc

    def _record(self, path: str, number: int, data: bytes, now_ms: int
                ) -> tuple[str, bytes | None, bytes, list[tuple[str, bytes]] | None] | None:
        counts = self.counts
        counts.lines += 1
        if not data.strip():
            counts.blank += 1
            return None
        outcome = self.mapper.map_line(data)
        if isinstance(outcome, Skipped):
            counts.skipped[outcome.event] += 1
            return None
        if isinstance(outcome, Rejection):
            return self._dead_letter(path, number, data, outcome, now_ms)
        key = event_key(outcome).encode()
        value = orjson.dumps(outcome)
        checked = self.decoder.decode(value, key, now_ms)
        if isinstance(checked, Rejection):
            return self._dead_letter(path, number, data, checked, now_ms)
        counts.events[outcome["type"]] += 1
        return self.settings.topics.events, key, value, None

    def _dead_letter(self, path: str, number: int, data: bytes, rejection: Rejection,
                     now_ms: int) -> tuple[str, None, bytes, list[tuple[str, bytes]]]:
        self.counts.dead_lettered[rejection.reason] += 1
        # The DLQ layout of stage 1, with the file standing in for the topic and the line
        # number for the offset; partition -1 says "not from Kafka".
        letter = DeadLetter(f"asterisk:{path}", -1, number, None, data, rejection)
        return self.settings.topics.dlq, None, data, dead_letter_headers(letter, now_ms)


async def import_file(settings: Settings, path: str | os.PathLike[str], mapper: QueueLogMapper,
                      *, batch_lines: int = 1000, producer: Any = None) -> IngestCounts:
    """Publish a whole file once (``--from``); returns the counts. A last line without its
    newline is read as a line."""
    absolute = os.path.abspath(path)
    try:
        fh = open(absolute, "rb")
    except OSError as exc:
        raise CallsloError(f"cannot read {absolute}: {exc.strerror}") from exc
    publisher = QueueLogPublisher(settings, mapper, producer=producer)
    with fh:
        await publisher.start()
        try:
            batch: list[tuple[str, int, bytes]] = []
            for number, line in enumerate(fh, start=1):
                batch.append((absolute, number, line.removesuffix(b"\n")))
                if len(batch) >= batch_lines:
                    await publisher.publish(batch)
                    batch = []
            await publisher.publish(batch)
        finally:
            await publisher.stop()
    return publisher.counts


def default_state_path(followed: str | os.PathLike[str]) -> Path:
    """``~/.cache/callslo/asterisk/<name>-<hash of the absolute path>.json``: one per file."""
    absolute = os.path.abspath(followed)
    tag = hashlib.sha256(absolute.encode()).hexdigest()[:12]
    return Path(DEFAULT_STATE_DIR).expanduser() / f"{Path(absolute).name}-{tag}.json"


class FollowQueueLog:
    """``--follow``: tail a live queue_log until :meth:`stop`, in acknowledged batches of at
    most ``batch_lines`` lines or ``batch_ms`` milliseconds, saving the position after each."""

    def __init__(self, settings: Settings, path: str | os.PathLike[str], *, state_path: Path,
                 tenant: str, source: str, caller_salt: bytes | None, batch_lines: int = 500,
                 batch_ms: int = 200, poll_ms: int = 250, report_s: float = 60.0,
                 start_at_end: bool = False, rotate_grace_ms: int = 2000,
                 producer: Any = None) -> None:
        self.settings = settings
        self._given_producer = producer
        self.path = os.path.abspath(path)
        self.state_path = state_path
        self.batch_lines = batch_lines
        self.batch_ms = batch_ms
        self.poll_ms = poll_ms
        self.report_s = report_s
        self.start_at_end = start_at_end
        self.rotate_grace_ms = rotate_grace_ms
        self.tenant = tenant
        self.source = source
        self.caller_salt = caller_salt
        self.publisher: QueueLogPublisher | None = None
        self._stopping = asyncio.Event()
        self._saved: Position | None = None

    def stop(self) -> None:
        """Finish the batch in hand, save the position, return from :meth:`run`."""
        self._stopping.set()

    @property
    def counts(self) -> IngestCounts:
        return self.publisher.counts if self.publisher is not None else IngestCounts()

    def _load(self) -> tuple[Position | None, AgentRoster]:
        loaded = load_state(self.state_path)
        if loaded is None:
            return None, AgentRoster()
        position, extra = loaded
        if extra.get("file") != self.path:
            raise CallsloError(f"state file {self.state_path} belongs to {extra.get('file')}, not "
                               f"{self.path}; pass another --state")
        return position, AgentRoster.restore(extra.get("roster", {}))

    def _save(self, follower: FileFollower, mapper: QueueLogMapper) -> None:
        position = follower.position()
        save_state(self.state_path, position, {"file": self.path,
                                                "roster": mapper.roster.snapshot()})
        self._saved = position

    async def run(self) -> None:
        position, roster = self._load()
        mapper = QueueLogMapper(tenant=self.tenant, source=self.source,
                                caller_salt=self.caller_salt, roster=roster)
        self.publisher = publisher = QueueLogPublisher(self.settings, mapper,
                                                       producer=self._given_producer)
        self._saved = position
        await publisher.start()
        follower: FileFollower | None = None
        try:
            follower = FileFollower(self.path, position=position, start_at_end=self.start_at_end,
                                    rotate_grace_ms=self.rotate_grace_ms)
            pending: list[tuple[str, int, bytes]] = []
            first_at = 0.0
            last_report = time.monotonic()
            while True:
                stopping = self._stopping.is_set()
                lines = follower.poll(self.batch_lines - len(pending))
                for notice in follower.notices:
                    log.warning("asterisk: %s", notice)
                follower.notices.clear()
                if lines and not pending:
                    first_at = time.monotonic()
                pending.extend((line.path, line.number, line.data) for line in lines)
                if pending and (stopping or len(pending) >= self.batch_lines
                                or (time.monotonic() - first_at) * 1000 >= self.batch_ms):
                    await publisher.publish(pending)
                    pending = []
                    self._save(follower, mapper)
                elif not pending and follower.position() != self._saved:
                    self._save(follower, mapper)  # moved without lines: rotation, partial line
                if stopping:
                    break
                if time.monotonic() - last_report >= self.report_s:
                    print(f"callslo ingest asterisk: {publisher.counts.summary()}",
                          file=sys.stderr, flush=True)
                    last_report = time.monotonic()
                if not lines:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.poll_ms / 1000)
        finally:
            if follower is not None:
                follower.close()
            await publisher.stop()


# -- command line --------------------------------------------------------------------------

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ingest`` (with its ``asterisk`` source) on an argparse subparsers object."""
    ingest = subparsers.add_parser(
        "ingest", help="publish an ACD's own log as contract events (adapters)",
        description="Read what an ACD writes and publish it on the events topic.")
    sources = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    parser = sources.add_parser(
        "asterisk", help="Asterisk queue_log",
        description="Map Asterisk queue_log lines to contract v1 events. Malformed lines go to "
                    f"the dead-letter topic with their line number. Set {CALLER_SALT_ENV} to "
                    "send a salted hash of caller ids; without it no caller is sent.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="from_file", type=Path, metavar="FILE",
                      help="import FILE once and print the counts")
    what.add_argument("--follow", type=Path, metavar="FILE",
                      help="tail FILE until stopped (SIGINT/SIGTERM), across rotation and truncation")
    parser.add_argument("--tenant", default="default", help="tenant of every event (default: default)")
    parser.add_argument("--source-name", default=None,
                        help="the events' source field (default: asterisk-qlog@HOSTNAME)")
    parser.add_argument("--state", type=Path, default=None,
                        help=f"--follow position file (default: under {DEFAULT_STATE_DIR}/)")
    parser.add_argument("--start-at-end", action="store_true",
                        help="--follow without a state file: skip the lines already in FILE")
    parser.add_argument("--batch-lines", type=int, default=500,
                        help="produce after at most this many lines (default 500)")
    parser.add_argument("--batch-ms", type=int, default=200,
                        help="--follow: produce after at most this many ms (default 200)")
    parser.add_argument("--poll-ms", type=int, default=250,
                        help="--follow: look for new lines this often (default 250)")
    parser.add_argument("--report-s", type=float, default=60.0,
                        help="--follow: print the counts this often (default 60)")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (TOML); environment variables override it")
    parser.set_defaults(func=run)
    return parser


def _check_options(args: argparse.Namespace) -> None:
    tenant = args.tenant
    if not tenant or len(tenant) > 256 or not tenant.isprintable() or "/" in tenant:
        raise CallsloError(f"--tenant {tenant!r} must be 1-256 printable characters without '/'")
    for name in ("batch_lines", "batch_ms", "poll_ms"):
        if getattr(args, name) < 1:
            raise CallsloError(f"--{name.replace('_', '-')} must be >= 1")
    if args.report_s <= 0:
        raise CallsloError("--report-s must be > 0")


def run(args: argparse.Namespace) -> int:
    """Run ``callslo ingest asterisk``; return the exit code."""
    _check_options(args)
    settings = Settings.load(args.config)
    salt_text = os.environ.get(CALLER_SALT_ENV)
    salt = salt_text.encode() if salt_text else None
    if salt is None:
        log.warning("asterisk: %s is not set; events carry no caller key", CALLER_SALT_ENV)
    source = args.source_name or f"asterisk-qlog@{socket.gethostname()}"
    if args.from_file is not None:
        mapper = QueueLogMapper(tenant=args.tenant, source=source, caller_salt=salt)
        counts = asyncio.run(import_file(settings, args.from_file, mapper,
                                         batch_lines=args.batch_lines))
        print(f"callslo ingest asterisk: {counts.summary()}")
        return 0
    follow = FollowQueueLog(
        settings, args.follow, state_path=args.state or default_state_path(args.follow),
        tenant=args.tenant, source=source, caller_salt=salt, batch_lines=args.batch_lines,
        batch_ms=args.batch_ms, poll_ms=args.poll_ms, report_s=args.report_s,
        start_at_end=args.start_at_end)

    async def follow_until_signalled() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, follow.stop)
        await follow.run()

    asyncio.run(follow_until_signalled())
    print(f"callslo ingest asterisk: {follow.counts.summary()}")
    return 0
