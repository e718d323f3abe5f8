"""Column-chunk parallelism for the aggregation rules: our workers, BLAS on one thread, reused buffers.

Why this shape. A peer aggregates while it also trains, gossips and serves IPFS. Multi-threaded BLAS under
contention collapses: every small product wakes OpenBLAS's spinning threads, which then fight our workers and
the node's other processes for the same cores. So inside consensus BLAS runs on one thread
(`single_threaded_blas`, scoped and restored) and the only parallelism is our own chunk workers (`map_chunks`),
which block instead of spinning. Column chunks are independent and their results are combined in chunk order
(or are exact integers combined by addition), so the number of workers and the chunk size never change a
result. Fresh multi-megabyte temporaries per chunk cost page faults that outweigh the arithmetic; `Scratch`
gives each worker thread buffers it reuses from chunk to chunk.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from threadpoolctl import OpenBLASController, ThreadpoolController

T = TypeVar("T")
BLOCK_ELEMENTS = 1 << 19  # values per chunk block: 4 MiB of float64 per worker, cache- and memory-friendly
MIN_COLUMNS = 256  # below this, per-call overhead dominates whatever n is

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limiter: Any = None
_blas_controller: ThreadpoolController | None = None
_blas_modules_seen = -1  # len(sys.modules) when _blas_controller was built


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread for the duration; the previous limits come back on exit.

    Reference-counted under a lock, so nested or concurrent aggregations (several threads of one process)
    limit once and restore once, to the limits that were in force before the first of them entered.
    The controller is a scan of the loaded libraries, slow with torch loaded; redone at every entry (several per
    aggregation) it dominated the small aggregations of an optimised attack's line search. It is rebuilt only
    when Python has imported something since the last scan: a BLAS library loaded after the first aggregation
    (scipy's, torch's) arrives with an extension module, and must be limited too.
    """
    global _blas_depth, _blas_limiter, _blas_controller, _blas_modules_seen
    with _blas_lock:
        if _blas_depth == 0:
            if _blas_controller is None or len(sys.modules) != _blas_modules_seen:
                _blas_modules_seen = len(sys.modules)
                _blas_controller = ThreadpoolController()
            _blas_limiter = _unowned(lambda: _blas_controller.limit(limits=1, user_api="blas"))
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                _unowned(_blas_limiter.restore_original_limits)
                _blas_limiter = None


def _unowned(action: Callable[[], T]) -> T:
    """Run a threadpoolctl limit/restore with no thread owning OpenBLAS before or after.

    threadpoolctl lets only one thread (the first to set a limit, until it clears it) change OpenBLAS's
    process-wide pool and silently ignores the others; the first and the last aggregation of an overlapping
    group can run on different threads, so ownership is released around each change.
    """
    OpenBLASController.clear_controlling_thread(force=True)
    try:
        return action()
    finally:
        OpenBLASController.clear_controlling_thread(force=True)


def columns_for(rows: int, block_elements: int | None = None) -> int:
    """Columns per chunk so that a (rows, columns) block holds about BLOCK_ELEMENTS values."""
    budget = BLOCK_ELEMENTS if block_elements is None else block_elements
    return max(MIN_COLUMNS, budget // max(rows, 1))


def chunk_ranges(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, size)) for start in range(0, size, chunk)]


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores))


def map_chunks(fn: Callable[[int, int], T], size: int, workers: int | None, chunk: int) -> list[T]:
    """fn over column chunks of [0, size), results in chunk order, with BLAS on one thread throughout.

    Chunks are handed out dynamically (a descheduled worker does not hold back the others' share).
    """
    ranges = chunk_ranges(size, chunk)
    workers = default_workers() if workers is None else workers
    with single_threaded_blas():
        if workers <= 1 or len(ranges) <= 1:
            return [fn(start, stop) for start, stop in ranges]
        with ThreadPoolExecutor(max_workers=min(workers, len(ranges))) as pool:
            return list(pool.map(lambda r: fn(*r), ranges))


class Scratch:
    """Per-thread reusable buffers for one map_chunks call (each worker thread gets its own)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        buffers: dict[str, np.ndarray] = self._local.__dict__.setdefault("buffers", {})
        need = int(np.prod(shape))
        buf = buffers.get(name)
        if buf is None or buf.size < need or buf.dtype != np.dtype(dtype):
            buf = buffers[name] = np.empty(need, dtype=dtype)
        return buf[:need].reshape(shape)

    def rows(self, name: str, rows: Any, start: int, stop: int, dtype: type = np.int32) -> np.ndarray:
        """Coordinates start:stop of every row as an (n, stop-start) block in a reused buffer."""
        block = self.get(name, (len(rows), stop - start), dtype)
        for i, row in enumerate(rows):
            block[i] = row[start:stop]
        return block

    def columns(self, name: str, rows: Any, start: int, stop: int) -> np.ndarray:
        """Coordinates start:stop as a (stop-start, n) int32 block: one contiguous row per coordinate."""
        block = self.get(name, (stop - start, len(rows)), np.int32)
        for i, row in enumerate(rows):
            block[:, i] = row[start:stop]
        return block
