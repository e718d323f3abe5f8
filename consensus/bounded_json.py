"""JSON from untrusted bytes with a size cap and a nesting-depth cap checked *before* `json.loads` runs.

Why: `json.loads` recurses once per nesting level in C. py_ecc (imported via eth_account) raises Python's
recursion limit to 100000, so a 200 KB `[[[[…]]]]` blob overflows the C stack and kills the process with
SIGSEGV instead of raising RecursionError. The pre-scan below is a flat loop over the bytes (no recursion,
no allocation beyond a counter), so a hostile blob is rejected with `BoundedJsonError` in linear time.
"""
from __future__ import annotations

import json
from typing import Any

from consensus.errors import ConsensusError

DEFAULT_MAX_DEPTH = 32

_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class BoundedJsonError(ConsensusError, ValueError):
    """Untrusted JSON is too large, nested too deep, not UTF-8, or not JSON at all."""


def nested_deeper_than(data: bytes, max_depth: int) -> bool:
    """True when `[`/`{` nest more than `max_depth` levels in `data` (brackets inside strings ignored).

    A flat loop: the check itself can neither recurse nor allocate, whatever the input."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False  # not even that many brackets in total
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        elif byte in _CLOSE and depth:  # a stray closer ends any JSON parse: never let it hide openers
            depth -= 1
    return False


def loads_bounded(text: str | bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH,
                  what: str = "JSON document") -> Any:
    """`json.loads(text)` for untrusted input: BoundedJsonError unless it is at most `max_bytes` bytes, nested
    at most `max_depth` levels, UTF-8 and valid JSON (NaN/Infinity refused: not JSON, and never meant)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(data) > max_bytes:
        raise BoundedJsonError(f"{what} is {len(data)} bytes, more than the {max_bytes} allowed")
    if nested_deeper_than(data, max_depth):
        raise BoundedJsonError(f"{what} is nested more than {max_depth} levels deep")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise BoundedJsonError(f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer over Python's digit limit
        raise BoundedJsonError(f"{what} is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)
