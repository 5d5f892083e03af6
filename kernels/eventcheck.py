"""Table-driven checks of scanned events: which messages a flat event contract accepts as is.

:func:`kernels.jsonscan.scan_objects` gives every field of a message as a typed slot; this
kernel applies a contract's rules to those slots for a whole batch at once. The rules come
as tables (:class:`EventRules`) that the contract's own definition builds, so the fast path
and the exact decoder cannot drift apart: per event type and slot, the check a field gets
and whether it is required; per event, the common fields (version, type, id, time, tenant,
source) and the message key the event must carry.

Like the scanner, it only ever *accepts*: a message that fails any check is marked unsure
and goes to the exact decoder, which gives the reason. Accepting is the promise that the
exact decoder would accept the message too and read the same values from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import jit, same_bytes
from .jsonscan import ABSENT, INT, NULL, STRING, STRINGS, ScannedObjects

__all__ = ["NOT_A_FIELD", "IDENTIFIER", "KEY_PART", "DURATION", "SMALL_INT", "TEXT", "ONE_OF",
           "KEY_PART_LIST", "NO_PHONE", "EventRules", "CheckedEvents", "check_events"]

# Check codes of EventRules.checks; NO_PHONE is a flag on IDENTIFIER or TEXT.
NOT_A_FIELD = 0
IDENTIFIER = 1
KEY_PART = 2
DURATION = 3
SMALL_INT = 4
TEXT = 5
ONE_OF = 6
KEY_PART_LIST = 7
NO_PHONE = 0x10
_CHECK_MASK = 0x0F

_SLASH = 47


@dataclass(frozen=True)
class EventRules:
    """A flat event contract as tables over the slots of :func:`~kernels.jsonscan.scan_objects`.

    ``checks[t, j]`` and ``required[t, j]``: the check of slot ``j`` for event type ``t``
    (``NOT_A_FIELD``: the field is not the type's, its value is ignored); ``enum_of[t, j]``:
    the allowed-values table of a ``ONE_OF`` check (values sorted; an accepted value's code
    is its index). ``group_slot[t]`` names the field that, after the tenant, makes the
    message key (``<tenant>/<value>``, or ``<tenant>/agent/<value>`` where ``agent_key[t]``);
    ``coded_slot[t]`` is the ``ONE_OF`` field whose code is reported (-1: none).
    """

    names: tuple[bytes, ...]
    type_names: tuple[bytes, ...]
    version_slot: int
    type_slot: int
    id_slot: int
    ts_slot: int
    tenant_slot: int
    source_slot: int
    checks: np.ndarray
    required: np.ndarray
    enum_of: np.ndarray
    enums: tuple[tuple[bytes, ...], ...]
    group_slot: np.ndarray
    agent_key: np.ndarray
    coded_slot: np.ndarray
    default_tenant: bytes
    max_identifier_chars: int
    max_text_chars: int
    max_duration: int
    max_small_int: int
    max_list_items: int


@dataclass(frozen=True, slots=True)
class CheckedEvents:
    """Per message: ``accepted``; for accepted ones the type code, the code of the type's
    coded field (-1: absent), and the tenant's byte span (the default tenant's span, past
    the messages, when the event names none)."""

    accepted: np.ndarray
    type_code: np.ndarray
    code: np.ndarray
    tenant_start: np.ndarray
    tenant_end: np.ndarray


def _table(values: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blob = b"".join(values)
    ends = np.cumsum([len(v) for v in values], dtype=np.int64)
    starts = ends - np.asarray([len(v) for v in values], dtype=np.int64)
    return np.frombuffer(blob, dtype=np.uint8).copy(), starts, ends


def check_events(buf: np.ndarray, scanned: ScannedObjects, rules: EventRules,
                 key_buf: np.ndarray, key_starts: np.ndarray, key_ends: np.ndarray,
                 max_message_bytes: int, message_bytes: np.ndarray, now_ms: int,
                 ts_min_ms: int, ts_max_ms: int, check_key: bool,
                 default_start: int) -> CheckedEvents:
    """Apply ``rules`` to ``scanned`` (messages of ``buf``). ``key_buf[key_starts[m]:
    key_ends[m]]`` is message ``m``'s key (``key_starts[m] < 0``: none); ``ts_ms`` must lie
    in ``[ts_min_ms, ts_max_ms]``; ``buf[default_start:]`` begins with the default tenant."""
    n = scanned.unsure.size
    if scanned.kind.shape != (n, len(rules.names)):
        raise ValueError("scanned slots do not match the rules' names")
    if buf[default_start:default_start + len(rules.default_tenant)].tobytes() != rules.default_tenant:
        raise ValueError("buf does not hold the default tenant at default_start")
    type_buf, type_starts, type_ends = _table(rules.type_names)
    width = max((len(e) for e in rules.enums), default=0)
    enum_starts = np.zeros((max(len(rules.enums), 1), max(width, 1)), dtype=np.int64)
    enum_ends = np.zeros_like(enum_starts)
    enum_counts = np.zeros(max(len(rules.enums), 1), dtype=np.int64)
    enum_blob = b""
    for t, values in enumerate(rules.enums):
        enum_counts[t] = len(values)
        for i, v in enumerate(values):
            enum_starts[t, i] = len(enum_blob)
            enum_blob += v
            enum_ends[t, i] = len(enum_blob)
    enum_buf = np.frombuffer(enum_blob or b"\0", dtype=np.uint8).copy()
    accepted = np.zeros(n, dtype=np.bool_)
    type_code = np.full(n, -1, dtype=np.int8)
    code = np.full(n, -1, dtype=np.int8)
    tenant_start = np.zeros(n, dtype=np.int64)
    tenant_end = np.zeros(n, dtype=np.int64)
    limits = np.asarray([rules.max_identifier_chars, rules.max_text_chars, rules.max_duration,
                         rules.max_small_int, rules.max_list_items, max_message_bytes,
                         ts_min_ms, ts_max_ms, 1 if check_key else 0, default_start,
                         default_start + len(rules.default_tenant)], dtype=np.int64)
    slots = np.asarray([rules.version_slot, rules.type_slot, rules.id_slot, rules.ts_slot,
                        rules.tenant_slot, rules.source_slot], dtype=np.int64)
    _check(buf, scanned.kind, scanned.start, scanned.end, scanned.value, scanned.printable,
           scanned.items, scanned.unsure, np.ascontiguousarray(message_bytes, dtype=np.int64),
           key_buf, np.ascontiguousarray(key_starts, dtype=np.int64),
           np.ascontiguousarray(key_ends, dtype=np.int64), type_buf, type_starts, type_ends,
           rules.checks.astype(np.int64), rules.required.astype(np.bool_),
           rules.enum_of.astype(np.int64), enum_buf, enum_starts, enum_ends, enum_counts,
           rules.group_slot.astype(np.int64), rules.agent_key.astype(np.bool_),
           rules.coded_slot.astype(np.int64), slots, limits,
           accepted, type_code, code, tenant_start, tenant_end)
    return CheckedEvents(accepted, type_code, code, tenant_start, tenant_end)


# --- kernels ---------------------------------------------------------------


@jit
def _has_slash(buf, s, e):
    for q in range(s, e):
        if buf[q] == _SLASH:
            return True
    return False


@jit
def _phone_class(c):
    # [0-9 ().\-/]
    return (48 <= c <= 57) or c == 32 or c == 40 or c == 41 or c == 46 or c == 45 or c == 47


@jit
def _looks_like_phone_number(buf, s, e):
    """``re.fullmatch(r"(?:tel:|sip:)?\\+?\\(?[0-9][0-9 ().\\-/]{5,}(?:@.*)?", value)`` on a
    value without line breaks. Each optional part can only be taken when present (what
    follows it cannot start with its own character), so one greedy pass decides."""
    p = s
    if e - p >= 4 and buf[p + 3] == 58 and (
            (buf[p] == 116 and buf[p + 1] == 101 and buf[p + 2] == 108)      # tel:
            or (buf[p] == 115 and buf[p + 1] == 105 and buf[p + 2] == 112)):  # sip:
        p += 4
    if p < e and buf[p] == 43:  # '+'
        p += 1
    if p < e and buf[p] == 40:  # '('
        p += 1
    if p >= e or buf[p] < 48 or buf[p] > 57:
        return False
    p += 1
    run = 0
    while p < e and _phone_class(buf[p]):
        run += 1
        p += 1
    if run < 5:
        return False
    return p == e or buf[p] == 64  # '@' then anything


@jit
def _string_ok(check, chars, printable, buf, s, e, limits):
    """IDENTIFIER, KEY_PART or TEXT on a STRING slot (the NO_PHONE flag included)."""
    base = check & _CHECK_MASK
    if base == TEXT:
        if chars > limits[1]:
            return False
    else:
        if chars < 1 or chars > limits[0] or not printable:
            return False
        if base == KEY_PART and _has_slash(buf, s, e):
            return False
    if check & NO_PHONE and _looks_like_phone_number(buf, s, e):
        return False
    return True


@jit
def _check(buf, kind, start, end, value, printable, items, unsure, message_bytes, key_buf,
           key_starts, key_ends, type_buf, type_starts, type_ends, checks, required, enum_of,
           enum_buf, enum_starts, enum_ends, enum_counts, group_slot, agent_key, coded_slot,
           slots, limits, accepted, type_code, code, tenant_start, tenant_end):
    version_slot, type_slot, id_slot, ts_slot, tenant_slot, source_slot = (
        slots[0], slots[1], slots[2], slots[3], slots[4], slots[5])
    n_slots = kind.shape[1]
    for m in range(unsure.size):
        if unsure[m] or message_bytes[m] > limits[5]:
            continue
        # v: absent, null or the integer 1
        vk = kind[m, version_slot]
        if not (vk == ABSENT or vk == NULL or (vk == INT and value[m, version_slot] == 1)):
            continue
        if kind[m, type_slot] != STRING:
            continue
        t = -1
        for candidate in range(type_starts.size):
            if same_bytes(buf, start[m, type_slot], end[m, type_slot], type_buf,
                      type_starts[candidate], type_ends[candidate]):
                t = candidate
                break
        if t < 0:
            continue
        if kind[m, id_slot] != STRING or not _string_ok(
                IDENTIFIER, value[m, id_slot], printable[m, id_slot], buf, start[m, id_slot],
                end[m, id_slot], limits):
            continue
        if kind[m, ts_slot] != INT or not (limits[6] <= value[m, ts_slot] <= limits[7]):
            continue
        tk = kind[m, tenant_slot]
        if tk == ABSENT or tk == NULL:
            ts_, te_ = limits[9], limits[10]
        elif tk == STRING and _string_ok(KEY_PART, value[m, tenant_slot],
                                         printable[m, tenant_slot], buf, start[m, tenant_slot],
                                         end[m, tenant_slot], limits):
            ts_, te_ = start[m, tenant_slot], end[m, tenant_slot]
        else:
            continue
        sk = kind[m, source_slot]
        if not (sk == ABSENT or sk == NULL or (sk == STRING and value[m, source_slot] <= limits[1])):
            continue
        ok = True
        coded = -1
        for j in range(n_slots):
            check = checks[t, j]
            if check == NOT_A_FIELD:
                continue
            k = kind[m, j]
            if k == ABSENT or k == NULL:
                if required[t, j]:
                    ok = False
                    break
                continue
            base = check & _CHECK_MASK
            if base == DURATION or base == SMALL_INT:
                top = limits[2] if base == DURATION else limits[3]
                if k != INT or value[m, j] < 0 or value[m, j] > top:
                    ok = False
                    break
            elif base == ONE_OF:
                if k != STRING:
                    ok = False
                    break
                table = enum_of[t, j]
                found = -1
                for i in range(enum_counts[table]):
                    if same_bytes(buf, start[m, j], end[m, j], enum_buf, enum_starts[table, i],
                              enum_ends[table, i]):
                        found = i
                        break
                if found < 0:
                    ok = False
                    break
                if j == coded_slot[t]:
                    coded = found
            elif base == KEY_PART_LIST:
                if k != STRINGS or end[m, j] - start[m, j] > limits[4]:
                    ok = False
                    break
                for item in range(start[m, j], end[m, j]):
                    if not _string_ok(KEY_PART, items[item, 2], items[item, 3] == 1, buf,
                                      items[item, 0], items[item, 1], limits):
                        ok = False
                        break
                if not ok:
                    break
            else:
                if k != STRING or not _string_ok(check, value[m, j], printable[m, j], buf,
                                                 start[m, j], end[m, j], limits):
                    ok = False
                    break
        if not ok:
            continue
        if limits[8]:
            ks, ke = key_starts[m], key_ends[m]
            if ks < 0:
                continue
            g = group_slot[t]
            gs, ge = start[m, g], end[m, g]
            middle = 7 if agent_key[t] else 1  # "/agent/" or "/"
            if ke - ks != (te_ - ts_) + middle + (ge - gs):
                continue
            if not same_bytes(key_buf, ks, ks + te_ - ts_, buf, ts_, te_):
                continue
            p = ks + te_ - ts_
            if agent_key[t]:
                if not (key_buf[p] == 47 and key_buf[p + 1] == 97 and key_buf[p + 2] == 103
                        and key_buf[p + 3] == 101 and key_buf[p + 4] == 110
                        and key_buf[p + 5] == 116 and key_buf[p + 6] == 47):
                    continue
            elif key_buf[p] != 47:
                continue
            if not same_bytes(key_buf, p + middle, ke, buf, gs, ge):
                continue
        accepted[m] = True
        type_code[m] = t
        code[m] = coded
        tenant_start[m] = ts_
        tenant_end[m] = te_
