"""bench.cells.run_cells: a bench killed mid-run must not leave its worker processes behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process exited while we looked
            continue
        if int(fields[1]) == pid:  # fields after "(comm)": state, ppid, ...
            kids.add(int(stat.parent.name))
    return kids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return " Z " not in stat  # a zombie has exited


def test_workers_exit_when_the_bench_is_killed(tmp_path):
    script = ("import sys, time\nfrom pathlib import Path\nfrom bench.cells import run_cells\n"
              "run_cells(time.sleep, [60, 60, 60], 2, Path(sys.argv[1]), str)\n")
    bench = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "cells.jsonl")], cwd=ROOT)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the spawned workers, not multiprocessing's resource tracker
            workers = {p for p in _children(bench.pid) if b"spawn_main" in _cmdline(p)}
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, "the bench never started its 2 workers"
        time.sleep(1.0)  # let them reach their initializer and start a 60 s cell
        bench.send_signal(signal.SIGKILL)
        bench.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "workers outlived their bench"
    finally:
        bench.kill()
        for p in workers | _children(bench.pid):  # after the kill the workers are no longer the bench's children
            if _alive(p):
                os.kill(p, signal.SIGKILL)
