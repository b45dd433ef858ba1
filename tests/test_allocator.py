"""cpu_allocator=retain: glibc serves a large tensor from its heap instead of a mapping of its own.

glibc's own count of the bytes it holds in mmap'd blocks (``mallinfo2().hblkhd``) is the independent measure: a
64 MB tensor is one such block under the library's defaults and none after ``retain_freed_memory()``. Each case
runs in a fresh interpreter, as the setting is process-wide.
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest

from salt.allocator import apply_cpu_allocator
from salt.errors import ConfigError
from tests.train.conftest import ROOT, run_script


def _has_mallinfo2() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")


glibc_only = pytest.mark.skipif(not _has_mallinfo2(), reason="mallinfo2 is glibc's (2.33+)")

_PROBE = """
import ctypes, sys
import torch
from salt.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "retain":
    assert retain_freed_memory()
tensor = torch.ones(16 * 2**20)  # 64 MB of float32, above glibc's largest mmap threshold (32 MB)
print(libc.mallinfo2().hblkhd, tensor.numel() * 4)
"""


def _mmapped_bytes(setting: str) -> tuple[int, int]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, setting], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    mapped, size = (int(v) for v in proc.stdout.split())
    return mapped, size


@glibc_only
def test_retain_serves_a_large_tensor_from_the_heap() -> None:
    mapped_default, size = _mmapped_bytes("system")
    mapped_retained, _ = _mmapped_bytes("retain")
    assert mapped_default >= size  # the library's default maps the tensor on its own
    assert mapped_retained < size  # retained: it comes from the heap


def test_an_unknown_cpu_allocator_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^cpu_allocator: must be one of retain, system, got 'tcmalloc'$"):
        apply_cpu_allocator("tcmalloc")


def test_an_unknown_cpu_allocator_is_one_line_from_the_command_line(tmp_path) -> None:
    run_dir = tmp_path / "h"
    proc = run_script(
        "predict.py",
        "ckpt=run",
        "input=in",
        "output=out",
        "cpu_allocator=tcmalloc",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 1
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "error: cpu_allocator: must be one of retain, system, got 'tcmalloc'"
    )
    assert "Traceback" not in proc.stderr and not run_dir.exists()
