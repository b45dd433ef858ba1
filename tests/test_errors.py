"""The user-input errors are defined in ``salt.errors`` and importable from there alone."""

from __future__ import annotations

import pytest

from salt import errors
from salt.train import errors as train_errors


def test_config_error_has_one_home() -> None:
    with pytest.raises(ImportError):
        from salt.train.errors import ConfigError  # noqa: F401
    assert issubclass(errors.ConfigError, errors.UserError)
    assert issubclass(train_errors.NonFiniteLossError, errors.UserError)
