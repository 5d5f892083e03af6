"""Secrets in settings: a value that never shows itself, and reading one from the environment
or a file (the only two places callslo takes a password from)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from streams.errors import ConfigError

__all__ = ["Secret", "secret_from_env", "secret_from_file"]


class Secret:
    """A password that never shows itself in ``repr``, ``str``, logs or tracebacks;
    ``reveal()`` is the one way to read it (only the Kafka client factory does)."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def secret_from_env(env: Mapping[str, str], var: str, key: str) -> Secret:
    """The value of environment variable ``var``; ``key`` is the setting that named it."""
    value = env.get(var, "")
    if not value:
        raise ConfigError(f"{key} names the environment variable {var}, which is not set or is empty")
    return Secret(value)


def secret_from_file(path: str, key: str) -> Secret:
    """The first line of the file at ``path``; ``key`` is the setting that named it."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{key} = {path!r} cannot be read: {exc.strerror}") from None
    # The trailing newline that `echo` or an editor writes is not part of the password.
    if not lines or not lines[0]:
        raise ConfigError(f"{key} = {path!r} is empty; its first line must be the password")
    return Secret(lines[0])
