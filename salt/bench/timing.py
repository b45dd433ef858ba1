"""Side-by-side timing and peak-memory measurement of benchmark cases on CPU or CUDA.

Cases are timed round-robin: every round runs each case once, so a change in machine load during the run
hits all cases alike; medians over the rounds after warm-up rounds are reported. Each timed round runs the
cases in a fresh (seeded) random order, so that a burst of load, which slows a few consecutive calls, falls
on different cases in different rounds and the medians drop it.

Peak memory is the peak of tensor bytes allocated during one call above the level at its start (what the
call itself needs: activations kept for backward, gradients, temporaries; not the model or optimizer state
held before it). On CUDA it comes from ``torch.cuda.max_memory_allocated``; on CPU from the allocation and
free events that ``torch.profiler`` records for PyTorch's CPU allocator (buffers that oneDNN or BLAS allocate
for themselves are not seen).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping

import torch
from torch.profiler import ProfilerActivity, profile


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    cases: Mapping[str, Callable[[], object]], warmup: int, repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds of each timed call per case, running the cases round-robin.

    Args:
        cases: name -> a call to time (it must leave the state as it found it, e.g. a training step).
        warmup: untimed rounds first, in the given order (allocator growth, lazy initialisation,
            optimizer state).
        repeats: timed rounds, each in a random order.

    Returns:
        ``{name: [seconds per repeat]}``.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    order = random.Random(0)
    for round_index in range(warmup + repeats):
        names = list(cases)
        if round_index >= warmup:
            order.shuffle(names)
        for name in names:
            call = cases[name]
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def median(values: Iterable[float]) -> float:
    """The median of ``values``."""
    return statistics.median(list(values))


def _cpu_peak(call: Callable[[], object]) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    # Every allocation and free of the CPU allocator is a "[memory]" event with a signed byte count.
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    level = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        level += event.nbytes()
        peak = max(peak, level)
    return peak


def peak_bytes(call: Callable[[], object], device: torch.device) -> int:
    """Peak tensor bytes allocated during ``call()`` above the level at its start (see the module docstring)."""
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    return _cpu_peak(call)


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (a view or a shared tensor counts once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())
