"""Following a growing log file by polling: complete lines out, across rotation and truncation.

:class:`FileFollower` reads a file the way ``tail -F`` does, without inotify:

- only complete lines (ending in ``\\n``) are returned; a partial last line waits for the rest;
- **rotation** (the path now names another file: a new device/inode, or no file yet): the old
  file stays open and is read to its end first; the follower switches to the new file once it
  has data, or once the old one has been silent for ``rotate_grace_ms`` (a logger may write a
  few more lines to the renamed file before it reopens the path);
- **truncation** (same inode, but smaller than what was read, or different first bytes, as
  after ``copytruncate``): reading restarts at byte 0 with line number 1.

When a file is left (rotation) or cut (truncation) with a partial line pending, that partial
line is returned as a last line: its bytes are all there will ever be.

:meth:`FileFollower.position` describes exactly the lines returned so far, as a
:class:`Position` (device, inode, byte offset, line number, the bytes read but not yet returned,
and the file's first bytes). Saved with :func:`save_state` after the lines are dealt with and
given back to :class:`FileFollower` after a restart, it resumes with the next line: no gap, no
repeat. If the file was rotated while the follower was down, the old file is looked for by
its inode in the same directory (``queue_log.1`` after a rename) and finished first.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import orjson

from streams.errors import CallsloError

__all__ = ["Line", "Position", "FileFollower", "save_state", "load_state"]

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024
# The first bytes of the file are compared to detect a copytruncate that has already grown
# back past the old offset (same inode, size no smaller, different content).
_HEAD_BYTES = 64
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Line:
    """One complete line: its 1-based number in its file, the bytes without ``\\n``, and the
    path it was read from (the rotated name while an old file is finished)."""

    number: int
    data: bytes
    path: str


@dataclass(frozen=True, slots=True)
class Position:
    """Where a follower stands: ``offset`` bytes of file ``(device, inode)`` have been read;
    ``pending`` are the read bytes not yet returned as lines (normally a partial last line);
    ``line_number`` is the number of the last line returned; ``head`` the file's first bytes."""

    path: str
    device: int
    inode: int
    offset: int
    line_number: int
    pending: bytes
    head: bytes

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "device": self.device, "inode": self.inode,
                "offset": self.offset, "line_number": self.line_number,
                "pending_b64": base64.b64encode(self.pending).decode(),
                "head_b64": base64.b64encode(self.head).decode()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Position":
        return cls(str(data["path"]), int(data["device"]), int(data["inode"]),
                   int(data["offset"]), int(data["line_number"]),
                   base64.b64decode(data["pending_b64"]), base64.b64decode(data["head_b64"]))


class FileFollower:
    """Polls ``path`` for new complete lines. Not thread-safe; call :meth:`close` when done.

    ``position`` resumes from a saved :class:`Position`; without it the file is read from its
    start (``start_at_end=True`` skips what it already holds). ``clock`` returns monotonic
    milliseconds (tests pass a fake one).
    """

    def __init__(self, path: str | os.PathLike[str], *, position: Position | None = None,
                 start_at_end: bool = False, rotate_grace_ms: int = 2000,
                 clock: Callable[[], float] | None = None) -> None:
        self.path = os.fspath(path)
        self.rotate_grace_ms = rotate_grace_ms
        self._clock = clock or (lambda: time.monotonic() * 1000)
        self._fh: BinaryIO | None = None
        self._reading = self.path  # the name the open file had when opened or found
        self._ident = (0, 0)
        self._offset = 0
        self._line_number = 0
        self._buffer = b""
        self._head = b""
        self._idle_since: float | None = None
        #: Events worth an operator's attention: rotations, truncations, lost rotated files.
        self.notices: list[str] = []
        if position is not None:
            self._resume(position)
        else:
            self._open_path(at_end=start_at_end)

    # -- public --------------------------------------------------------------------------

    def poll(self, max_lines: int) -> list[Line]:
        """Up to ``max_lines`` complete lines available now (possibly none)."""
        lines: list[Line] = []
        while len(lines) < max_lines:
            line = self._next_line()
            if line is not None:
                lines.append(line)
                continue
            if self._truncated():
                self._restart_after_truncation(lines)
                continue
            self._note_rename()
            if self._read_chunk():
                continue
            if not self._at_end_of_file(lines):
                break
        return lines

    def position(self) -> Position:
        """The position just after the last line :meth:`poll` returned."""
        return Position(self._reading, self._ident[0], self._ident[1], self._offset,
                        self._line_number, self._buffer, self._head)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # -- reading ------------------------------------------------------------------------

    def _next_line(self) -> Line | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        data, self._buffer = self._buffer[:end], self._buffer[end + 1:]
        self._line_number += 1
        return Line(self._line_number, data, self._reading)

    def _read_chunk(self) -> bool:
        if self._fh is None:
            return False
        chunk = self._fh.read(_CHUNK_BYTES)
        if not chunk:
            return False
        if len(self._head) < _HEAD_BYTES and self._offset == len(self._head):
            self._head += chunk[:_HEAD_BYTES - len(self._head)]
        self._offset += len(chunk)
        self._buffer += chunk
        self._idle_since = None
        return True

    def _flush_partial(self, lines: list[Line]) -> None:
        """The file is being left or was cut: a partial line pending is all there is of it."""
        if self._buffer:
            self._line_number += 1
            lines.append(Line(self._line_number, self._buffer, self._reading))
            self._buffer = b""

    def _at_end_of_file(self, lines: list[Line]) -> bool:
        """Nothing more to read from the open file: check for rotation or truncation.
        True when the follower moved (the caller keeps reading), False to wait."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._fh is None:
            if st is None:
                return False
            self._flush_partial(lines)  # bytes saved from a file that is gone
            self._open_path(at_end=False)
            return True
        if st is not None and (st.st_dev, st.st_ino) == self._ident:
            return False
        # The path names another file, or none: the open one was rotated away.
        now = self._clock()
        if self._idle_since is None:
            self._idle_since = now
        new_has_data = st is not None and st.st_size > 0
        if not new_has_data and now - self._idle_since < self.rotate_grace_ms:
            return False
        if st is None:
            return False  # nothing to switch to yet; keep reading the old file
        self.notices.append(f"{self._reading} was rotated after line {self._line_number}; "
                            f"following the new {self.path}")
        self._flush_partial(lines)
        self.close()
        self._open_path(at_end=False)
        return True

    def _truncated(self) -> bool:
        """The open file is shorter than what was read, or starts with other bytes."""
        if self._fh is None:
            return False
        fd = self._fh.fileno()
        if os.fstat(fd).st_size < self._offset:
            return True
        return bool(self._head) and os.pread(fd, len(self._head), 0) != self._head

    def _note_rename(self) -> None:
        """Once the path names another file, report lines of the open one under its new name
        (``queue_log.1``), where the operator will find them."""
        if self._fh is None or self._reading != self.path:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self._ident:
            found = self._name_of(self._ident, [])
            if found is not None:
                self._reading = found

    def _restart_after_truncation(self, lines: list[Line]) -> None:
        assert self._fh is not None
        self.notices.append(f"{self._reading} was truncated after line {self._line_number} "
                            f"(byte {self._offset}); reading it again from the start")
        self._flush_partial(lines)
        self._fh.seek(0)
        self._offset, self._line_number, self._head = 0, 0, b""

    def _open_path(self, *, at_end: bool) -> None:
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            self._fh, self._ident, self._offset = None, (0, 0), 0
            return
        except OSError as exc:
            raise CallsloError(f"cannot read {self.path}: {exc.strerror}") from exc
        st = os.fstat(fh.fileno())
        self._fh, self._reading, self._ident = fh, self.path, (st.st_dev, st.st_ino)
        self._offset, self._line_number, self._buffer, self._idle_since = 0, 0, b"", None
        self._head = b""
        if at_end:
            # Skip whole lines only (counting them, for the line numbers of what follows);
            # a partial last line is returned once it is completed.
            while self._read_chunk():
                self._line_number += self._buffer.count(b"\n")
                self._buffer = self._buffer[self._buffer.rfind(b"\n") + 1:]

    def _resume(self, saved: Position) -> None:
        """Continue after ``saved``: in the same file, in its rotated copy, or, when neither
        exists any more, with the saved pending bytes and then the file now at the path."""
        self._line_number, self._buffer = saved.line_number, saved.pending
        self._reading, self._ident, self._offset = saved.path, (saved.device, saved.inode), saved.offset
        self._head = saved.head
        found = self._find_by_identity(saved)
        if found is None:
            self.notices.append(
                f"the file read before the restart ({saved.path}, inode {saved.inode}) is gone; "
                f"lines written to it after byte {saved.offset} were not read")
            self._fh = None
            self._ident = (0, 0)
            return
        fh, name = found
        st = os.fstat(fh.fileno())
        head_now = os.pread(fh.fileno(), len(saved.head), 0) if saved.head else b""
        if st.st_size < saved.offset or head_now != saved.head:
            fh.close()
            self.notices.append(f"{name} was truncated while stopped; reading it from the start")
            self._fh = None
            self._ident = (0, 0)
            return
        fh.seek(saved.offset)
        self._fh, self._reading = fh, name

    def _find_by_identity(self, saved: Position) -> tuple[BinaryIO, str] | None:
        name = self._name_of((saved.device, saved.inode), [self.path, saved.path])
        if name is None:
            return None
        try:
            return open(name, "rb"), name
        except OSError:
            return None

    def _name_of(self, ident: tuple[int, int], first: list[str]) -> str | None:
        """A path in the followed file's directory (``first`` tried before the rest) that is
        the file ``ident`` (device, inode), or None."""
        candidates = list(first)
        directory = Path(self.path).parent
        if directory.is_dir():
            candidates += sorted(str(p) for p in directory.iterdir())
        for name in dict.fromkeys(candidates):
            try:
                st = os.stat(name)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == ident:
                return name
        return None


def save_state(path: str | os.PathLike[str], position: Position, extra: dict[str, Any]) -> None:
    """Write the position (and the adapter's ``extra`` state) atomically: a crash leaves the old
    file or the new one, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps({"v": _STATE_VERSION, "position": position.to_json(), "extra": extra},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_state(path: str | os.PathLike[str]) -> tuple[Position, dict[str, Any]] | None:
    """The saved position and extra state, or ``None`` when no state file exists yet."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CallsloError(f"cannot read state file {path}: {exc.strerror}") from exc
    try:
        data = orjson.loads(raw)
        if data.get("v") != _STATE_VERSION:
            raise ValueError(f"version {data.get('v')!r}, expected {_STATE_VERSION}")
        return Position.from_json(data["position"]), dict(data.get("extra") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CallsloError(f"state file {path} is unreadable ({exc}); move it away to start "
                           "over (events already sent are dropped downstream by their ids)") from exc
