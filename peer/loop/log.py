"""The node's progress lines: rich text for operators, or one JSON object per line for machines.

`fedledger demo` and the tests parse the JSON mode, so its keys are a contract: every line has
`ts, peer, name, round, phase, event, elapsed, level` and, when known, `accuracy`, `gas`, `tx`, `message`.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any


def round_(x: float, nd: int) -> float:
    """`x` rounded to `nd` decimals as a float that prints without binary noise (for JSON lines)."""
    return float(f"{x:.{nd}f}")


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


@dataclass
class Timer:
    """Seconds since creation (perf_counter: monotonic, so a wall-clock jump never yields a negative phase)."""

    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class NodeLog:
    """Per-phase progress lines of one peer."""

    def __init__(self, peer: str, name: str | None = None, *, json_mode: bool = False,
                 stream: IO[str] | None = None) -> None:
        self.peer = peer
        self.name = name or peer[:10]
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self._console = None
        if not json_mode:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def event(self, round: int | None, phase: str, event: str = "done", *, elapsed: float | None = None,
              message: str = "", level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {
            "ts": round_(time.time(), 3), "peer": self.peer, "name": self.name, "round": round, "phase": phase,
            "event": event, "elapsed": None if elapsed is None else round_(elapsed, 3), "level": level,
        }
        record.update({k: v for k, v in fields.items() if v is not None})
        if message:
            record["message"] = message
        if self.json_mode:
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()
            return
        self._print(round, phase, event, elapsed, message, level, fields)

    def _print(self, round: int | None, phase: str, event: str, elapsed: float | None, message: str, level: str,
               fields: dict[str, Any]) -> None:
        colour = {"info": "cyan", "warning": "yellow", "error": "red"}.get(level, "white")
        # the digest is 66 characters of noise for a human; the JSON mode keeps it
        extras = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None and k != "digest")
        took = f" [dim]{elapsed:.2f}s[/]" if elapsed is not None else ""
        r = f"r{round}" if round is not None else "--"
        text = f"[bold]{self.name}[/] {r} [{colour}]{phase:<9}[/] {event}{took}"
        if message:
            text += f"  {message}"
        if extras:
            text += f"  [dim]{extras}[/]"
        assert self._console is not None
        self._console.print(text, markup=True)
