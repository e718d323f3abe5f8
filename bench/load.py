"""A competing CPU-bound process for benchmarks: what a peer node sees while it trains or serves.

`competing_load()` starts one subprocess that multiplies 512x512 float64 matrices in a loop with the machine's
default BLAS threading (OPENBLAS/OMP/MKL_NUM_THREADS removed from its environment, so OpenBLAS uses every
core), and stops it on exit. It is bounded twice: the bench terminates it, and the child exits on its own after
`max_seconds` whatever happens to the parent.

    python -m bench.load 30     # burn for 30 s (to watch it in top)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_CHILD = """
import sys, time
import numpy as np
deadline = time.monotonic() + float(sys.argv[1])
a = np.random.default_rng(0).standard_normal((512, 512))
b = a.T.copy()
print("busy", flush=True)
while time.monotonic() < deadline:
    a = a @ b
    a /= np.abs(a).max()
"""


@contextmanager
def competing_load(max_seconds: float = 900.0) -> Iterator[subprocess.Popen]:
    """One busy process for the duration of the block (at most max_seconds), then gone."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(max_seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # numpy imported and the loop about to start
        time.sleep(0.2)  # let its BLAS threads spin up
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    with competing_load(seconds) as p:
        print(f"competing load pid {p.pid} for {seconds:.0f} s")
        p.wait()
