"""Run `fedledger peer run --json` as a real OS process and follow its JSON log lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devnet.processes import kill, process_alive, start_process, terminate

FEDLEDGER = [sys.executable, "-m", "fedledger.cli"]


class PeerProcess:
    def __init__(self, config_path: Path, *extra: str, log_path: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.config_path = Path(config_path)
        self.extra = list(extra)
        self.env = env or {}  # added to this process's environment (e.g. peer.loop.kill_point's test hook)
        self.log_path = log_path or self.config_path.parent / "run.log"
        self.events: list[dict[str, Any]] = []
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> "PeerProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **self.env}
        cmd = [*FEDLEDGER, "peer", "run", "--config", str(self.config_path), "--json", *self.extra]
        self.proc = start_process(cmd, log_path=self.log_path, append=True, stdout_pipe=True, env=env,
                                  cwd=Path(__file__).resolve().parents[2])
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        return self

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self.events.append(event)

    def find(self, pred: Callable[[dict], bool]) -> dict | None:
        with self._lock:
            return next((e for e in self.events if pred(e)), None)

    def wait_for(self, pred: Callable[[dict], bool], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(pred)
            if found is not None:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TimeoutError(f"{self.config_path}: no matching event within {timeout}s; log tail:\n{self.tail()}")

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the peer's process group at once: a crash."""
        if self.proc is not None and process_alive(self.proc.pid, self.proc):
            kill(self.proc.pid, self.proc, group=True)

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL: a graceful stop."""
        if self.proc is not None and process_alive(self.proc.pid, self.proc):
            terminate(self.proc.pid, self.proc, 10.0, group=True)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
