"""How the C library's allocator treats the large, short-lived tensors of a CPU training step.

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and gives it
back with ``munmap`` when freed, and it hands the top of its heap back to the system once more than the trim
threshold is free. A training step on CPU frees and re-allocates activations of tens to hundreds of MB, so every
step maps, zero-fills page by page and unmaps gigabytes: page faults and system time, not arithmetic. With
``retain``, large blocks come from the heap and freed memory stays with the process for the next step's tensors
(``mallopt``: no mmap blocks, no trimming). The cost is that the process's resident memory stays at its peak.
``scripts/bench_allocator.py`` measures both side by side; the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

from salt.errors import ConfigError

log = logging.getLogger(__name__)

CPU_ALLOCATORS = ("retain", "system")

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def retain_freed_memory() -> bool:
    """Make glibc serve large blocks from its heap and keep freed memory for reuse (process-wide).

    Returns:
        True if glibc accepted both settings; False where the C library is not glibc (macOS, Windows, musl),
        which keeps its own allocator.
    """
    libc = _glibc()
    if libc is None:
        return False
    # mmap_max = 0: no block is given its own mapping; trim_threshold = INT_MAX: the heap's top is never returned.
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def apply_cpu_allocator(setting: str) -> None:
    """Apply the config's ``cpu_allocator`` (``retain`` | ``system``) to this process and its data workers.

    Raises:
        ConfigError: for any other value.
    """
    if setting not in CPU_ALLOCATORS:
        raise ConfigError(f"cpu_allocator: must be one of {', '.join(CPU_ALLOCATORS)}, got {setting!r}")
    if setting == "system":
        return
    if retain_freed_memory():
        log.debug("cpu_allocator=retain: glibc keeps freed memory for the next tensors")
    else:
        log.info(
            "cpu_allocator=retain changes nothing here: the C library is not glibc (%s)", platform.system()
        )
