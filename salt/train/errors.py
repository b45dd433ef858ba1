"""User-facing errors of the command-line entry points (see :mod:`salt.errors`)."""

from __future__ import annotations

from salt.errors import ConfigError, UserError

__all__ = ["ConfigError", "NonFiniteLossError", "UserError"]


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; training stops and keeps the last good checkpoint."""
