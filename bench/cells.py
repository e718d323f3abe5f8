"""Run a bench's independent cells on a process pool, appending each result to a .jsonl as it finishes, so a run
cut short still leaves its numbers (shared by bench.robustness and bench.robustness_byzfl)."""
from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any


def die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel sends this worker SIGTERM when the bench process dies (Linux
    PR_SET_PDEATHSIG), so a bench stopped by SIGTERM or SIGKILL leaves no workers behind. Spawned workers hold
    both ends of the pool's job pipe and would otherwise block on it forever (found: orphaned workers, each
    holding its loaded task, long after their bench was killed)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


def read_cells(log: Path) -> list[dict]:
    """The results `run_cells` appended to `log`, one JSON object per non-empty line."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def run_cells(cell: Callable[[Any], dict], run: Sequence[Any], workers: int, log: Path,
              describe: Callable[[dict], str]) -> None:
    """`cell(job)` for every job of `run` on `workers` spawned processes; each result is appended to `log` and
    printed as `[i/N] describe(result)`."""
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool, log.open("a") as sink:
        futures = [pool.submit(cell, job) for job in run]
        for i, fut in enumerate(as_completed(futures), 1):
            c = fut.result()
            sink.write(json.dumps(c) + "\n")
            sink.flush()
            print(f"[{i}/{len(run)}] {describe(c)}", flush=True)
