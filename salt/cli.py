"""Running a job from the command line: one-line errors for user mistakes, no half-written run folders."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from salt.allocator import apply_cpu_allocator
from salt.checks import make_folder
from salt.errors import ConfigError, UserError

log = logging.getLogger("salt")

# Only the project's own error types, raised where a user's input is checked, are user mistakes: anything
# else (a ValueError deep in the code included) is a bug and keeps its traceback and its run folder.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)

# What Hydra and the job write before any result exists: a folder holding nothing else is a refused run.
_BOOKKEEPING_DIRS = {".hydra"}
_BOOKKEEPING_FILES = {"config.yaml"}


def _only_bookkeeping(out_dir: Path) -> bool:
    if not out_dir.is_dir():
        return False
    for path in out_dir.rglob("*"):
        relative = path.relative_to(out_dir)
        if relative.parts[0] in _BOOKKEEPING_DIRS or path.is_dir():
            continue
        if len(relative.parts) > 1 or not (path.name in _BOOKKEEPING_FILES or path.suffix == ".log"):
            return False
    return True


def single_log_lines() -> None:
    """Print each Lightning log record once.

    Importing ``lightning`` gives its logger a console handler of its own; under Hydra, whose handlers on the
    root logger already print every record, each Lightning line would then appear twice.
    """
    if logging.getLogger().handlers:
        lightning_log = logging.getLogger("lightning")
        for handler in list(lightning_log.handlers):
            lightning_log.removeHandler(handler)


# Lightning's product adverts ("Tip: ... try installing litlogger / litmodels"), logged at every Trainer start.
ADVERT_PREFIX = "💡 Tip: For seamless cloud"
# The logger Lightning's rank-zero messages (its adverts among them) go through.
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


# Lightning's start-up lines that say nothing to act on: no accelerator present (one that is present but unused
# is still reported), and its internal step-count estimate.
NOTHING_TO_ACT_ON = (
    "GPU available: False, used: False",
    "TPU available: False, using: 0 TPU cores",
    "Loading `train_dataloader` to estimate number of stepping batches.",
)


class DropAdverts(logging.Filter):
    """Drops Lightning's advert records and its start-up lines that say nothing to act on, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(ADVERT_PREFIX) and message not in NOTHING_TO_ACT_ON


def quiet_library_notices() -> None:
    """Silence, by their exact text, the library lines every run printed that a user cannot act on.

    Lightning's adverts for its cloud services, and the deprecation warning Lightning's own pytree helper
    triggers inside torch (``isinstance(treespec, LeafSpec)``, once per loop start). Every other record and
    warning is kept.
    """
    lightning_log = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, DropAdverts) for f in lightning_log.filters):
        lightning_log.addFilter(DropAdverts())
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )


def run_job(job: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``job(cfg)``; a user mistake is logged as one line and exits with status 1.

    A refused run leaves no run folder behind (a folder that already held results is kept). Set
    ``SALT_DEBUG=1`` to get the full traceback instead.
    """
    single_log_lines()
    quiet_library_notices()
    out_dir = Path(cfg.paths.output_dir)
    try:
        if cfg.get("cpu_allocator") is not None:
            apply_cpu_allocator(str(cfg.cpu_allocator))
        return job(cfg)
    except USER_ERRORS as exc:
        if os.environ.get("SALT_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("error: %s", message)
        if _only_bookkeeping(out_dir):
            shutil.rmtree(out_dir, ignore_errors=True)
        sys.exit(1)


class RunFolderCheck(Callback):
    """Refuse, in one line, a run whose folder cannot be created, before Hydra tries and fails with a traceback.

    Registered in ``configs/hydra/default.yaml``; the folder is ``hydra.run.dir`` (``hydra.sweep.dir`` for a
    multirun), by default below ``paths.log_dir``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "sweep")

    @staticmethod
    def _check(config: DictConfig, mode: str) -> None:
        key = f"hydra.{mode}.dir"
        given = {o.split("=", 1)[0].lstrip("+~") for o in config.hydra.overrides.task}
        named = key if key in given else "paths.log_dir"
        # Hydra's ${now:} is cached, so this is the folder Hydra itself uses next.
        try:
            make_folder(named, str(OmegaConf.select(config, key)))
        except ConfigError as exc:
            log.error("error: %s", exc)
            sys.exit(1)
