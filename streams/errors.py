"""The exceptions callslo raises, under one root.

::

    CallsloError
    ├── ConfigError          settings file or environment is wrong; the message says which key
    ├── BrokerError          the local Kafka broker could not be prepared, started or stopped
    │   └── ToolMissingError java or mvn is not installed
    └── BatchFormatError     a column batch on the internal topic cannot be decoded

Third-party errors are translated where they cross into callslo (``raise ... from exc``).
Rejected *events* are not exceptions: they become dead-letter records (see
:mod:`streams.contract`).
"""

__all__ = ["CallsloError", "ConfigError", "BrokerError", "ToolMissingError", "BatchFormatError"]


class CallsloError(Exception):
    """Root of every error callslo raises on purpose."""


class ConfigError(CallsloError):
    """A setting is missing, mistyped or out of range."""


class BrokerError(CallsloError):
    """The local broker failed; the message carries the tail of its log when there is one."""


class ToolMissingError(BrokerError):
    """A program the local broker needs (java, mvn) is not on the PATH."""


class BatchFormatError(CallsloError):
    """Bytes on the internal batch topic are not a column batch this version can read."""
