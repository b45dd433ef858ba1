"""Sweeps on a cluster: ``hydra/launcher=submitit_slurm`` (SLURM job arrays) and ``submitit_local`` (the same
jobs as local processes), from ``hydra-submitit-launcher``, with two additions:

- a run whose folder already holds ``metrics.json`` is not submitted again (``hydra.launcher.skip_done=false``
  runs it anyway), so re-launching an interrupted sweep into its folder (``hydra.sweep.dir=...``) runs only
  what is missing;
- a failed job is reported with its run folder and logs once every job has finished; the others complete,
  and the sweep then exits with status 1;
- a finished run of other overrides in a job's folder (another sweep launched there) is refused, not skipped.

Hydra instantiates launchers from the ``hydra_plugins`` namespace only, hence this module's place.
:func:`register` replaces the plugin's two ``hydra/launcher`` entries with these; ``train.py`` calls it
before Hydra composes anything.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module outside sys.modules, where
# dataclasses cannot resolve string annotations.
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from omegaconf import OmegaConf, open_dict

from salt.errors import UserError

log = logging.getLogger(__name__)

_DONE = "metrics.json"


class SweepError(UserError):
    """A sweep not done as asked: jobs that failed (each logged with its folder and logs), or a run folder that
    holds another sweep's finished run."""


class _SkipDoneLauncher(plugin.BaseSubmititLauncher):
    """``BaseSubmititLauncher`` that skips finished runs and reports failed jobs instead of stopping at one."""

    _SUBMITIT_KEYS: ClassVar[set[str]] = {"max_num_timeout"}

    def __init__(self, skip_done: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.skip_done = bool(skip_done)

    def __call__(self, *args: Any) -> JobReturn:
        """Run one job (in its own process); an exception the job raised is printed to the job's stderr log,
        where Hydra, which hands it back to the launching process without its traceback, leaves none."""
        result = super().__call__(*args)
        if result.status == JobStatus.FAILED:
            error = result._return_value
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        return result

    def _job_folder(self, overrides: list[str], num: int) -> Path:
        """The folder Hydra's ``run_job`` gives job ``num`` (``hydra.sweep.dir`` / ``hydra.sweep.subdir``)."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = num
            cfg.hydra.job.id = f"job_id_for_{num}"
        HydraConfig.instance().set_config(cfg)  # what ${hydra:...} in the subdir resolves against
        return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)

    def _executor(self) -> Any:
        """The plugin's submitit executor with this launcher's queue parameters (as ``BaseSubmititLauncher``).

        A copy of the start of the plugin's ``launch``: its public API builds the executor and waits for every
        job in one call, which can neither keep a skipped sweep's job numbers nor report each failed job with
        its logs. The plugin is pinned exactly in pyproject.toml, and tests/experiments/test_launcher_pin.py
        fails when the code copied here (or the ``__call__`` it submits) changes in the installed plugin.
        """
        import submitit

        params = self.params
        init = {"folder": params["submitit_folder"]}
        init |= {f"{self._EXECUTOR}_{k}": v for k, v in params.items() if k in self._SUBMITIT_KEYS}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        skipped = self._SUBMITIT_KEYS | {"submitit_folder"}
        executor.update_parameters(
            **{
                k if k in shared else f"{self._EXECUTOR}_{k}": v
                for k, v in params.items()
                if k not in skipped
            }
        )
        return executor

    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        """:meth:`_launch`; a :class:`SweepError` is logged in one line and exits with status 1."""
        try:
            return self._launch(job_overrides, initial_job_idx)
        except SweepError as exc:
            log.error("error: %s", exc)
            sys.exit(1)

    def _launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        """Submit every job of the batch without a finished run folder, wait for all, report the failed ones.

        Jobs keep their sweep index (``hydra.job.num``) whether or not others are skipped, so a re-launch
        writes each run into the folder it had the first time.

        Raises:
            SweepError: at least one job failed; raised after every job has finished.
        """
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # The jobs import the same `salt` as this command, wherever they start.
        root = os.environ.get("SALT_ROOT")
        if root and root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        master = HydraConfig.instance().cfg
        todo = []
        try:
            for num, overrides in enumerate(job_overrides, initial_job_idx):
                folder = self._job_folder(list(overrides), num)
                if self.skip_done and (folder / _DONE).is_file():
                    _check_same_run(folder, list(overrides), num)
                    log.info(
                        "skipped #%d: %s holds %s (hydra.launcher.skip_done=false runs it again)",
                        num,
                        folder,
                        _DONE,
                    )
                    continue
                todo.append((num, list(overrides), folder))
        finally:
            HydraConfig.instance().cfg = master
        log.info(
            "submitit '%s' sweep in %s: %d job(s) to run, %d already done",
            self._EXECUTOR,
            sweep_dir,
            len(todo),
            len(job_overrides) - len(todo),
        )
        if not todo:
            return []
        for num, overrides, _ in todo:
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        jobs = self._executor().map_array(
            self,
            [overrides for _, overrides, _ in todo],
            ["hydra.sweep.dir"] * len(todo),
            [num for num, _, _ in todo],
            [f"job_id_for_{num}" for num, _, _ in todo],
            [state] * len(todo),
        )
        results, failed = [], []
        for (num, overrides, folder), job in zip(todo, jobs):
            try:
                result = job.results()[0]
            except Exception as exc:  # the job process died (a refused run exits with status 1) or raised
                reason = _last_line(str(exc)) or type(exc).__name__
                result = JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=exc)
            else:
                reason = _last_line(str(result._return_value)) if result.status == JobStatus.FAILED else ""
            if result.status == JobStatus.FAILED:
                failed.append(num)
                log.error(
                    "job #%d failed: run folder %s, logs %s and %s: %s",
                    num,
                    folder,
                    job.paths.stdout,
                    job.paths.stderr,
                    reason,
                )
            results.append(result)
        if failed:
            raise SweepError(
                f"{len(failed)} of {len(todo)} job(s) failed (#{', #'.join(map(str, failed))}); the others "
                f"completed; re-launch with hydra.sweep.dir={sweep_dir} to run only the missing ones"
            )
        return results


def _check_same_run(folder: Path, overrides: list[str], num: int) -> None:
    """Refuse to skip job ``num`` when ``folder`` holds the finished run of other overrides (another sweep)."""
    recorded = folder / ".hydra" / "overrides.yaml"
    if recorded.is_file() and list(OmegaConf.load(recorded)) != overrides:
        raise SweepError(
            f"job #{num}: {folder} holds a finished run of other overrides ({recorded}); launch this sweep "
            "into another hydra.sweep.dir, or pass hydra.launcher.skip_done=false to run it there anyway"
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class LocalLauncher(_SkipDoneLauncher):
    """The sweep's jobs as processes on this machine (``hydra/launcher=submitit_local``)."""

    _EXECUTOR = "local"


class SlurmLauncher(_SkipDoneLauncher):
    """The sweep's jobs as a SLURM job array (``hydra/launcher=submitit_slurm``)."""

    _EXECUTOR = "slurm"


@dataclass
class LocalConf(LocalQueueConf):
    """``hydra/launcher=submitit_local``: the plugin's options and ``skip_done``."""

    _target_: str = "hydra_plugins.salt_launchers.skip_done.LocalLauncher"
    skip_done: bool = True  # do not run again a job whose run folder holds metrics.json


@dataclass
class SlurmConf(SlurmQueueConf):
    """``hydra/launcher=submitit_slurm``: the plugin's options (partition, gpus_per_task, timeout_min,
    array_parallelism, ...; submitit passes them to sbatch) and ``skip_done``."""

    _target_: str = "hydra_plugins.salt_launchers.skip_done.SlurmLauncher"
    skip_done: bool = True  # do not submit again a job whose run folder holds metrics.json


def register() -> None:
    """Make ``hydra/launcher=submitit_local|submitit_slurm`` these launchers (replacing the plugin's entries).

    Hydra's plugin scan runs every plugin module again, the plugin's config module included, which stores the
    plugin's entries anew; the scan is run here first (it runs once per process), so these stay.
    """
    Plugins.instance()
    store = ConfigStore.instance()
    store.store(group="hydra/launcher", name="submitit_local", node=LocalConf(), provider="salt")
    store.store(group="hydra/launcher", name="submitit_slurm", node=SlurmConf(), provider="salt")
