"""consensus.aggregate: canonical update blobs in, canonical aggregate blob + integer scores out."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from consensus.aggregators import RuleInput
from consensus.aggregators.base import check_int
from consensus.aggregators.compose import run_composed
from consensus.chunks import default_workers
from consensus.codec import CanonicalInts, ModelSpec, decode_ints, encode_ints, update_hash
from consensus.errors import AggregationError, CodecError
from consensus.feasibility import split_rule


@dataclass(frozen=True)
class AggregationResult:
    aggregate: bytes  # canonical update
    scores: tuple[int, ...]  # one per input, 0 for excluded
    excluded: tuple[int, ...]  # indices into the inputs whose blob was missing or invalid
    rule: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregate_update_hash(self) -> bytes:
        return update_hash(self.aggregate)


def _decode_one(blob: bytes | None, spec: ModelSpec | None, scale_bits: int | None) -> CanonicalInts | None:
    try:
        return None if blob is None else decode_ints(blob, spec=spec, scale_bits=scale_bits)
    except CodecError:
        return None


def _decode_all(updates: Sequence[bytes | None], spec: ModelSpec | None, scale_bits: int | None,
                workers: int | None = None) -> list[CanonicalInts | None]:
    """Each blob decoded on our workers: blobs are independent and the validation pass over each payload runs
    in numpy without the GIL; results stay in input order, so `workers` cannot change them."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(updates) <= 1:
        return [_decode_one(blob, spec, scale_bits) for blob in updates]
    with ThreadPoolExecutor(max_workers=min(workers, len(updates))) as pool:
        return list(pool.map(lambda blob: _decode_one(blob, spec, scale_bits), updates))


def _reference_layout(decoded: list[CanonicalInts | None]) -> tuple[ModelSpec, int] | None:
    """Without a spec: the (spec, scale) most blobs share; ties go to the layout seen first."""
    counts: dict[tuple[ModelSpec, int], int] = {}
    for item in decoded:
        if item is not None:
            key = (item.spec, item.scale_bits)
            counts[key] = counts.get(key, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def aggregate(rule: str, updates: Sequence[bytes | None], *, f: int, weights: Sequence[int] | None = None,
              spec: ModelSpec | None = None, scale_bits: int | None = None, workers: int | None = None,
              **params: Any) -> AggregationResult:
    """Run `rule` over canonical update blobs given in canonical peer order.

    Missing (None), undecodable, or off-spec blobs are excluded (score 0), never an exception. With `spec`
    and/or `scale_bits` (what the federation publishes; peers should pass both) blobs must match them;
    without, the layout shared by most blobs wins. `weights` are self-reported sample counts (default 1
    each), used by fedavg and by multi_krum(weighting="samples"). `workers` only sets how many threads
    the column chunks are spread over; it never changes a result. Rule parameters (`m`, `neighbours`,
    `weighting`, `sample_cap`) are documented in each rule's module. Raises AggregationError when the
    rule cannot run (unknown rule or parameter, too few valid updates for f).
    """
    pre, base = split_rule(rule)
    f = check_int("f", f)
    n_all = len(updates)
    if weights is None:
        weights = [1] * n_all
    weights = [check_int("weight", w) for w in weights]
    if len(weights) != n_all:
        raise AggregationError(f"{len(weights)} weights for {n_all} updates")
    decoded = _decode_all(updates, spec, scale_bits, workers)
    layout = _reference_layout(decoded)
    if layout is None:
        raise AggregationError("no valid update to aggregate")
    usable = {i: item for i, item in enumerate(decoded)
              if item is not None and (item.spec, item.scale_bits) == layout}
    valid = sorted(usable)
    excluded = tuple(i for i in range(n_all) if i not in usable)
    inp = RuleInput([usable[i].values for i in valid], [weights[i] for i in valid], f, workers)
    if inp.d == 0:
        raise AggregationError("the model has no parameters")
    composed = run_composed(pre, base, inp, dict(params))
    out, values, members = composed.out, composed.values, composed.members
    scores = [0] * n_all
    for row, score in enumerate(out.scores):
        for pos in members[row]:
            scores[valid[pos]] = score
    resolved = {"f": f, **out.params}
    if "selected" in resolved:
        resolved["selected"] = sorted(valid[pos] for row in resolved["selected"] for pos in members[row])
    blob = encode_ints(layout[0], values, scale_bits=layout[1])
    return AggregationResult(blob, tuple(scores), excluded, rule, resolved)
