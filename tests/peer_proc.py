"""Run `fedledger peer run --json` as a real OS process and follow its JSON log lines."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

FEDLEDGER = [sys.executable, "-m", "fedledger.cli"]


class PeerProcess:
    def __init__(self, config_path: Path, *extra: str, log_path: Path | None = None) -> None:
        self.config_path = Path(config_path)
        self.extra = list(extra)
        self.log_path = log_path or self.config_path.parent / "run.log"
        self.events: list[dict[str, Any]] = []
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> "PeerProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        cmd = [*FEDLEDGER, "peer", "run", "--config", str(self.config_path), "--json", *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.log_path, "ab"), env=env,
                                     cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
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
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
