"""Codec: round trip, error bound, strict validation (every corrupted form raises CodecError)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import consensus
from consensus import CodecError, ModelSpec
from consensus.codec import MAX_TABLE_BYTES, Q_MAX

SCALE = 2.0**-20


def sample() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "fc.bias": rng.standard_normal(4).astype(np.float32), "scalar": np.float32(0.5)}


floats = hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
                    elements=st.floats(-2000, 2000, width=32))


@settings(max_examples=60, deadline=None)
@given(floats)
def test_round_trip_within_half_scale(x):
    blob = consensus.encode({"t": x})
    ints = consensus.decode_ints(blob)
    exact = ints.values.astype(np.float64) * SCALE
    assert np.all(np.abs(exact - x.astype(np.float64).reshape(-1)) <= SCALE / 2)
    back = consensus.decode(blob)["t"]
    assert back.dtype == torch.float32 and tuple(back.shape) == x.shape
    assert consensus.encode({"t": back}) == blob or np.abs(x).max() >= 16  # float32 view exact below 2**4


def test_round_half_to_even_and_clipping():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9], dtype=np.float64) * SCALE
    x[5:] = [1e9, -1e9]
    ints = consensus.decode_ints(consensus.encode({"x": x})).values
    assert ints.tolist() == [0, 2, 2, 0, -2, Q_MAX, -Q_MAX]


def test_order_independent_and_torch_numpy_equal():
    d = sample()
    a = consensus.encode(d)
    b = consensus.encode(dict(reversed(list(d.items()))))
    c = consensus.encode({k: torch.from_numpy(np.asarray(v)) for k, v in d.items()})
    assert a == b == c
    assert list(consensus.decode(a)) == sorted(d)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_rejected(bad):
    with pytest.raises(CodecError, match="NaN or Inf"):
        consensus.encode({"x": np.array([1.0, bad])})


@pytest.mark.parametrize("named", [{"": np.zeros(1)}, {"a b": np.zeros(1)}, {"é": np.zeros(1)},
                                   {"x": np.zeros(1, dtype=bool)}, {"x": np.zeros(1, dtype=complex)},
                                   {"x": np.zeros((1,) * 9)}])
def test_bad_inputs_rejected(named):
    with pytest.raises(CodecError):
        consensus.encode(named)


def test_spec_and_hash():
    d = sample()
    spec = ModelSpec.from_state_dict(d)
    assert spec.names == ("fc.bias", "fc.weight", "scalar") and spec.num_params == 17
    assert spec == ModelSpec([("scalar", ()), ("fc.weight", (3, 4)), ("fc.bias", (4,))])
    assert len(spec.spec_hash()) == 32
    blob = consensus.encode(d, spec=spec)
    consensus.decode(blob, spec=spec)
    other = ModelSpec({"fc.bias": (4,), "fc.weight": (4, 3), "scalar": ()})
    with pytest.raises(CodecError):
        consensus.decode(blob, spec=other)
    with pytest.raises(CodecError):
        consensus.encode(d, spec=other)
    with pytest.raises(CodecError):
        consensus.decode(blob, scale_bits=16)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    sd = model.state_dict()
    assert ModelSpec.from_state_dict(sd) == consensus.decode_ints(consensus.encode(sd)).spec
    assert consensus.update_hash(blob) == __import__("hashlib").sha256(blob).digest()


def corruptions(blob: bytes) -> list[bytes]:
    table_len = struct.unpack_from("<I", blob, 8)[0]
    header_end = 12 + table_len
    out = [blob[:k] for k in (0, 3, 11, 12, header_end - 1, header_end, len(blob) - 1)]
    out += [b"XXXX" + blob[4:], blob[:4] + b"\x02" + blob[5:], blob[:5] + b"\x1f" + blob[6:],
            blob[:6] + b"\x01\x00" + blob[8:], blob + b"\x00", blob + b"\x00" * 4,
            blob[:8] + struct.pack("<I", MAX_TABLE_BYTES + 1) + blob[12:],
            blob[:8] + struct.pack("<I", table_len + 4) + blob[12:],
            blob[:8] + struct.pack("<I", table_len - 1) + blob[12:],
            blob[:header_end] + struct.pack("<i", -2**31) + blob[header_end + 4:]]
    name_at = 12 + 2 + 2  # first tensor's name bytes
    for bad_char in (b" ", b"\xff", b"\x00"):
        out.append(blob[:name_at] + bad_char + blob[name_at + 1:])
    out.append(blob[:12] + b"\x00\x00" + blob[14:])  # zero tensors but a payload
    ndim_at = name_at + len("fc.bias")
    out.append(blob[:ndim_at] + b"\x09" + blob[ndim_at + 1:])  # ndim 9
    out.append(blob[:ndim_at + 1] + struct.pack("<I", 5) + blob[ndim_at + 5:])  # shape 5 != 4 -> size mismatch
    return out


def test_every_corruption_raises_codec_error():
    blob = consensus.encode(sample())
    spec = ModelSpec.from_state_dict(sample())
    for bad in corruptions(blob):
        with pytest.raises(CodecError):
            consensus.decode(bad, spec=spec)
    swapped = consensus.encode({"b": np.zeros(1), "a": np.zeros(1)})
    i = swapped.index(b"a")
    j = swapped.index(b"b")
    swapped = swapped[:i] + b"b" + swapped[i + 1:j] + b"a" + swapped[j + 1:]
    with pytest.raises(CodecError, match="ascending"):
        consensus.decode(swapped)
    for not_bytes in (None, "abc", 5):
        with pytest.raises(CodecError):
            consensus.decode(not_bytes)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_byte_flips_never_crash(data):
    blob = consensus.encode(sample())
    pos = data.draw(st.integers(0, len(blob) - 1))
    value = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob) + 2))
    mutated = (blob[:pos] + bytes([value]) + blob[pos + 1:] + b"\x00\x00")[:cut]
    try:
        consensus.decode(mutated)
    except CodecError:
        pass


def test_apply_update_exact_and_saturating():
    spec = {"w": np.zeros(3)}
    model = consensus.encode_ints(ModelSpec.from_state_dict(spec), np.array([1, Q_MAX - 1, -5]))
    update = consensus.encode_ints(ModelSpec.from_state_dict(spec), np.array([2, 10, -Q_MAX]))
    out = consensus.decode_ints(consensus.apply_update(model, update)).values
    assert out.tolist() == [3, Q_MAX, -Q_MAX]
    with pytest.raises(CodecError):
        consensus.apply_update(model, consensus.encode({"w": np.zeros(3)}, scale_bits=16))
    with pytest.raises(CodecError):
        consensus.apply_update(model, consensus.encode({"v": np.zeros(3)}))
    with pytest.raises(CodecError):
        consensus.encode_ints(ModelSpec.from_state_dict(spec), np.array([0, 0, 2**31]))
