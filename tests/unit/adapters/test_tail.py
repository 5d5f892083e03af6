"""The file follower on temp files: partial lines, rotation, truncation, restart from saved state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.adapters.tail import FileFollower, Position, load_state, save_state
from streams.errors import CallsloError


class FakeClock:
    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self) -> float:
        return self.ms


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def texts(lines) -> list[tuple[int, bytes]]:
    return [(line.number, line.data) for line in lines]


def lines_of(*numbers: int) -> bytes:
    return b"".join(b"line %d\n" % n for n in numbers)


def test_partial_last_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(b"one\ntw")
    f = FileFollower(log)
    assert texts(f.poll(100)) == [(1, b"one")]
    assert f.position().pending == b"tw"
    assert f.poll(100) == []
    append(log, b"o\nthree\n")
    assert texts(f.poll(100)) == [(2, b"two"), (3, b"three")]
    f.close()


def test_a_missing_file_is_waited_for(tmp_path):
    log = tmp_path / "queue_log"
    f = FileFollower(log)
    assert f.poll(10) == []
    log.write_bytes(b"first\n")
    assert texts(f.poll(10)) == [(1, b"first")]
    f.close()


def test_max_lines_bounds_a_poll_and_the_position_covers_only_what_was_returned(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1, 2, 3, 4, 5))
    f = FileFollower(log)
    assert texts(f.poll(2)) == [(1, b"line 1"), (2, b"line 2")]
    saved = f.position()
    f.close()
    again = FileFollower(log, position=saved)
    assert texts(again.poll(100)) == [(3, b"line 3"), (4, b"line 4"), (5, b"line 5")]
    again.close()


def test_rotation_finishes_the_old_file_first(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1, 2))
    f = FileFollower(log, clock=FakeClock())
    assert texts(f.poll(100)) == [(1, b"line 1"), (2, b"line 2")]
    os.rename(log, tmp_path / "queue_log.1")
    # The logger writes to the renamed file until it reopens the path.
    append(tmp_path / "queue_log.1", lines_of(3) + b"partial")
    log.write_bytes(b"new 1\nnew 2\n")
    got = f.poll(100)
    assert texts(got) == [(3, b"line 3"), (4, b"partial"), (1, b"new 1"), (2, b"new 2")]
    assert [line.path for line in got] == [str(tmp_path / "queue_log.1")] * 2 + [str(log)] * 2
    assert any("rotated" in n for n in f.notices)
    f.close()


def test_rotation_to_an_empty_file_waits_out_the_grace_period(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1))
    clock = FakeClock()
    f = FileFollower(log, rotate_grace_ms=1000, clock=clock)
    assert len(f.poll(100)) == 1
    os.rename(log, tmp_path / "queue_log.1")
    log.write_bytes(b"")
    assert f.poll(100) == []  # grace starts
    clock.ms += 500
    append(tmp_path / "queue_log.1", lines_of(2))  # a late write to the old file
    assert texts(f.poll(100)) == [(2, b"line 2")]
    clock.ms += 999
    assert f.poll(100) == []
    clock.ms += 2
    assert f.poll(100) == []  # switched to the empty new file
    assert f.position().path == str(log)
    append(log, b"new 1\n")
    assert texts(f.poll(100)) == [(1, b"new 1")]
    f.close()


def test_rotation_without_a_new_file_keeps_reading_the_old_one(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1))
    f = FileFollower(log, rotate_grace_ms=0, clock=FakeClock())
    f.poll(100)
    os.rename(log, tmp_path / "queue_log.1")
    append(tmp_path / "queue_log.1", lines_of(2))
    assert texts(f.poll(100)) == [(2, b"line 2")]
    log.write_bytes(lines_of(1))
    assert texts(f.poll(100)) == [(1, b"line 1")]
    f.close()


def test_truncation_restarts_at_the_beginning(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1, 2, 3) + b"cut")
    f = FileFollower(log)
    assert len(f.poll(100)) == 3
    with open(log, "r+b") as fh:  # copytruncate
        fh.truncate(0)
    append(log, b"fresh\n")
    assert texts(f.poll(100)) == [(4, b"cut"), (1, b"fresh")]
    assert any("truncated" in n for n in f.notices)
    f.close()


def test_truncation_that_already_grew_back_is_seen_by_its_first_bytes(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(b"1741079000|a\n")
    f = FileFollower(log)
    assert len(f.poll(100)) == 1
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, b"1741079999|b\n1741079999|c\n")  # longer than what was read
    assert texts(f.poll(100)) == [(1, b"1741079999|b"), (2, b"1741079999|c")]
    f.close()


def test_restart_from_saved_state_has_no_gap_and_no_repeat(tmp_path):
    log = tmp_path / "queue_log"
    state = tmp_path / "state" / "pos.json"
    log.write_bytes(lines_of(1, 2) + b"li")
    f = FileFollower(log)
    assert texts(f.poll(100)) == [(1, b"line 1"), (2, b"line 2")]
    save_state(state, f.position(), {"roster": {"x": 1}})
    f.close()
    append(log, b"ne 3\n" + lines_of(4))
    position, extra = load_state(state)
    assert extra == {"roster": {"x": 1}} and position.pending == b"li"
    again = FileFollower(log, position=position)
    assert texts(again.poll(100)) == [(3, b"line 3"), (4, b"line 4")]
    again.close()


def test_restart_after_a_rotation_while_stopped_finishes_the_renamed_file(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1))
    f = FileFollower(log)
    f.poll(100)
    saved = f.position()
    f.close()
    append(log, lines_of(2))
    os.rename(log, tmp_path / "queue_log.1")
    log.write_bytes(b"new 1\n")
    again = FileFollower(log, position=saved, clock=FakeClock())
    got = again.poll(100)
    assert texts(got) == [(2, b"line 2"), (1, b"new 1")]
    assert got[0].path == str(tmp_path / "queue_log.1")
    again.close()


def test_restart_when_the_old_file_is_gone_keeps_the_saved_partial_line(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1) + b"half")
    f = FileFollower(log)
    f.poll(100)
    saved = f.position()
    f.close()
    (tmp_path / "new").write_bytes(b"new 1\n")  # created first: it cannot reuse the inode
    log.unlink()
    os.rename(tmp_path / "new", log)
    again = FileFollower(log, position=saved)
    assert texts(again.poll(100)) == [(2, b"half"), (1, b"new 1")]
    assert any("gone" in n for n in again.notices)
    again.close()


def test_restart_after_truncation_while_stopped_starts_over(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1, 2))
    f = FileFollower(log)
    f.poll(100)
    saved = f.position()
    f.close()
    with open(log, "r+b") as fh:
        fh.truncate(0)
    append(log, b"x\n")
    again = FileFollower(log, position=saved)
    assert texts(again.poll(100)) == [(1, b"x")]
    again.close()


def test_start_at_end_skips_existing_whole_lines_and_counts_them(tmp_path):
    log = tmp_path / "queue_log"
    log.write_bytes(lines_of(1, 2) + b"pa")
    f = FileFollower(log, start_at_end=True)
    assert f.poll(100) == []
    append(log, b"rt\n")
    assert texts(f.poll(100)) == [(3, b"part")]
    f.close()


def test_state_file_round_trip_and_errors(tmp_path):
    state = tmp_path / "s.json"
    assert load_state(state) is None
    position = Position("/x/queue_log", 1, 2, 30, 4, b"\xffpartial", b"head")
    save_state(state, position, {"file": "/x/queue_log"})
    assert load_state(state) == (position, {"file": "/x/queue_log"})
    assert not list(tmp_path.glob(".*.tmp"))
    state.write_text("{broken")
    with pytest.raises(CallsloError, match="unreadable"):
        load_state(state)
