"""User-facing errors of the command-line entry points."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key, the value and what is valid."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stops and keeps the last good checkpoint."""
