"""Asterisk ``queue_log`` lines into contract v1 events: parsing, mapping, agent membership.

A ``queue_log`` line is ``epoch|uniqueid|queue|agent|EVENT|data1|data2|...``. One line becomes
at most one event. :meth:`QueueLogMapper.map_line` returns either

- an event dict (not yet checked by the contract decoder: the caller does that, so the
  decoder's verdict is the one that counts),
- :class:`Skipped` for an event this adapter does not map (``RINGNOANSWER``, ``QUEUESTART``...),
  to be counted, or
- a :class:`streams.contract.Rejection` whose reason is one of :data:`LINE_REASONS`, for a
  line that cannot be read; it goes to the dead-letter topic with its line number.

The mapping table, the agent-id and caller rules and the event ids are documented in
``docs/adapters.md``. Nothing here does I/O; the only state is :class:`AgentRoster`, the
queues each agent serves, which the caller persists with its file position.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from streams.contract import Rejection

__all__ = [
    "LINE_REASONS",
    "MAPPED_EVENTS",
    "Skipped",
    "QueueLogLine",
    "AgentRoster",
    "QueueLogMapper",
    "parse_line",
    "event_id_of",
    "caller_key",
    "agent_id_of",
]

#: Why a line is refused before it becomes an event (the decoder's reasons come on top).
LINE_REASONS = {
    "not_queue_log": "the line is not queue_log text: not UTF-8, or fewer than five "
                     "'|'-separated fields (epoch|uniqueid|queue|agent|EVENT)",
    "bad_field": "a field the mapping needs cannot be read: an epoch or a number that is not "
                 "one, a malformed event name, or NONE where a call id, queue or agent is needed",
    "missing_field": "a data field the mapping needs is absent or empty",
}

_FIELDS = ("epoch", "uniqueid", "queue", "agent", "event")
_EPOCH = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,9}))?")
_EVENT_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_SECONDS = re.compile(r"-?[0-9]{1,12}")
# Asterisk writes NONE (and, for realtime members, REALTIME) where a line has no call or queue.
_NO_VALUE = frozenset({"", "NONE"})
_NO_CALL = frozenset({"", "NONE", "REALTIME"})
# Caller ids that name no one: hashing them would make every withheld caller one repeat caller.
_ANONYMOUS_CALLERS = frozenset({"", "unknown", "anonymous", "restricted", "private",
                                "<unknown>", "withheld"})
# A transfer target of six digits or more is an outside number, not an extension or a queue;
# the contract forbids raw numbers in ``target``, so it is left out.
_DIALABLE = re.compile(r"\+?[0-9][0-9 ().\-]{5,}")
_CALLER_HASH_HEX = 32


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed line whose event this adapter does not map; counted under ``event``."""

    event: str


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    """The fields of one line. ``data`` holds data1, data2, ... as written (may be empty)."""

    epoch: str
    ts_ms: int
    uniqueid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]
    raw: bytes


class _Refused(Exception):
    """Internal: unwinds a mapping helper with the rejection to report."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def parse_line(raw: bytes) -> QueueLogLine | Rejection:
    """Split one line (without its newline) into fields; the epoch becomes ``ts_ms``.

    Sub-second epochs (``1741079700.250``) keep their milliseconds; finer digits are cut,
    not rounded, so a re-read always gives the same ``ts_ms``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_queue_log", None, f"the line is not UTF-8 ({exc.reason} at byte {exc.start})")
    text = text.rstrip("\r")
    parts = text.split("|")
    if len(parts) < len(_FIELDS):
        return Rejection("not_queue_log", None,
                         f"the line has {len(parts)} '|'-separated field(s); a queue_log line has "
                         "at least 5: epoch|uniqueid|queue|agent|EVENT")
    epoch, uniqueid, queue, agent, event = parts[:5]
    match = _EPOCH.fullmatch(epoch)
    if match is None:
        return Rejection("bad_field", "epoch", f"epoch {epoch[:40]!r} is not Unix seconds "
                                               "(digits, optionally with a fraction)")
    seconds, fraction = match.groups()
    ts_ms = int(seconds) * 1000 + int(((fraction or "") + "000")[:3])
    if _EVENT_NAME.fullmatch(event) is None:
        return Rejection("bad_field", "event", f"event {event[:40]!r} is not an upper-case "
                                               "queue_log event name")
    return QueueLogLine(epoch, ts_ms, uniqueid, queue, agent, event, tuple(parts[5:]), raw)


def caller_key(callerid: str, salt: bytes | None) -> str | None:
    """Pseudonymous caller key: ``h:`` + the first 32 hex digits of HMAC-SHA256(salt, callerid).

    ``None`` without a salt (an unsalted hash of a phone number is reversible by trying every
    number) and for caller ids that name no one (empty, ``unknown``, ``anonymous``...)."""
    if salt is None or callerid.strip().lower() in _ANONYMOUS_CALLERS:
        return None
    digest = hmac.new(salt, callerid.encode("utf-8"), hashlib.sha256).hexdigest()
    return "h:" + digest[:_CALLER_HASH_HEX]


def agent_id_of(member: str) -> str:
    """The contract's ``agent_id`` for a queue member name: ``/`` (as in ``PJSIP/2001``) is
    replaced by ``:``, because the agent id is part of a message key and may not contain ``/``."""
    return member.replace("/", ":")


@dataclass(slots=True)
class _Agent:
    queues: set[str] = field(default_factory=set)
    state: str = "available"


class AgentRoster:
    """Which queues each agent serves and its last state, so ``agent.state`` can carry the
    agent's full list of queues although each queue_log line names at most one."""

    def __init__(self) -> None:
        self._agents: dict[str, _Agent] = {}

    def update(self, agent_id: str, *, join: str | None = None, leave: str | None = None,
               state: str | None = None) -> tuple[str, list[str]]:
        """Apply one change; return the agent's state and sorted queues afterwards.

        ``state=None`` with ``leave`` means: ``logged_out`` when no queue is left, otherwise
        the state the agent already had (leaving one queue of several is not a logout)."""
        agent = self._agents.setdefault(agent_id, _Agent())
        if join is not None:
            agent.queues.add(join)
        if leave is not None:
            agent.queues.discard(leave)
            if state is None and not agent.queues:
                state = "logged_out"
        if state is not None:
            agent.state = state
        return agent.state, sorted(agent.queues)

    def queues(self, agent_id: str) -> list[str]:
        agent = self._agents.get(agent_id)
        return sorted(agent.queues) if agent is not None else []

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy, to be saved with the file position it belongs to."""
        return {name: {"queues": sorted(a.queues), "state": a.state}
                for name, a in sorted(self._agents.items())}

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> "AgentRoster":
        roster = cls()
        for name, entry in snapshot.items():
            roster._agents[name] = _Agent(set(entry["queues"]), entry["state"])
        return roster


class QueueLogMapper:
    """Maps queue_log lines of one Asterisk server to events of one tenant.

    Parameters
    ----------
    tenant
        The ``tenant`` of every event (part of the message key).
    source
        The ``source`` field, naming this adapter to the operator who reads a dead letter.
    caller_salt
        Per-deployment secret for :func:`caller_key`; ``None`` leaves ``caller`` out.
    roster
        Agent membership to continue from (a restart restores the saved one).
    """

    def __init__(self, *, tenant: str, source: str, caller_salt: bytes | None = None,
                 roster: AgentRoster | None = None) -> None:
        self.tenant = tenant
        self.source = source
        self.caller_salt = caller_salt
        self.roster = roster if roster is not None else AgentRoster()

    def map_line(self, raw: bytes) -> dict[str, Any] | Skipped | Rejection:
        """One line (without its newline) -> an event, a skip or a rejection."""
        line = parse_line(raw)
        if isinstance(line, Rejection):
            return line
        handler = _HANDLERS.get(line.event)
        if handler is None:
            return Skipped(line.event)
        event: dict[str, Any] = {
            "event_id": event_id_of(line),
            "type": "",
            "ts_ms": line.ts_ms,
            "tenant": self.tenant,
            "source": self.source,
            "v": 1,
        }
        try:
            handler(self, line, event)
        except _Refused as refused:
            return refused.rejection
        return event

    # -- call events --------------------------------------------------------------------

    def _call(self, line: QueueLogLine, event: dict[str, Any], event_type: str) -> None:
        if line.uniqueid in _NO_CALL:
            raise _Refused(Rejection("bad_field", "uniqueid",
                                     f"{line.event} needs the call's uniqueid, got {line.uniqueid!r}"))
        if line.queue in _NO_VALUE:
            raise _Refused(Rejection("bad_field", "queue",
                                     f"{line.event} needs a queue name, got {line.queue!r}"))
        event["type"] = event_type
        event["call_id"] = line.uniqueid
        event["queue"] = line.queue

    def _enter_queue(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # ENTERQUEUE: url|callerid|position (position since Asterisk 12; older logs lack it).
        self._call(line, event, "call.queued")
        caller = caller_key(_optional(line, 2), self.caller_salt)
        if caller is not None:
            event["caller"] = caller
        position = _optional(line, 3)
        if position:
            event["position"] = _seconds(line, 3, "position")

    def _connect(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # CONNECT: holdtime|bridged uniqueid|ringtime. "holdtime" is the wait in the queue.
        self._call(line, event, "call.answered")
        event["agent_id"] = _agent(line)
        event["wait_ms"] = _seconds(line, 1, "holdtime") * 1000

    def _abandon(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # ABANDON: position|origposition|waittime
        self._call(line, event, "call.abandoned")
        event["wait_ms"] = _seconds(line, 3, "waittime") * 1000

    def _exit(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # EXITWITHTIMEOUT, EXITEMPTY: position|origposition|waittime
        # EXITWITHKEY: key|position|origposition|waittime
        self._call(line, event, "call.dequeued")
        if line.event == "EXITWITHKEY":
            event["reason"] = "key"
            event["wait_ms"] = _seconds(line, 4, "waittime") * 1000
        else:
            event["reason"] = "timeout" if line.event == "EXITWITHTIMEOUT" else "empty"
            event["wait_ms"] = _seconds(line, 3, "waittime") * 1000

    def _complete(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # COMPLETECALLER / COMPLETEAGENT: holdtime|calltime|origposition. calltime is talk
        # time; holdtime is the wait in the queue (already sent with call.answered), not hold.
        self._call(line, event, "call.ended")
        event["agent_id"] = _agent(line)
        event["talk_ms"] = _seconds(line, 2, "calltime") * 1000
        event["x_ended_by"] = "caller" if line.event == "COMPLETECALLER" else "agent"

    def _transfer(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # TRANSFER / BLINDTRANSFER: extension|context|holdtime|calltime|origposition
        self._call(line, event, "call.transferred")
        if line.agent not in _NO_VALUE:
            event["agent_id"] = agent_id_of(line.agent)
        extension = _required(line, 1, "extension")
        if _DIALABLE.fullmatch(extension) is None:
            event["target"] = extension
        if line.event == "BLINDTRANSFER":
            event["kind"] = "blind"

    def _attended_transfer(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        # ATTENDEDTRANSFER: method|target...|holdtime|calltime|origposition, where method is
        # BRIDGE (target: a bridge id), APP (an application), LINK (two channels) or
        # THREEWAY. Only APP names a destination worth showing; the rest are internal ids.
        self._call(line, event, "call.transferred")
        if line.agent not in _NO_VALUE:
            event["agent_id"] = agent_id_of(line.agent)
        method = _required(line, 1, "method")
        event["kind"] = "attended"
        event["x_transfer_method"] = method
        if method == "APP" and _optional(line, 2):
            event["target"] = _optional(line, 2)

    # -- agent events -------------------------------------------------------------------

    def _agent(self, line: QueueLogLine, event: dict[str, Any]) -> None:
        agent_id = _agent(line)
        queue = None if line.queue in _NO_VALUE else line.queue
        name = line.event
        reason = None
        if name in ("AGENTLOGIN", "ADDMEMBER"):
            state, queues = self.roster.update(agent_id, join=queue, state="available")
        elif name == "AGENTLOGOFF":
            state, queues = self.roster.update(agent_id, state="logged_out")
        elif name == "REMOVEMEMBER":
            if queue is None:
                raise _Refused(Rejection("bad_field", "queue",
                                         "REMOVEMEMBER needs the queue the member left, got 'NONE'"))
            state, queues = self.roster.update(agent_id, leave=queue)
        elif name in ("PAUSE", "PAUSEALL"):
            # A member is paused per queue, callslo's agent state is per agent: a pause in
            # any queue makes the agent away (PAUSEALL is followed by one PAUSE per queue).
            state, queues = self.roster.update(agent_id, join=queue, state="away")
            reason = _optional(line, 1)
        else:  # UNPAUSE, UNPAUSEALL
            state, queues = self.roster.update(agent_id, join=queue, state="available")
        event["type"] = "agent.state"
        event["agent_id"] = agent_id
        event["state"] = state
        if reason:
            event["reason"] = reason
        event["queues"] = queues


_Handler = Callable[[QueueLogMapper, QueueLogLine, dict[str, Any]], None]
_HANDLERS: dict[str, _Handler] = {
    "ENTERQUEUE": QueueLogMapper._enter_queue,
    "CONNECT": QueueLogMapper._connect,
    "ABANDON": QueueLogMapper._abandon,
    "EXITWITHTIMEOUT": QueueLogMapper._exit,
    "EXITWITHKEY": QueueLogMapper._exit,
    "EXITEMPTY": QueueLogMapper._exit,
    "COMPLETECALLER": QueueLogMapper._complete,
    "COMPLETEAGENT": QueueLogMapper._complete,
    "TRANSFER": QueueLogMapper._transfer,
    "BLINDTRANSFER": QueueLogMapper._transfer,
    "ATTENDEDTRANSFER": QueueLogMapper._attended_transfer,
    **{name: QueueLogMapper._agent for name in (
        "AGENTLOGIN", "AGENTLOGOFF", "ADDMEMBER", "REMOVEMEMBER",
        "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL")},
}
#: The queue_log events this adapter turns into contract events; every other is skipped.
MAPPED_EVENTS = frozenset(_HANDLERS)


def event_id_of(line: QueueLogLine) -> str:
    """``ast-<uniqueid>-<EVENT>-<epoch>-<16 hex of BLAKE2b(line)>``: the same line always
    gets the same id (a re-read is dropped downstream), two different lines never share one."""
    digest = hashlib.blake2b(line.raw.rstrip(b"\r"), digest_size=8).hexdigest()
    return f"ast-{line.uniqueid}-{line.event}-{line.epoch}-{digest}"


def _agent(line: QueueLogLine) -> str:
    if line.agent in _NO_VALUE:
        raise _Refused(Rejection("bad_field", "agent",
                                 f"{line.event} needs the agent (queue member), got {line.agent!r}"))
    return agent_id_of(line.agent)


def _optional(line: QueueLogLine, number: int) -> str:
    """data<number> (1-based), or '' when the line is shorter."""
    return line.data[number - 1] if len(line.data) >= number else ""


def _required(line: QueueLogLine, number: int, meaning: str) -> str:
    value = _optional(line, number)
    if not value:
        raise _Refused(Rejection("missing_field", f"data{number}",
                                 f"{line.event} needs data{number} ({meaning}); the line has "
                                 f"{len(line.data)} data field(s)"))
    return value


def _seconds(line: QueueLogLine, number: int, meaning: str) -> int:
    value = _required(line, number, meaning)
    if _SECONDS.fullmatch(value) is None:
        raise _Refused(Rejection("bad_field", f"data{number}",
                                 f"{line.event} data{number} ({meaning}) must be a whole number, "
                                 f"got {value[:40]!r}"))
    return int(value)
