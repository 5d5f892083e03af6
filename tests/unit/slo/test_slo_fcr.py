"""First-contact resolution against a plain reference: the same records whatever the order in
which the source partitions' contacts and marks arrive, resends changing nothing; a record is
final only a window after its interval."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contacts import Contact, ContactBatch, contact_messages, decode_contacts, encode_contacts
from streams.errors import BatchFormatError
from streams.slo.fcr import FcrState

I_MS = 900_000
HOUR_MS = 3_600_000
WINDOW_S = 6 * 3600
T0 = 1_767_600_000_000 - 1_767_600_000_000 % I_MS
EXAMPLES = settings(derandomize=True, database=None, deadline=None, max_examples=150)


def reference(contacts: list[Contact], window_s: int = WINDOW_S) -> dict[tuple, tuple[int, int]]:
    """(tenant, queue, interval start) -> (resolved, unresolved), straight from the definition:
    a contact is unresolved when its caller contacts the tenant again within the window."""
    window_ms = window_s * 1000
    earliest: dict[tuple, Contact] = {}
    for c in contacts:
        key = (c.tenant, c.caller, c.call_id)
        if key not in earliest or (c.ts_ms, c.queue) < (earliest[key].ts_ms, earliest[key].queue):
            earliest[key] = c
    kept = list(earliest.values())
    out: dict[tuple, list[int]] = {}
    for c in kept:
        called_again = any(d.tenant == c.tenant and d.caller == c.caller
                           and (d.ts_ms, d.call_id) > (c.ts_ms, c.call_id)
                           and d.ts_ms - c.ts_ms < window_ms for d in kept)
        counts = out.setdefault((c.tenant, c.queue, c.ts_ms - c.ts_ms % I_MS), [0, 0])
        counts[1 if called_again else 0] += 1
    return {k: (f, r) for k, (f, r) in out.items()}


def state(partitions: int = 3) -> FcrState:
    return FcrState(window_s=WINDOW_S, interval_s=I_MS // 1000, source_partitions=partitions)


def as_counts(records) -> dict[tuple, tuple[int, int]]:
    out = {}
    for r in records:
        key = (r["tenant"], r["queue"], r["interval_start_ms"])
        assert key not in out, f"two records for {key}"
        assert r["contacts"] == r["resolved_calls"] + r["unresolved_calls"]
        assert r["interval_end_ms"] == r["interval_start_ms"] + I_MS
        assert r["first_contact_resolution"] == r["resolved_calls"] / r["contacts"]
        out[key] = (r["resolved_calls"], r["unresolved_calls"])
    return out


def streams_of(contacts_by_partition: dict[int, list[Contact]], rng: random.Random,
               chunk: int = 3) -> dict[int, list[ContactBatch]]:
    """Each source partition's messages as its engine sends them: contacts in its order, each
    message with the mark its future contacts keep (never above one of them), and a last mark
    past everything."""
    out = {}
    for p, contacts in contacts_by_partition.items():
        messages = []
        for i in range(0, len(contacts), chunk):
            rest = contacts[i + chunk:]
            mark = None
            if rest and rng.random() < 0.7:
                low = min(c.ts_ms for c in rest)
                mark = low - low % I_MS
            messages.append(ContactBatch(p, tuple(contacts[i:i + chunk]), mark))
        messages.append(ContactBatch(p, (), T0 + 1000 * HOUR_MS))
        out[p] = messages
    return out


def interleave(streams: dict[int, list[ContactBatch]], rng: random.Random,
               resend: float = 0.0) -> list[ContactBatch]:
    """One arrival order: each partition's messages in order, partitions mixed; with
    ``resend``, some earlier messages of a partition come again later (an engine re-applying
    batches after a restart)."""
    positions = {p: 0 for p in streams}
    out: list[ContactBatch] = []
    while any(positions[p] < len(m) for p, m in streams.items()):
        p = rng.choice([p for p, m in streams.items() if positions[p] < len(m)])
        out.append(streams[p][positions[p]])
        positions[p] += 1
        if resend and rng.random() < resend and positions[p] > 1:
            out.append(streams[p][rng.randrange(positions[p] - 1)])
    return out


contacts_strategy = st.lists(st.tuples(
    st.sampled_from(["acme", "globex"]), st.sampled_from(["c1", "c2", "c3", "c4"]),
    st.integers(0, 40), st.sampled_from(["support", "sales", "billing"]),
    st.integers(0, 30 * HOUR_MS // 60_000), st.integers(0, 2)), max_size=60)


@EXAMPLES
@given(raw=contacts_strategy, seed=st.integers(0, 10_000))
def test_any_arrival_order_gives_the_reference_records(raw, seed):
    rng = random.Random(seed)
    by_partition: dict[int, list[Contact]] = {0: [], 1: [], 2: []}
    for tenant, caller, call, queue, minute, partition in raw:
        # A call id comes again only within its hour: "the same call" is never a window apart.
        by_partition[partition].append(Contact(tenant, caller, f"call{call}-{minute // 60}",
                                               queue, T0 + minute * 60_000))
    everything = [c for cs in by_partition.values() for c in cs]
    for contacts in by_partition.values():
        # An engine reports its contacts roughly in time order (disorder within an interval).
        contacts.sort(key=lambda c: c.ts_ms // I_MS)
    streams = streams_of(by_partition, rng)
    expected = reference(everything)
    for resend in (0.0, 0.3):
        fcr = state()
        records = []
        for message in interleave(streams, rng, resend):
            records += fcr.apply(message)
        assert as_counts(records) == expected
        assert not fcr.pending
    replayed = state()
    for c in everything:
        replayed.add(c)
    assert as_counts(replayed.finish()) == expected


def test_nothing_is_final_before_every_source_partition_has_a_mark():
    window_ms = WINDOW_S * 1000
    fcr = state(partitions=2)
    c = Contact("acme", "c1", "x", "support", T0 + 60_000)
    assert fcr.apply(ContactBatch(0, (c,), T0 + 100 * I_MS)) == []
    [record] = fcr.apply(ContactBatch(1, (), T0 + I_MS + window_ms))
    assert (record["resolved_calls"], record["unresolved_calls"]) == (1, 0)
    assert record["fcr_window_s"] == WINDOW_S and record["schema"] == "slo.queue-fcr.v1"


def test_a_record_waits_a_window_after_its_interval_and_blames_the_first_queue():
    window_ms = WINDOW_S * 1000
    fcr = state(partitions=1)
    first = Contact("acme", "c1", "x", "billing", T0 + 60_000)
    again = Contact("acme", "c1", "y", "support", T0 + window_ms - 1)
    # The interval of the first call ended, but its caller may still call again.
    assert fcr.apply(ContactBatch(0, (first,), T0 + 2 * I_MS)) == []
    assert fcr.apply(ContactBatch(0, (again,), T0 + window_ms)) == []
    records = fcr.apply(ContactBatch(0, (), T0 + I_MS + window_ms))
    # The call that did not settle the matter is the billing queue's, not the support queue's.
    assert as_counts(records) == {("acme", "billing", T0): (0, 1)}
    later = fcr.apply(ContactBatch(0, (), T0 + 2 * window_ms + I_MS))
    assert as_counts(later) == {("acme", "support", T0 + window_ms - I_MS): (1, 0)}


def test_the_window_is_exclusive_and_other_tenants_are_other_callers():
    window_ms = WINDOW_S * 1000
    fcr = state(partitions=1)
    for i, (tenant, ts) in enumerate([("acme", 0), ("acme", window_ms - 1), ("acme", 2 * window_ms - 1),
                                      ("globex", window_ms)]):
        fcr.add(Contact(tenant, "c1", f"call{i}", "q", T0 + ts))
    counts = as_counts(fcr.finish())
    # 0 is called again window-1 later: unresolved; that one's next call is exactly a window
    # later: resolved, as is the last one of acme and the one of globex.
    assert sum(f for f, _ in counts.values()) == 3 and sum(r for _, r in counts.values()) == 1
    assert counts[("acme", "q", T0)] == (0, 1)
    assert counts[("globex", "q", T0 + window_ms - window_ms % I_MS)] == (1, 0)


def test_a_call_moved_to_another_queue_is_one_contact_counted_where_it_came_first():
    fcr = state(partitions=1)
    later = Contact("acme", "c1", "x", "billing", T0 + 5 * 60_000)
    first = Contact("acme", "c1", "x", "support", T0 + 60_000)
    records = fcr.apply(ContactBatch(0, (later, first), T0 + I_MS + WINDOW_S * 1000))
    assert as_counts(records) == {("acme", "support", T0): (1, 0)}
    assert fcr.counts["same_call"] == 1 and fcr.counts["contacts"] == 1


def test_contacts_before_the_watermark_are_resends_and_old_callers_are_forgotten():
    fcr = state(partitions=1)
    c = Contact("acme", "c1", "x", "support", T0)
    fcr.apply(ContactBatch(0, (c,), T0 + I_MS))
    assert fcr.apply(ContactBatch(0, (c,), None)) == []
    assert fcr.counts["resent"] == 1
    assert fcr.apply(ContactBatch(0, (), T0 + WINDOW_S * 1000)) == []
    assert fcr.callers != {}  # a later call within the window may still come
    [record] = fcr.apply(ContactBatch(0, (), T0 + WINDOW_S * 1000 + I_MS))
    assert record["resolved_calls"] == 1
    assert fcr.callers == {}  # judged, and no call to come can be the same one


def test_contact_messages_route_by_tenant_and_send_marks_everywhere():
    contacts = [Contact(t, "c", f"x{i}", "q", T0) for i, t in enumerate(["acme", "globex"] * 3)]
    messages = contact_messages(4, contacts, None, 8)
    assert sum(len(decode_contacts(v).contacts) for v in messages.values()) == 6
    assert len(messages) <= 2
    marked = contact_messages(4, [], T0, 8)
    assert sorted(marked) == list(range(8))
    assert all(decode_contacts(v) == ContactBatch(4, (), T0) for v in marked.values())
    batch = ContactBatch(1, tuple(contacts), None)
    assert decode_contacts(encode_contacts(batch)) == batch


@pytest.mark.parametrize("value", [b"XXXX{}", b"CSC1{", b"CSC1{}", b'CSC1{"source_partition":0,'
                                   b'"mark_ms":null,"contacts":[[1]]}'])
def test_damaged_contact_messages_raise(value):
    with pytest.raises(BatchFormatError):
        decode_contacts(value)
