"""Running a job from the command line: one-line errors for user mistakes, no half-written run folders."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from salt.model import CheckpointError
from salt.train.errors import ConfigError, NonFiniteLossError

log = logging.getLogger("salt")

# Errors that come from what the user asked for (a path, a config value, the data), not from a bug.
USER_ERRORS: tuple[type[BaseException], ...] = (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    FileNotFoundError,
    ValueError,
)


def _only_bookkeeping(out_dir: Path) -> bool:
    # Hydra writes .hydra/ and a log at start; a folder holding nothing else has no result worth keeping.
    keep = {".hydra", "config.yaml"}
    return out_dir.is_dir() and all(p.name in keep or p.suffix == ".log" for p in out_dir.iterdir())


def run_job(job: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``job(cfg)``; a user mistake is logged as one line and exits with status 1.

    Set ``SALT_DEBUG=1`` to get the full traceback instead.
    """
    out_dir = Path(cfg.paths.output_dir)
    try:
        return job(cfg)
    except USER_ERRORS as exc:
        if os.environ.get("SALT_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("error: %s", message)
        if _only_bookkeeping(out_dir):
            shutil.rmtree(out_dir, ignore_errors=True)
        sys.exit(1)
