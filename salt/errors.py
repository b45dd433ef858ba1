"""Errors that mean "what was asked for cannot be done", as opposed to a bug in the code.

The command-line entry points turn a :class:`UserError` into one line naming the config key, file or value
and exit with status 1; any other exception keeps its traceback. Every user-error class is raised only where
user input (a config value, a data set, a checkpoint, an adapter file, a PEFT option) is checked, so a
``ValueError`` deep in the code stays a bug report instead of a one-line message.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors caused by the user's input; the message is one line that says what to change."""


class ConfigError(UserError, ValueError):
    """A configuration value is wrong; the message names the key, the value and what is valid."""
