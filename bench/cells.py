"""Run a bench's independent cells on a process pool, appending each result to a .jsonl as it finishes, so a run
cut short still leaves its numbers (shared by bench.robustness and bench.robustness_byzfl)."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any


def run_cells(cell: Callable[[Any], dict], run: Sequence[Any], workers: int, log: Path,
              describe: Callable[[dict], str]) -> None:
    """`cell(job)` for every job of `run` on `workers` spawned processes; each result is appended to `log` and
    printed as `[i/N] describe(result)`."""
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool, log.open("a") as sink:
        futures = [pool.submit(cell, job) for job in run]
        for i, fut in enumerate(as_completed(futures), 1):
            c = fut.result()
            sink.write(json.dumps(c) + "\n")
            sink.flush()
            print(f"[{i}/{len(run)}] {describe(c)}", flush=True)
