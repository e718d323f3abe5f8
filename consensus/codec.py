"""Canonical update codec: named tensors <-> fixed-point little-endian bytes.

Layout (all integers little-endian)::

    0   magic        4 bytes  b"FLCT"
    4   version      u8       1
    5   scale_bits   u8       s, 0..30: value = integer * 2**-s
    6   reserved     u16      0
    8   table_len    u32      length of the tensor table, at most MAX_TABLE_BYTES
    12  tensor table          u16 count, then per tensor: u16 name_len, name (ASCII), u8 ndim, ndim x u32 dims
        payload               int32 per coordinate, tensors in table order (names strictly ascending)

Quantisation: q = clip(round_half_to_even(x * 2**s), -Q_MAX, Q_MAX) with Q_MAX = 2**31 - 1, computed in
float64 (exact for float32/float16/bfloat16 input). For |x| <= Q_MAX * 2**-s the integer form is within
2**-(s+1) of x. -2**31 is never produced and is rejected by the decoder, so the range is symmetric and
negation can never overflow.
"""
from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from consensus.errors import CodecError

MAGIC = b"FLCT"
VERSION = 1
DEFAULT_SCALE_BITS = 20
MAX_SCALE_BITS = 30
Q_MAX = 2**31 - 1
MAX_TABLE_BYTES = 1 << 20
MAX_TENSORS = 65535
MAX_NDIM = 8
MAX_NAME_BYTES = 255
_PREAMBLE = struct.Struct("<4sBBHI")
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
_INT32_LE = np.dtype("<i4")


def update_hash(data: bytes) -> bytes:
    """The identity of a canonical blob (update or model): sha256 of its bytes, 32 bytes."""
    return hashlib.sha256(data).digest()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise CodecError(f"tensor name {name!r} is not 1..255 characters of [A-Za-z0-9_.-]")
    return name


def _check_shape(name: str, shape: Iterable[Any]) -> tuple[int, ...]:
    dims = tuple(shape)
    if len(dims) > MAX_NDIM:
        raise CodecError(f"tensor {name!r} has {len(dims)} dimensions (max {MAX_NDIM})")
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= int(dim) < 2**32:
            raise CodecError(f"tensor {name!r} has invalid dimension {dim!r}")
    return tuple(int(dim) for dim in dims)


@dataclass(frozen=True)
class ModelSpec:
    """The names and shapes of a federation's model, in canonical (ascending name) order."""

    entries: tuple[tuple[str, tuple[int, ...]], ...]

    def __init__(self, names_and_shapes: Mapping[str, Sequence[int]] | Iterable[tuple[str, Sequence[int]]]):
        items = names_and_shapes.items() if isinstance(names_and_shapes, Mapping) else names_and_shapes
        checked = [(_check_name(name), _check_shape(name, shape)) for name, shape in items]
        checked.sort(key=lambda entry: entry[0])
        for (a, _), (b, _) in zip(checked, checked[1:]):
            if a == b:
                raise CodecError(f"duplicate tensor name {a!r}")
        if len(checked) > MAX_TENSORS:
            raise CodecError(f"{len(checked)} tensors (max {MAX_TENSORS})")
        object.__setattr__(self, "entries", tuple(checked))
        if len(self.table_bytes()) > MAX_TABLE_BYTES:
            raise CodecError("tensor table larger than MAX_TABLE_BYTES")

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any]) -> ModelSpec:
        """The spec of a torch state dict (or any mapping of name -> array-like with a shape)."""
        return cls((name, tuple(np.shape(value) if not hasattr(value, "shape") else value.shape))
                   for name, value in state_dict.items())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(shape for _, shape in self.entries)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(shape, dtype=object)) for shape in self.shapes)

    @property
    def num_params(self) -> int:
        return sum(self.sizes)

    def table_bytes(self) -> bytes:
        """The tensor table exactly as it appears in every canonical blob of this spec."""
        out = [struct.pack("<H", len(self.entries))]
        for name, shape in self.entries:
            raw = name.encode("ascii")
            out.append(struct.pack("<H", len(raw)) + raw + struct.pack("<B", len(shape)))
            out.append(struct.pack(f"<{len(shape)}I", *shape))
        return b"".join(out)

    def spec_hash(self) -> bytes:
        """sha256 of the canonical tensor table (scale not included: it is a separate federation parameter)."""
        return hashlib.sha256(self.table_bytes()).digest()


class CanonicalInts(NamedTuple):
    """The integer form of a canonical blob: `values` is the flat int32 payload (read-only view)."""

    spec: ModelSpec
    scale_bits: int
    values: np.ndarray


def _check_scale_bits(scale_bits: Any) -> int:
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int) or not 0 <= scale_bits <= MAX_SCALE_BITS:
        raise CodecError(f"scale_bits must be an integer in 0..{MAX_SCALE_BITS}, got {scale_bits!r}")
    return scale_bits


def _to_float64(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu()
        if value.is_complex():
            raise CodecError(f"tensor {name!r} is complex")
        value = value.double().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" or array.dtype.kind == "b":
        raise CodecError(f"tensor {name!r} has unsupported dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise CodecError(f"tensor {name!r} contains NaN or Inf")
    return array


def quantize(array: np.ndarray, scale_bits: int) -> np.ndarray:
    """float64 -> int32 fixed point: round half to even, saturate at +-Q_MAX."""
    scaled = np.ldexp(np.asarray(array, dtype=np.float64), scale_bits)
    return np.clip(np.rint(scaled), -Q_MAX, Q_MAX).astype(_INT32_LE)


def encode_ints(spec: ModelSpec, values: np.ndarray, *, scale_bits: int = DEFAULT_SCALE_BITS) -> bytes:
    """Canonical bytes from integer coordinates already in canonical order (must be within +-Q_MAX)."""
    _check_scale_bits(scale_bits)
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "iu":
        raise CodecError(f"integer values expected, got {flat.dtype}")
    if flat.size != spec.num_params:
        raise CodecError(f"{flat.size} values for a spec of {spec.num_params} parameters")
    if flat.size and (int(flat.min()) < -Q_MAX or int(flat.max()) > Q_MAX):
        raise CodecError("integer value outside +-(2**31 - 1)")
    table = spec.table_bytes()
    return b"".join((_PREAMBLE.pack(MAGIC, VERSION, scale_bits, 0, len(table)), table,
                     flat.astype(_INT32_LE, copy=False).tobytes()))


def encode(named_tensors: Mapping[str, Any], *, scale_bits: int = DEFAULT_SCALE_BITS,
           spec: ModelSpec | None = None) -> bytes:
    """Canonical bytes of named tensors (torch or numpy); with `spec`, names and shapes must match it."""
    if not isinstance(named_tensors, Mapping):
        raise CodecError("encode expects a mapping of name -> tensor")
    _check_scale_bits(scale_bits)
    arrays = {_check_name(name): _to_float64(name, value) for name, value in named_tensors.items()}
    own = ModelSpec((name, array.shape) for name, array in arrays.items())
    if spec is not None and own != spec:
        raise CodecError("tensors do not match the model spec")
    parts = [quantize(arrays[name], scale_bits).reshape(-1) for name in own.names]
    flat = np.concatenate(parts) if parts else np.zeros(0, _INT32_LE)
    return encode_ints(own, flat, scale_bits=scale_bits)


def decode_ints(data: bytes, *, spec: ModelSpec | None = None, scale_bits: int | None = None) -> CanonicalInts:
    """Validate a canonical blob and return its integer form; every defect raises CodecError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"canonical blob must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREAMBLE.size:
        raise CodecError("truncated header")
    magic, version, blob_scale, reserved, table_len = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise CodecError("wrong magic")
    if version != VERSION:
        raise CodecError(f"unsupported version {version}")
    if blob_scale > MAX_SCALE_BITS:
        raise CodecError(f"scale_bits {blob_scale} out of range")
    if scale_bits is not None and blob_scale != scale_bits:
        raise CodecError(f"scale_bits {blob_scale}, expected {scale_bits}")
    if reserved != 0:
        raise CodecError("reserved header field is not zero")
    if table_len > MAX_TABLE_BYTES:
        raise CodecError("oversized header")
    end = _PREAMBLE.size + table_len
    if len(data) < end:
        raise CodecError("truncated header")
    blob_spec = _parse_table(data[_PREAMBLE.size:end])
    if spec is not None and blob_spec != spec:
        raise CodecError("names/shapes do not match the model spec")
    payload = len(data) - end
    expected = 4 * blob_spec.num_params
    if payload < expected:
        raise CodecError(f"truncated payload: {payload} bytes, expected {expected}")
    if payload > expected:
        raise CodecError(f"{payload - expected} trailing bytes")
    values = np.frombuffer(data, dtype=_INT32_LE, offset=end)
    if values.size and int(values.min()) < -Q_MAX:
        raise CodecError("value -2**31 is not canonical")
    return CanonicalInts(blob_spec, blob_scale, values)


def _parse_table(table: bytes) -> ModelSpec:
    pos = 0

    def take(size: int) -> bytes:
        nonlocal pos
        if pos + size > len(table):
            raise CodecError("truncated tensor table")
        chunk = table[pos:pos + size]
        pos += size
        return chunk

    (count,) = struct.unpack("<H", take(2))
    entries = []
    for _ in range(count):
        (name_len,) = struct.unpack("<H", take(2))
        try:
            name = take(name_len).decode("ascii")
        except UnicodeDecodeError:
            raise CodecError("tensor name is not ASCII") from None
        (ndim,) = struct.unpack("<B", take(1))
        if ndim > MAX_NDIM:
            raise CodecError(f"tensor {name!r} has {ndim} dimensions (max {MAX_NDIM})")
        entries.append((_check_name(name), struct.unpack(f"<{ndim}I", take(4 * ndim))))
    if pos != len(table):
        raise CodecError("trailing bytes in tensor table")
    names = [name for name, _ in entries]
    if any(a >= b for a, b in zip(names, names[1:])):
        raise CodecError("tensor names not in strictly ascending order")
    return ModelSpec(entries)


def decode(data: bytes, *, spec: ModelSpec | None = None, scale_bits: int | None = None) -> dict[str, Any]:
    """Named float32 torch tensors of a canonical blob (value = integer * 2**-scale, rounded to float32)."""
    import torch

    ints = decode_ints(data, spec=spec, scale_bits=scale_bits)
    floats = np.ldexp(ints.values.astype(np.float32), -ints.scale_bits).astype(np.float32)
    out: dict[str, Any] = {}
    start = 0
    for (name, shape), size in zip(ints.spec.entries, ints.spec.sizes):
        out[name] = torch.from_numpy(floats[start:start + size].reshape(shape).copy())
        start += size
    return out


def apply_update(model: bytes, update: bytes) -> bytes:
    """M + U in exact integer arithmetic, saturating at +-Q_MAX; both blobs must share spec and scale."""
    m = decode_ints(model)
    u = decode_ints(update, spec=m.spec, scale_bits=m.scale_bits)
    total = m.values.astype(np.int64) + u.values
    np.clip(total, -Q_MAX, Q_MAX, out=total)
    return encode_ints(m.spec, total, scale_bits=m.scale_bits)
