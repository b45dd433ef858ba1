"""Errors of the training loop itself; the user-input errors every entry point shares are in :mod:`salt.errors`."""

from __future__ import annotations

from salt.errors import UserError


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; training stops and keeps the last good checkpoint."""
